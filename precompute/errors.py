"""The command line's own exceptions (its checks' error, and SIGTERM) and why a run stops early."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class CommandError(Exception):
    """A problem with what a command was asked (a path, the cluster, the picture to write)
    that the user can fix: printed in one line, exit status 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, ``docker stop``), handled as Ctrl-C is."""


class StopCause(Enum):
    """Why a run stopped before its end: the command line chooses its exit status and its advice by it."""

    INTERRUPTED = "interrupted"  # Ctrl-C
    TERMINATED = "terminated"  # SIGTERM
    DISK_FULL = "disk full"  # the store's disk: free some space
    STORAGE = "storage failed"  # any other failure of the store's storage: Stop.detail says which

    @classmethod
    def of(cls, interrupt: KeyboardInterrupt) -> StopCause:
        """The cause a Ctrl-C or a SIGTERM (:class:`Terminated`) is."""
        return cls.TERMINATED if isinstance(interrupt, Terminated) else cls.INTERRUPTED


@dataclass(frozen=True)
class Stop:
    """Why a run stopped: its cause and, for StopCause.STORAGE, what the storage said and where."""

    cause: StopCause
    detail: str = ""
