"""Shared fixtures: small real FER-2013 subsets read straight from disk.

The data lives beside the project (``../shared/data/fer2013``, see that
folder's README) or where ``FERSK_FER2013`` points.  Tests that need it skip
with a clear reason when it is absent, so a fresh clone still passes.
"""

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FER2013_ROOT = Path(
    os.environ.get("FERSK_FER2013", ROOT.parent / "shared" / "data" / "fer2013")
)
FER_CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]

# The quick subset (``python -m pytest -m "quick and not extended" tests``,
# about 2-3 minutes on two busy cores; a ``-m`` on the command line replaces
# addopts' ``-m 'not extended'``, so ``-m quick`` alone would add the
# extended tests of these modules): the representations, safety of inputs
# and model folders, data loading, inference and docstrings; not the
# training, CLI, live, serve or scaling modules, which take most of the full
# suite's time.
QUICK_MODULES = {
    "test_lbp.py", "test_mapped_lbp.py", "test_layers.py", "test_progress.py",
    "test_inputs_safety.py", "test_model_folder_safety.py", "test_datasets.py",
    "test_wild_data.py", "test_inference.py", "test_docstrings.py",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in QUICK_MODULES and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.quick)


def _read_subset(split, per_class, seed=0):
    from PIL import Image

    rng = np.random.RandomState(seed)
    images, labels, names = [], [], []
    for label, cls in enumerate(FER_CLASSES):
        files = sorted((FER2013_ROOT / split / cls).glob("*.jpg"))
        for i in sorted(rng.choice(len(files), min(per_class, len(files)), replace=False)):
            with Image.open(files[i]) as im:
                images.append(np.asarray(im.convert("L")))
            labels.append(label)
            names.append(f"{split}/{cls}/{files[i].name}")
    return np.stack(images), np.array(labels), names


@pytest.fixture(scope="session")
def fer2013_root():
    """Path of the FER-2013 image-folder root; skips when absent."""
    if not (FER2013_ROOT / "test").is_dir():
        pytest.skip(f"FER-2013 image folders not found at {FER2013_ROOT}")
    return FER2013_ROOT


@pytest.fixture(scope="session")
def fer_small(fer2013_root):
    """(images uint8 (140, 48, 48), labels, names): 20 PublicTest faces per class."""
    return _read_subset("test", 20)


@pytest.fixture(scope="session")
def fer_train_small(fer2013_root):
    """(images uint8 (350, 48, 48), labels, names): 50 Training faces per class."""
    return _read_subset("train", 50)


def half_bright_faces(n=48, side=24, seed=0):
    """Two classes of uint8 'faces': the left or the right half brighter
    (a tiny network separates them in an epoch; no data files needed)."""
    rng = np.random.RandomState(seed)
    X = rng.randint(0, 160, size=(n, side, side))
    y = np.arange(n) % 2
    X[y == 0, :, : side // 2] += 90
    X[y == 1, :, side // 2 :] += 90
    return X.astype(np.uint8), y


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    """A fresh cache folder for the module's exports (FERSK_CACHE)."""
    folder = tmp_path_factory.mktemp("fersk_cache")
    saved = os.environ.get("FERSK_CACHE")
    os.environ["FERSK_CACHE"] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop("FERSK_CACHE", None)
    else:
        os.environ["FERSK_CACHE"] = saved
