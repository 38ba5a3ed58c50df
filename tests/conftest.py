import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the bundled sample: (images directory, annotation file)."""
    images = tmp_path / "images"
    shutil.copytree(DATA / "images", images)
    annotations = tmp_path / "annotations.json"
    shutil.copyfile(DATA / "annotations.json", annotations)
    return images, annotations


@pytest.fixture
def made_store(dataset, tmp_path) -> tuple[Path, Path, Path]:
    """The bundled sample precomputed in three blocks of 4: (images directory, annotation file, store)."""
    from precompute import job

    images, annotations = dataset
    out = tmp_path / "targets.zarr"
    job.run(job.Job(images, annotations, out, jobs=1, block=4, progress=False))
    return images, annotations, out


@pytest.fixture
def store_with_images(dataset, tmp_path) -> tuple[Path, Path, Path]:
    """The bundled sample precomputed --with-images: (images directory, annotation file, store)."""
    from precompute import job

    images, annotations = dataset
    out = tmp_path / "with-images.zarr"
    job.run(job.Job(images, annotations, out, with_images=True, jobs=2, progress=False))
    return images, annotations, out
