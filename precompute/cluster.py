"""Running the job's tasks on a Dask cluster (the ``dask`` extra): distributed futures.

The scheduler reruns the task of a worker that dies (up to its ``allowed-failures``), so
a killed worker costs time, not entries; the client still marks every block done itself.
It also reruns a finished task whose result a client still holds when the worker holding
that result dies, so each task is released as soon as its result is in: a block is not
written again behind the client's back. (A worker lost in the instant between the two still
costs a rerun, which writes the same bytes again: :meth:`ocr_targets.store.Blocks.write`.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

from .errors import CommandError


def results(address: str, function: Callable, tasks: Sequence, failed: Callable) -> Iterator:
    """``function(t)`` for every ``t`` in ``tasks``, computed on the cluster at ``address``
    (``tcp://host:8786``, or ``local:N`` for a LocalCluster of N single-threaded worker
    processes), yielded as they complete; a task that errs yields ``failed(t, error)``."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise CommandError("--dask needs the dask extra: pip install 'ocr-targets[dask]'") from None
    cluster = None
    if address.startswith("local:"):
        workers = address.removeprefix("local:")
        if not workers.isdigit() or int(workers) < 1:
            raise CommandError(f"--dask local:N needs a number of workers N >= 1, got {address!r}")
        cluster = LocalCluster(
            n_workers=int(workers),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    try:
        client = Client(cluster or address, timeout="10s")
    except OSError as error:
        if cluster is not None:
            cluster.close()
        raise CommandError(f"--dask {address}: cannot reach the Dask scheduler ({error})") from None
    futures = {client.submit(function, task, pure=False): task for task in tasks}
    try:
        for future, outcome in as_completed(futures, with_results=True, raise_errors=False):
            task = futures.pop(future)
            error = future.status == "error"
            client.cancel(future)  # its result is here: a worker lost now must not rerun it
            yield failed(task, outcome) if error else outcome
    finally:
        client.cancel(list(futures))
        client.close()
        if cluster is not None:
            cluster.close()
