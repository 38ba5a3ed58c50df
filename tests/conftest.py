import json
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

from tests.helpers import PROFILE

DATA = Path(__file__).resolve().parent.parent / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def copy_dataset(folder: Path) -> tuple[Path, Path]:
    """A copy of the bundled sample in ``folder``: (images directory, annotation file)."""
    images = folder / "images"
    shutil.copytree(DATA / "images", images)
    annotations = folder / "annotations.json"
    shutil.copyfile(DATA / "annotations.json", annotations)
    return images, annotations


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the bundled sample: (images directory, annotation file)."""
    return copy_dataset(tmp_path)


def _precomputed(folder: Path, **settings) -> Path:
    """The sample and its store, made once per session in ``folder``."""
    from ocr_targets.store import StoreSettings
    from precompute import job

    images, annotations = copy_dataset(folder)
    out = folder / "targets.zarr"
    job.run(job.Job(images, annotations, out, jobs=2, progress=False, settings=StoreSettings(**settings)))
    return folder


def _copied(made: Path, dataset: tuple[Path, Path]) -> tuple[Path, Path, Path]:
    """A private copy of a session's store beside the test's ``dataset`` (copies of the same files
    with the same mtimes, so the file stats the store recorded match), recording that dataset as
    its sources, as if made there."""
    images, annotations = dataset
    out = images.parent / "targets.zarr"
    shutil.copytree(made / "targets.zarr", out)
    root = out / "zarr.json"
    metadata = json.loads(root.read_text())
    metadata["attributes"]["ocr_targets"]["sources"].update(images=str(images), annotations=str(annotations))
    root.write_text(json.dumps(metadata))
    return images, annotations, out


@pytest.fixture(scope="session")
def _made_store(tmp_path_factory) -> Path:
    return _precomputed(tmp_path_factory.mktemp("made"), block=4)


@pytest.fixture(scope="session")
def _made_with_images(tmp_path_factory) -> Path:
    return _precomputed(tmp_path_factory.mktemp("with-images"), with_images=True)


@pytest.fixture
def made_store(_made_store, dataset) -> tuple[Path, Path, Path]:
    """The bundled sample precomputed in three blocks of 4: (images directory, annotation file, store)."""
    return _copied(_made_store, dataset)


@pytest.fixture
def store_with_images(_made_with_images, dataset) -> tuple[Path, Path, Path]:
    """The bundled sample precomputed --with-images: (images directory, annotation file, store)."""
    return _copied(_made_with_images, dataset)


@pytest.fixture(autouse=True)
def _workers_for_small_jobs(monkeypatch):
    """A test that asks for ``jobs=2`` gets two worker processes from 5 images on (a run computes
    up to 8 in its own process; a job run as a command keeps that rule, see test_job)."""
    monkeypatch.setattr("precompute.job.IMAGES_PER_PROCESS", 4)


settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, print_blob=True)
settings.load_profile(PROFILE)
