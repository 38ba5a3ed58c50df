"""``python -m tests.stopping N SIGNAL ocr-targets-arguments...``: the command line, in a process
that sends itself SIGNAL right after the job has marked its N-th block done. Tests stop a job
there, at a point known in advance, instead of polling the store and racing the job's end.
With ``IMAGES_PER_PROCESS`` in the environment, the job starts a worker per that many images
(precompute.job.IMAGES_PER_PROCESS), as the suite's jobs run in its own process do."""

from __future__ import annotations

import os
import sys

from ocr_targets.store.writing import StoreWriter
from precompute import job
from precompute.cli import main


def command(after: int, sent: int, *arguments: str) -> list[str]:
    """The command that runs ``ocr-targets *arguments`` and stops it so."""
    return [sys.executable, "-m", "tests.stopping", str(after), str(int(sent)), *arguments]


def stop_after(after: int, action, patch=setattr) -> None:
    """Call ``action()`` right after the job of this process marks its ``after``-th block done
    (``patch``: pytest's ``monkeypatch.setattr``, to undo it after a test)."""
    real, marked = StoreWriter.mark_done, []

    def mark_done(self, start, flags):
        real(self, start, flags)
        marked.append(start)
        if len(marked) == after:
            action()

    patch(StoreWriter, "mark_done", mark_done)


if __name__ == "__main__":
    after, sent = int(sys.argv[1]), int(sys.argv[2])
    job.IMAGES_PER_PROCESS = int(os.environ.get("IMAGES_PER_PROCESS", job.IMAGES_PER_PROCESS))
    stop_after(after, lambda: os.kill(os.getpid(), sent))
    sys.exit(main(sys.argv[3:]))
