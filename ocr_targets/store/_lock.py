"""One writer at a time: the lock object ``STORE/.lock``, made with a conditional write.

Taking it is a create-if-absent write of the whole lock (locally a complete temporary file
hard-linked into place, which fails if the lock exists; ``If-None-Match: *`` on S3), so of
two jobs that start together exactly one gets it, and a lock is never seen half written. It
names its holder: host, process, the process's start time (so a reused process number does
not pass for the holder) and a token. The job deletes it at its end.

A job killed with SIGKILL cannot delete it: a later job on the same host sees that the
holder's process is gone and takes the lock over, by a conditional replace (locally the dead
holder's lock is renamed aside, and put back if it turns out to be another job's new one);
from another host, ``--break-lock`` does, once you know that job is gone.

On storage that ignores conditional writes the lock is advisory: after writing it the job
reads it back and stops if another holder's token is there, which catches all but two
jobs starting within the same moment.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import socket
import uuid
from pathlib import Path

from ..location import STORAGE_ERRORS, Location
from ._errors import StoreError

LOCK = ".lock"
logger = logging.getLogger(__name__)
_HELD: set[str] = set()  # the tokens of the locks this process holds


def now() -> str:
    """The time as the store records it: UTC, to the second."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _started(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), or None where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19])  # the 22nd field of the line, the 20th after the command name
    except (OSError, IndexError, ValueError):
        return None


def _holder_alive(holder: dict) -> bool:
    """Whether the lock's holder may still be writing. Another host's holder always may (we
    cannot tell); a holder on this host is gone when its process is, when its process number
    now belongs to a process started at another time, or when it is this very process but not
    one of the locks it holds (a release that failed)."""
    if holder.get("empty"):
        return False
    if holder.get("host") != socket.gethostname():
        return True
    try:
        pid = int(holder["pid"])
    except (KeyError, TypeError, ValueError):
        return True  # a holder we cannot read: it holds
    if pid == os.getpid() and holder.get("started") == _started(pid):
        return holder.get("token") in _HELD
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process
    started = holder.get("started")
    return started is None or _started(pid) in (None, started)


def _alive_here(holder: dict) -> bool:
    """Whether the lock's holder is known alive: a process of this host, with the process number
    and the start time the lock records, that still holds it. ``--break-lock`` never takes that."""
    if holder.get("host") != socket.gethostname() or holder.get("started") is None:
        return False
    try:
        pid = int(holder["pid"])
    except (KeyError, TypeError, ValueError):
        return False
    return _holder_alive(holder) and _started(pid) == holder["started"]


def describe(holder: dict) -> str:
    return f"process {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}"


def _broken(holder: dict, alive: bool) -> str:
    """Whose lock ``--break-lock`` took, in words."""
    if not alive:
        return f"the lock's holder, {describe(holder)}, is gone (on this machine that is noticed without --break-lock)"
    return (
        f"took the lock of {describe(holder)}, a job this machine cannot see; if it still runs, stop it: two jobs "
        "writing one store damage it"
    )


def _read(lock: Location) -> dict | None:
    """The lock's holder, None if there is no lock; an unreadable lock names an unknown holder."""
    try:
        data = lock.read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        return {"host": "?", "pid": "?", "since": "?"}
    if not data:  # an older version created the lock, then wrote it: killed in between
        return {"host": "?", "pid": "?", "since": "?", "empty": True}
    try:
        holder = json.loads(data)
    except ValueError:
        return {"host": "?", "pid": "?", "since": "?"}
    return holder if isinstance(holder, dict) else {"host": "?", "pid": "?", "since": "?"}


def held(store: Location) -> dict | None:
    """The holder of the store's lock, or None when no job writes it (or its holder is gone)."""
    holder = _read(store / LOCK)
    return holder if holder is not None and _holder_alive(holder) else None


class StoreLock:
    """The writer's lock on ``store``; :meth:`release` (or the end of the job) gives it back."""

    def __init__(self, store: Location, break_lock: bool = False) -> None:
        self.store = store
        self.object = store / LOCK
        self.token = uuid.uuid4().hex
        holder = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": _started(os.getpid()),
            "since": now(),
            "token": self.token,
        }
        data = json.dumps(holder).encode()
        for attempt in range(2):
            if self._create(data):
                break
            current = _read(self.object)
            if current is None:
                continue
            alive = _holder_alive(current)
            if attempt or (alive and not break_lock):
                raise self._locked(current)
            if break_lock and _alive_here(current):
                raise StoreError(
                    f"{store}: --break-lock refused: the lock's holder, {describe(current)}, is alive on this machine; "
                    f"wait for it to finish, or stop it (kill {current['pid']}) and rerun"
                )
            self._take_over(current)  # its holder is gone, or the user said so
            if break_lock:
                logger.warning("%s: --break-lock: %s", store, _broken(current, alive))
        else:
            raise self._locked({})
        if (_read(self.object) or {}).get("token") != self.token:
            raise StoreError(f"{store}: another job took the lock at the same moment; wait for it to finish")
        _HELD.add(self.token)

    def _locked(self, holder: dict) -> StoreError:
        return StoreError(
            f"{self.store}: locked by another precompute job ({describe(holder)}); wait for it to finish, or, "
            "if that job is gone (killed on another machine), rerun with --break-lock"
        )

    def _create(self, data: bytes) -> bool:
        """Write the whole lock if there is none; False if there is one."""
        if not self.object.is_local:
            try:
                self.object.write_bytes(data, exclusive=True)
            except FileExistsError:
                return False
            return True
        path = Path(self.object.path)
        staged = path.with_name(f"{LOCK}.{self.token}")
        try:
            staged.write_bytes(data)
            os.link(staged, path)
        except FileExistsError:
            return False
        finally:
            staged.unlink(missing_ok=True)
        return True

    def _take_over(self, dead: dict) -> None:
        """Remove the lock of holder ``dead``, and only that lock: not a new one that another
        job, taking over at the same moment, may have made in its place."""
        if not self.object.is_local:
            if _read(self.object) == dead:
                self.object.delete()
            return
        path = Path(self.object.path)
        aside = path.with_name(f"{LOCK}.gone.{self.token}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return  # another job removed it first
        try:
            if json.loads(aside.read_bytes()).get("token") != dead.get("token"):
                os.link(aside, path)  # another job's new lock: put it back
        except (ValueError, OSError):
            pass  # unreadable: it was the dead holder's, half written by an older version
        finally:
            aside.unlink()

    def release(self) -> None:
        """Delete the lock. A lock that cannot be deleted is left for the next job, which sees
        that its holder is gone (on this host; from another, ``--break-lock``)."""
        if self.token is None:
            return
        _HELD.discard(self.token)
        try:
            if (_read(self.object) or {}).get("token") == self.token:
                self.object.delete()
        except STORAGE_ERRORS as error:
            logger.warning("%s: cannot delete the lock (%s); the next job takes it over", self.object, error)
        self.token = None
