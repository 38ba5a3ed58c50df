"""How the benchmarks time a run: the best of several, taken in turn with what it is compared to."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_seconds(run: Callable[[], object], passes: int = 3, clock: Callable[[], float] = time.perf_counter) -> float:
    """The fastest of ``passes`` runs, in seconds of ``clock`` (wall time by default)."""
    timings = []
    for _ in range(passes):
        start = clock()
        run()
        timings.append(clock() - start)
    return min(timings)


def best_interleaved(
    runs: dict[str, Callable[[], object]],
    passes: int,
    warm_up: bool = True,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """The fastest of ``passes`` runs of each, taken in turn, so that all see the same state of
    the machine (the page cache, the allocator's free pages); after one untimed run of each,
    which starts worker pools, compiles kernels and fills caches, unless ``warm_up`` is False."""
    timings: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(passes + warm_up):
        for label, function in runs.items():
            timings[label].append(best_seconds(function, 1, clock))
    return {label: min(seconds[warm_up:]) for label, seconds in timings.items()}
