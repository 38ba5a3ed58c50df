"""A local filesystem, as fsspec's ``faulty://`` URLs, whose k-th write, rename, copy or delete
fails: the fault injector of the recovery tests, as SQLite tests its I/O errors.

Through a URL the store is written by zarr-python's fsspec store and every other object (the
lock, the file list, the staging copies) by fsspec: each mutation of the store passes here,
in this process (the tests run the job with ``--jobs 1``).
"""

from __future__ import annotations

import errno
import os

import fsspec
from fsspec.implementations.local import LocalFileSystem


class FaultyFileSystem(LocalFileSystem):
    protocol = "faulty"
    fail_at: int | None = None  # the mutation that fails (1 is the first), or None
    error: int = errno.ENOSPC
    mutations: int = 0  # counted since the last arm()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{"auto_mkdir": True, **kwargs})  # as object storage: no folders to make

    @classmethod
    def arm(cls, fail_at: int | None, error: int = errno.ENOSPC) -> None:
        cls.fail_at, cls.error, cls.mutations = fail_at, error, 0

    @classmethod
    def _mutate(cls, what: str, path: str) -> None:
        cls.mutations += 1
        if cls.mutations == cls.fail_at:
            raise OSError(cls.error, f"{os.strerror(cls.error)} (injected: {what} {path})")

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


fsspec.register_implementation("faulty", FaultyFileSystem, clobber=True)


def url(path: os.PathLike) -> str:
    return f"faulty://{os.fspath(path)}"
