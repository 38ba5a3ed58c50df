"""The job on a real Dask cluster (LocalCluster, worker processes on 127.0.0.1)."""

from __future__ import annotations

import os
import signal
import time

from distributed import Client, LocalCluster

from benchmarks.synthetic import write_receipts
from ocr_targets import open_store
from ocr_targets.store import StoreSettings
from precompute import cluster
from precompute import job as batch
from precompute.cli import main
from tests import stopping
from tests.helpers import assert_same_arrays


def test_a_run_on_a_local_cluster_equals_a_local_run(dataset, tmp_path, capsys):
    images, annotations = dataset
    out = tmp_path / "dask.zarr"
    arguments = ["precompute", "--images", str(images), "--annotations", str(annotations), "--block", "4", "--quiet"]
    assert main([*arguments, "--out", str(out), "--dask", "local:2"]) == 0
    assert "12 computed" in capsys.readouterr().out
    local = tmp_path / "local.zarr"
    batch.run(batch.Job(images, annotations, local, jobs=2, progress=False, settings=StoreSettings(block=4)))
    assert_same_arrays(local, out)
    assert main([*arguments, "--out", str(out), "--dask", "local:two"]) == 2
    assert "--dask local:N needs a number of workers" in capsys.readouterr().err


def test_a_worker_killed_mid_run_costs_no_entry(tmp_path, monkeypatch):
    images, annotations = write_receipts(tmp_path / "receipts", 60, seed=8)
    out = tmp_path / "t.zarr"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            before = client.run(os.getpid)
            job = batch.Job(
                images,
                annotations,
                out,
                dask=cluster.scheduler_address,
                progress=False,
                settings=StoreSettings(block=4),
            )
            killed = next(iter(before.values()))
            # killed as the second block is marked done
            stopping.stop_after(2, lambda: os.kill(killed, signal.SIGKILL), monkeypatch.setattr)
            summary = batch.run(job)
            assert killed not in client.run(os.getpid).values()  # the nanny started a new worker
    assert (summary.computed, summary.failures) == (60, [])
    assert open_store(out).done().all()
    clean = tmp_path / "clean.zarr"
    batch.run(batch.Job(images, annotations, clean, jobs=2, progress=False, settings=StoreSettings(block=4)))
    assert_same_arrays(clean, out)


def test_a_task_is_let_go_once_its_result_is_in(tmp_path):
    """The scheduler reruns a finished task whose result a client still holds when the worker
    holding that result dies: the job's block would be written again behind its back."""
    gate = tmp_path / "gate"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        with Client(local) as client:
            results = cluster.results(local.scheduler_address, _wait_for, [None, str(gate)], _failed)
            assert next(results) is None  # the task with nothing to wait for; the other still runs
            held = _settled(lambda: client.run_on_scheduler(_tasks_known), 1)
            gate.touch()
            assert list(results) == [str(gate)]
    assert held == 1


def _wait_for(path: str | None) -> str | None:
    while path is not None and not os.path.exists(path):
        time.sleep(0.01)
    return path


def _failed(task: str | None, error: BaseException) -> None:
    raise AssertionError(f"task {task} failed: {error!r}")


def _settled(read, expected, seconds: float = 10.0):
    """``read()`` once it gives ``expected``, or its last value after ``seconds``: the
    scheduler forgets a released task a moment after the client's call returns."""
    deadline = time.monotonic() + seconds
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def _tasks_known(dask_scheduler) -> int:
    return len(dask_scheduler.tasks)


def test_an_unreachable_scheduler_is_one_clear_error(dataset, tmp_path, capsys):
    images, annotations = dataset
    status = main(["precompute", "--images", str(images), "--annotations", str(annotations), "--quiet",
                   "--out", str(tmp_path / "t.zarr"), "--dask", "tcp://127.0.0.1:9"])  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert "--dask tcp://127.0.0.1:9: cannot reach the Dask scheduler" in err and "Traceback" not in err
