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
