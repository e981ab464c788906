"""Model folders from elsewhere: malformed or hostile pipeline.json files.

Every way a ``pipeline.json`` can be wrong ends in a ValueError that names
the problem (never KeyError, TypeError, RecursionError...), and nothing in
the folder can make fersk read files outside it, set arbitrary attributes
or run code.  The fuzz test mutates a real model folder at random.
"""

import json
import os
import random
import shutil
import warnings

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline

from fersk import CNNClassifier, FaceCropper, pretrained


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (24, 16, 16), dtype=np.uint8), np.arange(24) % 3
    pipe = make_pipeline(
        FaceCropper(detector=None, size=(16, 16)),
        CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1, random_state=0),
    ).fit(X, y)
    return pretrained.save(pipe, tmp_path_factory.mktemp("models") / "toy")


def _mutated(folder, tmp_path, edit):
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    spec = json.loads((copy / "pipeline.json").read_text())
    spec = edit(spec)
    text = spec if isinstance(spec, str) else json.dumps(spec)
    (copy / "pipeline.json").write_text(text)
    return copy


def _set(path, value):
    def edit(spec):
        target = spec
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return spec
    return edit


def _drop(key):
    def edit(spec):
        del spec[key]
        return spec
    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (_drop("steps"), "lacks 'steps'"),
        (lambda spec: [spec], "must hold a JSON object; it holds a list"),
        (_set(["format_version"], "abc"), "format_version must be a whole number"),
        (lambda spec: "[" * 100000 + "]" * 100000, "nested too deeply|not valid JSON"),
        (lambda spec: "{not json", "not valid JSON"),
        (_set(["steps", 1, "params", "no_such"], 1), r"has no parameter\(s\) \['no_such'\]"),
        (_set(["steps", 1, "params", "architecture"], "bogus"), "architecture"),
        (_set(["steps", 1, "params", "epochs"], -3), "epochs"),
        (_set(["steps", 1, "params", "class_weight"], {"__pairs__": 3}), r"\[key, value\] pairs"),
        (_set(["steps", 1, "fitted", "__dict__"], {}), "not fitted attributes"),
        (_set(["steps", 1, "fitted", "predict"], 1), "not fitted attributes"),
        (_set(["steps", 1, "fitted", "model_"], 1), "not fitted attributes"),
        (_set(["steps", 1, "fitted", "classes_"],
               {"__ndarray__": [0, 1, 2], "dtype": "O", "shape": [3]}), "unsupported dtype"),
        (_set(["steps", 1, "fitted", "classes_"],
               {"__ndarray__": [0, 1], "dtype": "<i8", "shape": [2]}), "2 classes_ but its network"),
        (_set(["steps", 1, "keras_file"], "../elsewhere.keras"), "inside the model folder"),
        (_set(["steps", 1, "keras_file"], "/tmp/x.keras"), "inside the model folder"),
        (_set(["steps", 1, "keras_file"], "network.h5"), "must name a .keras file"),
        (_set(["steps", 1, "keras_file"], "gone.keras"), "missing"),
        (_set(["steps", 1, "keras_file"], 3), "'keras_file' must be a str"),
        (_set(["steps"], []), "'steps' is empty"),
        (_set(["steps", 0], "facecropper"), "each step must be a JSON object"),
    ],
)
def test_malformed_pipeline_json_is_a_clear_value_error(folder, tmp_path, edit, message):
    bad = _mutated(folder, tmp_path, edit)
    with pytest.raises(ValueError, match=message):
        pretrained.load(bad)


def test_keras_file_outside_the_folder_is_never_read(folder, tmp_path):
    # A real, loadable network beside the folder: refused all the same.
    outside = tmp_path / "outside.keras"
    shutil.copy(folder / "toy.keras" if (folder / "toy.keras").exists()
                else next(folder.glob("*.keras")), outside)
    bad = _mutated(folder, tmp_path, _set(["steps", 1, "keras_file"], str(outside)))
    with pytest.raises(ValueError, match="inside the model folder"):
        pretrained.load(bad)
    link = tmp_path / "copy" / "link.keras"
    os.symlink(outside, link)
    spec = json.loads((tmp_path / "copy" / "pipeline.json").read_text())
    spec["steps"][1]["keras_file"] = "link.keras"  # resolves outside: refused too
    (tmp_path / "copy" / "pipeline.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="inside the model folder"):
        pretrained.load(tmp_path / "copy")


def test_bundled_names_are_not_shadowed_by_local_folders(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(folder, tmp_path / pretrained.DEFAULT_MODEL)
    # the bundled one, not the toy, and said: a user's folder saved under a
    # bundled name was otherwise passed over without a word
    with pytest.warns(UserWarning, match=r"bundled model is used, not the model folder"):
        loaded = pretrained.load(pretrained.DEFAULT_MODEL, backend="keras")
    assert loaded.steps[-1][1].model_.output_shape[-1] == 7
    with pytest.warns(UserWarning, match=r"give it as a path \('\./"):
        pretrained.info(pretrained.DEFAULT_MODEL)
    # given as a path, the local folder is what loads, without a word
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        local = pretrained.load(f"./{pretrained.DEFAULT_MODEL}")
    assert local.steps[-1][1].model_.output_shape[-1] == 3
    shutil.rmtree(tmp_path / pretrained.DEFAULT_MODEL)
    with warnings.catch_warnings():  # no such folder: nothing to say
        warnings.simplefilter("error")
        pretrained.info(pretrained.DEFAULT_MODEL)


def _mutations(spec, rng):
    """Random edits of a JSON document: drop, retype or replace values."""
    nodes = []

    def walk(node):
        if isinstance(node, dict):
            for k in list(node):
                nodes.append((node, k))
                walk(node[k])
        elif isinstance(node, list):
            for i in range(len(node)):
                nodes.append((node, i))
                walk(node[i])

    walk(spec)
    container, key = rng.choice(nodes)
    choice = rng.randrange(6)
    if choice == 0 and isinstance(container, dict):
        del container[key]
    else:
        container[key] = rng.choice([
            None, True, -1, 0, 10**30, 1e308, "x", "../../x.keras", [], {}, [[[]]],
            {"__ndarray__": [1], "dtype": "V8", "shape": [1]},
            {"__tuple__": 3}, {"__float__": "nan"}, {"__float__": "1e"},
            "os.system", "fersk.classifiers.CNNClassifier",
        ])
    return spec


def test_fuzzed_pipeline_json_loads_or_raises_value_error(folder, tmp_path):
    rng = random.Random(0)
    original = json.loads((folder / "pipeline.json").read_text())
    outcomes = {"loaded": 0, "ValueError": 0}
    for i in range(100):
        spec = json.loads(json.dumps(original))
        for _ in range(rng.randint(1, 3)):
            spec = _mutations(spec, rng)
        copy = tmp_path / f"m{i}"
        shutil.copytree(folder, copy)
        (copy / "pipeline.json").write_text(json.dumps(spec))
        try:
            pretrained.load(copy)
            outcomes["loaded"] += 1
        except ValueError as exc:
            assert str(exc)
            outcomes["ValueError"] += 1
        shutil.rmtree(copy)
    assert outcomes["ValueError"] > 30 and sum(outcomes.values()) == 100


def test_save_to_the_working_directory(folder, tmp_path, monkeypatch):
    """save(pipe, "."): "." has no name, the new folder is written beside
    the working directory (not inside it) and renamed into place; "."
    then is the new folder."""
    pipe = pretrained.load(folder, backend="keras")
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")
    assert pretrained.save(pipe, ".") == tmp_path / "empty"
    assert sorted(os.listdir(".")) == ["cnnclassifier.keras", "pipeline.json"]
    assert pretrained.info(".")["name"] == "empty"
    (tmp_path / "empty" / "notes.txt").write_text("mine")
    pretrained.save(pipe, ".", description="again")  # over the model folder it is in
    assert sorted(os.listdir(".")) == ["cnnclassifier.keras", "notes.txt", "pipeline.json"]
    assert pretrained.info(".")["description"] == "again"
    assert os.listdir(tmp_path) == ["empty"]


def test_fersk_train_out_dot(tmp_path, monkeypatch, capsys):
    """``fersk train --out .`` in an empty folder saves the model there
    (it crashed once trained, the save's rename refused)."""
    from PIL import Image

    from fersk.cli import main

    monkeypatch.setenv("FERSK_CACHE", str(tmp_path / "cache"))  # not the user's cache
    rng = np.random.default_rng(0)
    root = tmp_path / "fer"
    for split, usage in (("train", "Training"), ("test", "PublicTest")):
        for emotion in ("happy", "sad"):
            (root / split / emotion).mkdir(parents=True)
            for i in range(4):
                Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(
                    root / split / emotion / f"{usage}_{i}.png")
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path / "out")
    status = main(["train", "--data", str(root), "--model", "mtcnn_cnn", "--out", ".",
                   "--width", "0.125", "--dense-units", "4", "--epochs", "1"])
    out, err = capsys.readouterr()
    assert status == 0, err[-2000:]
    assert f"saved {tmp_path / 'out'}" in out
    assert sorted(os.listdir(".")) == ["network.keras", "pipeline.json"]  # no training_state
    assert pretrained.info(".")["name"] == "out"
    assert sorted(os.listdir(tmp_path)) == ["cache", "fer", "out"]  # no .tmp- folder left


def _net(seed, **kw):
    return CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1,
                         random_state=seed, **kw)


def test_step_names_never_write_outside_the_folder_nor_share_a_file(tmp_path):
    """Network files were named after the user's step and member names:
    "../victim" overwrote a file beside the folder, and a member "b.net"
    beside a member "b" with a step "net" wrote one file for two networks,
    so the loaded ensemble silently predicted otherwise."""
    from sklearn.pipeline import Pipeline

    from fersk import CNNEnsembleClassifier, LBPCodeTransformer

    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (20, 16, 16), dtype=np.uint8), np.arange(20) % 2
    (tmp_path / "victim.keras").write_text("the user's own file\n")
    pipe = Pipeline([("face", FaceCropper(detector=None, size=(16, 16))),
                     ("../victim", _net(0))]).fit(X, y)
    folder = pretrained.save(pipe, tmp_path / "model")
    assert (tmp_path / "victim.keras").read_text() == "the user's own file\n"
    np.testing.assert_allclose(pretrained.load(folder, backend="keras").predict_proba(X),
                               pipe.predict_proba(X), atol=1e-6)

    ensemble = CNNEnsembleClassifier([
        ("b.net", _net(0)),
        ("b", Pipeline([("lbp", LBPCodeTransformer()), ("net", _net(1, input_scaling="none"))])),
    ])
    pipe = make_pipeline(FaceCropper(detector=None, size=(16, 16)), ensemble).fit(X, y)
    folder = pretrained.save(pipe, tmp_path / "ensemble")
    assert len(list(folder.glob("*.keras"))) == 2
    np.testing.assert_allclose(pretrained.load(folder, backend="keras").predict_proba(X),
                               pipe.predict_proba(X), atol=1e-6)


def test_save_stores_what_load_accepts_metrics_memory_and_keep(tmp_path):
    """A member Pipeline's memory (a cache folder here) made a folder that
    load refused; NumPy numbers in metrics failed inside json after the
    networks were written, int keys came back as strings; keep=["pipeline.json"]
    lost the user's file of that name."""
    from sklearn.pipeline import Pipeline

    from fersk import CNNEnsembleClassifier, LBPCodeTransformer

    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (20, 16, 16), dtype=np.uint8), np.arange(20) % 2
    member = Pipeline([("lbp", LBPCodeTransformer()), ("net", _net(0, input_scaling="none"))],
                      memory=str(tmp_path / "joblib"))
    pipe = make_pipeline(FaceCropper(detector=None, size=(16, 16)),
                         CNNEnsembleClassifier([("m", member)])).fit(X, y)
    folder = pretrained.save(pipe, tmp_path / "m", metrics={
        "n": np.int64(3), "acc": np.float32(0.5), "rows": np.arange(2)})
    loaded = pretrained.load(folder, backend="keras")
    np.testing.assert_allclose(loaded.predict_proba(X), pipe.predict_proba(X), atol=1e-6)
    assert pretrained.info(folder)["metrics"] == {"n": 3, "acc": 0.5, "rows": [0, 1]}
    for metrics in ({1: 2}, {"a": {"b": object()}}):
        with pytest.raises(ValueError, match="metrics"):
            pretrained.save(pipe, tmp_path / "bad", metrics=metrics)
    assert not (tmp_path / "bad").exists()

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "pipeline.json").write_text('{"another tool": "my config"}\n')
    for keep in (["pipeline.json"], ["../mine"], [""]):
        with pytest.raises(ValueError, match="keep names entries"):
            pretrained.save(pipe, mine, keep=keep)
    assert (mine / "pipeline.json").read_text() == '{"another tool": "my config"}\n'


def test_save_over_a_model_keeps_the_users_files_as_they_are(folder, tmp_path):
    """save over a model folder deleted a user's file named like an int8
    graph (``<network>.int8-<12 hex>.onnx``) by its name alone, and copied
    the user's other files then deleted them: a file hard-linked from
    elsewhere lost its link.  An int8 name counts as fersk's only when its
    hex is its bytes' SHA-256, and the user's files are hard-linked."""
    pipe = pretrained.load(folder, backend="keras")
    model = tmp_path / "model"
    shutil.copytree(folder, model)
    outside = tmp_path / "thesis.txt"
    outside.write_text("chapter 1")
    os.link(outside, model / "thesis.txt")
    (model / "cnnclassifier.int8-0123456789ab.onnx").write_bytes(b"the user's own graph")
    (model / "sub").mkdir()
    os.link(outside, model / "sub" / "also.txt")
    pretrained.save(pipe, model, description="again")
    assert (model / "cnnclassifier.int8-0123456789ab.onnx").read_bytes() == b"the user's own graph"
    assert os.path.samefile(model / "thesis.txt", outside)
    assert os.path.samefile(model / "sub" / "also.txt", outside)
    assert pretrained.info(model)["description"] == "again"
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_a_loaded_network_refuses_a_warm_start_with_other_builder_settings(folder):
    """A network loaded from a folder had no record of the settings it was
    built with: set_params(warm_start=True, architecture_params=<another
    width>) trained the old network on while get_params described another
    (a network fitted in the process refused it)."""
    pipe = pretrained.load(folder, backend="keras")
    net = pipe[-1]
    rng = np.random.default_rng(1)
    X, y = rng.integers(0, 256, (12, 16, 16), dtype=np.uint8), np.arange(12) % 3
    with pytest.raises(ValueError, match=r"architecture_params \(the network was built with"):
        net.set_params(warm_start=True, epochs=1,
                       architecture_params={"width": 0.25, "dense_units": 4}).fit(X, y)
    net.set_params(architecture_params={"width": 0.125, "dense_units": 4}).fit(X, y)
    assert net.n_epochs_ == 1
