"""Where a file or folder lives: a local path or an fsspec URL (``s3://bucket/key``,
``gs://...``, ``file://...``), with the storage options that reach it.

Everything is read and written through fsspec (the store's arrays through zarr's fsspec
store), so credentials and endpoints come from the usual environment
(``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, ...) unless storage options say otherwise.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import fsspec
from fsspec.core import url_to_fs


@dataclass(frozen=True)
class Location:
    """A path or URL, and the fsspec storage options for it (e.g. ``endpoint_url``)."""

    url: str
    options: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, where: str | Path | Location, options: dict[str, Any] | None = None) -> Location:
        if isinstance(where, Location):
            return where
        text = str(where)
        if "://" not in text:
            text = str(Path(text).absolute())
        return cls(text.rstrip("/") or "/", dict(options or {}))

    def __str__(self) -> str:
        return self.url

    def __truediv__(self, name: str) -> Location:
        child = Location(f"{self.url}/{name}", self.options)
        fs, path = self._fs_path  # the parent's filesystem, parsed once, not a parse per child (~40 us)
        child.__dict__["_fs_path"] = (fs, f"{path.rstrip('/')}/{name}")
        return child

    @property
    def name(self) -> str:
        """The last component: a file's name."""
        return self.url.rsplit("/", 1)[-1]

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0] if "://" in self.url else "file"

    @property
    def is_local(self) -> bool:
        return self.scheme in ("file", "local")

    @cached_property
    def _fs_path(self) -> tuple[fsspec.AbstractFileSystem, str]:
        return url_to_fs(self.url, **self.options)

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        return self._fs_path[0]

    @property
    def path(self) -> str:
        """The path within :attr:`fs` (for a local location, an absolute file path)."""
        return self._fs_path[1]

    def __getstate__(self) -> dict:
        return {"url": self.url, "options": self.options}  # each process makes its own filesystem

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def read_bytes(self) -> bytes:
        return self.fs.cat_file(self.path)

    def read_with_stat(self) -> tuple[bytes, tuple[int, int]]:
        """The bytes, and (size, mtime in ns) as they were when read: what tells later whether the
        object changed without reading it again."""
        if self.is_local:
            with open(self.path, "rb") as file:
                stat = os.fstat(file.fileno())
                return file.read(), (stat.st_size, stat.st_mtime_ns)
        stat = self.stat()
        return self.read_bytes(), stat

    def stat(self) -> tuple[int, int]:
        """(size, modification time in ns); FileNotFoundError if there is nothing there."""
        if self.is_local:
            stat = os.stat(self.path)
            return stat.st_size, stat.st_mtime_ns
        info = self.fs.info(self.path)
        if info.get("type") == "directory":
            raise IsADirectoryError(self.url)
        # One metadata request: s3fs's info holds what its modified() would ask for again.
        modified = info["LastModified"] if "LastModified" in info else self.fs.modified(self.path)
        return int(info["size"]), int(modified.timestamp() * 1e9)

    def write_bytes(self, data: bytes, exclusive: bool = False) -> None:
        """Write the whole object; ``exclusive``: only if nothing is there yet (FileExistsError).

        Object stores replace an object whole on a write, so a reader never sees half of one;
        locally the bytes go to a temporary file renamed into place.
        """
        if self.is_local:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            if exclusive:
                with open(self.path, "xb") as file:
                    file.write(data)
                return
            partial = f"{self.path}.partial"
            with open(partial, "wb") as file:
                file.write(data)
            os.replace(partial, self.path)
            return
        self.fs.pipe_file(self.path, data, mode="create" if exclusive else "overwrite")

    def exists(self) -> bool:
        return self.fs.exists(self.path)

    def is_dir(self) -> bool:
        return self.fs.isdir(self.path)

    def delete(self, recursive: bool = False) -> None:
        """Remove the object (or, ``recursive``, everything under this prefix); nothing there is fine."""
        self.fs.invalidate_cache(self.path)  # else s3fs may find nothing to delete in a stale listing
        try:
            self.fs.rm(self.path, recursive=recursive)
        except FileNotFoundError:
            pass

    def copy_to(self, target: Location) -> None:
        """Copy every object under this prefix to ``target`` (server-side on object stores)."""
        if self.is_local:
            Path(target.path).parent.mkdir(parents=True, exist_ok=True)
        self.fs.copy(self.path, target.path, recursive=True)

    def disk_usage(self) -> int:
        """Bytes of every object under this prefix. On a local disk, a file that goes while
        they are counted (a job replacing a store's objects as it writes) counts as gone."""
        if self.is_local:
            return sum(_file_size(os.path.join(root, name)) for root, _, names in os.walk(self.path) for name in names)
        return int(self.fs.du(self.path)) if self.exists() else 0


def _client_errors() -> tuple[type[Exception], ...]:
    """The errors of the S3 client (the s3 extra) that are not OSError: no endpoint, no credentials."""
    try:
        from botocore.exceptions import BotoCoreError
    except ImportError:
        return ()
    return (BotoCoreError,)


# What reading or writing a location can raise when the storage, not the data, is at fault.
STORAGE_ERRORS: tuple[type[Exception], ...] = (OSError, *_client_errors())


def disk_full(error: BaseException) -> bool:
    """Whether ``error`` is a full disk: ENOSPC, or an error that says so only in its text (the
    zarrs pipeline's write errors), so that the job can tell the user to free space."""
    return isinstance(error, OSError) and error.errno == errno.ENOSPC or "No space left" in str(error)


def storage_problem(error: BaseException, location: Location | None = None) -> str:
    """One line for a storage error: what went wrong, and where. ``location``, where it happened
    if known, tells a local disk's refusal (the permissions) from object storage's (the credentials)."""
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        if isinstance(error, PermissionError):
            local = location.is_local if location is not None else None
            if local:
                return f"{where}{error.strerror or error}: check the permissions of the files and folders there"
            credentials = (
                "the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the profile, or --storage-option)"
            )
            check = credentials if local is False else f"{credentials} and the permissions"
            return f"{where}{error.strerror or error}: access refused; check {check}"
        return f"{where}{error.strerror or error}"
    name = type(error).__name__
    if "Credentials" in name:
        return (
            f"object storage: {error}; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile), "
            "or pass --storage-option"
        )
    return f"object storage: {error}"


def _file_size(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except FileNotFoundError:
        return 0


def parse_storage_options(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (``--storage-option``) as fsspec options; a dotted key nests
    (``client_kwargs.region_name=eu-west-1``); true/false and numbers are read as such."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--storage-option {pair!r}: expected KEY=VALUE")
        target = options
        *parents, last = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[last] = _value(value)
    return options


def _value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
