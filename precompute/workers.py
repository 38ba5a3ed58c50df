"""The job's local worker processes, which exit with the job's client.

A worker whose client is killed (``kill -9``, the OOM killer) has no one to hand its block to:
it exits at once instead of finishing its task, and with it the resource tracker that
multiprocessing started for the pool. On Linux the kernel kills it (``PR_SET_PDEATHSIG``);
elsewhere a thread watches the client.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def results(function: Callable, tasks: Sequence, workers: int, context: BaseContext, failed: Callable) -> Iterator:
    """``function(t)`` for every ``t`` in ``tasks`` on ``workers`` processes of ``context``,
    yielded as they complete; a task whose worker died yields ``failed(t, error)``. Closing the
    iterator early kills the workers and waits for them: none writes to the store after it."""
    executor = ProcessPoolExecutor(workers, mp_context=context, initializer=exit_with, initargs=(os.getpid(),))
    futures: dict[Future, object] = {}
    try:
        futures = {executor.submit(function, task): task for task in tasks}
        for future in as_completed(futures):
            try:
                yield future.result()
            except BrokenProcessPool as error:
                yield failed(futures[future], error)
    finally:
        unfinished = [future for future in futures if not future.done()]
        if unfinished:
            for future in unfinished:
                future.cancel()
            # terminate_workers() from Python 3.14; the processes it kills are these
            for process in list(getattr(executor, "_processes", {}).values()):
                process.kill()
        executor.shutdown(wait=True, cancel_futures=True)


def exit_with(client: int) -> None:
    """A worker's initializer: end this process when ``client`` (its job's process) ends."""
    parent = os.getppid()  # the client, or the forkserver, which exits with the client
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
        if os.getppid() != parent or not _alive(client):  # gone before the kernel was told
            os._exit(1)
        return
    threading.Thread(target=_watch, args=(client,), daemon=True, name="exit-with-client").start()


def _watch(client: int) -> None:
    while _alive(client):
        time.sleep(0.5)
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process: the pid was reused
    return True
