"""What a :class:`~ocr_targets.collate.StoreCollate` served, counted across every process that
runs it: the main process and its DataLoader workers, forked or spawned.

The counts live in shared memory made with the collate, so the main process reads what its
workers did. An epoch ends when every stored entry has been seen once, or when one is seen
again (a loader over part of the store); its counts then move to ``last_epoch``.
"""

from __future__ import annotations

import multiprocessing
from enum import IntEnum
from multiprocessing.context import get_spawning_popen
from typing import NamedTuple


class Cause(IntEnum):
    """What became of an item: served from the store, or why it was computed instead."""

    NOT_STORED = -1  # the store does not hold its image (a training item)
    SERVED = 0
    WORDS = 1
    SIZE = 2
    PADDING = 3

    @property
    def text(self) -> str:
        return _TEXTS[self]


_TEXTS = {
    Cause.WORDS: "its words differ from the stored ones (as int32 points): the annotations changed since "
    "precompute, or a transform other than the validation one (augmented)",
    Cause.SIZE: "the item's image size differs from the store's",
    Cause.PADDING: "its words and its inverse matrix differ from the stored ones: another padding, or another "
    "image of that name",
}
# The shared counters, in this order; FIRST is the first entry computed although stored, CAUSE its
# Cause, HEIGHT and WIDTH its item's image size (for Cause.SIZE: the size the dataset resizes to).
SERVED, STORED_COMPUTED, OTHER_COMPUTED, SEEN, FIRST, CAUSE, HEIGHT, WIDTH = range(8)


class Counts(NamedTuple):
    """Items of one epoch: ``served`` from the store, ``stored_computed`` computed although the
    store holds their image (``first`` the first such entry, ``cause`` its :class:`Cause`),
    ``other_computed`` computed because the store does not hold them (training items)."""

    served: int = 0
    stored_computed: int = 0
    other_computed: int = 0
    first: int = -1
    cause: Cause = Cause.SERVED


class Ended(NamedTuple):
    """An epoch an item ended: its counts, and the image (height, width) of its first item
    computed although stored, when that was for Cause.SIZE (else (0, 0))."""

    counts: Counts
    shape: tuple[int, int]


class Tally:
    """Shared counts of the current and the last epoch, and which entries this epoch has seen."""

    def __init__(self, entries: int) -> None:
        self._lock = multiprocessing.get_context("spawn").Lock()  # usable in forked processes too
        self._now = multiprocessing.RawArray("q", WIDTH + 1)
        self._last = multiprocessing.RawArray("q", WIDTH + 1)
        self._seen = multiprocessing.RawArray("b", max(entries, 1))
        self._entries = entries
        self._reset(self._now)
        self._reset(self._last)

    def __getstate__(self) -> dict:
        """Shared with the workers a DataLoader spawns; any other copy (deepcopy, a pickle to
        disk) starts counts of its own."""
        if get_spawning_popen() is None:
            return {"entries": self._entries}
        return self.__dict__

    def __setstate__(self, state: dict) -> None:
        if "entries" in state:
            self.__init__(state["entries"])
        else:
            self.__dict__.update(state)

    def count(self, index: int | None, cause: Cause, shape: tuple[int, int] = (0, 0)) -> Ended | None:
        """Count one item (``index`` its entry, None if the store does not hold its image;
        ``shape`` its image's, for Cause.SIZE); return the epoch this item ended, else None."""
        with self._lock:
            if index is None:
                self._now[OTHER_COMPUTED] += 1
                return None
            ended = None
            if self._seen[index]:
                ended = self._close()
            self._seen[index] = 1
            self._now[SEEN] += 1
            if cause == Cause.SERVED:
                self._now[SERVED] += 1
            else:
                self._now[STORED_COMPUTED] += 1
                if self._now[FIRST] < 0:
                    self._now[FIRST], self._now[CAUSE] = index, cause
                    self._now[HEIGHT], self._now[WIDTH] = shape
            if self._now[SEEN] == self._entries:
                ended = self._close()
            return ended

    def _close(self) -> Ended:
        self._last[:] = self._now[:]
        self._reset(self._now)
        self._seen[:] = bytes(len(self._seen))
        return Ended(_counts(self._last), (self._last[HEIGHT], self._last[WIDTH]))

    @staticmethod
    def _reset(values) -> None:
        values[:] = [0] * len(values)
        values[FIRST] = -1

    @property
    def this_epoch(self) -> Counts:
        with self._lock:
            return _counts(self._now)

    @property
    def last_epoch(self) -> Counts:
        with self._lock:
            return _counts(self._last)


def _counts(values) -> Counts:
    return Counts(values[SERVED], values[STORED_COMPUTED], values[OTHER_COMPUTED], values[FIRST], Cause(values[CAUSE]))
