"""One writer at a time: the lock object ``STORE/.lock``, made with a conditional write.

Taking it is a create-if-absent write (``O_EXCL`` on a local disk, ``If-None-Match: *`` on
S3), so of two jobs that start together exactly one gets it; it names its holder (host,
process, start time), and the job deletes it at its end. A job killed with SIGKILL cannot
delete it: a later job on the same host sees that the holder's process is gone and takes it
over; from another host, ``--break-lock`` does, once you know that job is gone.

On storage that ignores conditional writes the lock is advisory: after writing it the job
reads it back and stops if another holder's token is there, which catches all but two
jobs starting within the same moment.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import uuid

from ..location import Location
from ._errors import StoreError

LOCK = ".lock"


def _holder_alive(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # another machine's process: we cannot tell, so it holds
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, ValueError):
        pass  # another user's process, or a holder we cannot read: it holds
    return True


def now() -> str:
    """The time as the store records it: UTC, to the second."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def describe(holder: dict) -> str:
    return f"process {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}"


def held(store: Location) -> dict | None:
    """The holder of the store's lock, or None when no job writes it (or its holder is dead)."""
    try:
        holder = json.loads((store / LOCK).read_bytes())
    except FileNotFoundError:
        return None
    except (ValueError, OSError):
        return {"host": "?", "pid": "?", "since": "?"}  # half-written by a killed job, or unreadable
    return holder if _holder_alive(holder) else None


class StoreLock:
    """The writer's lock on ``store``; :meth:`release` (or the end of the job) gives it back."""

    def __init__(self, store: Location, break_lock: bool = False) -> None:
        self.object = store / LOCK
        self.token = uuid.uuid4().hex
        holder = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": now(),
            "token": self.token,
        }
        data = json.dumps(holder).encode()
        for attempt in range(2):
            try:
                self.object.write_bytes(data, exclusive=True)
                break
            except FileExistsError:
                current = held(store)
                if attempt or (current is not None and not break_lock):
                    who = describe(current or {})
                    raise StoreError(
                        f"{store}: locked by another precompute job ({who}); wait for it to finish, or, if that "
                        "job is gone (killed on another machine), rerun with --break-lock"
                    ) from None
                self.object.delete()  # its holder is dead, or the user said so
        if json.loads(self.object.read_bytes()).get("token") != self.token:
            raise StoreError(f"{store}: another job took the lock at the same moment; wait for it to finish")

    def release(self) -> None:
        if self.token is None:
            return
        try:
            if json.loads(self.object.read_bytes()).get("token") == self.token:
                self.object.delete()
        except (FileNotFoundError, ValueError):
            pass
        self.token = None
