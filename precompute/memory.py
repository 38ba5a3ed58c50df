"""Options bounded by what the machine can hold: ``--block`` and ``--size`` against its memory."""

from __future__ import annotations

import math
import os
from dataclasses import replace

from ocr_targets.store import StoreSettings

from .errors import CommandError


def available_memory() -> int | None:
    """Bytes of memory the machine can give now (Linux: MemAvailable), None where unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def require_fits(settings: StoreSettings, processes: int, available: int) -> None:
    """Refuse (CommandError) a ``--block`` or ``--size`` whose blocks ``processes`` processes
    cannot hold in ``available`` bytes, naming the largest value that fits."""
    needed = settings.process_bytes * processes
    if needed <= available:
        return
    per_block_image = settings.process_bytes // settings.block
    block = available // (processes * per_block_image)
    size = math.isqrt(available * settings.size**2 // (processes * settings.process_bytes))
    while size > 0 and replace(settings, size=size).process_bytes * processes > available:
        size -= 1
    fits = f"--block {block} fits at --size {settings.size}" if block else "no block fits at this --size"
    raise CommandError(
        f"--block {settings.block} at --size {settings.size}: {processes} process{'es' * (processes != 1)} would "
        f"hold about {needed / 2**30:.1f} GiB, and the machine has {available / 2**30:.1f} GiB available; "
        f"{fits}, --size {size} at --block {settings.block} (or fewer --jobs)"
    )
