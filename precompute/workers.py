"""The job's local worker processes: started in milliseconds, they exit with the job's client.

A fresh interpreter takes about 0.7 s of a core to import what a task needs (numpy, numba,
OpenCV, zarr), and 0.4-0.5 s more to load the fast path's kernel from numba's cache at its
first image. A worker is instead forked from multiprocessing's forkserver, which does all that
once (:mod:`precompute.preload`) while the client imports and plans the run (:func:`start`).
Two workers ready to run a task, measured: 1.4-1.6 s spawned, 0.6-1.0 s from a forkserver
started then, 40 ms from one that has imported, 20 ms forked from the client. The client itself
is not forked: it may hold threads by then (zarr's and fsspec's event loops, rayon's pool,
OpenCV's), whose locks a child would inherit held; the forkserver holds none.

A worker whose client is killed (``kill -9``, the OOM killer) has no one to hand its block to:
it exits at once instead of finishing its task, and with the workers the forkserver and the
resource tracker that multiprocessing started for them.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import select
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext

PRELOAD = ["precompute.preload"]  # what a task needs, its kernel loaded


def context() -> BaseContext:
    """Where workers come from: the forkserver, preloaded, where the platform has one (Linux,
    macOS), else fresh interpreters."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    server = multiprocessing.get_context("forkserver")
    server.set_forkserver_preload(PRELOAD)
    return server


def start() -> None:
    """Start the forkserver now, so that it imports while this process goes on (it lives as long
    as this process; a later job's workers come from it at once)."""
    if context().get_start_method() == "forkserver":
        multiprocessing.forkserver.ensure_running()


def results(function: Callable, tasks: Sequence, workers: int, context: BaseContext, failed: Callable) -> Iterator:
    """``function(t)`` for every ``t`` in ``tasks`` on ``workers`` processes of ``context``,
    yielded as they complete; a task whose worker died yields ``failed(t, error)``. Closing the
    iterator early kills the workers and waits for them: none writes to the store after it."""
    executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_initialize, initargs=(os.getpid(),))
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


def _initialize(client: int) -> None:
    from ocr_targets.store.writing import adopt_pool  # here, preloaded; this module stays light for start()

    exit_with(client)
    adopt_pool()  # the forkserver imported zarrs, never entered its pool


def exit_with(client: int) -> None:
    """A worker's initializer: end this process when ``client`` (its job's process) ends. The
    client is no parent of it (the forkserver is, which lives on while a worker holds its pipe),
    so the kernel's parent-death signal cannot say it: a thread waits on the client's pidfd."""
    try:
        watched = os.pidfd_open(client)
    except ProcessLookupError:
        os._exit(1)  # gone already
    except (AttributeError, OSError):  # no pidfd (not Linux, or before 5.3): look twice a second
        watched = None
    threading.Thread(target=_watch, args=(client, watched), daemon=True, name="exit-with-client").start()


def _watch(client: int, watched: int | None) -> None:
    if watched is not None:
        select.select([watched], [], [])  # readable once the client has exited
    else:
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
