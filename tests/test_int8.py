"""int8 graphs shipped in a model folder: made only where they cost little
(pretrained.quantize), checked at load, picked by backend="auto"."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

from skimage import data  # noqa: E402

import fersk  # noqa: E402
from fersk import pretrained  # noqa: E402
from fersk.face import FaceCropper  # noqa: E402
from fersk.onnx import OnnxNetworkClassifier  # noqa: E402


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fersk_cache")
    saved = os.environ.get("FERSK_CACHE")
    os.environ["FERSK_CACHE"] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop("FERSK_CACHE", None)
    else:
        os.environ["FERSK_CACHE"] = saved


def _faces(n, seed):
    rng = np.random.default_rng(seed)
    crop = np.asarray(FaceCropper(size=(48, 48)).fit_transform([data.astronaut()]))
    noise = rng.integers(0, 256, (n - 1, 48, 48)).astype(np.uint8)
    return np.concatenate([crop.reshape(1, 48, 48).astype(np.uint8), noise])


@pytest.fixture(scope="module")
def quantized(onnx_cache, tmp_path_factory):
    """A copy of fer2013_cnn with int8 graphs; labels = its own float answers."""
    folder = tmp_path_factory.mktemp("int8") / "model"
    shutil.copytree(pretrained.MODELS_DIR / "fer2013_cnn", folder)
    X = _faces(120, seed=3)
    y = pretrained.load(folder, backend="onnx").predict(X)
    record = pretrained.quantize(folder, _faces(64, seed=4), X, y, max_cost=1.0)
    return folder, X, y, record


def test_int8_probabilities_are_not_quantised(quantized):
    """The output head (last layer, softmax) stays float32: probabilities in
    steps of 1/256 would be coarse and tie classes."""
    folder, X, _, _ = quantized
    p = pretrained.load(folder, backend="onnx-int8")[1:].predict_proba(X)
    steps = np.unique(np.round(p.ravel() * 256, 6) % 1)
    assert len(steps) > 10


def test_quantize_records_what_int8_cost(quantized):
    folder, X, y, record = quantized
    (entry,) = record.values()
    assert entry["file"] == "network.int8.onnx" and (folder / entry["file"]).is_file()
    assert entry["test_accuracy_float32"] == 1.0 and entry["test_faces"] == len(y)
    assert 0 <= entry["test_accuracy_int8"] <= 1
    assert pretrained.info(folder)["int8"] == record
    assert not list(folder.glob(".*.tmp")) and not list(folder.glob("*.tmp"))


def test_int8_backend_runs_the_shipped_graph(quantized):
    folder, X, y, record = quantized
    int8 = pretrained.load(folder, backend="onnx-int8")
    network = int8[-1]
    assert isinstance(network, OnnxNetworkClassifier)
    assert os.path.samefile(network.path, folder / "network.int8.onnx")
    float_model = pretrained.load(folder, backend="onnx")
    p, q = float_model.predict_proba(X), int8.predict_proba(X)
    assert q.shape == p.shape and np.allclose(q.sum(axis=1), 1, atol=1e-5)
    assert np.abs(p - q).max() < 0.25
    agreement = float(np.mean(int8.predict(X) == y))
    assert agreement == record["network.keras"]["test_accuracy_int8"] or abs(
        agreement - record["network.keras"]["test_accuracy_int8"]) < 1e-4


def test_auto_backend_picks_int8_where_shipped(quantized, monkeypatch, tmp_path):
    folder = quantized[0]
    assert isinstance(pretrained.load(folder)[-1], OnnxNetworkClassifier)
    assert not isinstance(pretrained.load(folder, backend="keras")[-1], OnnxNetworkClassifier)
    # fer2013_cnn ships none: auto is Keras, whose network trains further.
    assert hasattr(pretrained.load("fer2013_cnn")[-1], "model_")
    with pytest.raises(ValueError, match="ships no int8 graph"):
        pretrained.load("fer2013_cnn", backend="onnx-int8")
    with pytest.raises(NotImplementedError, match="backend='keras'"):
        pretrained.load(folder)[-1].fit(np.zeros((2, 48, 48)), [0, 1])
    with pytest.raises(ValueError, match="backend='keras' to save"):
        pretrained.save(pretrained.load(folder), tmp_path / "copy")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # not installed: Keras
    assert hasattr(pretrained.load(folder)[-1], "model_")


def test_quantize_refuses_int8_over_its_cost(quantized, tmp_path):
    """Labels on which float32 is right and int8 wrong: refused, folder untouched."""
    from fersk.onnx import quantize_network

    source, X, _, _ = quantized
    folder = tmp_path / "model"
    shutil.copytree(pretrained.MODELS_DIR / "fer2013_cnn", folder)
    float_model = pretrained.load(folder, backend="onnx")
    int8_model = pretrained.load(folder, backend="onnx")
    # The graph quantize makes (same calibration, deterministic).
    int8_model[-1].path = quantize_network(float_model[-1].path, tmp_path / "q.onnx",
                                           _faces(64, seed=4).astype(np.float32))
    y = float_model.predict(X)
    differ = int8_model.predict(X) != y
    assert differ.any()
    before = sorted(p.name for p in folder.iterdir())
    spec = (folder / "pipeline.json").read_bytes()
    with pytest.raises(ValueError, match="more than max_cost"):
        pretrained.quantize(folder, _faces(64, seed=4), X[differ], y[differ], max_cost=0.0)
    assert sorted(p.name for p in folder.iterdir()) == before
    assert (folder / "pipeline.json").read_bytes() == spec


def test_int8_graph_must_be_the_recorded_one(quantized, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(quantized[0], folder)
    graph = folder / "network.int8.onnx"
    graph.write_bytes(graph.read_bytes()[:-1] + b"\0")
    with pytest.raises(ValueError, match="not the int8 graph"):
        pretrained.load(folder, backend="onnx-int8")
    shutil.copy(quantized[0] / "network.int8.onnx", graph)
    # Recorded as made from another network than the folder's.
    spec = json.loads((folder / "pipeline.json").read_text())
    spec["int8"]["network.keras"]["keras_sha256"] = "0" * 64
    (folder / "pipeline.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="made from another network.keras"):
        pretrained.load(folder, backend="onnx-int8")
    spec["int8"]["network.keras"]["file"] = "../elsewhere.onnx"
    (folder / "pipeline.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="inside the model folder"):
        pretrained.load(folder, backend="onnx-int8")


_AUTO_NO_TF = textwrap.dedent("""
    import json, sys
    from fersk.cli import main
    status = main(["predict", sys.argv[1], "--model", sys.argv[2], "--json"])
    print(json.dumps({"status": status, "tensorflow": "tensorflow" in sys.modules,
                      "keras": "keras" in sys.modules}))
""")


def test_cli_auto_runs_int8_without_tensorflow(quantized, onnx_cache, tmp_path):
    from PIL import Image

    pretrained.export(quantized[0])  # MTCNN's graphs, into the cache
    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    env = {**os.environ, "FERSK_CACHE": str(onnx_cache)}
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fersk.__file__)), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", _AUTO_NO_TF, str(photo), str(quantized[0])],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert json.loads(lines[-1]) == {"status": 0, "tensorflow": False, "keras": False}
    doc = json.loads("\n".join(lines[:-1]))
    assert doc["summary"]["rows"] == 1 and doc["records"][0]["emotion"] in doc["class_names"]


_DEFAULT_NO_TF = textwrap.dedent("""
    import importlib.abc, json, sys

    class Block(importlib.abc.MetaPathFinder):
        # As if TensorFlow and Keras were not installed.
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "keras", "tf2onnx", "mtcnn"):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
    from skimage import data
    from fersk import pretrained
    model = pretrained.load()
    print(json.dumps({"photo": model.predict_proba([data.astronaut()]).tolist(),
                      "network": type(model[-1]).__name__, "graph": str(model[-1].path)}))
""")


def test_default_as_loaded_runs_its_int8_graph_without_tensorflow(onnx_cache):
    """The default ships int8 graphs: pretrained.load() runs them, with
    TensorFlow not even importable (MTCNN's graphs in the cache)."""
    assert pretrained.info()["int8"], "the default ships no int8 graph"
    from fersk import onnx

    onnx.export_mtcnn()
    env = {**os.environ, "FERSK_CACHE": str(onnx_cache)}
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fersk.__file__)), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", _DEFAULT_NO_TF], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["network"] == "OnnxNetworkClassifier" and result["graph"].endswith(".int8.onnx")
    here = pretrained.load(backend="onnx-int8").predict_proba([data.astronaut()])
    assert np.abs(np.asarray(result["photo"]) - here).max() <= 1e-6
    # int8 answers as the network it was made from, within what quantize measured.
    keras = pretrained.load(backend="keras").predict_proba([data.astronaut()])
    assert keras.argmax() == here.argmax() and np.abs(keras - here).max() < 0.05


def test_quantize_an_ensemble_each_member_from_its_own_graph(onnx_cache, tmp_path):
    """An ensemble's networks each get their int8 graph (matched by .keras
    file), and the int8 ensemble answers as the float one does, roughly."""
    from test_onnx import _tiny_ensemble_folder

    folder, X = _tiny_ensemble_folder(tmp_path)
    float_model = pretrained.load(folder, backend="onnx")
    y = float_model.predict(X)
    record = pretrained.quantize(folder, X, X, y, max_cost=1.0)
    assert len(record) == 2 and len({r["sha256"] for r in record.values()}) == 2
    int8 = pretrained.load(folder)  # auto: the int8 graphs
    members = [est for _, est in int8[-1].estimators]
    paths = sorted(os.path.basename(m.path) for m in members)
    assert paths == sorted(r["file"] for r in record.values())
    assert np.abs(int8.predict_proba(X) - float_model.predict_proba(X)).max() < 0.25
