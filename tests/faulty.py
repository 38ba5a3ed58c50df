"""Filesystems whose k-th write, rename, copy or delete fails: the fault injector of the
recovery tests, as SQLite tests its I/O errors. ``faulty://`` is the local disk, failing with
ENOSPC or EIO; ``faultys3://`` is S3 (the tests' moto server), failing as a connection lost.

Through such a URL the store is written by zarr-python's fsspec store and every other object
(the lock, the file list, the staging copies) by fsspec: each mutation of the store passes
here, in this process (the tests run the job with ``--jobs 1``).
"""

from __future__ import annotations

import errno
import os

import fsspec
import s3fs
from botocore.exceptions import EndpointConnectionError
from fsspec.implementations.local import LocalFileSystem


class Faults:
    """Which mutation fails (1 is the first after :meth:`arm`), with which error number."""

    fail_at: int | None = None
    error: int = errno.ENOSPC
    mutations: list[str] = []  # what each mutation since arm() was: "write binary_maps/c/0/0/0/0"

    @classmethod
    def arm(cls, fail_at: int | None, error: int = errno.ENOSPC) -> None:
        cls.fail_at, cls.error, cls.mutations = fail_at, error, []

    @classmethod
    def count(cls, what: str, path: str) -> bool:
        """Count one mutation; True if it is the one to fail."""
        cls.mutations.append(f"{what} {path.split('.zarr', 1)[-1]}")
        return len(cls.mutations) == cls.fail_at


class FaultyFileSystem(LocalFileSystem):
    protocol = "faulty"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{"auto_mkdir": True, **kwargs})  # as object storage: no folders to make

    @staticmethod
    def _mutate(what: str, path: str) -> None:
        if Faults.count(what, path):
            raise OSError(Faults.error, f"{os.strerror(Faults.error)} (injected: {what} {path})")

    def _open(self, path, mode="rb", *args, **kwargs):
        if any(flag in mode for flag in "wxa+"):
            self._mutate("write", path)
        return super()._open(path, mode, *args, **kwargs)

    def rm_file(self, path):
        self._mutate("delete", path)
        return super().rm_file(path)

    def rm(self, path, recursive=False, maxdepth=None):
        self._mutate("delete", path)
        return super().rm(path, recursive=recursive, maxdepth=maxdepth)

    def mv(self, path1, path2, recursive: bool = True, **kwargs):
        self._mutate("rename", path1)
        return super().mv(path1, path2, recursive=recursive, **kwargs)

    def cp_file(self, path1, path2, **kwargs):
        self._mutate("copy", path1)
        return super().cp_file(path1, path2, **kwargs)


class FaultyS3FileSystem(s3fs.S3FileSystem):
    protocol = "faultys3"

    def _mutate(self, what: str, path: str) -> None:
        if Faults.count(what, path):
            raise EndpointConnectionError(endpoint_url=f"{self.client_kwargs} (injected: {what} {path})")

    async def _pipe_file(self, path, data, *args, **kwargs):
        self._mutate("write", path)
        return await super()._pipe_file(path, data, *args, **kwargs)

    async def _rm_file(self, path, **kwargs):
        self._mutate("delete", path)
        return await super()._rm_file(path, **kwargs)

    async def _rm(self, path, recursive=False, **kwargs):
        self._mutate("delete", path)
        return await super()._rm(path, recursive=recursive, **kwargs)

    async def _cp_file(self, path1, path2, **kwargs):
        self._mutate("copy", path1)
        return await super()._cp_file(path1, path2, **kwargs)


fsspec.register_implementation("faulty", FaultyFileSystem, clobber=True)
fsspec.register_implementation("faultys3", FaultyS3FileSystem, clobber=True)
