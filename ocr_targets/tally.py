"""What a :class:`~ocr_targets.collate.StoreCollate` served, counted across every process that
runs it: the main process and its DataLoader workers, forked or spawned.

The counts live in shared memory made with the collate, so the main process reads what its
workers did. An epoch ends when every stored entry has been seen once, or when one is seen
again (a loader over part of the store); its counts then move to ``last_epoch``.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import get_spawning_popen
from typing import NamedTuple

# Why an item of an image the store holds was computed anyway.
CAUSES = {
    1: "its words differ from the stored ones (as int32 points): the annotations changed since precompute, "
    "or a transform other than the validation one (augmented)",
    2: "the item's image size differs from the store's",
    3: "the item's inverse matrix differs from the stored one: another padding, or another image of that name",
}
_FIELDS = ("served", "stored_computed", "other_computed", "seen", "first", "cause")


class Counts(NamedTuple):
    """Items of one epoch: ``served`` from the store, ``stored_computed`` computed although the
    store holds their image (``first`` the first such entry, ``cause`` a key of CAUSES),
    ``other_computed`` computed because the store does not hold them (training items)."""

    served: int = 0
    stored_computed: int = 0
    other_computed: int = 0
    first: int = -1
    cause: int = 0


class Tally:
    """Shared counts of the current and the last epoch, and which entries this epoch has seen."""

    def __init__(self, entries: int) -> None:
        self._lock = multiprocessing.get_context("spawn").Lock()  # usable in forked processes too
        self._now = multiprocessing.RawArray("q", len(_FIELDS))
        self._last = multiprocessing.RawArray("q", len(_FIELDS))
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

    def count(self, index: int | None, served: bool, cause: int = 0) -> Counts | None:
        """Count one item (``index`` its entry, None if the store does not hold its image);
        return the counts of an epoch this item ended, else None."""
        with self._lock:
            if index is None:
                self._now[2] += 1
                return None
            ended = None
            if self._seen[index]:
                ended = self._close()
            self._seen[index] = 1
            self._now[3] += 1
            if served:
                self._now[0] += 1
            else:
                self._now[1] += 1
                if self._now[4] < 0:
                    self._now[4], self._now[5] = index, cause
            if self._now[3] == self._entries:
                ended = self._close()
            return ended

    def _close(self) -> Counts:
        self._last[:] = self._now[:]
        self._reset(self._now)
        self._seen[:] = bytes(len(self._seen))
        return _counts(self._last)

    @staticmethod
    def _reset(values) -> None:
        values[:] = [0] * len(_FIELDS)
        values[4] = -1

    @property
    def this_epoch(self) -> Counts:
        with self._lock:
            return _counts(self._now)

    @property
    def last_epoch(self) -> Counts:
        with self._lock:
            return _counts(self._last)


def _counts(values) -> Counts:
    served, stored, other, _, first, cause = values[:]
    return Counts(served, stored, other, first, cause)
