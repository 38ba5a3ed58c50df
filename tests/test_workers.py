import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from precompute import workers
from tests import stopping
from tests.conftest import copy_dataset

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a process, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[1]), int(fields[19])) if fields[0] != "Z" else None  # a zombie has ended


def _descendants(root: int) -> set[tuple[int, int]]:
    """Every process below ``root`` now: (pid, start time), which names one process for good."""
    parents: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        stat = _stat(int(entry.name)) if entry.name.isdigit() else None
        if stat is not None:
            parents.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    found, below = set(), [root]
    while below:
        for child in parents.get(below.pop(), []):
            found.add(child)
            below.append(child[0])
    return found


def _alive(process: tuple[int, int]) -> bool:
    stat = _stat(process[0])
    return stat is not None and stat[1] == process[1]


def test_workers_exit_when_the_job_is_killed(tmp_path):
    """kill -9 of the job's client: its workers (and multiprocessing's helpers) end with it."""
    images, annotations = copy_dataset(tmp_path)
    arguments = ["precompute", "--images", str(images), "--annotations", str(annotations), "--out",
                 str(tmp_path / "out.zarr"), "--jobs", "2", "--block", "1", "--quiet"]  # fmt: skip
    client = subprocess.Popen(
        stopping.command(2, signal.SIGKILL, *arguments),  # workers are running: block 2 is done
        env={**os.environ, "IMAGES_PER_PROCESS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen: set[tuple[int, int]] = set()
    while client.poll() is None:
        seen |= _descendants(client.pid)
        time.sleep(0.01)
    assert client.returncode == -signal.SIGKILL
    assert len(seen) >= 2  # the two workers at least
    deadline = time.monotonic() + 10  # minutes without the fix
    while any(map(_alive, seen)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [process for process in seen if _alive(process)]


def _whence(_: int) -> tuple[int, str, bool, int]:
    import PIL.Image

    from ocr_targets.border import draw_borders
    from ocr_targets.offsets import _dilate, _distances
    from ocr_targets.store import _zarr

    parent = os.getppid()
    command = Path(f"/proc/{parent}/cmdline").read_bytes().decode()
    kernels = (draw_borders, _dilate, _distances)
    ready = sum(len(kernel.overloads) for kernel in kernels) + PIL.Image._initialized  # before any computing here
    return parent, command, _zarr._IMPORTED_BY == os.getpid(), ready


def test_workers_are_forked_from_a_server_that_imported_what_tasks_need():
    """Not the client (which may hold threads), not fresh interpreters (a second each): the
    forkserver, preloaded, with the fast path's kernels loaded and PIL's plugins (else each worker
    loads them at its first image); each worker owns rayon's pool, which the server never entered."""
    context = workers.context()
    assert context.get_start_method() == "forkserver"
    workers.start()
    found = list(workers.results(_whence, [1, 2], 2, context, lambda task, error: error))
    assert {parent for parent, *_ in found} != {os.getpid()}
    assert all("forkserver" in command and "precompute.preload" in command for _, command, *_ in found), found
    assert all(owns for *_, owns, _ in found)
    assert all(ready == 4 for *_, ready in found), found  # one overload of each kernel loaded, PIL's at level 1


def _dies(task: int) -> int:
    if task == 1:
        os._exit(3)  # as the OOM killer would end it
    return task


def _sleeps(task: tuple[Path, float]) -> int:
    where, seconds = task
    where.write_text(str(os.getpid()))
    time.sleep(seconds)
    where.with_suffix(".finished").touch()
    return os.getpid()


def test_a_task_whose_worker_dies_comes_back_failed():
    found = list(workers.results(_dies, [1], 1, workers.context(), lambda task, error: ("failed", task)))
    assert found == [("failed", 1)]


def test_a_run_stopped_early_leaves_no_worker_running(tmp_path):
    """Closed before its end (Ctrl-C, a storage failure), the results kill the workers still at a
    task, and return once they are gone: none writes into the store after its client let go."""
    slow = tmp_path / "slow"
    results = workers.results(_sleeps, [(tmp_path / "quick", 0), (slow, 600)], 2, workers.context(), None)
    next(results)
    while not slow.exists():  # the second task is running
        time.sleep(0.01)
    results.close()
    assert _stat(int(slow.read_text())) is None and not slow.with_suffix(".finished").exists()
