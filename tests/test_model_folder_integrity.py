"""Model folders whose files do not belong together (issue #20, fault 4).

A folder is written whole beside its place and renamed in, so that a save
killed at any point leaves the old model or the new one; format 4 records
each network file's size, SHA-256 and shapes, and load checks them, the
network against its parameters and ``class_names`` against ``classes``.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline

from fersk import CNNClassifier, FaceCropper, pretrained

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def toy_X():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (24, 16, 16), dtype=np.uint8)


def _toy(X, width):
    y = np.arange(len(X)) % 3
    return make_pipeline(
        FaceCropper(detector=None, size=(16, 16)),
        CNNClassifier("mtcnn_cnn", {"width": width, "dense_units": 4}, epochs=1, random_state=0),
    ).fit(X, y)


@pytest.fixture(scope="module")
def folders(toy_X, tmp_path_factory):
    """Two tiny models of different widths, saved, and their probabilities."""
    root = tmp_path_factory.mktemp("folders")
    out = {}
    for name, width in (("narrow", 0.125), ("wide", 0.25)):
        pipe = _toy(toy_X, width)
        out[name] = (pretrained.save(pipe, root / name), pipe.predict_proba(toy_X))
    return out


def _copy(folder, tmp_path, name="copy"):
    return Path(shutil.copytree(folder, tmp_path / name))


def _edit_spec(folder, edit):
    spec = json.loads((folder / "pipeline.json").read_text())
    edit(spec)
    (folder / "pipeline.json").write_text(json.dumps(spec))


def test_format_4_records_each_network_file(folders):
    folder, _ = folders["narrow"]
    spec = json.loads((folder / "pipeline.json").read_text())
    assert spec["format_version"] == pretrained.FORMAT_VERSION == 4
    (name, record), = spec["networks"].items()
    assert name == spec["steps"][1]["keras_file"]
    data = (folder / name).read_bytes()
    import hashlib

    assert record["size"] == len(data) and record["sha256"] == hashlib.sha256(data).hexdigest()
    network = pretrained.load(folder)[-1].model_
    assert record["n_params"] == network.count_params()
    assert record["input_shape"] == [None, 16, 16, 1] and record["output_shape"] == [None, 3]
    # nothing else left beside it by the save
    assert [p.name for p in folder.parent.iterdir() if ".tmp-" in p.name] == []


def test_truncated_keras_file_is_refused_naming_it(folders, tmp_path):
    copy = _copy(folders["narrow"][0], tmp_path)
    keras_file = next(copy.glob("*.keras"))
    keras_file.write_bytes(keras_file.read_bytes()[:1000])
    with pytest.raises(ValueError, match=rf"{keras_file.name} is not the network .*1000 bytes"):
        pretrained.load(copy)
    # without the record (a format-3 folder), still a clear message, not "File not found"
    _edit_spec(copy, lambda spec: spec.update(format_version=3, networks=None))
    with pytest.raises(ValueError, match=rf"{keras_file.name} is not a valid Keras file"):
        pretrained.load(copy)


def test_network_swapped_between_folders_is_refused(folders, tmp_path):
    narrow, wide = folders["narrow"][0], folders["wide"][0]
    copy = _copy(narrow, tmp_path)
    keras_name = json.loads((narrow / "pipeline.json").read_text())["steps"][1]["keras_file"]
    shutil.copy(wide / keras_name, copy / keras_name)
    with pytest.raises(ValueError, match=rf"{keras_name} is not the network .*(bytes|SHA-256)"):
        pretrained.load(copy)
    # Records copied along with the file: the parameters (width 0.125)
    # still do not build the network found (width 0.25).
    wide_spec = json.loads((wide / "pipeline.json").read_text())
    _edit_spec(copy, lambda spec: spec.update(networks=wide_spec["networks"]))
    with pytest.raises(ValueError, match="parameters in pipeline.json build one of"):
        pretrained.load(copy)


def test_edited_width_in_pipeline_json_is_refused(folders, tmp_path):
    copy = _copy(folders["narrow"][0], tmp_path)
    _edit_spec(copy, lambda spec: spec["steps"][1]["params"]["architecture_params"].update(
        width=0.25))
    with pytest.raises(ValueError, match=r"holds a network of \d+ parameters; the parameters "
                                         r"in pipeline.json build one of \d+"):
        pretrained.load(copy)


@pytest.mark.parametrize("names", [
    ["angry", "disgust"],  # too few
    ["happy", "happy", "sad"],  # one word for two classes
    ["happy", 1, "sad"],
    ["happy", "", "sad"],
])
def test_class_names_must_name_the_classes(folders, tmp_path, names):
    copy = _copy(folders["narrow"][0], tmp_path)
    # Labels 0-2 are not FER-2013's seven: named as text, not guessed.
    assert pretrained.info(copy)["class_names"] == ["0", "1", "2"]
    _edit_spec(copy, lambda spec: spec.update(class_names=names))
    with pytest.raises(ValueError, match="'class_names'.*do not name its classes"):
        pretrained.load(copy)


def test_checkpoint_dir_from_a_folder_is_never_used(folders, toy_X, tmp_path):
    victim = tmp_path / "precious"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    copy = _copy(folders["narrow"][0], tmp_path)
    _edit_spec(copy, lambda spec: spec["steps"][1]["params"].update(checkpoint_dir=str(victim)))
    loaded = pretrained.load(copy)
    assert loaded[-1].checkpoint_dir is None
    loaded.fit(toy_X, np.arange(len(toy_X)) % 3)  # a refit writes no checkpoint there
    assert sorted(p.name for p in victim.iterdir()) == ["keep.txt"]
    # nor does save write this machine's paths into a folder
    pipe = _toy(toy_X, 0.125)
    pipe[-1].set_params(checkpoint_dir=str(tmp_path / "ckpt"))
    folder = pretrained.save(pipe, tmp_path / "saved")
    assert json.loads((folder / "pipeline.json").read_text())["steps"][1]["params"][
        "checkpoint_dir"] is None


def test_save_replaces_only_model_folders(folders, tmp_path):
    pipe = pretrained.load(folders["narrow"][0])
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    with pytest.raises(ValueError, match="not a fersk model folder.*will not replace it"):
        pretrained.save(pipe, tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        pretrained.save(pipe, tmp_path / "file")
    (tmp_path / "empty").mkdir()
    pretrained.save(pipe, tmp_path / "empty")
    # Replacing a model folder keeps what fersk did not write.
    target = _copy(folders["wide"][0], tmp_path, "model")
    (target / "README.txt").write_text("notes")
    pretrained.save(pipe, target)
    assert sorted(p.name for p in target.iterdir()) == [
        "README.txt", "cnnclassifier.keras", "pipeline.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "empty", "file", "mine", "model"]  # no .tmp- or .old- folder left


def test_save_never_takes_another_tools_folder_or_files(folders, tmp_path):
    from sklearn.pipeline import Pipeline

    pipe = pretrained.load(folders["narrow"][0])
    # Another tool's pipeline.json with a list of steps is not a model folder.
    etl = tmp_path / "etl"
    etl.mkdir()
    theirs = json.dumps({"steps": [{"name": "extract", "cmd": "wget"}], "owner": "me"})
    (etl / "pipeline.json").write_text(theirs)
    with pytest.raises(ValueError, match="not a fersk model folder"):
        pretrained.save(pipe, etl)
    (etl / "pipeline.json").write_text(json.dumps(
        {"steps": [{"name": "s", "class": "os.system", "params": {}, "fitted": {}}]}))
    with pytest.raises(ValueError, match="not a fersk model folder"):
        pretrained.save(pipe, etl)
    # A user's file beside a model, named like a file of the next model saved there.
    model = tmp_path / "model"
    pretrained.save(pipe, model)  # cnnclassifier.keras
    (model / "network.keras").write_bytes(b"mine")
    renamed = Pipeline([("facecropper", pipe[0]), ("network", pipe[-1])])
    with pytest.raises(ValueError, match="network.keras is not a file of the model"):
        pretrained.save(renamed, model)
    assert (model / "network.keras").read_bytes() == b"mine"
    assert sorted(p.name for p in model.iterdir()) == [
        "cnnclassifier.keras", "network.keras", "pipeline.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["etl", "model"]


def test_fuzzed_bytes_load_the_same_model_or_raise_value_error(folders, toy_X, tmp_path):
    """Random byte flips, truncations and overwritten spans in pipeline.json
    and the .keras file: load raises ValueError or gives the original's
    probabilities, never anything else."""
    folder, expected = folders["narrow"]
    rng = random.Random(20)
    outcomes = {"same": 0, "ValueError": 0}
    for i in range(30):
        copy = _copy(folder, tmp_path, f"f{i}")
        file = rng.choice([copy / "pipeline.json", next(copy.glob("*.keras"))])
        data = bytearray(file.read_bytes())
        for _ in range(rng.randint(1, 3)):
            where = rng.randrange(len(data))
            kind = rng.choice(["flip", "truncate", "span"])
            if kind == "flip":
                data[where] ^= rng.randint(1, 255)
            elif kind == "truncate":
                del data[where:]
                if not data:
                    break
            else:
                data[where:where + 16] = bytes(rng.randrange(256) for _ in range(16))
        file.write_bytes(bytes(data))
        try:
            loaded = pretrained.load(copy)
        except ValueError as exc:
            assert str(exc)
            outcomes["ValueError"] += 1
        else:
            np.testing.assert_array_equal(loaded.predict_proba(toy_X), expected)
            outcomes["same"] += 1
        shutil.rmtree(copy)
    assert outcomes["ValueError"] >= 15 and sum(outcomes.values()) == 30


# ------------------------------------------------- a save killed midway

_CHILD = textwrap.dedent("""
    import os, signal, sys
    from fersk import pretrained
    from fersk.pretrained import _saving  # where save looks these helpers up

    source, target, point = sys.argv[1:]
    pipe = pretrained.load(source)

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "pipeline_json":  # half of pipeline.json written
        def write(file, spec):
            with open(file, "w") as f:
                f.write("{" + '"format_version": 4, "steps": [')
                f.flush()
            die()
        _saving._write_json = write
    elif point == "before_swap":
        _saving._exchange = lambda a, b: die()
    elif point == "after_swap":  # the new folder in, the old not yet removed
        exchange = _saving._exchange
        def swap(a, b):
            assert exchange(a, b)
            die()
        _saving._exchange = swap
    elif point == "between_renames":  # where renameat2 is missing
        _saving._exchange = lambda a, b: False
        rename = os.rename
        calls = []
        def second_kills(a, b):
            calls.append(a)
            if len(calls) == 2:
                die()
            rename(a, b)
        os.rename = second_kills
    pretrained.save(pipe, target, description="new")
    sys.exit(3)  # not reached
""")


@pytest.mark.parametrize("point", ["pipeline_json", "before_swap", "after_swap",
                                   "between_renames"])
def test_save_killed_midway_leaves_old_or_new_never_a_mixture(folders, toy_X, tmp_path, point):
    (old, old_proba), (new, new_proba) = folders["narrow"], folders["wide"]
    target = _copy(old, tmp_path, "target")
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", _CHILD, str(new), str(target), point],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    if point == "between_renames":
        # The only moment the target is missing: load says where the old
        # model is, whole.
        assert not target.exists()
        with pytest.raises(ValueError, match=r"interrupted.*previous model is whole in"):
            pretrained.load(target)
        (aside,) = tmp_path.glob("target.old-*")
        aside.rename(target)
    proba = pretrained.load(target).predict_proba(toy_X)
    if point == "after_swap":
        np.testing.assert_array_equal(proba, new_proba)
        assert pretrained.info(target)["description"] == "new"
    else:
        np.testing.assert_array_equal(proba, old_proba)
        assert pretrained.info(target)["description"] == ""
    # the files in the folder are exactly the model's
    spec = json.loads((target / "pipeline.json").read_text())
    assert sorted(p.name for p in target.iterdir()) == sorted(
        ["pipeline.json", *spec["networks"]])


def test_fersk_train_overwrite_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    from fersk.cli import main

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data.csv").write_text("precious")
    csv = tmp_path / "fer2013.csv"  # never read: the folder is refused before
    csv.write_text("emotion,pixels,Usage\n")
    status = main(["train", "--data", str(csv), "--model", "kaggle_cnn",
                   "--out", str(mine), "--overwrite"])
    assert status == 2
    assert "not a fersk model folder" in capsys.readouterr().err
    assert (mine / "data.csv").read_text() == "precious"


@pytest.mark.parametrize("exchange", [True, False])
def test_files_written_into_the_folder_while_save_runs_are_kept(folders, tmp_path, monkeypatch,
                                                                exchange):
    """Another process writes into the model folder while save flushes the
    new one: its file moves into the new folder, never deleted with the old;
    one the new folder has a file of the same name for stays in the old, with a warning."""
    from fersk.pretrained import _saving

    pipe = pretrained.load(folders["narrow"][0])
    target = _copy(folders["wide"][0], tmp_path, "model")
    (target / "notes").mkdir()
    (target / "notes" / "n.txt").write_text("mine")
    real = _saving._fsync_tree
    written = {"evaluation.json": '{"mine": 1}'}

    def fsync_tree(folder):
        for name, text in written.items():
            (target / name).write_text(text)
        real(folder)

    monkeypatch.setattr(_saving, "_fsync_tree", fsync_tree)
    if not exchange:  # where renameat2 is missing: two renames
        monkeypatch.setattr(_saving, "_exchange", lambda a, b: False)
    pretrained.save(pipe, target)
    assert sorted(p.name for p in target.iterdir()) == [
        "cnnclassifier.keras", "evaluation.json", "notes", "pipeline.json"]
    assert (target / "evaluation.json").read_text() == '{"mine": 1}'
    assert (target / "notes" / "n.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    # A file named as one the new model writes (its network renamed) stays aside.
    from sklearn.pipeline import Pipeline

    renamed = Pipeline([("facecropper", pipe[0]), ("network", pipe[-1])])
    written = {"network.keras": "theirs"}
    with pytest.warns(UserWarning, match="network.keras"):
        pretrained.save(renamed, target)
    (old,) = [p for p in tmp_path.iterdir() if p.name != "model"]
    assert sorted(p.name for p in old.iterdir()) == ["network.keras"]
    assert (old / "network.keras").read_text() == "theirs"
    assert sorted(p.name for p in target.iterdir()) == [
        "evaluation.json", "network.keras", "notes", "pipeline.json"]


def test_save_keeps_the_folders_permissions(folders, tmp_path):
    """A private model folder (0o700) stays private when saved over, as
    does an empty folder saved into: not mkdir's mode under the umask."""
    import stat

    pipe = pretrained.load(folders["narrow"][0])
    model = _copy(folders["wide"][0], tmp_path, "model")
    (tmp_path / "empty").mkdir()
    for target in (model, tmp_path / "empty"):
        os.chmod(target, 0o700)
        pretrained.save(pipe, target)
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o700
        os.chmod(target, 0o750)
        pretrained.save(pipe, target)
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o750
