"""What the job's forkserver runs before it forks any worker (:data:`workers.PRELOAD`), so that
a worker starts with it done instead of doing it at its first image: the modules a task needs,
PIL's image plugins, and the fast path's kernel loaded from numba's cache (0.4-0.5 s of a core,
which made a 120-image job as slow at --jobs 2 as at --jobs 1)."""

import PIL.Image
import zarrs  # noqa: F401  (the store's codec pipeline; its thread pool is made in each worker)
from fsspec.implementations import local  # noqa: F401  (the store's and the images' filesystem)

from ocr_targets.maps import load_compiled
from ocr_targets.stacks import baseline  # noqa: F401  (the default stack's pipeline)

from . import tasks  # noqa: F401  (what a task's unpickling imports)

PIL.Image.preinit()  # the plugins PIL loads at its first open: JPEG, PNG, ...
load_compiled()
