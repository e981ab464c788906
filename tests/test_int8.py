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
from test_onnx import BLOCK_TF, _tiny_ensemble_folder  # noqa: E402


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
    assert entry["file"] == f"network.int8-{entry['sha256'][:12]}.onnx"
    assert (folder / entry["file"]).is_file()
    assert entry["test_accuracy_float32"] == 1.0 and entry["test_faces"] == len(y)
    assert 0 <= entry["test_accuracy_int8"] <= 1
    assert pretrained.info(folder)["int8"] == record
    assert not list(folder.glob(".*.tmp")) and not list(folder.glob("*.tmp"))


def test_int8_backend_runs_the_shipped_graph(quantized):
    folder, X, y, record = quantized
    int8 = pretrained.load(folder, backend="onnx-int8")
    network = int8[-1]
    assert isinstance(network, OnnxNetworkClassifier)
    assert os.path.samefile(network.path, folder / record["network.keras"]["file"])
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
    (record,) = quantized[3].values()
    graph = folder / record["file"]
    graph.write_bytes(graph.read_bytes()[:-1] + b"\0")
    with pytest.raises(ValueError, match="not the int8 graph"):
        pretrained.load(folder, backend="onnx-int8")
    shutil.copy(quantized[0] / record["file"], graph)
    # Recorded as made from another network than the folder's.
    spec = json.loads((folder / "pipeline.json").read_text())
    spec["int8"]["network.keras"]["keras_sha256"] = "0" * 64
    (folder / "pipeline.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="made from another network.keras"):
        pretrained.load(folder, backend="onnx-int8")
    # auto runs the checked Keras network instead, saying why.
    with pytest.warns(UserWarning, match="made from another network.keras"):
        assert hasattr(pretrained.load(folder)[-1], "model_")
    spec["int8"]["network.keras"]["keras_sha256"] = record["keras_sha256"]
    spec["int8"]["network.keras"]["file"] = "../elsewhere.onnx"
    (folder / "pipeline.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="inside the model folder"):
        pretrained.load(folder, backend="onnx-int8")


def _child_env(cache):
    """A child process's environment: this fersk first on its path, ``cache``
    as its cache folder."""
    env = {**os.environ, "FERSK_CACHE": str(cache)}
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fersk.__file__)), env.get("PYTHONPATH", "")])
    return env


def _default_without_tensorflow(cache):
    """The JSON answer of _DEFAULT_NO_TF run in a child process whose cache
    folder is ``cache`` (the child must succeed)."""
    out = subprocess.run([sys.executable, "-c", _DEFAULT_NO_TF], env=_child_env(cache),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


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
    env = _child_env(onnx_cache)
    out = subprocess.run([sys.executable, "-c", _AUTO_NO_TF, str(photo), str(quantized[0])],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert json.loads(lines[-1]) == {"status": 0, "tensorflow": False, "keras": False}
    doc = json.loads("\n".join(lines[:-1]))
    assert doc["summary"]["rows"] == 1 and doc["records"][0]["emotion"] in doc["class_names"]


_DEFAULT_NO_TF = BLOCK_TF + textwrap.dedent("""
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
    import onnx as onnx_format

    for record in pretrained.info()["int8"].values():  # a valid graph, fersk's keys once
        graph = onnx_format.load(str(pretrained.MODELS_DIR / pretrained.DEFAULT_MODEL / record["file"]))
        onnx_format.checker.check_model(graph)
        keys = [p.key for p in graph.metadata_props]
        assert len(keys) == len(set(keys)) and "fersk_head" in keys
    from fersk import onnx

    onnx.export_mtcnn()
    result = _default_without_tensorflow(onnx_cache)
    assert result["network"] == "OnnxNetworkClassifier" and ".int8-" in result["graph"]
    here = pretrained.load(backend="onnx-int8").predict_proba([data.astronaut()])
    assert np.abs(np.asarray(result["photo"]) - here).max() <= 1e-6
    # int8 answers as the network it was made from, within what quantize measured.
    keras = pretrained.load(backend="keras").predict_proba([data.astronaut()])
    assert keras.argmax() == here.argmax() and np.abs(keras - here).max() < 0.05


def test_default_first_use_in_an_empty_cache_needs_no_tensorflow(tmp_path):
    """A new user's first prediction: an empty cache, TensorFlow not even
    importable.  The default's int8 graphs ship with it, and so do MTCNN's
    (fersk/onnx/graphs, made from the installed mtcnn's weights): nothing
    to export (it imported TensorFlow and wrote 1.9 MiB into the cache), the
    cache stays empty, and the answer is the one a warm cache gives."""
    from fersk.onnx import _mtcnn

    digest = _mtcnn._mtcnn_weights_digest()
    shipped = _mtcnn._mtcnn_paths(_mtcnn.SHIPPED, digest)
    assert shipped is not None and all(p.is_file() for p in shipped.values()), \
        "fersk ships no MTCNN graphs for the installed mtcnn's weights"
    empty = tmp_path / "cache"
    result = _default_without_tensorflow(empty)
    assert result["network"] == "OnnxNetworkClassifier" and ".int8-" in result["graph"]
    assert not empty.exists() or not any(empty.rglob("*")), sorted(empty.rglob("*"))
    here = pretrained.load(backend="onnx-int8").predict_proba([data.astronaut()])
    assert np.abs(np.asarray(result["photo"]) - here).max() <= 1e-6
    # fersk export still writes the cache's own copy, never into the package.
    before = {p: p.stat().st_mtime_ns for p in shipped.values()}
    paths = _mtcnn.export_mtcnn(empty)
    assert all(p.parent == empty for p in paths.values())
    assert {p: p.stat().st_mtime_ns for p in shipped.values()} == before


def test_quantize_an_ensemble_each_member_from_its_own_graph(onnx_cache, tmp_path):
    """An ensemble's networks each get their int8 graph (matched by .keras
    file), and the int8 ensemble answers as the float one does, roughly."""
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


@pytest.mark.parametrize("mutate, message", [
    (lambda s: s.update(int8="network.int8.onnx"), "'int8' must be a dict"),
    (lambda s: s["int8"].update({"network.keras": "x.onnx"}), "must be a JSON object"),
    (lambda s: s["int8"]["network.keras"].pop("sha256"), "lacks 'sha256'"),
    (lambda s: s["int8"]["network.keras"].update(sha256="xyz"), "not a SHA-256"),
    (lambda s: s["int8"].update({"other.keras": dict(s["int8"]["network.keras"])}),
     "no network file 'other.keras'"),
])
def test_malformed_int8_records_are_refused_by_name(quantized, tmp_path, mutate, message):
    folder = tmp_path / "model"
    shutil.copytree(quantized[0], folder)
    spec = json.loads((folder / "pipeline.json").read_text())
    mutate(spec)
    (folder / "pipeline.json").write_text(json.dumps(spec))
    for backend in ("auto", "keras", "onnx-int8"):
        with pytest.raises(ValueError, match=message):
            pretrained.load(folder, backend=backend)


def test_int8_graph_keeps_fersks_metadata_once_and_checks(quantized):
    import onnx

    folder, _, _, record = quantized
    model = onnx.load(str(folder / record["network.keras"]["file"]))
    keys = [p.key for p in model.metadata_props]
    assert len(keys) == len(set(keys)) and "fersk_graph" in keys and "fersk_head" in keys
    onnx.checker.check_model(model)
    # The first convolution and the output head stay float32 (docs/onnx.rst).
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    weights = {i.name: i.data_type for i in model.graph.initializer}
    assert weights.get(convs[0].input[1]) == onnx.TensorProto.FLOAT
    assert model.graph.node[-1].op_type == "Softmax"


def test_float_input_keeps_the_pixels_out_of_int8(quantized, tmp_path):
    """quantize(float_input=True): nothing up to the first convolution is
    quantised (the pixels never meet the saturating 16-bit sums of x86 CPUs
    without VNNI); recorded, and the graph still runs and is int8 after it."""
    import onnx

    folder, X, y, record = quantized
    assert record["network.keras"]["float_input"] is False
    other = tmp_path / "model"
    shutil.copytree(pretrained.MODELS_DIR / "fer2013_cnn", other)
    made = pretrained.quantize(other, _faces(64, seed=4), X, y, max_cost=1.0, float_input=True)
    assert made["network.keras"]["float_input"] is True
    graph = onnx.load(str(other / made["network.keras"]["file"])).graph
    first = next(i for i, n in enumerate(graph.node) if n.op_type == "Conv")
    assert not any(n.op_type == "QuantizeLinear" for n in graph.node[:first])
    constants = {i.name for i in graph.initializer}
    for node in graph.node[:first]:  # only constants (the input scaling's) dequantised
        if node.op_type == "DequantizeLinear":
            assert node.input[0] in constants, node.input
    producers = {o: n.op_type for n in graph.node for o in n.output}
    assert producers.get(graph.node[first].input[0]) != "DequantizeLinear"
    assert sum(n.op_type == "QuantizeLinear" for n in graph.node[first:]) >= 2  # int8 after
    p = pretrained.load(other, backend="onnx-int8").predict_proba(X)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    with pytest.raises(ValueError, match="'float_input' parameter"):
        pretrained.quantize(other, _faces(8, seed=4), X, y, float_input="yes")


def test_convert_and_save_of_a_quantized_folder(quantized, tmp_path):
    """convert reads Keras (the int8 graphs are not the model), and a save
    over the folder does not carry the old graphs along as the user's files."""
    folder = tmp_path / "model"
    shutil.copytree(quantized[0], folder)
    copy = pretrained.convert(folder, tmp_path / "converted")
    assert pretrained.info(copy)["int8"] == {} and not list(copy.glob("*.onnx"))
    pretrained.save(pretrained.load(folder, backend="keras"), folder)
    assert pretrained.info(folder)["int8"] == {} and not list(folder.glob("*.onnx"))


def test_quantize_again_swaps_the_graphs_whole(quantized, tmp_path, monkeypatch):
    """A second quantize writes new graphs beside the recorded ones and
    removes those only after pipeline.json records the new: interrupted
    before that, the folder still loads its recorded graphs."""
    from fersk.onnx import _common

    folder, X, y, record = quantized
    work = tmp_path / "model"
    shutil.copytree(folder, work)
    calib = _faces(48, seed=9)  # another calibration: another graph
    real_write = _common._atomic_write

    def interrupted(path, data):
        if os.path.basename(path) == "pipeline.json":
            raise KeyboardInterrupt
        return real_write(path, data)

    monkeypatch.setattr(_common, "_atomic_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pretrained.quantize(work, calib, X, y, max_cost=1.0)
    monkeypatch.undo()
    assert pretrained.info(work)["int8"] == record
    pretrained.load(work, backend="onnx-int8").predict_proba(X[:4])
    again = pretrained.quantize(work, calib, X, y, max_cost=1.0)
    (new,), (old,) = again.values(), record.values()
    assert new["file"] != old["file"] and (work / new["file"]).is_file()
    assert not (work / old["file"]).exists()  # fersk's own, no longer recorded


def test_quantize_refuses_bundled_names_old_formats_and_representations(tmp_path):
    X = _faces(8, seed=0)
    y = np.zeros(8, int)
    with pytest.raises(ValueError, match="bundled model"):
        pretrained.quantize("fer2013_cnn", X, X, y)
    # A network reading LBP codes would be calibrated on faces.
    from sklearn.pipeline import Pipeline

    from fersk import CNNClassifier, LBPCodeTransformer

    rng = np.random.default_rng(0)
    Xs, ys = rng.integers(0, 256, (24, 16, 16), dtype=np.uint8), np.arange(24) % 3
    pipe = Pipeline([("codes", LBPCodeTransformer()), ("network", CNNClassifier(
        "mtcnn_cnn", architecture_params={"width": 0.125, "dense_units": 4}, epochs=1,
        random_state=0))]).fit(Xs, ys)
    folder = pretrained.save(pipe, tmp_path / "lbp")
    with pytest.raises(ValueError, match="LBPCodeTransformer's output"):
        pretrained.quantize(folder, Xs, Xs, ys)
    assert not list(folder.glob("*.onnx"))


def test_auto_stays_on_keras_where_the_detectors_graphs_cannot_be_made(tmp_path, monkeypatch):
    """No MTCNN graphs in the cache, none shipped for the installed mtcnn's
    weights (another version of it) and no tf2onnx to export them: the
    default loads on Keras, as before int8, saying why."""
    from fersk.onnx import _mtcnn

    monkeypatch.setenv("FERSK_CACHE", str(tmp_path / "empty_cache"))
    monkeypatch.setattr(_mtcnn, "SHIPPED", tmp_path / "none_shipped")
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    with pytest.warns(UserWarning, match="int8 graphs are not used"):
        model = pretrained.load()
    assert hasattr(model[-1], "model_") and model[0].detector == "mtcnn"


_KILLED_AT_RECORD = textwrap.dedent("""
    import os, sys
    import numpy as np
    from fersk import pretrained
    from fersk.onnx import _common

    real_write = _common._atomic_write

    def write(path, data):
        if os.path.basename(path) == "pipeline.json":
            os._exit(9)  # killed as pipeline.json is about to be replaced
        return real_write(path, data)

    _common._atomic_write = write
    X = np.load(sys.argv[2])
    pretrained.quantize(sys.argv[1], X[::-1], X, np.zeros(len(X), int), max_cost=1.0)
""")


def test_quantize_killed_in_another_process_leaves_the_folder_loadable(quantized, tmp_path):
    """A process killed while quantize swaps in its records: the folder
    still loads the graphs its pipeline.json records (and Keras)."""
    folder, X, _, record = quantized
    work = tmp_path / "model"
    shutil.copytree(folder, work)
    faces = tmp_path / "faces.npy"
    np.save(faces, X[:32])
    env = {**os.environ}
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fersk.__file__)), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", _KILLED_AT_RECORD, str(work), str(faces)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 9, out.stderr[-3000:]
    assert pretrained.info(work)["int8"] == record
    model = pretrained.load(work)
    assert isinstance(model[-1], OnnxNetworkClassifier)
    np.testing.assert_allclose(model.predict_proba(X[:8]),
                               pretrained.load(folder).predict_proba(X[:8]), atol=1e-6)
    assert not list(work.glob(".*.tmp"))


def test_auto_runs_keras_for_a_folder_copied_without_its_graphs(quantized, tmp_path):
    """pipeline.json and the .keras file copied, the .onnx left behind: auto
    loads the Keras network (as before int8), with a warning saying why."""
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("pipeline.json", "network.keras"):
        shutil.copy(quantized[0] / name, folder / name)
    with pytest.warns(UserWarning, match="int8 graphs are not used.*backend='keras'"):
        model = pretrained.load(folder)
    assert hasattr(model[-1], "model_")
    X = quantized[1][:8]
    np.testing.assert_allclose(model.predict_proba(X),
                               pretrained.load(quantized[0], backend="keras").predict_proba(X))
    with pytest.raises(ValueError, match="backend='keras'"):
        pretrained.load(folder, backend="onnx-int8")


def test_evaluate_says_the_int8_graph_ran(quantized, tmp_path, capsys):
    """fersk evaluate on a folder with int8 graphs: the backend and what
    quantize recorded, beside the accuracy measured."""
    from PIL import Image

    from fersk.cli import main

    folder, X, y, record = quantized
    root = tmp_path / "fer"
    for i, (face, label) in enumerate(zip(X[:14], y[:14])):
        target = root / "test" / ["angry", "disgust", "fear", "happy", "sad", "surprise",
                                  "neutral"][int(label)]
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(face).save(target / f"PublicTest_{i}.png")
    assert main(["evaluate", "--data", str(root), "--model", str(folder), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["backend"] == "onnx-int8"
    assert doc["accuracy"] == pytest.approx(pretrained.load(folder).score(X[:14], y[:14]), abs=1e-4)
    assert main(["evaluate", "--data", str(root), "--model", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "backend: onnx-int8" in out and "int8 graph, recorded by quantize" in out


def test_bundle_model_int8_only_makes_the_graphs_a_folder_ships(fer2013_root, onnx_cache, tmp_path,
                                                                capsys):
    """benchmarks/bundle_model.py --int8-only (the command of the model cards):
    calibrated on Training faces, measured on PublicTest, recorded in place;
    --same-as checks another folder's graphs give the same probabilities."""
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bundle_model.py"
    folder = tmp_path / "model"
    shutil.copytree(pretrained.MODELS_DIR / "fer2013_cnn", folder)
    main = runpy.run_path(str(script), run_name="bundle")["main"]
    main([str(folder), "--int8-only", "--data", str(fer2013_root), "--calibration", "64",
          "--max-cost", "1"])
    (record,) = pretrained.info(folder)["int8"].values()
    assert record["calibration_faces"] == 64 and record["test_faces"] == 3589
    again = tmp_path / "again"
    shutil.copytree(pretrained.MODELS_DIR / "fer2013_cnn", again)
    main([str(again), "--int8-only", "--data", str(fer2013_root), "--calibration", "64",
          "--max-cost", "1", "--same-as", str(folder)])
    assert "max |dp| against" in capsys.readouterr().out


def test_int8_without_vnni_script(fer2013_root, onnx_cache, tmp_path, capsys, monkeypatch):
    """benchmarks/int8_without_vnni.py: its child predicts a bundled model as
    loaded into an .npz; with QEMU installed, the whole table (the emulated
    CPU has no VNNI)."""
    import runpy
    from pathlib import Path

    monkeypatch.setenv("FERSK_FER2013", str(fer2013_root))
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "int8_without_vnni.py"
    main = runpy.run_path(str(script), run_name="int8_without_vnni")["main"]
    out = tmp_path / "p.npz"
    main(["--child", "wild_vgg_small", "--n", "12", "--out", str(out)])
    with np.load(out) as f:
        assert f["proba"].shape == (12, 7) and np.allclose(f["proba"].sum(axis=1), 1)
    assert "cpu_flags" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    if shutil.which("qemu-x86_64") is None:
        pytest.skip("the table needs qemu-x86_64 (apt-get install qemu-user)")
    # A model folder's path, too (its name once made the children's file name).
    folder = str(pretrained.MODELS_DIR / "wild_vgg_small")
    main(["--models", folder, "--n", "12"])
    table = capsys.readouterr().out
    assert "emulated AVX2\n" in table and f"| {folder} |" in table


def _toy(seed=0):
    from sklearn.pipeline import make_pipeline

    from fersk import CNNClassifier

    rng = np.random.default_rng(seed)
    X, y = rng.integers(0, 256, (20, 16, 16), dtype=np.uint8), np.arange(20) % 2
    pipe = make_pipeline(FaceCropper(detector=None, size=(16, 16)), CNNClassifier(
        "mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1, random_state=seed))
    return pipe.fit(X, y), X, y


def test_int8_graph_is_not_run_over_a_missing_or_swapped_network_file(onnx_cache, tmp_path):
    """The int8 graph stands for the .keras file pipeline.json records: with
    that file swapped for another network's, or missing, no backend loads
    the folder (auto warns, then Keras refuses it)."""
    import warnings

    pipe, X, y = _toy()
    folder = pretrained.save(pipe, tmp_path / "model")
    pretrained.quantize(folder, X.astype(np.float32), X, y, max_cost=1.0)
    assert isinstance(pretrained.load(folder)[-1], OnnxNetworkClassifier)
    other = pretrained.save(_toy(seed=5)[0], tmp_path / "other")
    shutil.copy(other / "cnnclassifier.keras", folder / "cnnclassifier.keras")
    for message in ("is not the network", "is missing"):
        with pytest.raises(ValueError, match=message):
            pretrained.load(folder, backend="onnx-int8")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(ValueError, match=message):
                pretrained.load(folder)
        assert any("int8 graphs are not used" in str(w.message) for w in caught)
        (folder / "cnnclassifier.keras").unlink(missing_ok=True)


def test_quantize_deletes_only_graphs_it_names_not_what_a_record_names(onnx_cache, tmp_path):
    """An int8 record naming a user's file (load refuses it): quantize's
    clean-up of earlier graphs leaves that file alone."""
    pipe, X, y = _toy()
    folder = pretrained.save(pipe, tmp_path / "model")
    (folder / "README.md").write_text("my notes")
    spec = json.loads((folder / "pipeline.json").read_text())
    sha = spec["networks"]["cnnclassifier.keras"]["sha256"]
    spec["int8"] = {"cnnclassifier.keras": {"file": "README.md", "size": 8, "sha256": "0" * 64,
                                            "keras_sha256": sha}}
    (folder / "pipeline.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="is not an ONNX file"):
        pretrained.load(folder, backend="onnx-int8")
    record = pretrained.quantize(folder, X.astype(np.float32), X, y, max_cost=1.0)
    assert (folder / "README.md").read_text() == "my notes"
    assert (folder / record["cnnclassifier.keras"]["file"]).is_file()


def test_graphs_of_an_interrupted_quantize_are_fersks_own(onnx_cache, tmp_path, monkeypatch):
    """A quantize interrupted before pipeline.json records its graph leaves
    it behind: a save over the folder does not carry it as a user's file,
    and the next quantize removes it; a user's look-alike of another name stays."""
    from fersk.onnx import _common

    pipe, X, y = _toy()
    folder = pretrained.save(pipe, tmp_path / "model")
    pretrained.quantize(folder, X.astype(np.float32), X, y, max_cost=1.0)
    real_write = _common._atomic_write

    def interrupted(path, data):
        if os.path.basename(path) == "pipeline.json":
            raise KeyboardInterrupt
        return real_write(path, data)

    monkeypatch.setattr(_common, "_atomic_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pretrained.quantize(folder, X[::-1][:10].astype(np.float32) * 0.5, X, y, max_cost=1.0)
    monkeypatch.undo()
    assert len(list(folder.glob("*.int8-*.onnx"))) == 2
    (folder / "mine.int8-0123456789ab.onnx").write_bytes(b"mine")  # not a network's name
    pretrained.save(pretrained.load(folder, backend="keras"), folder)
    assert sorted(p.name for p in folder.glob("*.onnx")) == ["mine.int8-0123456789ab.onnx"]
    pretrained.quantize(folder, X.astype(np.float32), X, y, max_cost=1.0)
    monkeypatch.setattr(_common, "_atomic_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pretrained.quantize(folder, X[::-1][:10].astype(np.float32) * 0.5, X, y, max_cost=1.0)
    monkeypatch.undo()
    again = pretrained.quantize(folder, X.astype(np.float32), X, y, max_cost=1.0)
    assert sorted(p.name for p in folder.glob("*.onnx")) == sorted(
        ["mine.int8-0123456789ab.onnx", again["cnnclassifier.keras"]["file"]])


def test_quantize_refuses_the_package_by_none_or_path_labels_and_calibration(
        onnx_cache, tmp_path, monkeypatch):
    """name=None is the default model and a path can name a package folder:
    both were written into like a user's folder.  Labels the model cannot
    predict (names for a model of codes) made both accuracies 0, a cost of 0;
    calibration faces of the wrong size or channels failed inside ONNX
    Runtime (a smaller face silently sliced)."""
    from fersk.pretrained import _folders

    pipe, X, y = _toy()
    package = tmp_path / "package"
    default = pretrained.save(pipe, package / _folders.DEFAULT_MODEL)
    monkeypatch.setattr(_folders, "MODELS_DIR", package)
    before = sorted(os.listdir(default))
    for name in (None, default, str(default) + "/."):
        with pytest.raises(ValueError, match="bundled model's folder"):
            pretrained.quantize(name, X, X, y, max_cost=1.0)
    assert sorted(os.listdir(default)) == before
    monkeypatch.undo()

    folder = pretrained.save(pipe, tmp_path / "mine")
    with pytest.raises(ValueError, match=r"labels \['happy', 'sad'\] that are not"):
        pretrained.quantize(folder, X, X, np.array(["happy", "sad"] * 10), max_cost=0.0)
    for calibration in (X[:, :8, :8], X[:0], np.repeat(X[..., None], 3, axis=-1)):
        with pytest.raises(ValueError, match="calibration_images must be at least one image"):
            pretrained.quantize(folder, calibration, X, y, max_cost=1.0)
    assert not list(folder.glob("*.onnx"))


def test_backend_of_a_model_named_like_an_int8_graph_is_float(onnx_cache, tmp_path):
    """The float graphs are named after the model in ONNX's cache: a model
    called "my.int8-model" was reported as running int8 (evaluate, serve)."""
    from fersk.pretrained._loading import _backend_of

    pipe, X, y = _toy()
    folder = pretrained.save(pipe, tmp_path / "my.int8-model2")
    assert _backend_of(pretrained.load(folder, backend="onnx")) == "onnx"
    pretrained.quantize(folder, X.astype(np.float32), X, y, max_cost=1.0)
    assert _backend_of(pretrained.load(folder, backend="onnx-int8")) == "onnx-int8"
