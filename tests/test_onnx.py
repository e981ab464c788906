"""The ONNX backend: the same predictions as Keras, without TensorFlow."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

from skimage import data  # noqa: E402

import fersk  # noqa: E402
from fersk import pretrained  # noqa: E402
from fersk.face import FaceCropper  # noqa: E402

# The default, the fast one-view model and the smallest in every run; the others (minutes of export
# each on 2 cores) with -m extended.
MODELS = [
    "wild_vgg_fast", "wild_vgg_small", "fer2013_cnn",
    pytest.param("fer2013_vgg_fast", marks=pytest.mark.extended),
    pytest.param("fer2013_vgg", marks=pytest.mark.extended),
    pytest.param("fer2013_ensemble", marks=pytest.mark.extended),
]


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


def _faces(n=40, seed=0):
    rng = np.random.default_rng(seed)
    # Smooth random "faces" and a real photo's crop: varied, deterministic.
    crop = np.asarray(FaceCropper(size=(48, 48)).fit_transform([data.astronaut()]))
    noise = rng.integers(0, 256, (n - 1, 48, 48)).astype(np.uint8)
    return np.concatenate([crop.reshape(1, 48, 48).astype(np.uint8), noise])


@pytest.mark.parametrize("name", MODELS)
def test_onnx_matches_keras(name, onnx_cache):
    """max |dp| <= 1e-4 between the Keras and ONNX pipelines, test-time
    views included, on 48x48 crops and on photos (detection included)."""
    keras_model = pretrained.load(name)
    onnx_model = pretrained.load(name, backend="onnx")
    assert onnx_model[0].detector == "mtcnn-onnx"
    X = _faces()
    gap = np.abs(keras_model.predict_proba(X) - onnx_model.predict_proba(X)).max()
    assert gap <= 1e-4, gap
    photos = [data.astronaut(), data.chelsea()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gap = np.abs(keras_model.predict_proba(photos) - onnx_model.predict_proba(photos)).max()
    assert gap <= 1e-4, gap


def _photos():
    astronaut = data.astronaut()
    return [
        astronaut,
        np.ascontiguousarray(astronaut[:, ::-1]),
        np.ascontiguousarray(astronaut[40:360, 100:420]),
        np.stack([data.camera()] * 3, axis=-1),
        data.coffee(),
    ]


@pytest.mark.parametrize(
    "min_face_size", [20, *(pytest.param(m, marks=pytest.mark.extended) for m in (12, 15.3))])
def test_onnx_mtcnn_boxes_match_mtcnn(min_face_size, onnx_cache):
    """OnnxMTCNN gives mtcnn's boxes (within a pixel) and landmarks."""
    from fersk import face
    from fersk.onnx import OnnxMTCNN, export_mtcnn

    export_mtcnn()
    ours, theirs = OnnxMTCNN(), face._mtcnn_model()
    for image in _photos():
        found = ours.detect_faces([image], min_face_size=min_face_size)[0]
        with face._stable_mtcnn_sort():
            expected = theirs.detect_faces([image], min_face_size=min_face_size)[0]
        assert len(found) == len(expected)
        for a, b in zip(found, expected):
            assert np.abs(np.subtract(a["box"], b["box"])).max() <= 1
            assert abs(a["confidence"] - b["confidence"]) < 1e-4
            for key in b["keypoints"]:
                assert np.abs(np.subtract(a["keypoints"][key], b["keypoints"][key])).max() <= 1


def test_face_cropper_mtcnn_onnx_matches_mtcnn(onnx_cache):
    from fersk.onnx import export_mtcnn

    export_mtcnn()
    photos = _photos()
    a = FaceCropper(detector="mtcnn").detect(photos)
    b = FaceCropper(detector="mtcnn-onnx").detect(photos)
    assert len(a) == len(b)
    for fa, fb in zip(a, b):
        assert len(fa) == len(fb)
        for x, y in zip(fa, fb):
            assert np.abs(np.subtract(x[:4] if isinstance(x, tuple) else x["box"],
                                      y[:4] if isinstance(y, tuple) else y["box"])).max() <= 1


_NO_TF = textwrap.dedent("""
    import importlib.abc, json, sys

    class Block(importlib.abc.MetaPathFinder):
        # As if TensorFlow and Keras were not installed.
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "keras", "tf2onnx", "mtcnn"):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
    import numpy as np
    from skimage import data
    from fersk import pretrained
    model = pretrained.load(sys.argv[1], backend="onnx")
    photo = model.predict_proba([data.astronaut()])
    crops = model.predict_proba(np.random.default_rng(0).integers(0, 256, (5, 48, 48)))
    print(json.dumps({
        "photo": photo.tolist(), "crops": crops.shape,
        "tensorflow": "tensorflow" in sys.modules, "keras": "keras" in sys.modules,
    }))
""")


@pytest.mark.parametrize(
    "name", ["wild_vgg_fast", pytest.param("fer2013_ensemble", marks=pytest.mark.extended)])
def test_onnx_backend_never_imports_tensorflow(name, onnx_cache):
    pretrained.export(name)
    env = {**os.environ, "FERSK_CACHE": str(onnx_cache)}
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fersk.__file__)), env.get("PYTHONPATH", "")]
    )
    out = subprocess.run([sys.executable, "-c", _NO_TF, name], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert not result["tensorflow"] and not result["keras"]
    assert result["crops"] == [5, 7]
    expected = pretrained.load(name).predict_proba([data.astronaut()])
    assert np.abs(np.asarray(result["photo"]) - expected).max() <= 1e-4


def test_missing_onnxruntime_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"pip install 'fersk\[onnx\]'"):
        pretrained.load("fer2013_cnn", backend="onnx")


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend"):
        pretrained.load("fer2013_cnn", backend="tflite")


def test_onnx_network_cannot_fit(onnx_cache):
    model = pretrained.load("fer2013_cnn", backend="onnx")
    with pytest.raises(NotImplementedError, match="export"):
        model[-1].fit(np.zeros((2, 48, 48)), [0, 1])


def test_cache_files_written_atomically(onnx_cache):
    """Exports leave no temporary files; re-exporting keeps what is there."""
    paths = pretrained.export("fer2013_cnn")
    stamps = [p.stat().st_mtime_ns for p in paths]
    assert pretrained.export("fer2013_cnn") == paths
    assert [p.stat().st_mtime_ns for p in paths] == stamps
    assert not list((onnx_cache / "onnx").glob(".*.tmp"))


def test_cli_export_and_predict_onnx(onnx_cache, tmp_path, capsys):
    from PIL import Image

    from fersk.cli import main

    assert main(["export", "fer2013_cnn"]) == 0
    listed = capsys.readouterr().out
    assert "fer2013_cnn" in listed and ".onnx" in listed
    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    assert main(["predict", str(photo), "--model", "fer2013_cnn", "--backend", "onnx",
                 "--json"]) == 0
    onnx_out = json.loads(capsys.readouterr().out)
    assert main(["predict", str(photo), "--model", "fer2013_cnn", "--json"]) == 0
    keras_out = json.loads(capsys.readouterr().out)
    assert onnx_out["records"][0]["emotion"] == keras_out["records"][0]["emotion"]
