"""The ONNX backend: the same predictions as Keras, without TensorFlow."""

import json
import os
import subprocess
import sys
import re
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
    pytest.param("wild_ensemble", marks=pytest.mark.extended),
    pytest.param("wild_vgg_stride2", marks=pytest.mark.extended),
]


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
    keras_model = pretrained.load(name, backend="keras")
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


def test_onnx_mtcnn_batch_of_photos_of_other_sizes_keeps_each_photos_boxes(onnx_cache):
    """Photos of different sizes are padded to one shape: each box is moved
    back by its own photo's pad (mtcnn's fix_bboxes_offsets pairs the k-th
    photo *with boxes* with the k-th pad: after a photo without a face, the
    astronaut's box moved 44 pixels)."""
    from fersk.onnx import OnnxMTCNN, export_mtcnn

    export_mtcnn()
    astronaut, detector = data.astronaut(), OnnxMTCNN()
    alone = detector.detect_faces([astronaut])[0]
    black = np.zeros((600, 600, 3), np.uint8)
    batched = detector.detect_faces([black, astronaut, black[:550]])
    assert batched[0] == [] and batched[2] == [] and len(batched[1]) == len(alone) > 0
    for a, b in zip(batched[1], alone):  # (the pyramid of the padded shape differs a little)
        assert np.abs(np.subtract(a["box"], b["box"])).max() <= 3
        for key in b["keypoints"]:
            assert np.abs(np.subtract(a["keypoints"][key], b["keypoints"][key])).max() <= 3


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


def test_every_graph_fersk_exports_is_marked_as_fersks(onnx_cache):
    # fersk.cache removes only graphs with fersk's metadata key in them.
    from fersk.cache import cache_contents
    from fersk.onnx import export_mtcnn

    export_mtcnn()
    pretrained.load("fer2013_cnn", backend="onnx")
    graphs = [e for e in cache_contents(onnx_cache) if e["path"].suffix == ".onnx"]
    assert len(graphs) >= 4 and all(e["kind"] == "onnx" for e in graphs), graphs


# A child's first lines: as if TensorFlow and Keras were not installed.
BLOCK_TF = textwrap.dedent("""
    import importlib.abc, json, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "keras", "tf2onnx", "mtcnn"):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
""")

_NO_TF = BLOCK_TF + textwrap.dedent("""
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
    expected = pretrained.load(name, backend="keras").predict_proba([data.astronaut()])
    assert np.abs(np.asarray(result["photo"]) - expected).max() <= 1e-4


def test_default_onnx_backend_needs_no_export_in_an_empty_cache(tmp_path, monkeypatch):
    """The default's float32 graph ships (fersk/onnx/graphs, as MTCNN's): in
    an empty cache, without TensorFlow, load(backend="onnx") runs it, within
    1e-4 of Keras; the shipped file is the graph of today's network file (a
    re-trained default without its graph re-shipped fails here)."""
    from fersk.onnx._mtcnn import SHIPPED
    from fersk.pretrained._folders import _model_dir
    from fersk.pretrained._onnx_backend import _network_entries, _onnx_graph
    from fersk.pretrained._spec import _read_spec

    empty = tmp_path / "empty-cache"
    monkeypatch.setenv("FERSK_CACHE", str(empty))
    folder = _model_dir("wild_vgg_fast")
    spec = _read_spec(folder)
    graphs = [_onnx_graph(folder, spec, e) for e in _network_entries(spec["steps"])]
    assert graphs and all(g.parent == SHIPPED and g.is_file() for g in graphs)

    env = {**os.environ, "FERSK_CACHE": str(empty)}
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fersk.__file__)), env.get("PYTHONPATH", "")]
    )
    out = subprocess.run([sys.executable, "-c", _NO_TF, "wild_vgg_fast"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert not result["tensorflow"] and not result["keras"]
    expected = pretrained.load("wild_vgg_fast", backend="keras").predict_proba([data.astronaut()])
    assert np.abs(np.asarray(result["photo"]) - expected).max() <= 1e-4
    assert not (empty / "onnx").exists() or not list((empty / "onnx").glob("wild_vgg_fast*"))


# TensorFlow importable here (not blocked): the command must not import it.
_NO_TF_CLI = textwrap.dedent("""
    import json, sys
    from fersk.cli import main
    status = main(["predict", sys.argv[1], "--backend", "onnx", "--json"])
    print(json.dumps({"status": status, "tensorflow": "tensorflow" in sys.modules,
                      "keras": "keras" in sys.modules}))
""")


def test_cli_onnx_backend_never_imports_tensorflow(onnx_cache, tmp_path):
    # `fersk predict --backend onnx` used to import Keras (and TensorFlow) at
    # start-up for every command: seconds of cold start for nothing.
    from PIL import Image

    pretrained.export(None)
    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    env = {**os.environ, "FERSK_CACHE": str(onnx_cache)}
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fersk.__file__)), env.get("PYTHONPATH", "")]
    )
    out = subprocess.run([sys.executable, "-c", _NO_TF_CLI, str(photo)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result == {"status": 0, "tensorflow": False, "keras": False}
    doc = json.loads("\n".join(lines[:-1]))
    assert doc["summary"]["rows"] == 1 and doc["summary"]["failed"] == 0
    assert doc["records"][0]["emotion"] in doc["class_names"]


def test_missing_onnxruntime_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"pip install 'fersk\[onnx\]'"):
        pretrained.load("fer2013_cnn", backend="onnx")


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend"):
        pretrained.load("fer2013_cnn", backend="tflite")


def test_onnx_network_cannot_fit(onnx_cache):
    # Not in a parametrize_with_checks list: scikit-learn's checks all fit,
    # and this estimator's fit raises by design (its graph is exported from
    # a fitted Keras network, never trained).  What the checks would ask of
    # its parameters is asserted here.
    from sklearn.base import clone

    model = pretrained.load("fer2013_cnn", backend="onnx")
    with pytest.raises(NotImplementedError, match="export"):
        model[-1].fit(np.zeros((2, 48, 48)), [0, 1])
    fresh = clone(model[-1])
    assert fresh.get_params() == model[-1].get_params() and not hasattr(fresh, "classes_")
    assert model[-1].__sklearn_tags__().input_tags.three_d_array


def test_onnx_network_step_reads_pixels_as_the_keras_step(onnx_cache):
    """The network step alone, on both back ends: uint16 (high byte), bool
    (0/255) and 0-255 floats give the Keras step's probabilities; floats off
    the 0-255 scale are refused by both (before, the ONNX step cast them all
    to float32: a 16-bit face read as white, a mask as black)."""
    keras_net = pretrained.load("fer2013_cnn")[-1]
    onnx_net = pretrained.load("fer2013_cnn", backend="onnx")[-1]
    faces = _faces(8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # uint16: the 8-bit warning
        for X in (faces.astype(np.uint16) * 257, faces > 128, faces.astype(np.float64)):
            gap = np.abs(keras_net.predict_proba(X) - onnx_net.predict_proba(X)).max()
            assert gap <= 1e-4, (X.dtype, gap)
    for net in (keras_net, onnx_net):
        with pytest.raises(ValueError, match="not on that scale"):
            net.predict_proba(faces * 1.5)
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            net.predict_proba(faces / 255.0)


def test_onnx_network_refuses_values_beyond_float32_as_keras_does(onnx_cache, tmp_path):
    """A float64 value above 3.4e38 for a network fitted on floats: Keras
    refused it ("scale the images"); the ONNX step cast it to infinity and
    blamed NaN outputs on a diverged training."""
    from fersk import CNNClassifier
    from fersk.onnx import OnnxNetworkClassifier, export_network

    rng = np.random.default_rng(0)
    X, y = rng.uniform(0, 10, (20, 16, 16)), np.arange(20) % 2
    net = CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1,
                        random_state=0).fit(X, y)
    onnx_net = OnnxNetworkClassifier.from_estimator(net, export_network(net, tmp_path / "n.onnx"))
    np.testing.assert_allclose(onnx_net.predict_proba(X[:4]), net.predict_proba(X[:4]), atol=1e-4)
    big = X[:2].copy()
    big[0, 0, 0] = 1e39
    for est in (net, onnx_net):
        with pytest.raises(ValueError, match="beyond float32's range"):
            est.predict_proba(big)


def test_onnx_mtcnn_in_a_folder_without_its_graphs_names_that_folder(tmp_path):
    """OnnxMTCNN(folder=...) without the graphs there named the cache folder."""
    from fersk.onnx import OnnxMTCNN

    with pytest.raises(FileNotFoundError, match=re.escape(f"OnnxMTCNN(folder={str(tmp_path)!r})")):
        OnnxMTCNN(folder=tmp_path)


def test_onnx_head_is_the_networks_not_the_saved_parameter(onnx_cache, tmp_path):
    """A tanh network saved with head="softmax" (set after fit): Keras reads
    the activation from the network; the ONNX back end read the parameter
    and took raw tanh outputs as probabilities (negative values)."""
    from sklearn.pipeline import make_pipeline

    from fersk import CNNClassifier

    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (40, 16, 16), dtype=np.uint8), np.arange(40) % 3
    net = CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, head="tanh", epochs=1,
                        random_state=0)
    pipe = make_pipeline(FaceCropper(None, size=(16, 16)), net).fit(X, y)
    net.set_params(head="softmax")
    pretrained.save(pipe, tmp_path / "m")
    keras_p = pretrained.load(tmp_path / "m").predict_proba(X[:6])
    onnx_model = pretrained.load(tmp_path / "m", backend="onnx")
    assert onnx_model[-1].head_ == "tanh"
    np.testing.assert_allclose(onnx_model.predict_proba(X[:6]), keras_p, atol=1e-4)


def test_onnx_names_model_sorts_its_classes_as_keras(onnx_cache):
    keras_model = pretrained.load("fer2013_cnn", labels="names")
    onnx_model = pretrained.load("fer2013_cnn", labels="names", backend="onnx")
    assert list(onnx_model.classes_) == sorted(onnx_model.classes_) == list(keras_model.classes_)
    X = _faces(8)
    gap = np.abs(keras_model.predict_proba(X) - onnx_model.predict_proba(X)).max()
    assert gap <= 1e-4
    np.testing.assert_array_equal(keras_model.predict(X), onnx_model.predict(X))


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


def test_cli_export_to_a_cache_it_cannot_write_is_a_failure(tmp_path, capsys, monkeypatch):
    """Said in one line, exit status 1 (it was a NotADirectoryError traceback)."""
    from fersk.cli import main

    not_a_folder = tmp_path / "a_file"
    not_a_folder.write_text("")
    monkeypatch.setenv("FERSK_CACHE", str(not_a_folder))
    assert main(["export", "fer2013_cnn", "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "fer2013_cnn: cannot export" in err and "Traceback" not in err


def test_onnx_network_keeps_the_training_record(onnx_cache):
    """fersk evaluate --backend onnx draws the training curve as on Keras
    (the ONNX step had no history_: "no training history in this model")."""
    keras_net = pretrained.load("fer2013_cnn")[-1]
    onnx_net = pretrained.load("fer2013_cnn", backend="onnx")[-1]
    assert onnx_net.history_ == keras_net.history_ and len(onnx_net.history_["loss"]) > 1
    assert (onnx_net.best_epoch_, onnx_net.n_epochs_) == (keras_net.best_epoch_,
                                                          keras_net.n_epochs_)


def test_onnx_views_follow_the_parameters(onnx_cache):
    """The graph runs one view; the views are parameters of the ONNX
    network as of the Keras one: ``one_view`` and ``test_time_crops``
    reach it (before, they were baked into the graph and silently kept)."""
    from fersk.ensemble import one_view

    keras_model = pretrained.load("wild_vgg_fast", backend="keras")
    onnx_model = pretrained.load("wild_vgg_fast", backend="onnx")
    net = onnx_model[-1]
    assert (net.test_time_crops, net.test_time_flip) == ("center", True)
    X = _faces()
    loaded = onnx_model.predict_proba(X)
    single = one_view(onnx_model)
    assert (single[-1].test_time_crops, single[-1].test_time_flip) == ("center", False)
    p_single = single.predict_proba(X)
    assert np.abs(p_single - one_view(keras_model).predict_proba(X)).max() <= 1e-4
    assert np.abs(p_single - loaded).max() > 1e-3  # the mirror is gone indeed
    assert np.abs(onnx_model.predict_proba(X) - loaded).max() == 0  # the original is left alone
    ten = {"network__test_time_crops": "five"}
    gap = np.abs(onnx_model.set_params(**ten).predict_proba(X)
                 - keras_model.set_params(**ten).predict_proba(X)).max()
    assert gap <= 1e-4, gap
    with pytest.raises(ValueError, match="test_time_crops"):
        onnx_model.set_params(network__test_time_crops="nine").predict_proba(X)


def _tiny_ensemble_folder(tmp_path):
    from sklearn.pipeline import Pipeline

    from fersk import CNNClassifier, CNNEnsembleClassifier

    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (24, 16, 16), dtype=np.uint8), np.arange(24) % 3
    net = dict(architecture="mtcnn_cnn", architecture_params={"width": 0.125, "dense_units": 4},
               epochs=1, crop_size=12, test_time_flip=True, random_state=0)
    ensemble = CNNEnsembleClassifier([
        ("a", CNNClassifier(**net, test_time_crops="five")),
        ("b", CNNClassifier(**{**net, "random_state": 1})),
    ]).fit(X, y)
    folder = tmp_path / "tiny_ensemble"
    pretrained.save(Pipeline([("ensemble", ensemble)]), folder)
    return folder, X


def test_onnx_ensemble_members_take_the_centre_view(onnx_cache, tmp_path):
    """``test_time_views="center"`` of an ensemble reaches ONNX members."""
    folder, X = _tiny_ensemble_folder(tmp_path)
    keras_model, onnx_model = pretrained.load(folder), pretrained.load(folder, backend="onnx")
    assert np.abs(keras_model.predict_proba(X) - onnx_model.predict_proba(X)).max() <= 1e-4
    center = {"ensemble__test_time_views": "center"}
    p_keras = keras_model.set_params(**center).predict_proba(X)
    p_onnx = onnx_model.set_params(**center).predict_proba(X)
    assert np.abs(p_keras - p_onnx).max() <= 1e-4
    assert np.abs(p_onnx - pretrained.load(folder, backend="onnx").predict_proba(X)).max() > 1e-6


def test_onnx_graph_of_an_older_fersk_is_refused(onnx_cache, tmp_path):
    """A graph that averages the views itself (fersk before the views moved
    out) would average them twice: it is refused, with what to do."""
    import onnx

    from fersk.onnx import OnnxNetworkClassifier

    model = pretrained.load("fer2013_cnn", backend="onnx")
    old = onnx.load(str(model[-1].path))
    del old.metadata_props[:]
    path = tmp_path / "old.onnx"
    onnx.save(old, str(path))
    net = model[-1]
    stale = OnnxNetworkClassifier(path, image_shape=net.image_shape)
    for attr in ("classes_", "image_shape_", "n_features_in_", "input_dtype_", "head_"):
        setattr(stale, attr, getattr(net, attr))
    with pytest.raises(ValueError, match="older fersk.*export"):
        stale.predict_proba(_faces(3))


def test_quantized_copy_predicts_like_its_float_graph(onnx_cache, tmp_path):
    """int8 copy: calibrated on the centre windows of full faces, it keeps
    the graph's metadata (so the classifier accepts it) and its answers."""
    from fersk.onnx import quantize_network

    model = pretrained.load("wild_vgg_fast", backend="onnx")
    X = _faces(60, seed=1)
    int8 = quantize_network(model[-1].path, tmp_path / "int8.onnx", X.astype(np.float32))
    quantized = pretrained.load("wild_vgg_fast", backend="onnx")
    quantized[-1].path = int8
    p, q = model.predict_proba(X), quantized.predict_proba(X)
    assert q.shape == p.shape and np.allclose(q.sum(axis=1), 1)
    assert np.abs(p - q).max() < 0.25
    assert not list(tmp_path.glob(".*.tmp"))


def test_stream_centre_view_reaches_the_onnx_network(onnx_cache):
    """``fersk.stream(..., views="center")`` (and so ``fersk live --views
    center --backend onnx``) runs the ONNX network on one view."""
    from fersk import stream
    from fersk.ensemble import one_view

    onnx_model = pretrained.load("wild_vgg_fast", backend="onnx")
    frames = [data.astronaut()] * 2
    records = list(stream(onnx_model, frames, alpha=1.0, views="center"))
    crops, _ = onnx_model[0].crop_faces(frames)
    expected = one_view(pretrained.load("wild_vgg_fast", backend="keras"))[1:].predict_proba(crops)
    np.testing.assert_allclose([r["proba"] for r in records], expected, atol=1e-4)
    # Every view (the loaded model's gate leaves this sure face at the centre one).
    onnx_model[-1].set_params(test_time_margin=None)
    assert np.abs(onnx_model[1:].predict_proba(crops) - expected).max() > 1e-4


def test_onnx_network_gates_its_views_as_the_keras_one(onnx_cache, tmp_path):
    """``test_time_margin`` saved in a model folder reaches the ONNX network,
    which gives the other views to the same unsure faces as Keras."""
    from sklearn.pipeline import Pipeline

    from fersk import CNNClassifier
    from fersk._keras_params import proba_margin
    from fersk.ensemble import one_view

    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (40, 16, 16), dtype=np.uint8), np.arange(40) % 3
    net = CNNClassifier("mtcnn_cnn", architecture_params={"width": 0.125, "dense_units": 4},
                        epochs=2, crop_size=12, test_time_crops="five", test_time_flip=True,
                        random_state=0).fit(X, y)
    first = one_view(Pipeline([("network", net)])).predict_proba(X)
    cut = float(np.median(proba_margin(first)))
    folder = tmp_path / "gated"
    pretrained.save(Pipeline([("network", net.set_params(test_time_margin=cut))]), folder)
    keras_model = pretrained.load(folder, backend="keras")
    onnx_model = pretrained.load(folder, backend="onnx")
    assert onnx_model[-1].test_time_margin == keras_model[-1].test_time_margin == cut
    gated = onnx_model.predict_proba(X)
    assert np.abs(gated - keras_model.predict_proba(X)).max() <= 1e-4
    every = onnx_model.set_params(network__test_time_margin=None).predict_proba(X)
    unsure = proba_margin(first) < cut
    assert 0 < unsure.sum() < len(X)
    assert np.abs(gated[unsure] - every[unsure]).max() <= 1e-6
    assert np.abs(gated[~unsure] - first[~unsure]).max() <= 1e-4
    with pytest.raises(ValueError, match="test_time_margin"):
        onnx_model.set_params(network__test_time_margin=2.0).predict_proba(X)


def test_onnx_network_pickled_before_the_margin_loads(onnx_cache, tmp_path):
    """An OnnxNetworkClassifier pickled by a fersk without test_time_margin
    unpickles with the default (every view), predicts and clones; a folder
    whose margin is out of range is refused at load."""
    import json
    import pickle
    import shutil

    from sklearn.base import clone

    model = pretrained.load("fer2013_cnn", backend="onnx")
    net = model[-1]
    state = dict(net.__getstate__())
    del state["test_time_margin"]
    old = type(net).__new__(type(net))
    old.__setstate__(state)
    assert old.test_time_margin is None and clone(old).get_params()["test_time_margin"] is None
    X = _faces(5)
    np.testing.assert_allclose(old.predict_proba(X), net.predict_proba(X))
    assert pickle.loads(pickle.dumps(net)).test_time_margin is None

    folder = tmp_path / "bad"
    shutil.copytree(pretrained.MODELS_DIR / "fer2013_cnn", folder)
    spec = json.loads((folder / "pipeline.json").read_text())
    spec["steps"][-1]["params"]["test_time_margin"] = 2.0
    (folder / "pipeline.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="test_time_margin") as refused:
        pretrained.load(folder, backend="onnx")
    assert "pipeline.json" in str(refused.value) and " of load " not in str(refused.value)


def test_onnx_load_checks_the_folder_as_keras_load_does(onnx_cache, tmp_path):
    """The ONNX backends refuse what the Keras one refuses: a .keras file
    that is not the one pipeline.json records (the graph exported from it
    was taken from the cache: another network's probabilities), and
    classes that are not one per output of the graph."""
    import json
    import shutil

    pretrained.load("fer2013_cnn", backend="onnx")  # its graph in the cache
    swapped = tmp_path / "swapped"
    shutil.copytree(pretrained.MODELS_DIR / "fer2013_cnn", swapped)
    keras_file = next(swapped.glob("*.keras"))
    keras_file.write_bytes(keras_file.read_bytes() + b"\0")  # another file, same name
    for backend in ("keras", "onnx"):
        with pytest.raises(ValueError, match="is not the network"):
            pretrained.load(swapped, backend=backend)

    six = tmp_path / "six"
    shutil.copytree(pretrained.MODELS_DIR / "fer2013_cnn", six)
    spec = json.loads((six / "pipeline.json").read_text())
    fitted = spec["steps"][-1]["fitted"]
    fitted["classes_"]["__ndarray__"] = fitted["classes_"]["__ndarray__"][:6]
    fitted["classes_"]["shape"] = [6]
    spec["classes"], spec["class_names"] = spec["classes"][:6], spec["class_names"][:6]
    (six / "pipeline.json").write_text(json.dumps(spec))
    for backend in ("keras", "onnx"):
        with pytest.raises(ValueError, match="6 classes_ but its network has 7 outputs"):
            pretrained.load(six, backend=backend)

    # The network's saved settings, checked by its class's rules on both back
    # ends (the ONNX loader checked only the few its own step takes).
    for key, value in (("head", "bogus"), ("epochs", -5), ("learning_rate", "fast")):
        bad = tmp_path / f"bad_{key}"
        shutil.copytree(pretrained.MODELS_DIR / "fer2013_cnn", bad)
        spec = json.loads((bad / "pipeline.json").read_text())
        spec["steps"][-1]["params"][key] = value
        (bad / "pipeline.json").write_text(json.dumps(spec))
        for backend in ("keras", "onnx"):
            with pytest.raises(ValueError, match=f"'{key}' parameter of CNNClassifier"):
                pretrained.load(bad, backend=backend)


def test_export_after_weights_changed_in_place_follows_them(onnx_cache, tmp_path):
    """export_network read the folded copy of model_ cached by the last
    prediction: after model_.set_weights the graph held the old
    convolutions and batch norms beside the new dense weights."""
    from fersk import CNNClassifier
    from fersk.onnx import OnnxNetworkClassifier, export_network

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (16, 48, 48)).astype(np.uint8)
    y = np.repeat([0, 1], 8)
    kw = dict(architecture="vgg_fer", architecture_params={"width": 0.0625, "dense_units": 8},
              epochs=1, batch_size=8)
    net = CNNClassifier(**kw, random_state=0).fit(X, y)
    other = CNNClassifier(**kw, random_state=1).fit(X, y)
    net.predict_proba(X[:2])  # folds and caches model_'s batch norms
    net.model_.set_weights(other.model_.get_weights())
    onnx_net = OnnxNetworkClassifier.from_estimator(net, export_network(net, tmp_path / "n.onnx"))
    np.testing.assert_allclose(onnx_net.predict_proba(X), other.predict_proba(X), atol=1e-4)


def test_onnx_network_takes_predict_batch_size_as_keras_does(onnx_cache, tmp_path):
    """The ONNX back end dropped the folder's predict_batch_size and refused
    set_params(predict_batch_size=...), which the Keras network takes."""
    from sklearn.pipeline import make_pipeline

    from fersk import CNNClassifier

    X = np.random.default_rng(0).integers(0, 256, (20, 16, 16)).astype(np.uint8)
    net = CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1,
                        predict_batch_size=8, random_state=0)
    pipe = make_pipeline(FaceCropper(detector=None, size=16), net).fit(X, np.arange(20) % 2)
    folder = pretrained.save(pipe, tmp_path / "m")
    onnx = pretrained.load(folder, backend="onnx")
    assert onnx[-1].predict_batch_size == 8
    expected = onnx.predict_proba(X)
    onnx.set_params(**{f"{onnx.steps[-1][0]}__predict_batch_size": 3})
    np.testing.assert_allclose(onnx.predict_proba(X), expected, atol=1e-6)


def test_a_pickled_onnx_network_carries_its_graph(onnx_cache, tmp_path):
    """A pickle of backend="onnx" held the graph's path only, a file of
    fersk's cache (or of the installed package): after `fersk cache --clear`
    it failed with a bare FileNotFoundError from ONNX Runtime's loader.  The
    graph now travels in the pickle; a path with no file is said clearly."""
    import copy
    import pickle
    import shutil

    model = pretrained.load("fer2013_cnn", backend="onnx")
    X = _faces(6)
    expected = model.predict_proba(X)
    graph = tmp_path / "graph.onnx"
    shutil.copyfile(model[-1].path, graph)
    net = copy.deepcopy(model[-1]).set_params(path=str(graph))
    blob = pickle.dumps(net)
    graph.unlink()  # the cache cleared
    loaded = pickle.loads(blob)
    np.testing.assert_array_equal(loaded.predict_proba(model[:-1].transform(X)),
                                  net.set_params(path=model[-1].path).predict_proba(
                                      model[:-1].transform(X)))
    np.testing.assert_allclose(pickle.loads(pickle.dumps(model)).predict_proba(X), expected)
    # pickled again, the graph goes with it (the file is still gone)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(loaded)).predict_proba(X[:2]),
                                  loaded.predict_proba(X[:2]))
    # another path given after loading is read from that file
    assert loaded.set_params(path=model[-1].path).predict_proba(X[:2]).shape == (2, 7)
    # a pickle of an earlier fersk (no graph) whose file is gone
    state = dict(pickle.loads(blob).__dict__)
    del state["_pickled_graph"]
    old = type(net).__new__(type(net))
    old.__setstate__(state)
    with pytest.raises(FileNotFoundError, match="its ONNX graph .*graph.onnx' is not there"):
        old.predict_proba(X[:2])


def test_export_refuses_a_graph_that_does_not_run_or_answer_alike(tmp_path):
    """tf2onnx writes a graph even where it only logs an op it cannot convert
    (exact GELU: Erfc) or converts one approximately (bicubic resizing,
    2e-4 from Keras): the first failed at prediction with ONNX Runtime's
    InvalidGraph, the second predicted otherwise without a word.  A
    regressor got validate_params' "an object implementing predict_proba"."""
    import keras
    from keras import layers

    from fersk import CNNClassifier, CNNRegressor
    from fersk.onnx import export_network

    def gelu(shape, n):
        i = keras.Input(shape)
        x = layers.Conv2D(4, 3, activation="gelu")(i)
        return keras.Model(i, layers.Dense(n, activation="softmax")(layers.GlobalAveragePooling2D()(x)))

    def bicubic(shape, n):
        i = keras.Input(shape)
        x = layers.Conv2D(4, 3, activation="relu")(i)
        x = layers.Resizing(17, 13, interpolation="bicubic")(x)
        x = layers.Flatten()(x)
        return keras.Model(i, layers.Dense(n, activation="softmax", kernel_initializer=keras.initializers.RandomNormal(stddev=3.0))(x))

    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (24, 48, 48), dtype=np.uint8), np.arange(24) % 3
    net = CNNClassifier(gelu, epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"operations \['Erfc'\] have no ONNX equivalent"):
        export_network(net, tmp_path / "gelu.onnx")
    net = CNNClassifier(bicubic, epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="differ from the network's by up to"):
        export_network(net, tmp_path / "bicubic.onnx")
    assert list(tmp_path.iterdir()) == []
    reg = CNNRegressor("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1).fit(
        X, rng.uniform(-1, 1, (24, 2)))
    with pytest.raises(ValueError, match="CNNRegressor has no predict_proba.*no ONNX path"):
        export_network(reg, tmp_path / "reg.onnx")
