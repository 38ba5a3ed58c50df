"""Progress of long work: a tqdm bar on a terminal; in a log file or a pipe, a plain line
every tenth of the work (a bar's carriage returns would arrive there as one long line)."""

from __future__ import annotations

import sys
from typing import Protocol

from tqdm import tqdm


class Progress(Protocol):
    def update(self, count: int) -> None: ...

    def close(self) -> None: ...


def progress(total: int, what: str, enabled: bool = True, keep: bool = True) -> Progress:
    """Progress over ``total`` items of ``what`` ("computing"); nothing when there is no work,
    or when not ``enabled``. ``keep=False``: a short step, whose bar a terminal clears when done
    and a log does not get."""
    if not enabled or total == 0:
        return _Silent()
    if sys.stderr.isatty():
        return tqdm(total=total, desc=what, unit="img", leave=keep, file=sys.stderr)
    return _Lines(total, what) if keep else _Silent()


class _Silent:
    def update(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


class _Lines:
    def __init__(self, total: int, what: str) -> None:
        self.total, self.what, self.done, self.said = total, what, 0, 0

    def update(self, count: int) -> None:
        self.done += count
        tenth = self.done * 10 // self.total
        if tenth > self.said and self.done < self.total:
            self.said = tenth
            print(f"{self.what}: {self.done} of {self.total} images", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.done:
            print(f"{self.what}: {self.done} of {self.total} images", file=sys.stderr, flush=True)
