"""The ``fersk`` command line, run through ``main([...])`` on real photos.

A tiny real model folder (a 1-epoch network behind the default
FaceCropper, written with ``fersk.pretrained.save``) stands in for the
bundled model, so these tests do not depend on it; its predictions are
meaningless, so the tests compare the command line's output with the
pipeline's own ``predict_proba`` on the same images instead.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data
from skimage.transform import resize

from fersk.cli import _architecture_params, _video_backends, main

FER = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
ASTRONAUT_BOX = "65 175 99 99"  # FaceCropper's documented box on the astronaut


@pytest.fixture(scope="session")
def toy_model(tmp_path_factory):
    """A real but tiny pretrained-model folder (7 FER classes, 1 epoch)."""
    from sklearn.pipeline import Pipeline

    from fersk import CNNClassifier, FaceCropper, pretrained

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (28, 48, 48), dtype=np.uint8)
    y = np.arange(28) % 7
    net = CNNClassifier(
        "mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1, random_state=0
    ).fit(X, y, validation_data=(X[:14], y[:14]))
    # The cascade: its boxes are the ones docs/cli.rst records; face crops of
    # up to 64 pixels taken whole, as the bundled models take them.
    cropper = FaceCropper("skimage", size=(48, 48), precropped_max_side=64)
    pipe = Pipeline([("facecropper", cropper), ("network", net)])
    folder = tmp_path_factory.mktemp("models") / "toy"
    pretrained.save(pipe, folder, description="a 1-epoch toy", metrics={"n_publictest": 14})
    return str(folder)


@pytest.fixture(scope="session")
def pipeline(toy_model):
    from fersk import pretrained

    return pretrained.load(toy_model)


def _proba(pipeline, images, **cropper_params):
    """The pipeline's own probabilities, the cropper's parameters changed."""
    cropper = pipeline.steps[0][1]
    old = cropper.get_params()
    cropper.set_params(**cropper_params)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pipeline.predict_proba(images)
    finally:
        cropper.set_params(**old)


def _face_crop():
    """The astronaut's face as a 48x48 grey crop (a FER-like image)."""
    grey = np.asarray(Image.fromarray(data.astronaut()).convert("L"))
    face = grey[55:175, 165:285]
    return np.rint(resize(face, (48, 48), anti_aliasing=True, preserve_range=True)).astype(np.uint8)


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """Real files: a photo with a face, a face crop, a photo without a face,
    a broken file, an empty folder."""
    root = tmp_path_factory.mktemp("photos")
    Image.fromarray(data.astronaut()).save(root / "astronaut.png")
    Image.fromarray(_face_crop()).save(root / "crop.png")
    Image.fromarray(data.coffee()).save(root / "coffee.jpg")
    (root / "broken.jpg").write_bytes(b"this is not a JPEG")
    (root / "empty").mkdir()
    return root


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


# ------------------------------------------------------------------ basics


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from fersk.cli import main\n"
        "status = main(['--help'])\n"
        "assert not {'tensorflow', 'keras', 'sklearn'} & set(sys.modules), sorted(sys.modules)\n"
        "sys.exit(status)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    for command in ("demo", "predict", "train", "evaluate"):
        assert command in res.stdout
    res = subprocess.run(
        [sys.executable, "-m", "fersk.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0 and res.stdout.startswith("fersk ")


def test_command_help_imports_no_command_module():
    # Each command's module (TensorFlow, Keras, the face detector) is imported
    # only when that command runs: not by the parser, nor by its --help.
    code = (
        "import sys\n"
        "from fersk.cli import main\n"
        "for command in ('demo', 'predict', 'train', 'evaluate'):\n"
        "    assert main([command, '--help']) == 0\n"
        "heavy = {'tensorflow', 'keras', 'sklearn', 'mtcnn', 'fersk.face', 'fersk.cli._faces',\n"
        "         'fersk.cli.demo', 'fersk.cli.predict', 'fersk.cli.train', 'fersk.cli.evaluate'}\n"
        "assert not heavy & set(sys.modules), sorted(heavy & set(sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "usage: fersk predict" in res.stdout and "--on-no-face" in res.stdout


def test_names_of_the_former_cli_module_still_resolve():
    import fersk.cli
    from fersk.cli import predict, train

    for name in fersk.cli._MOVED:
        assert getattr(fersk.cli, name) is not None, name
        assert name in dir(fersk.cli)
    assert fersk.cli._cmd_predict is predict.run
    assert fersk.cli._architecture_params is train._architecture_params
    with pytest.raises(AttributeError, match="no_such_name"):
        fersk.cli.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "give a command"),
        (["predict"], "PATH"),
        (["predict", "x.png", "--every", "0"], "--every"),
        (["predict", "x.png", "--on-no-face", "never"], "--on-no-face"),
        (["train", "--data", "/nonexistent/fer", "--model", "kaggle_cnn", "--out", "m"], "--data"),
        (["evaluate", "--data", "/nonexistent/fer.csv"], "--data"),
        (["evaluate", "--data", ".", "--usage", "PrivateTrain"], "--usage"),
    ],
)
def test_usage_errors_exit_2(capsys, argv, message):
    status, out, err = _run(capsys, *argv)
    assert status == 2
    assert message in err


def test_unknown_model_and_architecture_are_usage_errors(capsys, tmp_path, photos):
    status, _, err = _run(
        capsys, "predict", photos / "astronaut.png", "--model", tmp_path / "nothing"
    )
    assert status == 2 and "--model" in err and "pipeline.json" in err
    status, _, err = _run(
        capsys, "train", "--data", photos, "--model", "resnet50", "--out", tmp_path / "m"
    )
    assert status == 2 and "unknown architecture 'resnet50'" in err


def test_dense_units_maps_to_each_architecture():
    assert _architecture_params("kaggle_cnn", 0.5, 64) == {"width": 0.5, "dense_units": 64}
    assert _architecture_params("lbcnn", None, 64) == {"head_units": 64}
    assert _architecture_params("vgg_s", None, None) == {}


# -------------------------------------------------------------------- demo


def test_demo(capsys, tmp_path, toy_model, pipeline):
    out_png = tmp_path / "demo.png"
    status, out, _ = _run(capsys, "demo", "--model", toy_model, "--out", out_png)
    assert status == 0
    assert f"face box (row col height width): {ASTRONAUT_BOX}" in out
    expected = _proba(pipeline, [data.astronaut()])[0]
    assert f"emotion: {FER[expected.argmax()]} ({expected.max():.2f})" in out
    lines = [line.split() for line in out.splitlines() if line.startswith("  ")]
    assert sorted(name for name, _ in lines) == sorted(FER)
    assert {name: float(p) for name, p in lines} == pytest.approx(
        dict(zip(FER, expected)), abs=6e-4
    )
    image = np.asarray(Image.open(out_png).convert("RGB"))
    assert image.shape == (512, 512, 3)
    # The box is drawn in green on the face's edge; the label sits above it.
    assert tuple(image[65, 200]) == (0, 255, 0) and tuple(image[120, 175]) == (0, 255, 0)
    assert not np.array_equal(image[40:63, 175:260], data.astronaut()[40:63, 175:260])


@pytest.mark.parametrize("name", ["demo.png", "demo.jpg", "demo.tif"])
def test_demo_never_replaces_a_file_it_did_not_write(capsys, tmp_path, toy_model, name):
    """--out naming a user's own file was overwritten without a word; now it
    is a usage error and the file is left as it is.  A file an earlier demo
    wrote (marked: PNG text, or EXIF in JPEG and TIFF) is replaced by a rerun."""
    out = tmp_path / name
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(out)
    before = out.read_bytes()
    status, _, err = _run(capsys, "demo", "--model", toy_model, "--out", out)
    assert status == 2 and "not replace it" in err and out.read_bytes() == before
    out.unlink()
    assert _run(capsys, "demo", "--model", toy_model, "--out", out)[0] == 0
    assert _run(capsys, "demo", "--model", toy_model, "--out", out)[0] == 0  # its own: replaced


def test_demo_without_matplotlib_still_labels_the_face(capsys, tmp_path, toy_model, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out_png = tmp_path / "demo.png"
    status, out, _ = _run(capsys, "demo", "--model", toy_model, "--out", out_png)
    assert status == 0 and "not installed" not in out
    image = np.asarray(Image.open(out_png).convert("RGB"))
    assert tuple(image[65, 200]) == (0, 255, 0)
    # The label (Pillow's text on a green ground) sits above the box.
    label = image[40:63, 175:260]
    assert (label == (0, 255, 0)).all(axis=-1).mean() > 0.3  # its ground
    assert (label.max(axis=-1) < 60).any()  # its black text


def test_json_mode_keeps_tensorflow_start_up_lines_off_stderr(tmp_path, toy_model):
    code = (
        "import sys\n"
        "from fersk.cli import main\n"
        f"sys.exit(main(['predict', {str(tmp_path / 'missing.png')!r}, '--model', "
        f"{str(toy_model)!r}, '--json']))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.returncode == 1 and run.stderr == "", run.stderr
    doc = json.loads(run.stdout)
    assert doc["summary"]["files"] == 0 and doc["summary"]["failed"] == 1


def test_data_errors_give_no_python_only_advice(capsys, tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("FERSK_CACHE", str(tmp_path / "cache"))  # not the user's cache
    root = tmp_path / "fer"
    for split in ("train", "test"):
        (root / split / "happy").mkdir(parents=True)
        Image.fromarray(np.zeros((48, 48), np.uint8)).save(root / split / "happy" / "a.png")
    (root / "train" / "happy" / "b.png").write_bytes(b"not an image")
    status, _, err = _run(capsys, "evaluate", "--data", root, "--usage", "Training")
    assert status == 1 and "could not be loaded" in err and "b.png" in err
    assert "errors=" not in err


def test_train_warnings_are_one_clean_line(capsys, tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("FERSK_CACHE", str(tmp_path / "cache"))  # not the user's cache
    root = tmp_path / "fer"
    (root / "train" / "happy").mkdir(parents=True)  # no test/ split
    image = Image.fromarray(np.zeros((48, 48), np.uint8))
    image.save(root / "train" / "happy" / "Training_1.png")
    status, _, err = _run(capsys, "train", "--data", root, "--model", "kaggle_cnn",
                          "--out", tmp_path / "m")
    assert status == 1
    assert "fersk train: warning: load_fer2013: no sample of usage" in err
    assert "UserWarning" not in err and ".py:" not in err
    assert err.strip().splitlines()[-1].startswith("fersk train: ")


def test_predict_faces_all_gives_a_row_per_face(capsys, tmp_path, toy_model, pipeline):
    from fersk.face import predict_faces

    group = np.concatenate([data.astronaut(), data.astronaut()[:, ::-1]], axis=1)
    Image.fromarray(group).save(tmp_path / "group.png")
    out_csv = tmp_path / "faces.csv"
    status, _, err = _run(capsys, "predict", tmp_path / "group.png", "--model", toy_model,
                          "--faces", "all", "--csv", out_csv, "--annotate", tmp_path / "ann")
    assert status == 0, err
    with open(out_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    expected = predict_faces(pipeline, [group])
    assert len(rows) == len(expected) >= 2
    assert [int(r["face_index"]) for r in rows] == list(range(len(expected)))
    for row, rec in zip(rows, expected):
        assert [float(row[k]) for k in ("row", "col", "height", "width")] == list(rec["box"])
        assert float(row[FER[int(rec["label"])]]) == pytest.approx(rec["proba"].max(), abs=6e-4)
    # every face is boxed in the annotated copy
    drawn = np.asarray(Image.open(tmp_path / "ann" / "group.png").convert("RGB"))
    for rec in expected:
        r, c, h, w = (int(v) for v in rec["box"])
        assert tuple(drawn[r, c + w // 2]) == (0, 255, 0)
    status, out, _ = _run(capsys, "predict", tmp_path / "group.png", "--model", toy_model)
    assert status == 0 and len([ln for ln in out.splitlines() if "group.png" in ln]) == 1


def test_demo_out_is_an_image_file_or_a_folder(capsys, tmp_path, toy_model):
    status, out, err = _run(capsys, "demo", "--model", toy_model, "--out", tmp_path / "x.txt")
    assert status == 2 and "not an image file name" in err and not out
    assert not (tmp_path / "x.txt").exists()
    status, out, _ = _run(capsys, "demo", "--model", toy_model, "--out", tmp_path)
    assert status == 0
    assert f"annotated image written to {tmp_path / 'fersk_demo.png'}" in out
    assert Image.open(tmp_path / "fersk_demo.png").size == (512, 512)


# ----------------------------------------------------------------- predict


def _table_rows(out):
    """The table's rows by file: the columns are fixed-width, so cut at the
    header's column starts (the face column may hold spaces)."""
    header, *lines = out.splitlines()
    starts = [header.index(name) for name in ("face", "box", "emotion")]
    rows = {}
    for line in lines:
        name, face = line[: starts[0]].strip(), line[starts[0] : starts[1]].strip()
        box = line[starts[1] : starts[2]].split()
        rest = line[starts[2] :].split()
        rows[name] = [name, face, *box, *rest] if box != ["-"] else [name, face, *rest]
    return header, rows


def test_predict_reports_each_file_and_exits_1(capsys, photos, toy_model, pipeline):
    status, out, err = _run(
        capsys,
        "predict",
        photos / "astronaut.png",
        photos / "crop.png",
        photos / "coffee.jpg",
        photos / "broken.jpg",
        photos / "empty",
        photos / "missing.png",
        "--model",
        toy_model,
    )
    assert status == 1
    header, rows = _table_rows(out)
    assert header.split()[:2] == ["file", "face"]
    assert set(rows) == {str(photos / n) for n in ("astronaut.png", "crop.png", "coffee.jpg")}
    astro = rows[str(photos / "astronaut.png")]
    assert astro[1] == "detected" and " ".join(astro[2:6]) == ASTRONAUT_BOX
    expected = _proba(pipeline, [data.astronaut()])[0]
    assert astro[6] == FER[expected.argmax()]
    np.testing.assert_allclose([float(v) for v in astro[7:]], expected, atol=6e-4)
    crop = rows[str(photos / "crop.png")]
    # <= 64 px: taken as a face crop, classified whole, without detection.
    assert crop[1] == "crop" and crop[2:6] == ["0", "0", "48", "48"]
    expected = _proba(pipeline, _face_crop()[np.newaxis], detector=None)[0]
    np.testing.assert_allclose([float(v) for v in crop[7:]], expected, atol=6e-4)
    # No face: classified whole, as the pipeline does, and marked so.
    coffee = rows[str(photos / "coffee.jpg")]
    assert coffee[1] == "none (whole image)"
    expected = _proba(pipeline, [str(photos / "coffee.jpg")])[0]
    assert coffee[2] == FER[expected.argmax()]
    problems = {
        "broken.jpg": "cannot read an image",
        "empty": "folder with no image",
        "missing.png": "no such file",
    }
    for name, message in problems.items():
        assert any(name in line and message in line for line in err.splitlines()), (name, err)
    assert "coffee" not in err.replace("1 without a face", "")
    # the empty folder and the missing path are problems, not files
    assert "3 rows from 4 files (1 without a face, classified whole), 3 problems" in err


def test_predict_folder_json_and_batches(capsys, tmp_path, photos, toy_model):
    folder = tmp_path / "shots"
    (folder / "sub").mkdir(parents=True)
    for name in ("astronaut.png", "crop.png"):
        (folder / "sub" / name).write_bytes((photos / name).read_bytes())
    (folder / "b_crop.png").write_bytes((photos / "crop.png").read_bytes())
    (folder / "notes.txt").write_text("not an image")
    status, out, err = _run(capsys, "predict", folder, "--model", toy_model, "--json")
    assert status == 0 and err == ""
    doc = json.loads(out)
    assert doc["errors"] == [] and doc["class_names"] == FER
    files = [rec["file"] for rec in doc["records"]]
    assert files == [str(folder / p) for p in ("b_crop.png", "sub/astronaut.png", "sub/crop.png")]
    for rec in doc["records"]:
        assert sum(rec["probabilities"].values()) == pytest.approx(1, abs=1e-3)
        assert rec["emotion"] == max(rec["probabilities"], key=rec["probabilities"].get)
    assert doc["records"][1]["box"] == [65, 175, 99, 99]
    # One image per batch gives the same records.
    status, out_small, _ = _run(
        capsys, "predict", folder, "--model", toy_model, "--json", "--batch-size", "1"
    )
    assert json.loads(out_small)["records"] == doc["records"]
    # notes.txt is not read, and said: a photo of another format (.heic) was
    # passed over without a word; so were the images of a linked folder
    assert doc["not_read"] == [str(folder / "notes.txt")] and doc["summary"]["not_read"] == 1
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "linked.png").write_bytes((photos / "crop.png").read_bytes())
    os.symlink(elsewhere, folder / "link")
    os.symlink(folder, folder / "sub" / "loop")  # a loop ends where it began
    # a link to a folder above the one named walked that folder's other
    # folders (the walk remembered the named folder only)
    (tmp_path / "beside").mkdir()
    (tmp_path / "beside" / "other.png").write_bytes((photos / "crop.png").read_bytes())
    os.symlink(tmp_path, folder / "sub" / "up")
    status, out, err = _run(capsys, "predict", folder, "--model", toy_model)
    assert status == 0 and "4 rows from 4 files" in err
    assert "link/linked.png" in out and "loop" not in out and "other.png" not in out
    assert "1 file(s) in the folders not read" in err and "['.txt']" in err and "notes.txt" in err


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="file names there are Unicode")
def test_predict_csv_takes_file_names_that_are_not_utf8(capsys, tmp_path, photos, toy_model):
    """A file name whose bytes are not UTF-8 (an old archive's) made the CSV
    writer raise: the run died and every row was lost.  Its row now names it
    with a \\xe9 escape, and the other files' rows are written."""
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / os.fsdecode(b"caf\xe9.png")).write_bytes((photos / "crop.png").read_bytes())
    (folder / "plain.png").write_bytes((photos / "crop.png").read_bytes())
    status, _, err = _run(capsys, "predict", folder, "--model", toy_model,
                          "--csv", tmp_path / "out.csv")
    assert status == 0 and "2 rows" in err
    text = (tmp_path / "out.csv").read_text(encoding="utf-8")
    assert "caf\\xe9.png" in text and "plain.png" in text


def test_predict_json_reports_errors(capsys, photos, toy_model):
    status, out, err = _run(
        capsys,
        "predict",
        photos / "broken.jpg",
        photos / "coffee.jpg",
        "--model",
        toy_model,
        "--json",
        "--on-no-face",
        "skip",
    )
    assert status == 1 and err == ""
    doc = json.loads(out)
    assert doc["records"] == []
    files = [str(photos / "broken.jpg"), str(photos / "coffee.jpg")]
    assert [e["file"] for e in doc["errors"]] == files
    assert doc["summary"] == {**doc["summary"], "files": 2, "rows": 0, "failed": 2}


def test_on_no_face_whole_classifies_the_whole_photo(capsys, photos, toy_model, pipeline):
    status, out, _ = _run(
        capsys,
        "predict",
        photos / "coffee.jpg",
        "--model",
        toy_model,
        "--json",
        "--on-no-face",
        "whole",
    )
    assert status == 0
    (rec,) = json.loads(out)["records"]
    assert rec["face"] == "none (whole image)" and rec["box"] is None
    # The pipeline's own 'whole' policy on the same (JPEG) file.
    expected = _proba(pipeline, [str(photos / "coffee.jpg")])[0]
    np.testing.assert_allclose(list(rec["probabilities"].values()), expected, atol=6e-5)


def test_on_no_face_center_and_progress(capsys, photos, toy_model, pipeline):
    status, out, err = _run(
        capsys,
        "predict",
        photos / "coffee.jpg",
        photos / "astronaut.png",
        "--model",
        toy_model,
        "--csv",
        "-",
        "--on-no-face",
        "center",
        "--batch-size",
        "1",
        "--verbose",
    )
    assert status == 0
    rows = list(csv.DictReader(out.splitlines()))
    assert [(r["face"], r["row"]) for r in rows] == [("none (centre)", ""), ("detected", "65")]
    expected = _proba(pipeline, [str(photos / "coffee.jpg")], on_no_face="center")[0]
    np.testing.assert_allclose([float(rows[0][n]) for n in FER], expected, atol=6e-5)
    assert "[fersk predict] 1/2 files" in err and "[fersk predict] 2/2 files" in err


def test_skip_policy_reports_no_face_and_keeps_the_crop_rule(capsys, photos, toy_model):
    status, out, err = _run(
        capsys,
        "predict",
        photos / "crop.png",
        photos / "coffee.jpg",
        "--model",
        toy_model,
        "--json",
        "--on-no-face",
        "skip",
    )
    doc = json.loads(out)
    # The face crop is still taken whole (the model's precropped_max_side) ...
    assert [(r["file"], r["face"], r["box"]) for r in doc["records"]] == [
        (str(photos / "crop.png"), "crop", [0, 0, 48, 48])
    ]
    # ... and the photo without a face gets no label.
    assert status == 1 and [e["file"] for e in doc["errors"]] == [str(photos / "coffee.jpg")]
    assert "no face found" in doc["errors"][0]["error"]


def test_16_bit_images_keep_their_high_byte(capsys, tmp_path, photos, toy_model):
    wide = _face_crop().astype(np.uint16) * 257  # the same grey levels on 16 bits
    Image.fromarray(wide).save(tmp_path / "crop16.png")
    assert Image.open(tmp_path / "crop16.png").mode.startswith("I;16")
    status, out, _ = _run(
        capsys, "predict", tmp_path / "crop16.png", photos / "crop.png", "--model", toy_model,
        "--json",
    )
    assert status == 0
    wide_rec, narrow_rec = json.loads(out)["records"]
    # Pillow's convert("L") would clip at 255 and give a white image.
    assert wide_rec["probabilities"] == narrow_rec["probabilities"]


def test_predict_fer_faces(capsys, tmp_path, fer_small, toy_model, pipeline):
    images, labels, names = fer_small
    picked = images[::20]  # one face per class
    for i, face in enumerate(picked):
        Image.fromarray(face).save(tmp_path / f"face_{i}.png")
    status, out, _ = _run(capsys, "predict", tmp_path, "--model", toy_model, "--json")
    assert status == 0
    records = json.loads(out)["records"]
    assert len(records) == 7 and all(r["face"] == "crop" for r in records)
    got = np.array([list(r["probabilities"].values()) for r in records])
    np.testing.assert_allclose(got, _proba(pipeline, picked, detector=None), atol=6e-5)


def test_annotate_writes_labelled_copies(capsys, tmp_path, photos, toy_model):
    out_dir = tmp_path / "annotated"
    status, _, _ = _run(
        capsys,
        "predict",
        photos / "astronaut.png",
        photos / "crop.png",
        photos / "coffee.jpg",
        "--model",
        toy_model,
        "--annotate",
        out_dir,
    )
    assert status == 0  # coffee has no face: classified whole, annotated too
    written = sorted(p.name for p in out_dir.iterdir())
    assert written == ["astronaut.png", "coffee.png", "crop.png"]
    astro = np.asarray(Image.open(out_dir / "astronaut.png").convert("RGB"))
    assert astro.shape == (512, 512, 3) and tuple(astro[65, 200]) == (0, 255, 0)
    crop = np.asarray(Image.open(out_dir / "crop.png").convert("RGB"))
    assert min(crop.shape[:2]) >= 192  # small faces are enlarged for the label


def test_outputs_never_replace_inputs_or_files_fersk_did_not_write(
    capsys, tmp_path, photos, toy_model
):
    """``--annotate``/``--csv`` naming an input is a usage error (before, the
    photo was replaced by its 192x192 annotated copy); a file in DIR that is
    not fersk's annotated copy is kept and reported; fersk's own copies and
    the CSV are replaced whole (written aside, then renamed)."""
    import shutil

    face = tmp_path / "face.png"
    shutil.copy(photos / "crop.png", face)
    before = face.read_bytes()
    for option, value in (("--annotate", tmp_path), ("--csv", face)):
        status, _, err = _run(capsys, "predict", face, "--model", toy_model, option, value)
        assert status == 2 and "is an input of this command" in err
        assert face.read_bytes() == before
    out_dir = tmp_path / "annotated"
    out_dir.mkdir()
    (out_dir / "astronaut.png").write_bytes(b"the user's own file")
    status, _, err = _run(capsys, "predict", photos / "astronaut.png", face, "--model",
                          toy_model, "--annotate", out_dir)
    assert status == 1 and "is not an annotated copy fersk wrote" in err
    assert (out_dir / "astronaut.png").read_bytes() == b"the user's own file"
    first = (out_dir / "face.png").read_bytes()
    status, _, _ = _run(capsys, "predict", face, "--model", toy_model, "--annotate", out_dir)
    assert status == 0 and (out_dir / "face.png").read_bytes() == first  # its own: replaced
    rows = tmp_path / "rows.csv"
    rows.write_text("file,frame,time_s,face\nolder rows\n")
    status, _, _ = _run(capsys, "predict", face, "--model", toy_model, "--csv", rows)
    assert status == 0 and rows.read_text().startswith("file,")
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary file left


def test_interrupted_predict_leaves_no_half_csv(capsys, tmp_path, photos, toy_model,
                                                monkeypatch):
    """Ctrl-C (or a failure) in the middle of ``fersk predict --csv FILE``:
    FILE as it was, and no ``.FILE.*.tmp.csv`` left beside it."""
    import fersk.cli.predict as module

    rows = tmp_path / "rows.csv"
    rows.write_text("file,frame,time_s,face\nolder rows\n")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "_predict", interrupted)
    status, _, err = _run(capsys, "predict", photos / "crop.png", "--model", toy_model,
                          "--csv", rows)
    assert status == 130 and "interrupted" in err
    assert rows.read_text() == "file,frame,time_s,face\nolder rows\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL: POSIX")
@pytest.mark.parametrize("where, option", [("predict", "--csv"), ("_faces", "--annotate")])
def test_output_killed_at_its_write_leaves_the_old_file(tmp_path, photos, toy_model, where,
                                                       option):
    """``fersk predict`` killed (SIGKILL) at the rename of its CSV or of an
    annotated copy: the file there before is whole, nothing half-written."""
    out_dir = tmp_path / "annotated"
    out_dir.mkdir()
    target = tmp_path / "rows.csv" if option == "--csv" else out_dir / "crop.png"
    if option == "--csv":
        target.write_text("file,frame,time_s,face\nolder rows\n")
    else:
        from fersk.cli._faces import _annotate

        _annotate(np.zeros((48, 48), np.uint8), [], target)  # an earlier run's copy
    before = target.read_bytes()
    value = target if option == "--csv" else out_dir
    child = f"""
import os, signal
import fersk.cli.{where} as module
from fersk.cli import main
module.os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)  # killed before the rename
main(["predict", {str(photos / "crop.png")!r}, "--model", {str(toy_model)!r},
      {option!r}, {str(value)!r}])
"""
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=300)
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    assert target.read_bytes() == before


@pytest.mark.skipif(os.name == "nt", reason="SIGTERM to a child: POSIX")
def test_sigterm_ends_a_command_as_ctrl_c_does(tmp_path, photos, toy_model):
    """``kill`` (SIGTERM) ended fersk at once: the CSV's temporary file stayed
    beside it for good.  It now ends a command as Ctrl-C does (status 143)."""
    rows = tmp_path / "rows.csv"
    child = f"""
import time
import fersk.cli.predict as module
from fersk.cli import main

def slow(*args, **kwargs):
    print("ready", flush=True)
    time.sleep(120)

module._predict = slow
raise SystemExit(main(["predict", {str(photos / "crop.png")!r}, "--model", {str(toy_model)!r},
                       "--csv", {str(rows)!r}]))
"""
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert any(p.name.startswith(".rows.") for p in tmp_path.iterdir())
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err[-2000:]
    assert "terminated (SIGTERM)" in err
    assert list(tmp_path.iterdir()) == []


def test_no_face_policy_is_the_same_in_python_and_on_the_command_line(
    capsys, tmp_path, toy_model, pipeline
):
    """Issue #20 item 11: a photo without a face gets the same label from
    the pipeline (on_no_face='whole', with a NoFaceWarning), from
    predict_faces(on_no_face='whole') and from ``fersk predict``'s default,
    whose row says the label is the whole image's."""
    from fersk.face import NoFaceWarning, predict_faces

    grass = np.full((200, 200, 3), [60, 140, 60], np.uint8)
    Image.fromarray(grass).save(tmp_path / "grass.png")
    with pytest.warns(NoFaceWarning, match="indices 0"):
        label = pipeline.predict([str(tmp_path / "grass.png")])[0]
    with pytest.warns(NoFaceWarning):
        (rec,) = predict_faces(pipeline, [grass], on_no_face="whole")
    assert rec["kind"] == "none" and rec["box"] is None and rec["label"] == label
    status, out, _ = _run(capsys, "predict", tmp_path / "grass.png", "--model", toy_model,
                          "--json")
    doc = json.loads(out)
    assert status == 0 and doc["on_no_face"] == "whole"
    (row,) = doc["records"]
    assert row["face"] == "none (whole image)" and row["emotion"] == FER[int(label)]
    assert doc["summary"]["without_face"] == 1
    # The former default's name gives the same; skip gives no label.
    status, out, _ = _run(capsys, "predict", tmp_path / "grass.png", "--model", toy_model,
                          "--json", "--on-no-face", "auto")
    assert json.loads(out)["records"] == doc["records"]
    status, out, _ = _run(capsys, "predict", tmp_path / "grass.png", "--model", toy_model,
                          "--json", "--on-no-face", "skip")
    assert status == 1 and json.loads(out)["records"] == []


def test_csv_to_a_file_prints_only_a_summary(capsys, tmp_path, photos, toy_model):
    out_csv = tmp_path / "rows.csv"
    status, out, err = _run(capsys, "predict", photos / "astronaut.png", photos / "crop.png",
                            "--model", toy_model, "--csv", out_csv)
    assert status == 0 and out == ""  # no table: the rows are in the file
    assert f"2 rows written to {out_csv} from 2 files" in err
    with open(out_csv, newline="") as f:
        assert len(list(csv.DictReader(f))) == 2


def test_csv_never_replaces_a_file_fersk_did_not_write(capsys, tmp_path, photos, toy_model):
    """--csv replaced any file of that name (a user's spreadsheet) while
    --annotate, demo --out and evaluate --out refused to: now an earlier
    fersk CSV (its header) or an empty file is replaced, another refused
    before the work."""
    sheet = tmp_path / "results.csv"
    sheet.write_text("name,grade\nada,1\n")
    status, _, err = _run(capsys, "predict", photos / "crop.png", "--model", toy_model,
                          "--csv", sheet)
    assert status == 2 and "exists and fersk did not write it" in err
    assert sheet.read_text() == "name,grade\nada,1\n"
    sheet.write_text("")
    for _ in range(2):  # empty, then fersk's own
        status, _, _ = _run(capsys, "predict", photos / "crop.png", "--model", toy_model,
                            "--csv", sheet)
        assert status == 0 and sheet.read_text().startswith("file,frame,time_s,face")


def test_csv_through_a_link_replaces_its_file_and_a_pipe_is_refused(capsys, tmp_path, photos,
                                                                     toy_model):
    """--csv latest.csv -> results/run.csv: the link stays and its file gets
    the rows (the rename replaced the link with a new file and left the
    linked one old); a named pipe is a usage error, not replaced by a file."""
    results = tmp_path / "results"
    results.mkdir()
    (results / "run.csv").write_text("file,frame,time_s,face\nold results\n")
    link = tmp_path / "latest.csv"
    link.symlink_to(results / "run.csv")
    status, _, _ = _run(capsys, "predict", photos / "crop.png", "--model", toy_model,
                        "--csv", link)
    assert status == 0 and link.is_symlink()
    assert (results / "run.csv").read_text().startswith("file,")
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary file left
    if hasattr(os, "mkfifo"):
        pipe = tmp_path / "pipe.csv"
        os.mkfifo(pipe)
        status, _, err = _run(capsys, "predict", photos / "crop.png", "--model", toy_model,
                              "--csv", pipe)
        assert status == 2 and "is not a regular file" in err
        assert pipe.is_fifo()


def test_a_rerun_does_not_classify_its_own_annotated_copies(capsys, tmp_path, photos,
                                                            toy_model):
    """fersk predict photos --annotate photos/ann, twice: the second run's walk
    skips the copies (it read photos/ann/photos/crop.png as a new photo and
    wrote photos/ann/photos/ann/...)."""
    import shutil

    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(photos / "crop.png", folder / "crop.png")
    for _ in range(2):
        status, _, _ = _run(capsys, "predict", folder, "--model", toy_model,
                            "--annotate", folder / "ann", "--csv", tmp_path / "rows.csv")
        assert status == 0
        with open(tmp_path / "rows.csv", newline="") as f:
            assert [r["file"] for r in csv.DictReader(f)] == [str(folder / "crop.png")]
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png")) == [
        "ann/photos/crop.png", "crop.png"]



def test_photos_of_the_users_in_the_annotate_folder_are_classified(capsys, tmp_path, photos,
                                                                     toy_model):
    """The walk skipped the whole --annotate folder: a photo of the user's
    kept there (photos/ann/mine.png) was neither classified nor named, and
    the summary said every file was read.  Only fersk's own annotated
    copies (marked) are skipped now."""
    import shutil

    folder = tmp_path / "photos"
    (folder / "ann").mkdir(parents=True)
    shutil.copy(photos / "crop.png", folder / "crop.png")
    shutil.copy(photos / "crop.png", folder / "ann" / "mine.png")
    for _ in range(2):
        status, _, _ = _run(capsys, "predict", folder, "--model", toy_model,
                            "--annotate", folder / "ann", "--csv", tmp_path / "rows.csv")
        assert status == 0
        with open(tmp_path / "rows.csv", newline="") as f:
            assert sorted(r["file"] for r in csv.DictReader(f)) == [
                str(folder / "ann" / "mine.png"), str(folder / "crop.png")]
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png")) == [
        "ann/mine.png", "ann/photos/ann/mine.png", "ann/photos/crop.png", "crop.png"]


def test_a_subfolder_that_cannot_be_read_is_a_problem_not_the_end_of_the_run(
        capsys, tmp_path, photos, toy_model, monkeypatch):
    """One subfolder without read permission ended fersk predict with a
    PermissionError traceback before any photo was classified.  It is now a
    problem row naming the folder; the other photos are classified."""
    import os
    import shutil

    folder = tmp_path / "photos"
    (folder / "locked").mkdir(parents=True)
    shutil.copy(photos / "crop.png", folder / "crop.png")
    shutil.copy(photos / "crop.png", folder / "locked" / "b.png")
    scandir = os.scandir

    def no_permission(path="."):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", no_permission)
    status, out, err = _run(capsys, "predict", folder, "--model", toy_model, "--json")
    assert status == 1
    body = json.loads(out)
    assert [r["file"] for r in body["records"]] == [str(folder / "crop.png")]
    assert body["errors"] == [{"file": f"{folder / 'locked'}/",
                               "error": "folder that cannot be read (Permission denied)"}]

def test_an_output_file_naming_a_folder_is_refused_before_the_work(capsys, tmp_path, photos,
                                                                   monkeypatch):
    """--csv DIR (predict), --json/--plot DIR (live): a usage error before any
    model is loaded, not a traceback after every image was classified."""
    from fersk.cli import live, predict

    folder = tmp_path / "outdir"
    folder.mkdir()
    loaded = []
    for module in (live, predict):
        monkeypatch.setattr(module, "_load_model", lambda *a: loaded.append(a))
    status, _, err = _run(capsys, "predict", photos / "astronaut.png", "--csv", folder)
    assert status == 2 and f"--csv: {str(folder)!r} is a folder" in err
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    for option in ("--json", "--plot"):
        status, _, err = _run(capsys, "live", "--video", video, option, folder, "--window", "no")
        assert status == 2 and f"{option}: {str(folder)!r} is a folder" in err
    assert loaded == [] and list(folder.iterdir()) == []


def test_table_columns_line_up_with_fractional_boxes(capsys):
    from argparse import Namespace

    from fersk.cli.predict import _Reporter

    class Model:
        name, class_names = "toy", FER

    reporter = _Reporter(Namespace(json=False, csv=None, faces="largest"), Model(), 12)
    proba = dict(zip(FER, np.full(7, 1 / 7)))
    for face, box in [("detected", [64.37, 182.5, 107.25, 83.0]), ("crop", [0, 0, 48, 48]),
                      ("none (whole image)", None), ("detected", [1234.5, 9.75, 99, 99])]:
        reporter.record({"file": "a.png", "face": face, "box": box, "emotion": "happy",
                         "probabilities": proba})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5
    # Every left-aligned column starts where its header does; boxes are integers.
    for column in ("face", "emotion"):
        start = lines[0].index(column)
        for line in lines[1:]:
            assert line[start - 2 : start] == "  " and line[start] != " ", line
    emotion = lines[0].index("emotion")
    assert {line[emotion:].split()[0] for line in lines[1:]} == {"happy"}
    box = lines[0].index("box")
    assert lines[1][box:emotion].split() == ["64", "182", "107", "83"]
    assert lines[4][box:emotion].split() == ["1234", "10", "99", "99"]
    assert {len(line) for line in lines[1:]} == {len(lines[1])}


def test_labels_are_drawn_inside_the_image(tmp_path):
    from fersk.cli._faces import _annotate, _place_label

    # Above the box where it fits; else inside; never past an edge.
    assert _place_label((50, 12), (100, 30, 40, 40), (200, 200), 2) == (30, 86)
    assert _place_label((50, 12), (5, 30, 40, 40), (200, 200), 2) == (30, 7)
    assert _place_label((50, 12), (100, 180, 20, 20), (200, 200), 2) == (150, 86)
    assert _place_label((50, 12), None, (200, 200), 2) == (0, 0)
    assert _place_label((300, 12), (0, 0, 10, 10), (200, 200), 2) == (0, 2)
    # A face in the top-right corner: its whole label is in the picture.
    image = np.full((200, 200, 3), 128, np.uint8)
    _annotate(image, [((0, 170, 30, 30), "surprise 0.99")], tmp_path / "a.png")
    drawn = np.asarray(Image.open(tmp_path / "a.png").convert("RGB"))
    ground = (drawn == (0, 255, 0)).all(axis=-1)
    rows, cols = np.nonzero(ground[:, :170])  # the label reaches left of the box
    assert cols.min() > 0 and ground[rows.min():rows.max() + 1, 199].all()
    text = (drawn.max(axis=-1) < 60)
    assert text.any() and not text[:, -1].any()  # black text, not cut at the edge


# ------------------------------------------------------------------- video


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """An animated GIF (imageio's Pillow writer): face, mirrored face, no face."""
    import imageio.v3 as iio

    face = data.astronaut()[:256, 100:356]
    frames = np.stack([face, face[:, ::-1], data.coffee()[:256, :256], face])
    path = tmp_path_factory.mktemp("video") / "clip.gif"
    iio.imwrite(path, frames, duration=[100, 200, 100, 100], loop=0)
    return path


def test_video_csv_time_series(capsys, tmp_path, clip, toy_model, pipeline):
    import imageio.v3 as iio

    out_csv = tmp_path / "clip.csv"
    status, _, _ = _run(capsys, "predict", clip, "--model", toy_model, "--csv", out_csv)
    assert status == 0  # frames without a face are rows, not failures
    with open(out_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "file", "frame", "time_s", "face", "row", "col", "height", "width", "emotion", *FER
    ]
    assert [r["frame"] for r in rows] == ["0", "1", "2", "3"]
    assert [float(r["time_s"]) for r in rows] == [0.0, 0.1, 0.3, 0.4]  # GIF frame durations
    # The frame without a face is classified whole, as the pipeline does, and marked.
    assert [r["face"] for r in rows] == ["detected", "detected", "none (whole image)", "detected"]
    frames = iio.imread(clip)
    expected = _proba(pipeline, [frames[0], frames[2]])
    np.testing.assert_allclose([float(rows[0][n]) for n in FER], expected[0], atol=6e-5)
    assert rows[0]["emotion"] == FER[expected[0].argmax()]
    assert rows[2]["row"] == "" and rows[2]["emotion"] == FER[expected[1].argmax()]


def test_a_multi_page_tiff_gives_a_row_per_page(capsys, tmp_path, toy_model, pipeline):
    """Only a multi-page TIFF's first page was classified, the others left
    without a word: each page is now a frame (no time), read by Pillow as
    a still image is (a 16-bit page by its high bytes)."""
    face = data.astronaut()[:256, 100:356]
    deep = (data.camera()[:200, :300].astype(np.uint16) * 257)  # 16-bit grey
    path = tmp_path / "pages.tif"
    Image.fromarray(face).save(path, save_all=True,
                               append_images=[Image.fromarray(deep), Image.fromarray(face[:, ::-1])])
    status, out, _ = _run(capsys, "predict", path, "--model", toy_model, "--json")
    doc = json.loads(out)
    records = doc["records"]
    assert status == 0 and not doc["errors"]
    assert [r["frame"] for r in records] == [0, 1, 2]
    assert all(r["time_s"] is None for r in records)
    expected = _proba(pipeline, [face, (deep >> 8).astype(np.uint8), face[:, ::-1]])
    for rec, p in zip(records, expected):
        assert rec["emotion"] == FER[p.argmax()]


def test_video_frames_get_every_face_and_alpha_frames_are_read(capsys, tmp_path, toy_model):
    """--faces all reaches video frames (each frame gave its largest face
    only), and an animated PNG of grey+alpha frames is read as its still
    images are (its (h, w, 2) frames stopped the whole run at the cropper)."""
    import imageio.v3 as iio

    face = data.astronaut()[:256, 100:356]
    two = np.concatenate([face, face[:, ::-1]], axis=1)
    gif = tmp_path / "two.gif"
    other = two.copy()
    other[:8, :8] = 0  # frames must differ: Pillow merges equal ones
    iio.imwrite(gif, np.stack([two, other]), duration=100, loop=0)
    still = tmp_path / "frame0.png"
    Image.fromarray(iio.imread(gif)[0]).save(still)
    status, out, _ = _run(capsys, "predict", still, gif, "--model", toy_model, "--json",
                          "--faces", "all")
    records = json.loads(out)["records"]
    n_still = sum(r["file"] == str(still) for r in records)
    frame0 = [r for r in records if r["file"] == str(gif) and r["frame"] == 0]
    assert status == 0 and n_still >= 2 and len(frame0) == n_still
    assert sorted(r["face_index"] for r in frame0) == list(range(n_still))
    la = tmp_path / "grey_alpha.png"
    grey = Image.fromarray(face).convert("LA")
    grey.save(la, save_all=True, append_images=[grey.transpose(Image.FLIP_LEFT_RIGHT)],
              duration=100)
    assert iio.imread(la).shape[-1] == 2
    status, out, _ = _run(capsys, "predict", la, still, "--model", toy_model, "--json")
    doc = json.loads(out)
    assert status == 0 and not doc["errors"]
    assert [r["frame"] for r in doc["records"] if r["file"] == str(la)] == [0, 1]


def test_a_frame_the_cropper_refuses_is_a_problem_not_the_end(capsys, clip, toy_model,
                                                              monkeypatch):
    """One frame refused: its row is a problem naming the frame, the other
    frames and files are still classified (the error used to stop the run)."""
    import imageio.v3 as iio

    import fersk.cli.predict as module

    bad = iio.imread(clip)[2]
    original = module._predict

    def refusing(model, images, *args, **kwargs):
        if any(np.array_equal(image, bad) for image in images):
            raise ValueError("X[0] cannot be read as a face")
        return original(model, images, *args, **kwargs)

    monkeypatch.setattr(module, "_predict", refusing)
    status, out, _ = _run(capsys, "predict", clip, "--model", toy_model, "--json")
    doc = json.loads(out)
    assert status == 1
    assert [r["frame"] for r in doc["records"]] == [0, 1, 3]
    assert [e["file"] for e in doc["errors"]] == [f"{clip}#2"]


def test_mp4_video_time_series(capsys, tmp_path, toy_model, pipeline):
    """An H.264 mp4 (the usual camera file), read through imageio's pyav plugin."""
    pytest.importorskip("av", reason="mp4 decoding needs the video extra (av)")
    import imageio.v3 as iio

    face = data.astronaut()[:256, 100:356]
    frames = np.stack([face, face[:, ::-1], data.coffee()[:256, :256], face])
    video = tmp_path / "clip.mp4"
    iio.imwrite(video, frames, plugin="pyav", codec="libx264", fps=10)
    out_csv = tmp_path / "clip.csv"
    status, _, _ = _run(capsys, "predict", video, "--model", toy_model, "--csv", out_csv)
    assert status == 0
    with open(out_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["frame"] for r in rows] == ["0", "1", "2", "3"]
    assert [float(r["time_s"]) for r in rows] == [0.0, 0.1, 0.2, 0.3]  # from the 10 fps
    assert [r["face"] for r in rows] == ["detected", "detected", "none (whole image)", "detected"]
    decoded = iio.imread(video, plugin="pyav")  # lossy: compare with what was decoded
    expected = _proba(pipeline, [decoded[3]])[0]
    np.testing.assert_allclose([float(rows[3][n]) for n in FER], expected, atol=6e-5)


def test_video_every_n_frames(capsys, clip, toy_model):
    status, out, _ = _run(capsys, "predict", clip, "--model", toy_model, "--json", "--every", "2",
                          "--on-no-face", "skip")
    assert status == 0  # frames without a face are rows, not failures
    records = json.loads(out)["records"]
    assert [(r["frame"], r["time_s"]) for r in records] == [(0, 0.0), (2, 0.3)]
    assert records[1]["face"] == "none" and records[1]["emotion"] is None


def test_unreadable_video_is_a_file_error(capsys, tmp_path, photos, toy_model):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    status, out, _ = _run(
        capsys, "predict", bad, photos / "astronaut.png", "--model", toy_model, "--json"
    )
    assert status == 1
    doc = json.loads(out)
    assert [r["file"] for r in doc["records"]] == [str(photos / "astronaut.png")]
    (error,) = doc["errors"]
    assert error["file"] == str(bad) and "cannot read this video" in error["error"]
    if not _video_backends():
        assert "pip install av" in error["error"]


# ------------------------------------------------------- train and evaluate


@pytest.mark.slow
def test_train_writes_a_loadable_model(capsys, tmp_path, fer2013_root):
    from fersk import pretrained

    out = tmp_path / "model"
    argv = [
        "train", "--data", fer2013_root, "--model", "mtcnn_cnn", "--out", out,
        "--width", "0.125", "--dense-units", "8", "--epochs", "1",
        "--n-train", "60", "--n-test", "70", "--seed", "3",
    ]
    status, stdout, _ = _run(capsys, *argv)
    assert status == 0, stdout
    assert "60 Training / 70 PublicTest images" in stdout
    assert "val_accuracy" in stdout  # Keras's line for the epoch
    assert f"saved {out}" in stdout
    metrics = pretrained.info(out)["metrics"]
    assert metrics["n_train"] == 60 and metrics["n_publictest"] == 70
    assert metrics["architecture"] == "mtcnn_cnn" and metrics["epochs_run"] == 1
    assert metrics["architecture_params"] == {"width": 0.125, "dense_units": 8}
    assert {"train_seconds", "hardware", "publictest_accuracy", "command"} <= set(metrics)
    # Named for the detector it was measured with (not the model's MTCNN).
    assert "publictest_accuracy_skimage_detection" in metrics
    assert "publictest_accuracy_with_detection" not in metrics
    model = pretrained.load(out)
    assert model.predict_proba([data.astronaut()]).shape == (1, 7)
    # The folder is not overwritten by accident.
    status, _, err = _run(capsys, *argv)
    assert status == 2 and "--overwrite" in err


@pytest.mark.slow
def test_train_mapped_lbp_then_fine_tune_then_ensemble(capsys, tmp_path, fer2013_root):
    """The recipe of the bundled ensemble, in miniature: a mapped-LBP
    network, a fine-tuning phase (--init) and the two joined as members."""
    import runpy

    from sklearn.pipeline import Pipeline

    from fersk import CNNEnsembleClassifier, MDSMappedLBP, pretrained
    from fersk.datasets import load_fer2013

    tiny = ["--width", "0.125", "--dense-units", "8", "--n-train", "60", "--n-test", "70"]
    lbp = tmp_path / "lbp"
    status, stdout, _ = _run(
        capsys, "train", "--data", fer2013_root, "--model", "mtcnn_cnn", "--out", lbp,
        "--representation", "mapped_lbp", "--schedule", "cosine", "--test-time-flip",
        "--epochs", "2", *tiny,
    )
    assert status == 0, stdout
    meta = pretrained.info(lbp)
    assert [cls for _, cls in meta["steps"]] == [
        "fersk.face.FaceCropper", "fersk.mapped_lbp.MDSMappedLBP", "fersk.classifiers.CNNClassifier",
    ]
    assert "mapped-LBP images" in meta["description"]
    metrics = meta["metrics"]
    assert metrics["representation"] == "mapped_lbp" and metrics["test_time_flip"] is True
    assert 0 <= metrics["publictest_accuracy_without_flip"] <= 1
    net = pretrained.load(lbp)[-1]
    assert net.test_time_flip and net.learning_rate_schedule == "cosine" and not net.warm_start

    # Fine-tuning keeps the architecture and representation of the model.
    tuned = tmp_path / "tuned"
    status, stdout, _ = _run(
        capsys, "train", "--data", fer2013_root, "--init", lbp, "--out", tuned,
        "--learning-rate", "1e-4", "--epochs", "1", "--n-train", "60", "--n-test", "70",
    )
    assert status == 0, stdout
    meta = pretrained.info(tuned)
    assert meta["steps"] == pretrained.info(lbp)["steps"]
    assert meta["metrics"]["init_from"]["model"] == str(lbp)
    assert meta["metrics"]["architecture_params"] == {"width": 0.125, "dense_units": 8}
    assert "Fine-tuned" in meta["description"] and meta["metrics"]["epochs_run"] == 1
    before, after = pretrained.load(lbp)[-1], pretrained.load(tuned)[-1]
    assert after.learning_rate == 1e-4 and not after.warm_start
    # same normaliser (kept), other weights (trained further)
    assert before.model_.get_layer("standardize").get_config() == (
        after.model_.get_layer("standardize").get_config()
    )
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(before.model_.get_weights(), after.model_.get_weights())
    )

    # A network trained elsewhere: its MDS embedding (saved with the model)
    # need not be the one a refit would give here -- mirrored, say.  The
    # ensemble must keep the member's own representation, not refit it.
    spec_file = lbp / "pipeline.json"
    spec = json.loads(spec_file.read_text())
    fitted = spec["steps"][1]["fitted"]

    def mirrored(value):
        if isinstance(value, list):
            return [mirrored(v) for v in value]
        return -value if isinstance(value, float) else value

    fitted["embedding_"]["__ndarray__"] = mirrored(fitted["embedding_"]["__ndarray__"])
    spec_file.write_text(json.dumps(spec))

    # Both models joined, neither retrained.
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "train_pretrained.py"
    runpy.run_path(str(script), run_name="recipe")["main"]([
        "--data", str(fer2013_root), "--name", "ens", "--out", str(tmp_path),
        "--ensemble", str(lbp), str(tuned), "--weights", "1", "3", "--test-time-flip",
    ])
    ens_meta = pretrained.info(tmp_path / "ens")
    assert ens_meta["steps"] == [
        ("facecropper", "fersk.face.FaceCropper"),
        ("cnnensembleclassifier", "fersk.ensemble.CNNEnsembleClassifier"),
    ]
    assert list(ens_meta["metrics"]["members"]) == ["lbp", "tuned"]
    assert "lbp (mapped_lbp), tuned (mapped_lbp)" in ens_meta["description"]
    ens = pretrained.load(tmp_path / "ens")
    assert isinstance(ens[-1], CNNEnsembleClassifier)
    assert isinstance(ens[-1].named_estimators_["lbp"][0], MDSMappedLBP)
    np.testing.assert_array_equal(
        ens[-1].named_estimators_["lbp"][0].embedding_, pretrained.load(lbp)[1].embedding_
    )
    fer = load_fer2013(fer2013_root, usage="PublicTest")
    X = fer.images[:30]
    assert ens_meta["metrics"]["test_time_flip"] is True
    members = [
        Pipeline(pretrained.load(m).steps[1:]).set_params(network__test_time_flip=True)
        for m in (lbp, tuned)
    ]
    np.testing.assert_allclose(
        ens[1:].predict_proba(X),
        (members[0].predict_proba(X) + 3 * members[1].predict_proba(X)) / 4,
        rtol=1e-6,
    )


@pytest.mark.slow
def test_train_recipe_params_interrupted_then_resumed(capsys, tmp_path, fer2013_root,
                                                      monkeypatch):
    from fersk import pretrained
    from fersk._checkpoint import SaveEachEpoch

    out = tmp_path / "vgg"
    argv = [
        "train", "--data", fer2013_root, "--model", "vgg_fer", "--out", out, "--width", "0.125",
        "--dense-units", "8", "--epochs", "2", "--batch-size", "16", "--n-train", "60",
        "--n-test", "70", "--schedule", "warmup_cosine", "--param", "optimizer=sgd",
        "--param", "crop_size=40", "--param", "label_smoothing=0.1",
        "--param", "test_time_crops=five", "--param", 'augment={"zoom": 0}', "--test-time-flip",
    ]
    original = SaveEachEpoch.on_epoch_end

    def ctrl_c_after_first_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        raise KeyboardInterrupt

    def slow_epoch(self, epoch, logs=None):  # epochs of a known length
        import time
        time.sleep(1.5)
        original(self, epoch, logs)

    def ctrl_c_after_first_epoch(self, epoch, logs=None):
        slow_epoch(self, epoch, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(SaveEachEpoch, "on_epoch_end", ctrl_c_after_first_epoch)
    status, _, err = _run(capsys, *argv)
    assert status == 130 and "--resume" in err
    assert any((out / "training_state").iterdir())
    monkeypatch.setattr(SaveEachEpoch, "on_epoch_end", original)
    status, _, err = _run(capsys, *argv)  # without --resume: refused, state kept
    assert status == 2 and "interrupted run" in err
    # --resume with other options has no state to resume: refused, not a new run
    # from epoch 1 beside the interrupted one's state.
    kept = sorted(p.name for p in (out / "training_state").iterdir())
    status, stdout, err = _run(capsys, *[a if a != "2" else "3" for a in argv], "--resume")  # --epochs 3
    assert status == 2 and "other options or data" in err and "Epoch 1/" not in stdout
    assert sorted(p.name for p in (out / "training_state").iterdir()) == kept
    monkeypatch.setattr(SaveEachEpoch, "on_epoch_end", slow_epoch)
    status, stdout, _ = _run(capsys, *argv, "--resume")
    assert status == 0, stdout
    assert "Epoch 2/2" in stdout and "Epoch 1/2" not in stdout
    assert not (out / "training_state").exists()
    # The card: both processes' training time (this one's alone was one epoch),
    # and a command that a shell reads back into these arguments, --resume left out.
    import shlex

    metrics = pretrained.info(out)["metrics"]
    assert metrics["train_seconds"] >= 3.0
    assert shlex.split(metrics["command"]) == ["fersk", *map(str, argv)]
    net = pretrained.load(out)[-1]
    assert (net.crop_size, net.optimizer, net.label_smoothing) == (40, "sgd", 0.1)
    assert net.test_time_crops == "five" and net.test_time_flip and net.checkpoint_dir is None
    status, _, err = _run(capsys, *argv, "--param", "no_such=1", "--overwrite")
    assert status == 2 and "no_such is not a CNNClassifier parameter" in err
    # Accepted and never used (PublicTest is the validation data): refused; a bad
    # value is a usage error before the data is read, not a traceback after.
    for param, message in (("validation_fraction=0.5", "validation_fraction is not"),
                           ("crop_size=abc", "'crop_size' parameter of CNNClassifier"),
                           ("class_weight=bogus", "'class_weight' parameter of CNNClassifier")):
        status, _, err = _run(capsys, *argv, "--param", param, "--overwrite")
        assert status == 2 and message in err and "Traceback" not in err, err
    status, _, err = _run(capsys, *argv, "--resume", "--overwrite")
    assert status == 2 and "holds no interrupted run" in err


def test_train_overwrite_refused_keeps_the_interrupted_run(capsys, tmp_path):
    """--overwrite deleted an interrupted run's saved epochs, then refused the
    folder (a file of the user's in it): nothing trained and the run no
    longer resumable.  Every refusal now comes before anything is deleted."""
    out = tmp_path / "run"
    saved = out / "training_state" / "fersk-state-0123abcd"
    saved.mkdir(parents=True)
    (saved / "epoch-3-0123456789abcdef.weights.h5").write_bytes(b"weights")
    (saved / "epoch-3.json").write_text('{"epoch": 3}')
    (out / "notes.txt").write_text("my notes")
    data = tmp_path / "fer2013.csv"
    data.write_text("emotion,pixels,Usage\n")
    status, _, err = _run(capsys, "train", "--data", data, "--model", "kaggle_cnn", "--out", out,
                          "--overwrite")
    assert status == 2 and "not a fersk model folder" in err
    assert sorted(p.name for p in saved.iterdir()) == [
        "epoch-3-0123456789abcdef.weights.h5", "epoch-3.json"]
    assert (out / "notes.txt").read_text() == "my notes"


def test_train_overwrite_with_unreadable_data_keeps_the_interrupted_run(capsys, tmp_path):
    """--overwrite discarded an interrupted run's saved epochs before the
    data was read: a data path with no faces then failed the command, which
    had trained nothing and left nothing to resume.  The epochs are now
    discarded only when the new fit starts."""
    out = tmp_path / "run"
    saved = out / "training_state" / "fersk-state-0123abcd"
    saved.mkdir(parents=True)
    (saved / "epoch-3-0123456789abcdef.weights.h5").write_bytes(b"weights")
    (saved / "epoch-3.json").write_text('{"epoch": 3}')
    data = tmp_path / "fer2013.csv"
    data.write_text("emotion,pixels,Usage\n")
    status, _, err = _run(capsys, "train", "--data", data, "--model", "kaggle_cnn", "--out", out,
                          "--overwrite")
    assert status == 1, err
    assert sorted(p.name for p in saved.iterdir()) == [
        "epoch-3-0123456789abcdef.weights.h5", "epoch-3.json"]


def test_train_stopped_before_its_first_epoch_ended_runs_again(capsys, tmp_path, fer2013_root,
                                                               monkeypatch):
    """Ctrl-C in epoch 1 left an empty state folder: the same command was
    refused ("holds an interrupted run") and --resume, which the message
    proposed, blamed "other options".  Now nothing is left to resume, the
    message says so, and the same command trains."""
    from fersk._checkpoint import SaveEachEpoch

    out = tmp_path / "net"
    argv = ["train", "--data", fer2013_root, "--model", "vgg_fer", "--out", out, "--width",
            "0.0625", "--dense-units", "8", "--epochs", "1", "--batch-size", "16",
            "--n-train", "40", "--n-test", "20"]

    def ctrl_c_in_the_first_epoch(self, epoch, logs=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(SaveEachEpoch, "on_epoch_end", ctrl_c_in_the_first_epoch)
    status, _, err = _run(capsys, *argv)
    assert status == 130 and "nothing to resume" in err and "--resume" not in err
    monkeypatch.undo()
    status, _, err = _run(capsys, *argv, "--resume")
    assert status == 2 and "holds no interrupted run" in err
    status, stdout, err = _run(capsys, *argv)
    assert status == 0, err
    assert not (out / "training_state").exists()


@pytest.mark.slow
def test_narrow_then_distil(capsys, tmp_path, fer2013_root):
    """A network pruned to a narrower width, fine-tuned against a teacher."""
    import runpy

    from fersk import pretrained
    from fersk.datasets import load_fer2013

    wide = tmp_path / "wide"
    status, stdout, _ = _run(
        capsys, "train", "--data", fer2013_root, "--model", "vgg_fer", "--out", wide,
        "--width", "0.25", "--dense-units", "8", "--epochs", "1", "--batch-size", "16",
        "--n-train", "60", "--n-test", "70", "--param", "crop_size=40",
    )
    assert status == 0, stdout
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "narrow_vgg.py"
    narrow = runpy.run_path(str(script), run_name="narrow")["main"]
    # Keeping every channel is the same network.
    narrow([str(wide), "--width", "0.25", "--data", str(fer2013_root), "--n-test", "70",
            "--out", str(tmp_path / "same")])
    X = load_fer2013(fer2013_root, usage="PublicTest").images[:20]
    np.testing.assert_allclose(
        pretrained.load(tmp_path / "same").predict_proba(X),
        pretrained.load(wide).predict_proba(X), rtol=1e-5, atol=1e-6,
    )
    narrow([str(wide), "--width", "0.125", "--data", str(fer2013_root), "--n-test", "70",
            "--out", str(tmp_path / "pruned")])
    pruned = pretrained.load(tmp_path / "pruned")
    convs = [l for l in pruned[-1].model_.layers[-1].layers if type(l).__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [4, 4, 8, 8, 16, 16, 32, 32]
    assert pruned[-1].architecture_params["width"] == 0.125
    assert pruned.predict_proba(X).shape == (20, 7)
    # A strided first convolution at the same width: every weight carried over.
    narrow([str(wide), "--width", "0.25", "--stem-stride", "2", "--data", str(fer2013_root),
            "--n-test", "70", "--out", str(tmp_path / "strided")])
    strided, before = pretrained.load(tmp_path / "strided"), pretrained.load(wide)
    assert strided[-1].architecture_params["stem_stride"] == 2
    inner = strided[-1].model_.layers[-1]
    assert inner.get_layer("conv1_1").strides == (2, 2)
    for a, b in zip(inner.weights, before[-1].model_.layers[-1].weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert strided.predict_proba(X).shape == (20, 7)
    # Or its second: the first still at full size.
    narrow([str(wide), "--width", "0.25", "--stem-stride", "2", "--stem-stride-conv", "2",
            "--data", str(fer2013_root), "--n-test", "70", "--out", str(tmp_path / "second")])
    second = pretrained.load(tmp_path / "second")
    assert second[-1].architecture_params["stem_stride_conv"] == 2
    inner = second[-1].model_.layers[-1]
    assert (inner.get_layer("conv1_1").strides, inner.get_layer("conv1_2").strides) == ((1, 1), (2, 2))
    for a, b in zip(inner.weights, before[-1].model_.layers[-1].weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # Fine-tuned against the wide network's probabilities.
    status, stdout, _ = _run(
        capsys, "train", "--data", fer2013_root, "--init", tmp_path / "pruned",
        "--out", tmp_path / "distilled", "--teacher", wide, "--teacher-weight", "0.7",
        "--epochs", "1", "--batch-size", "16", "--n-train", "60", "--n-test", "70",
    )
    assert status == 0, stdout
    metrics = pretrained.info(tmp_path / "distilled")["metrics"]
    assert metrics["teacher"]["model"] == str(wide) and metrics["teacher"]["weight"] == 0.7
    assert pretrained.load(tmp_path / "distilled")[-1].architecture_params["width"] == 0.125


@pytest.mark.slow
def test_recipe_ablation_runs_each_variant_once(capsys, tmp_path, fer2013_root):
    import runpy

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "ablate_recipe.py"
    ablate = runpy.run_path(str(script), run_name="ablate")["main"]
    argv = ["--data", str(fer2013_root), "--width", "0.125", "--epochs", "1", "--n-train",
            "60", "--n-test", "70", "--variants", "0,2", "--work", str(tmp_path)]
    ablate(argv)
    done = sorted(p.name for p in tmp_path.glob("*.json"))
    assert done == ["full_recipe.json", "no_label_smoothing.json"]
    first = capsys.readouterr().out
    assert "| no label smoothing |" in first and "| full recipe |" in first
    ablate(argv)  # both done: read back, not trained again
    again = capsys.readouterr().out
    assert "Epoch" not in again and again.splitlines()[-2:] == first.splitlines()[-2:]


_BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _teacher_probabilities(monkeypatch, loaded=None):
    """train_in_the_wild's teacher_probabilities, its teachers loaded on Keras
    (no ONNX export in the tests); their names appended to ``loaded``."""
    import runpy

    from fersk import pretrained

    monkeypatch.syspath_prepend(str(_BENCHMARKS))
    real_load = pretrained.load

    def load(name, backend="keras"):
        if loaded is not None:
            loaded.append(name)
        return real_load(name)

    monkeypatch.setattr(pretrained, "load", load)
    return runpy.run_path(
        str(_BENCHMARKS / "train_in_the_wild.py"), run_name="wild")["teacher_probabilities"]


def test_train_in_the_wild_keeps_each_teacher(tmp_path, monkeypatch, capsys):
    """benchmarks/train_in_the_wild.py: each teacher's probabilities are kept
    on disk when computed and read back by a rerun (a killed distillation
    does not compute the finished teachers again); other faces, computed anew."""
    from fersk import pretrained

    real_load, loaded = pretrained.load, []
    teacher_probabilities = _teacher_probabilities(monkeypatch, loaded)
    X = np.random.RandomState(0).randint(0, 256, size=(6, 48, 48)).astype(np.uint8)
    y = np.arange(6)
    path = tmp_path / "teacher.npz"
    first = teacher_probabilities(["fer2013_cnn", "wild_vgg_small"], X, y, path)
    assert loaded == ["fer2013_cnn", "wild_vgg_small"]
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert len(kept) == 2 and all(k.startswith("teacher-") for k in kept), kept
    expected = (real_load("fer2013_cnn").predict_proba(X)
                + real_load("wild_vgg_small").predict_proba(X)) / 2
    np.testing.assert_allclose(first, expected, rtol=1e-6, atol=1e-7)

    (tmp_path / kept[1]).unlink()  # as if killed during the second teacher
    np.testing.assert_array_equal(
        teacher_probabilities(["fer2013_cnn", "wild_vgg_small"], X, y, path), first)
    assert loaded[2:] == ["wild_vgg_small"]
    teacher_probabilities(["fer2013_cnn"], X[::-1], y, path)  # other faces
    assert loaded[3:] == ["fer2013_cnn"]
    assert "running mean's accuracy" in capsys.readouterr().out

    # A teacher re-saved under the same name (other views here; other weights
    # alike) is asked again, never read from the file of the model it replaced.
    folder = tmp_path / "teacher_model"
    model = real_load("fer2013_cnn")
    pretrained.save(model, folder)
    before = teacher_probabilities([str(folder)], X, y, path)
    model.set_params(network__test_time_flip=not model[-1].test_time_flip)
    pretrained.save(model, folder)
    after = teacher_probabilities([str(folder)], X, y, path)
    assert loaded[4:] == [str(folder), str(folder)]
    np.testing.assert_allclose(after, model.predict_proba(X), rtol=1e-6, atol=1e-7)
    assert np.abs(after - before).max() > 1e-4


def test_train_in_the_wild_distils_only_the_named_sources(monkeypatch, capsys):
    """--teacher-sources: the faces of the named sources get labels and teacher
    mixed, the others their one-hot label alone; an unknown source is refused
    before anything is loaded."""
    import runpy

    monkeypatch.syspath_prepend(str(_BENCHMARKS))
    wild = runpy.run_path(str(_BENCHMARKS / "train_in_the_wild.py"), run_name="wild")
    y = np.array([0, 1, 2, 1])
    source = np.array(["fer2013", "expw", "fer2013", "sfew"])
    teacher = np.full((4, 3), 1 / 3)
    everywhere = wild["distillation_targets"](y, source, teacher, 0.5)
    np.testing.assert_allclose(everywhere[0], [2 / 3, 1 / 6, 1 / 6])
    np.testing.assert_allclose(everywhere[1], [1 / 6, 2 / 3, 1 / 6])
    only_fer = wild["distillation_targets"](y, source, teacher, 0.5, ["fer2013"])
    np.testing.assert_allclose(only_fer[[0, 2]], everywhere[[0, 2]])
    np.testing.assert_array_equal(only_fer[[1, 3]], [[0, 1, 0], [0, 1, 0]])
    np.testing.assert_allclose(only_fer.sum(axis=1), 1)

    with pytest.raises(SystemExit):
        wild["main"](["--teacher-sources", "fer2013,sfw", "--name", "never"])
    assert "unknown source(s) ['sfw']" in capsys.readouterr().err


def test_train_in_the_wild_says_when_a_model_it_read_was_replaced(tmp_path, monkeypatch):
    """train_in_the_wild.py records the pipeline.json SHA-256 of its start
    and teachers and names those replaced under their name during the run
    (a bundled model swapped in the working tree for a trial): such a run
    learnt from other models than its command says."""
    import runpy

    monkeypatch.syspath_prepend(str(_BENCHMARKS))
    wild = runpy.run_path(str(_BENCHMARKS / "train_in_the_wild.py"), run_name="wild")
    folder = tmp_path / "teacher"
    folder.mkdir()
    (folder / "pipeline.json").write_text('{"weights": "a"}')
    read = {f"teacher {folder}": wild["spec_sha256"](str(folder))}
    assert wild["changed_models"](read) == []
    (folder / "pipeline.json").write_text('{"weights": "b"}')
    assert wild["changed_models"](read) == [f"teacher {folder}"]


def test_train_in_the_wild_tempers_class_weights(monkeypatch, capsys):
    """--class-weight-power: 0 weighs every class 1, 1 is sklearn's balanced
    weights, between them the rare class gains; the faces' mean weight stays
    1 (the learning rate's scale); a power outside [0, 1] is refused."""
    import runpy

    from sklearn.utils import compute_class_weight

    monkeypatch.syspath_prepend(str(_BENCHMARKS))
    wild = runpy.run_path(str(_BENCHMARKS / "train_in_the_wild.py"), run_name="wild")
    y = np.array([0] * 6 + [1] * 3 + [2])
    weigh = wild["tempered_class_weight"]
    assert weigh(y, 0.0) == {0: 1.0, 1: 1.0, 2: 1.0}
    np.testing.assert_allclose(list(weigh(y, 1.0).values()),
                               compute_class_weight("balanced", classes=np.arange(3), y=y))
    half = weigh(y, 0.5)
    assert half[2] > half[1] > half[0]
    assert np.isclose(np.mean([half[c] for c in y]), 1.0)
    with pytest.raises(SystemExit):
        wild["main"](["--class-weight-power", "2", "--name", "never"])
    assert "--class-weight-power" in capsys.readouterr().err


def test_train_in_the_wild_runs_the_teachers_on_taught_faces_only(monkeypatch):
    """With --teacher-sources the teachers see only those sources' faces
    (the others keep their labels alone); their rows are the teachers', the
    others' zeros, and the targets are those of the teachers run on all."""
    import runpy

    monkeypatch.syspath_prepend(str(_BENCHMARKS))
    wild = runpy.run_path(str(_BENCHMARKS / "train_in_the_wild.py"), run_name="wild")
    X = np.arange(5 * 4, dtype=np.uint8).reshape(5, 2, 2)
    y = np.array([0, 1, 2, 1, 0])
    source = np.array(["fer2013", "expw", "fer2013", "sfew", "fer2013"])
    table = np.random.RandomState(0).dirichlet(np.ones(3), size=5)
    seen = []

    def teacher_probabilities(teachers, faces, labels, path):
        seen.append(len(faces))
        return table[[int(f[0, 0]) // 4 for f in faces]]  # each face's own row

    wild["taught_probabilities"].__globals__["teacher_probabilities"] = teacher_probabilities
    proba = wild["taught_probabilities"](["t"], X, y, source, ["fer2013"], None)
    assert seen == [3]
    np.testing.assert_array_equal(proba[[0, 2, 4]], table[[0, 2, 4]])
    np.testing.assert_array_equal(proba[[1, 3]], 0)
    targets = wild["distillation_targets"](y, source, proba, 0.5, ["fer2013"])
    np.testing.assert_allclose(targets, wild["distillation_targets"](y, source, table, 0.5,
                                                                     ["fer2013"]))
    wild["taught_probabilities"](["t"], X, y, source, None, None)
    assert seen == [3, 5]


def test_train_in_the_wild_repeats_each_source_as_asked(monkeypatch, capsys):
    """--repeat-expw: ExpW's faces copied that many times (the first copy as
    cut, the others degraded), SFEW's --repeat times, FER-2013's once; labels
    and sources stay aligned; fewer than one copy is refused before loading."""
    import runpy
    from sklearn.utils import Bunch

    monkeypatch.syspath_prepend(str(_BENCHMARKS))
    wild = runpy.run_path(str(_BENCHMARKS / "train_in_the_wild.py"), run_name="wild")
    rng = np.random.RandomState(0)
    data = Bunch(images=rng.randint(0, 256, size=(6, 48, 48)).astype(np.uint8),
                 target=np.array([0, 1, 2, 3, 4, 5]),
                 source=np.array(["fer2013", "fer2013", "expw", "expw", "sfew", "sfew"]))
    X, y, src, rows = wild["training_set"](data, np.arange(6), repeats={"sfew": 2, "expw": 5},
                                           caps={}, fer_degraded=0.0, seed=0)
    counts = dict(zip(*np.unique(src, return_counts=True)))
    assert counts == {"expw": 10, "fer2013": 2, "sfew": 4}
    assert len(X) == len(y) == len(src) == len(rows) == 16
    np.testing.assert_array_equal(y, data.target[rows])  # each face's row of the data
    np.testing.assert_array_equal(src, data.source[rows])
    np.testing.assert_array_equal(np.unique(y[src == "expw"], return_counts=True)[1], [5, 5])
    first = np.flatnonzero(src == "expw")[:2]
    np.testing.assert_array_equal(X[first], data.images[2:4])  # the faces as cut, then copies

    for flag in (["--repeat-expw", "0"], ["--repeat", "0"]):
        with pytest.raises(SystemExit):
            wild["main"]([*flag, "--name", "never"])
        assert "at least 1 copy" in capsys.readouterr().err


def test_train_in_the_wild_mixes_ferplus_votes_into_fer2013_labels(tmp_path, monkeypatch, capsys):
    """--ferplus-weight: a FER-2013 face's label keeps 1 - w of its one-hot and
    takes w of its FER+ votes, in FER-2013's class order (FER+'s outlier
    rule, contempt left out); faces of other sources, and FER-2013 faces
    without an emotion vote, keep their label; a teacher's share comes on
    top of that mixed label; a weight outside [0, 1] is refused."""
    import runpy

    monkeypatch.syspath_prepend(str(_BENCHMARKS))
    wild = runpy.run_path(str(_BENCHMARKS / "train_in_the_wild.py"), run_name="wild")
    (tmp_path / "ferplus_votes.csv").write_text(
        "path,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
        "train/angry/Training_1.jpg,6,0,0,0,3,0,0,1,0,0\n"  # 1 is an outlier: 6 neutral, 3 anger
        "train/happy/Training_2.jpg,0,0,0,0,0,0,0,2,8,0\n"  # contempt and unknown alone
        "train/fear/Training_4.jpg,0,0,0,0,0,0,3,0,0,7\n"  # mostly "not a face"
        "train/fear/Training_5.jpg,0,0,0,0,0,0,10,0,0,0\n")
    names = [str(tmp_path / "train" / c / f) for c, f in (
        ("angry", "Training_1.jpg"), ("happy", "Training_2.jpg"), ("sad", "Training_3.jpg"),
        ("fear", "Training_4.jpg"), ("Fear", "Training_5.jpg"))]  # "Fear": another case, its row
    votes = wild["ferplus_targets"](names, tmp_path)
    np.testing.assert_allclose(votes[0], [1 / 3, 0, 0, 0, 0, 0, 2 / 3])  # angry ... neutral
    # no emotion vote left; no row at all; a majority of "not a face" (load_ferplus drops it)
    np.testing.assert_array_equal(votes[1:4], 0)
    np.testing.assert_array_equal(votes[4], [0, 0, 1, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="needs FER-2013 as image folders"):
        wild["ferplus_targets"](["row 3"], tmp_path)  # FER-2013 read from the CSV
    votes = votes[:3]

    y = np.array([0, 3, 4, 0])
    source = np.array(["fer2013", "fer2013", "fer2013", "expw"])
    ferplus = np.vstack([votes, np.full((1, 7), 1 / 7)])  # the ExpW face's row is never read
    labels = wild["label_targets"](y, source, ferplus, 0.5)
    np.testing.assert_allclose(labels[0], [0.5 + 1 / 6, 0, 0, 0, 0, 0, 1 / 3])
    np.testing.assert_array_equal(labels[1:], np.eye(7)[y[1:]])
    teacher = np.full((4, 7), 1 / 7)
    mixed = wild["distillation_targets"](y, source, teacher, 0.5, labels=labels)
    np.testing.assert_allclose(mixed, 0.5 * labels + 0.5 * teacher)

    with pytest.raises(SystemExit):
        wild["main"](["--ferplus-weight", "1.5", "--name", "never"])
    assert "--ferplus-weight: a share" in capsys.readouterr().err


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL: POSIX")
def test_train_in_the_wild_teacher_file_killed_at_its_write(tmp_path, monkeypatch):
    """A distillation killed while a teacher's probabilities are written
    leaves no file under the kept name (temporary file, then rename), and the
    rerun computes that teacher again."""
    bench = _BENCHMARKS
    child = f"""
import os, signal, sys
import numpy as np
sys.path.insert(0, {str(bench)!r})
import train_in_the_wild as wild
from pathlib import Path
wild._TEACHER_BACKEND = "keras"
wild.os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)  # killed before the rename
X = np.random.RandomState(0).randint(0, 256, size=(6, 48, 48)).astype(np.uint8)
wild.teacher_probabilities(["fer2013_cnn"], X, np.arange(6), Path({str(tmp_path)!r}) / "teacher.npz")
"""
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=300)
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    assert not list(tmp_path.glob("teacher-*fer2013_cnn-????????????.npz"))

    from fersk import pretrained

    expected = pretrained.load("fer2013_cnn")
    teacher_probabilities = _teacher_probabilities(monkeypatch)
    X = np.random.RandomState(0).randint(0, 256, size=(6, 48, 48)).astype(np.uint8)
    proba = teacher_probabilities(["fer2013_cnn"], X, np.arange(6), tmp_path / "teacher.npz")
    np.testing.assert_allclose(proba, expected.predict_proba(X),
                               rtol=1e-6, atol=1e-7)
    assert len(list(tmp_path.glob("teacher-*fer2013_cnn-????????????.npz"))) == 1


def test_distillation_targets():
    from sklearn.dummy import DummyClassifier

    from fersk.training import distillation_targets

    X, y = np.zeros((4, 1)), np.array(["a", "a", "b", "c"])
    teacher = DummyClassifier(strategy="prior").fit(X, y)
    np.testing.assert_allclose(distillation_targets(teacher, X, y, 0), np.eye(3)[[0, 0, 1, 2]])
    soft = distillation_targets(teacher, X, y, 0.5)
    np.testing.assert_allclose(soft.sum(axis=1), 1)
    np.testing.assert_allclose(soft[2], [0.25, 0.625, 0.125])
    with pytest.raises(ValueError, match=r"labels \['d'\] are not classes"):
        distillation_targets(teacher, X, np.array(["a", "b", "c", "d"]))
    with pytest.raises(ValueError, match="'weight' parameter of distillation_targets must be a float"):
        distillation_targets(teacher, X, y, 1.5)


def test_distillation_targets_follow_the_students_sorted_classes():
    """A teacher whose classes_ are not sorted (a model loaded with
    labels="names" keeps FER-2013's output order): its columns are put in
    the sorted order the student's classes_ have (before, 'neutral' faces
    were taught as 'surprise')."""
    from fersk.training import distillation_targets

    class Teacher:  # FER-2013's order of three names: not sorted
        classes_ = np.array(["sad", "surprise", "neutral"])

        def predict_proba(self, X):
            return np.tile([0.2, 0.3, 0.5], (len(X), 1))

    y = np.array(["neutral", "sad", "surprise"])
    soft = distillation_targets(Teacher(), np.zeros((3, 1)), y, 0.5)
    # sorted: neutral, sad, surprise
    np.testing.assert_allclose(soft, [[0.75, 0.1, 0.15], [0.25, 0.6, 0.15], [0.25, 0.1, 0.65]])


def test_an_empty_argument_is_a_usage_error(capsys, tmp_path, monkeypatch, photos, toy_model):
    """`fersk predict "$PHOTOS"` with the variable unset: Path("") is the
    working folder, whose photos were classified; --dir "" and --out ""
    meant it too."""
    import shutil

    shutil.copy(photos / "crop.png", tmp_path / "crop.png")
    monkeypatch.chdir(tmp_path)
    for argv, name in ((["predict", "", "--model", str(toy_model)], "paths"),
                       (["predict", str(photos / "crop.png"), "--csv", ""], "--csv"),
                       (["cache", "--dir", ""], "--dir")):
        status, out, err = _run(capsys, *argv)
        assert status == 2 and f"{name}: an empty value" in err and out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crop.png"]


def test_distillation_targets_refuse_images_and_labels_that_do_not_line_up():
    """y of another length than X, a column of labels or one-hot rows were
    broadcast against the images: one label (or one image's probabilities)
    copied onto every row, or a 3-D array, without a word."""
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.dummy import DummyClassifier
    from sklearn.exceptions import NotFittedError

    from fersk.training import distillation_targets

    X, y = np.zeros((4, 1)), np.array([0, 0, 1, 2])
    teacher = DummyClassifier(strategy="prior").fit(X, y)
    for X_, y_ in ((X, y[:1]), (X[:1], y), (X, y[:3])):
        with pytest.raises(ValueError, match="X and y must be as long"):
            distillation_targets(teacher, X_, y_)
    for y_ in (y[:, None], np.eye(3, dtype=int)[y]):
        if y_.shape[1] == 1:
            assert distillation_targets(teacher, X, y_).shape == (4, 3)
        else:
            with pytest.raises(ValueError, match="1d array"):
                distillation_targets(teacher, X, y_)

    class Narrow(ClassifierMixin, BaseEstimator):  # one column short
        def fit(self, X, y):
            self.classes_ = np.unique(y)
            return self

        def predict_proba(self, X):
            return np.full((len(X), len(self.classes_) - 1), 0.5)

    with pytest.raises(ValueError, match=r"predict_proba gave shape \(4, 2\) .* expected \(4, 3\)"):
        distillation_targets(Narrow().fit(X, y), X, y)
    with pytest.raises(NotFittedError):
        distillation_targets(DummyClassifier(), X, y)


def test_distillation_targets_refuse_teacher_classes_the_student_will_not_have():
    """Teacher classes [0, 3, 4, 6] and labels of 0 and 3 only: the targets had
    four columns, which the student took for its classes 0..3 (class 3's faces
    taught as class 1); with names, the fit failed on a shape.  Integer
    classes 0..n-1 stay: the student keeps a column for a class without a
    sample."""
    from sklearn.dummy import DummyClassifier

    from fersk import CNNClassifier
    from fersk.training import distillation_targets

    X = np.zeros((8, 1))
    teacher = DummyClassifier(strategy="prior").fit(X, np.array([0, 3, 4, 6] * 2))
    with pytest.raises(ValueError, match=r"teacher's classes \[4, 6\] have no label in y"):
        distillation_targets(teacher, X, np.array([0, 3] * 4), 0.5)
    names = np.array(["angry", "happy", "sad", "neutral"])
    teacher = DummyClassifier(strategy="prior").fit(X, names[np.arange(8) % 4])
    with pytest.raises(ValueError, match=r"\['neutral'\] have no label"):
        distillation_targets(teacher, X, names[np.arange(8) % 3], 0.5)
    teacher = DummyClassifier(strategy="prior").fit(X, np.arange(8) % 4)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    targets = distillation_targets(teacher, X, y, 0.5)
    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16), dtype=np.uint8)
    net = CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1,
                        random_state=0).fit(images, y, sample_proba=targets)
    assert net.classes_.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--init", "fer2013_cnn", "--model", "kaggle_cnn"], "drop --model"),
        (["--init", "fer2013_cnn", "--representation", "mapped_lbp"], "drop --representation"),
        (["--init", "no_such_model"], "--init: no pretrained model"),
        (["--model", "vgg_fer", "--teacher", "no_such_model"], "--teacher: no pretrained model"),
        (["--model", "vgg_fer", "--teacher", "fer2013_vgg", "--teacher-weight", "2"],
         "--teacher-weight must be in [0, 1]"),
        ([], "give --model ARCH"),
        (["--model", "vgg_fer", "--epochs", "3", "--param", "epochs=5"],
         "epochs is set by --epochs"),
        (["--init", "fer2013_cnn", "--param", "learning_rate=0.05", "--param", "test_time_flip=true"],
         "learning_rate is set by --learning-rate, test_time_flip is set by --test-time-flip"),
        (["--model", "vgg_fer", "--augment", "--param", 'augment={"zoom": 0}'],
         "augment is set by --augment"),
        # trained as built: the card recorded augment=true, the network had none
        (["--init", "fer2013_cnn", "--param", "augment=true", "--param", "random_erasing=0.5"],
         "augment, random_erasing are built into the --init network"),
    ],
)
def test_train_init_usage_errors(capsys, tmp_path, photos, extra, message):
    status, _, err = _run(capsys, "train", "--data", photos, "--out", tmp_path / "m", *extra)
    assert status == 2 and message in err


@pytest.mark.parametrize("flip", [None, True, False])
def test_train_init_keeps_the_models_mirror_view_unless_told(monkeypatch, flip):
    """train_fer2013(init_from=M) (``fersk train --init M``): the saved model
    keeps M's test-time views, mirror included, unless test_time_flip is
    given (before, every fine-tune lost its mirror: ten views became five),
    and its cropper (before, a default one replaced it)."""
    from fersk import pretrained
    from fersk.classifiers import CNNClassifier
    from fersk.training import recipes

    X = np.random.RandomState(0).randint(0, 256, (14, 48, 48)).astype(np.uint8)
    y = np.arange(14) % 7
    monkeypatch.setattr(recipes, "fer2013_splits", lambda *a, **k: (X, y, X, y))
    monkeypatch.setattr(CNNClassifier, "fit", lambda self, *a, **k: self)  # no training
    start = pretrained.load("wild_vgg_fast", backend="keras")[-1]
    assert start.test_time_flip and start.test_time_margin is not None
    real_load = pretrained.load

    def load(name, **kwargs):  # a start model whose cropper is not the default one
        pipe = real_load(name, **kwargs)
        return pipe.set_params(facecropper__margin=0.1, facecropper__retry_padding=0.5)

    monkeypatch.setattr(pretrained, "load", load)
    pipe, metrics = recipes.train_fer2013(
        "unused", architecture=None, architecture_params=None, epochs=1, patience=8,
        batch_size=64, learning_rate=1e-3, augment=False, init_from="wild_vgg_fast",
        test_time_flip=flip)
    net = pipe[-1]
    assert net.test_time_flip is (True if flip is None else flip)
    assert metrics["test_time_flip"] is net.test_time_flip
    assert (net.test_time_crops, net.test_time_margin) == ("center", start.test_time_margin)
    assert (pipe[0].margin, pipe[0].retry_padding) == (0.1, 0.5)  # its geometry kept


def test_train_refuses_a_teacher_whose_codes_are_not_fer2013s(capsys, tmp_path, photos,
                                                             pipeline):
    # Its codes in folder order (4 = neutral): its columns would be mixed with
    # FER-2013's one-hot labels (4 = sad) by position.
    from fersk import pretrained

    teacher = pretrained.save(pipeline, tmp_path / "t", class_names=sorted(FER))
    status, _, err = _run(capsys, "train", "--data", photos, "--out", tmp_path / "m",
                          "--model", "vgg_fer", "--teacher", teacher)
    assert status == 2 and "--teacher" in err and "not FER-2013's labels" in err
    assert not (tmp_path / "m").exists()



def test_ensemble_fer2013_refuses_a_member_whose_codes_are_not_fer2013s(tmp_path, pipeline,
                                                                       monkeypatch):
    """A member trained on class folders (codes in folder order, 4 =
    neutral) was scored and averaged by FER-2013's codes (4 = sad), in the
    ensemble and in its own card row, without a word."""
    from fersk import pretrained
    from fersk.training import ensembling

    folder = pretrained.save(pipeline, tmp_path / "m", class_names=sorted(FER))
    fer = pretrained.save(pipeline, tmp_path / "f")
    faces = np.zeros((14, 48, 48), np.uint8)
    labels = np.arange(14) % 7
    monkeypatch.setattr(ensembling, "fer2013_splits", lambda *a, **k: (faces, labels, faces, labels))
    with pytest.raises(ValueError, match=r"member '.*/m' has .* not FER-2013's labels"):
        ensembling.ensemble_fer2013("unused", [fer, folder], load_verbose=0)


def test_ensemble_fer2013_names_run_folders_and_refuses_what_it_cannot_take(tmp_path, pipeline,
                                                                           monkeypatch):
    """Two runs saved as <run>/model were both named 'model' (sklearn's "Names
    provided are not unique"); a folder path holding ':' was read as
    MODEL:MEMBER ("no pretrained model"); a whole ensemble as a member failed
    on a missing attribute."""
    from fersk import pretrained
    from fersk.training import ensemble_member, ensembling

    a = pretrained.save(pipeline, tmp_path / "a" / "model")
    b = pretrained.save(pipeline, tmp_path / "b" / "model")
    timed = pretrained.save(pipeline, tmp_path / "run:1" / "model")
    faces = np.zeros((14, 48, 48), np.uint8)
    labels = np.arange(14) % 7
    monkeypatch.setattr(ensembling, "fer2013_splits", lambda *a, **k: (faces, labels, faces, labels))
    _, metrics = ensembling.ensemble_fer2013("unused", [a, b, timed], load_verbose=0)
    assert sorted(metrics["members"]) == ["a", "b", "run:1"]
    assert ensemble_member(str(timed))[0]["name"] == "model"
    with pytest.raises(ValueError, match="would share the name 'a'"):
        ensembling.ensemble_fer2013("unused", [a, a], load_verbose=0)
    with pytest.raises(ValueError, match=r"is an ensemble: name its networks one by one"):
        ensembling.ensemble_fer2013("unused", ["fer2013_ensemble"], load_verbose=0)


def test_train_init_refuses_what_it_cannot_fine_tune_before_any_work(capsys, tmp_path, photos,
                                                                    pipeline):
    """--init of a model whose codes are in folder order (4 neutral) trained
    on FER-2013's codes (4 sad) and kept the old names: sad faces named
    "neutral".  --init of an ensemble failed after the data was read with
    a 2,800-character message; --param warm_start=false with --init was a
    TypeError traceback.  All three are usage errors before any work."""
    from fersk import pretrained

    folder_order = pretrained.save(pipeline, tmp_path / "folders", class_names=sorted(FER))
    fer_codes = pretrained.save(pipeline, tmp_path / "fer")
    for init, extra, words in [
        (folder_order, [], "not FER-2013's labels"),
        ("fer2013_ensemble", [], "is an ensemble of several networks"),
        (fer_codes, ["--param", "warm_start=false"], "warm_start is not a CNNClassifier"),
    ]:
        out = tmp_path / "m"
        status, _, err = _run(capsys, "train", "--data", photos, "--out", out, "--init", init,
                              *extra)
        assert status == 2 and words in err, err
        assert not out.exists()


def test_train_seed_out_of_numpys_range_is_a_usage_error(capsys, tmp_path, photos):
    """--seed -1 or 2**32 failed (exit 1) after the data was read, in
    numpy's words, leaving an empty --out folder."""
    for seed in ("-1", str(2**32)):
        status, _, err = _run(capsys, "train", "--data", photos, "--out", tmp_path / "m",
                              "--model", "kaggle_cnn", "--seed", seed)
        assert status == 2 and "--seed" in err
        assert not (tmp_path / "m").exists()

def test_train_refuses_a_teacher_weight_without_a_teacher(capsys, tmp_path, photos):
    """--teacher-weight alone was accepted and ignored (a plain fit, the user
    believing it distilled): a usage error now, before anything trains."""
    status, _, err = _run(capsys, "train", "--data", photos, "--out", tmp_path / "m",
                          "--model", "vgg_fer", "--teacher-weight", "0.7")
    assert status == 2 and "--teacher-weight" in err and "--teacher MODEL" in err
    assert not (tmp_path / "m").exists()


@pytest.fixture()
def fer_csv(tmp_path, fer_small, monkeypatch):
    """fer_small's 140 PublicTest faces as a Kaggle-format CSV."""
    monkeypatch.setenv("FERSK_CACHE", str(tmp_path / "cache"))
    images, labels, _ = fer_small
    path = tmp_path / "fer2013.csv"
    with open(path, "w") as f:
        f.write("emotion,pixels,Usage\n")
        for image, label in zip(images, labels):
            f.write(f"{label},{' '.join(map(str, image.ravel()))},PublicTest\n")
    return path


def test_evaluate_json_and_plots(capsys, tmp_path, fer_csv, fer_small, toy_model, pipeline):
    images, labels, _ = fer_small
    out_dir = tmp_path / "eval"
    status, out, _ = _run(
        capsys, "evaluate", "--data", fer_csv, "--model", toy_model, "--out", out_dir, "--json"
    )
    assert status == 0
    doc = json.loads(out)
    expected = _proba(pipeline, images, detector=None).argmax(axis=1)
    assert doc["n_samples"] == 140 and doc["usage"] == "PublicTest" and not doc["detection"]
    assert doc["backend"] == "keras"  # a model without int8 graphs: what ran, said
    assert doc["accuracy"] == pytest.approx(np.mean(expected == labels), abs=1e-4)
    cm = np.array(doc["confusion_matrix"])
    assert cm.shape == (7, 7) and cm.sum() == 140 and cm.sum(axis=1).tolist() == [20] * 7
    assert set(FER) <= set(doc["classification_report"])
    for key in ("confusion_matrix", "training_curve", "evaluation"):
        assert Path(doc["files"][key]).is_file()
    for png in ("confusion_matrix.png", "training_curve.png"):
        with Image.open(out_dir / png) as im:
            assert im.format == "PNG" and min(im.size) >= 300
    assert json.loads((out_dir / "evaluation.json").read_text())["accuracy"] == doc["accuracy"]
    # A rerun replaces its own files; a user's file of one of those names is kept.
    assert _run(capsys, "evaluate", "--data", fer_csv, "--model", toy_model, "--out",
                out_dir, "--json")[0] == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    Image.new("L", (4, 4)).save(mine / "confusion_matrix.png")
    (mine / "evaluation.json").write_text('{"my": "notes"}')
    for name in ("evaluation.json", "confusion_matrix.png"):
        before = (mine / name).read_bytes()
        status, _, err = _run(capsys, "evaluate", "--data", fer_csv, "--model", toy_model,
                              "--out", mine)
        assert status == 2 and name in err and "did not write it" in err
        assert (mine / name).read_bytes() == before
        (mine / name).rename(mine / f"kept-{name}")


def test_evaluate_removes_its_curve_of_another_model(capsys, tmp_path, fer_csv, pipeline):
    """A model without a training record after one with it, into the same
    --out: the earlier run's curve went on reading as this model's."""
    from fersk import pretrained

    out_dir = tmp_path / "eval"
    with_history = pretrained.save(pipeline, tmp_path / "with")
    assert _run(capsys, "evaluate", "--data", fer_csv, "--model", with_history,
                "--out", out_dir)[0] == 0
    assert (out_dir / "training_curve.png").is_file()
    bare = pretrained.load(with_history)
    for attr in ("history_", "n_epochs_", "best_epoch_"):
        delattr(bare[-1], attr)
    without = pretrained.save(bare, tmp_path / "without")
    status, out, _ = _run(capsys, "evaluate", "--data", fer_csv, "--model", without,
                          "--out", out_dir)
    assert status == 0 and "no training curve" in out
    assert not (out_dir / "training_curve.png").exists()


def test_evaluate_detect_searches_every_face(capsys, fer_csv, fer_small, toy_model, pipeline):
    """--detect runs the detector on every image: the bundled croppers take
    images of <= 64 pixels whole, so it scored the crops as without it."""
    images, labels, _ = fer_small
    status, out, _ = _run(capsys, "evaluate", "--data", fer_csv, "--model", toy_model,
                          "--json", "--detect")
    doc = json.loads(out)
    assert status == 0 and doc["detection"]
    cropper = pipeline.steps[0][1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = cropper.set_params(precropped_max_side=None).crop(images)[1]
    cropper.set_params(precropped_max_side=64)
    assert doc["no_face"] == len(found.no_face_indices) > 0
    expected = _proba(pipeline, images, precropped_max_side=None).argmax(axis=1)
    assert doc["accuracy"] == pytest.approx(np.mean(expected == labels), abs=1e-4)


def test_evaluate_refuses_a_subset_of_classes_named_by_their_numbers():
    """A model of folder codes 0, 1, 2 (happy, sad, surprise) saved without
    names was scored as angry, disgust and fear (accuracy 0.16 against 0.37
    with its names): numbers are taken as FER-2013's labels only for all
    seven classes, as default_class_names names them."""
    from fersk._labels import fer2013_labels

    assert fer2013_labels([0, 1, 2], ["0", "1", "2"]) is None
    assert fer2013_labels([3, 4, 5], ["3", "4", "5"]) is None
    assert fer2013_labels(list(range(7)), [str(c) for c in range(7)]).tolist() == list(range(7))
    assert fer2013_labels([0, 1], ["happy", "sad"]).tolist() == [3, 4]


def test_evaluate_scores_by_class_name_not_code(capsys, tmp_path, fer_csv, fer_small,
                                               pipeline):
    # A model of a user's folders: codes in folder (alphabetical) order under
    # FER-2013's names, as load_image_folder gives them (4 = neutral, not sad).
    from sklearn.metrics import confusion_matrix

    from fersk import pretrained

    images, labels, _ = fer_small
    alphabetical = sorted(FER)
    folder = pretrained.save(pipeline, tmp_path / "folders", class_names=alphabetical)
    status, out, _ = _run(capsys, "evaluate", "--data", fer_csv, "--model", folder, "--json")
    assert status == 0
    doc = json.loads(out)
    outputs = _proba(pipeline, images, detector=None).argmax(axis=1)
    expected = np.array([FER.index(alphabetical[k]) for k in outputs])
    assert doc["accuracy"] == pytest.approx(np.mean(expected == labels), abs=1e-4)
    assert doc["class_names"] == FER  # rows and columns in FER-2013's label order
    np.testing.assert_array_equal(
        doc["confusion_matrix"], confusion_matrix(labels, expected, labels=range(7)))
    # Names that are not FER-2013's cannot be scored on FER-2013 data.
    other = pretrained.save(pipeline, tmp_path / "other", class_names=list("abcdefg"))
    status, _, err = _run(capsys, "evaluate", "--data", fer_csv, "--model", other)
    assert status == 2 and "not with FER-2013's names" in err


def test_evaluate_table_and_bad_usage(capsys, fer_csv, toy_model):
    status, out, _ = _run(capsys, "evaluate", "--data", fer_csv, "--model", toy_model)
    assert status == 0
    assert "accuracy:" in out and "precision" in out and "confusion matrix" in out
    assert "140 images" in out and "no detection" in out
    # The CSV holds no Training rows: reported as a failure, not a crash.
    status, _, err = _run(
        capsys, "evaluate", "--data", fer_csv, "--model", toy_model, "--usage", "Training"
    )
    assert status == 1 and "Training" in err


def test_evaluate_out_that_cannot_be_made_is_refused_before_the_work(capsys, tmp_path, fer_csv,
                                                                      toy_model):
    """--out under a file: the whole evaluation ran, then a traceback
    (NotADirectoryError) and nothing printed; now a usage error first."""
    (tmp_path / "notes.txt").write_text("a file")
    status, out, err = _run(capsys, "evaluate", "--data", fer_csv, "--model", toy_model,
                            "--out", tmp_path / "notes.txt" / "report")
    assert status == 2 and "--out: cannot create" in err and "accuracy" not in out


def test_evaluate_names_the_recorded_accuracy_as_the_folders(capsys, tmp_path, fer_csv, pipeline):
    # The folder's metrics.publictest_accuracy: for the bundled models the
    # figure as loaded, not one "recorded at training".
    from fersk import pretrained

    folder = pretrained.save(pipeline, tmp_path / "m", description="toy",
                             metrics={"publictest_accuracy": 0.5, "n_publictest": 14})
    status, out, _ = _run(capsys, "evaluate", "--data", fer_csv, "--model", folder)
    assert status == 0
    assert "recorded in the model folder: PublicTest accuracy 0.5 on 14 images" in out
    assert "recorded at training" not in out


def test_bundled_model_demo(capsys, tmp_path):
    status, out, _ = _run(capsys, "demo", "--out", tmp_path / "demo.png")
    # the bundled models find faces in photos with MTCNN
    assert status == 0 and "64 182 107 83" in out and (tmp_path / "demo.png").is_file()
    assert "emotion: happy" in out  # the astronaut smiles (0.996 with fer2013_cnn)


def test_model_soup_averages_the_networks_weights(monkeypatch):
    """benchmarks/wise_ft.average_weights (WiSE-FT's mix and model_soup.py's
    mean): the last pipeline's network gets sum(c * weights), its cached
    inference copy dropped, so predictions follow the new weights."""
    import runpy

    from fersk import pretrained

    monkeypatch.syspath_prepend(str(_BENCHMARKS))
    average_weights = runpy.run_path(str(_BENCHMARKS / "wise_ft.py"),
                                     run_name="wise")["average_weights"]
    X = np.random.RandomState(0).randint(0, 256, (5, 48, 48)).astype(np.uint8)
    a, b = pretrained.load("fer2013_cnn", backend="keras"), pretrained.load("fer2013_cnn",
                                                                            backend="keras")
    before = b.predict_proba(X)  # builds b's inference copy
    weights = a[-1].model_.get_weights()
    a[-1].model_.set_weights([2 * w for w in weights])
    soup = average_weights([a, b], [0.25, 0.5])  # 0.25 * 2w + 0.5 * w = w
    assert soup is b
    for got, want in zip(b[-1].model_.get_weights(), weights):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(b.predict_proba(X), before, atol=1e-6)
    average_weights([a, b], [0.5, 0.5])  # 1.5 w: other predictions, not the cached ones
    assert not np.allclose(b.predict_proba(X), before, atol=1e-4)


def test_evaluate_keeps_every_image_in_matrix_and_report(capsys, tmp_path, fer_csv, fer_small,
                                                         pipeline):
    """A model of two of FER-2013's classes: its own labels= left the other
    five classes' images out of the matrix and report (n_samples 140, the
    matrix summing to 40) while accuracy counted them."""
    from sklearn.metrics import confusion_matrix

    from fersk import CNNClassifier, pretrained

    images, labels, _ = fer_small
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (8, 48, 48), dtype=np.uint8)
    net = CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1,
                        random_state=0).fit(X, np.arange(8) % 2)
    pipe = type(pipeline)([(pipeline.steps[0][0], pipeline.steps[0][1]), ("network", net)])
    folder = pretrained.save(pipe, tmp_path / "two", class_names=["happy", "neutral"])
    status, out, _ = _run(capsys, "evaluate", "--data", fer_csv, "--model", folder, "--json")
    assert status == 0
    doc = json.loads(out)
    assert doc["n_samples"] == len(labels) == np.sum(doc["confusion_matrix"])
    predicted = np.array([[3, 6][k] for k in _proba(pipe, images, detector=None).argmax(1)])
    np.testing.assert_array_equal(doc["confusion_matrix"],
                                  confusion_matrix(labels, predicted, labels=range(7)))
    assert doc["classification_report"]["macro avg"]["support"] == len(labels)


def test_evaluate_detect_classifies_faces_not_found_whole(capsys, tmp_path, fer_csv, pipeline):
    """--detect says faces not found are classified whole: a model whose
    cropper raises on them crashed with a traceback."""
    from fersk import pretrained

    raising = pipeline.steps[0][1].__class__(**{**pipeline.steps[0][1].get_params(),
                                                "on_no_face": "raise"})
    pipe = type(pipeline)([(pipeline.steps[0][0], raising), pipeline.steps[1]])
    folder = pretrained.save(pipe, tmp_path / "raising")
    status, out, _ = _run(capsys, "evaluate", "--data", fer_csv, "--model", folder, "--json",
                          "--detect")
    assert status == 0
    doc = json.loads(out)
    assert doc["no_face"] > 0 and doc["n_samples"] == 140


def test_annotated_copies_of_thin_images_stay_bounded(capsys, tmp_path, toy_model, monkeypatch):
    """A 1x5000 strip was enlarged to 192 rows (a 184-million-pixel copy,
    1.5 GB), and reading such a file's mark raised Pillow's
    DecompressionBombError from a rerun or ``demo --out``."""
    from fersk.cli import _common, _faces

    strip = tmp_path / "strip.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1, 5000), dtype=np.uint8)).save(strip)
    out_dir = tmp_path / "annotated"
    for _ in range(2):  # the rerun replaces its own copy
        status, _, _ = _run(capsys, "predict", strip, "--model", toy_model, "--annotate", out_dir)
        assert status == 0
        with Image.open(out_dir / "strip.png") as copy:
            assert copy.size == (5000, 1)  # already longer than 4096: not enlarged
    Image.fromarray(np.zeros((2, 1000), np.uint8)).save(strip)
    _run(capsys, "predict", strip, "--model", toy_model, "--annotate", out_dir)
    with Image.open(out_dir / "strip.png") as copy:
        assert copy.size == (4000, 8)  # enlarged 4 times, not 96
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # any picture now a "bomb"
    assert _common._has_mark(out_dir / "strip.png", _faces.ANNOTATION_MARK) is False


def test_annotate_leaves_a_dangling_link_alone(capsys, tmp_path, photos, toy_model):
    """A dangling symbolic link at a copy's name did not "exist", so the copy
    was written where the link pointed, outside the --annotate folder."""
    out_dir = tmp_path / "annotated"
    out_dir.mkdir()
    elsewhere = tmp_path / "elsewhere" / "target.png"
    (out_dir / "crop.png").symlink_to(elsewhere)
    status, _, err = _run(capsys, "predict", photos / "crop.png", "--model", toy_model,
                          "--annotate", out_dir)
    assert not elsewhere.exists() and not elsewhere.parent.exists()
    assert "left as it is" in err and status != 0


def test_train_failing_before_any_epoch_leaves_no_folder_it_made(capsys, tmp_path, fer2013_root):
    """--out was made before the data was read: a run failing there (too few
    faces for the classes) left an empty folder, and a fresh name then read
    as "exists" to nothing.  A folder that was there already is kept."""
    argv = ["train", "--data", fer2013_root, "--model", "kaggle_cnn", "--width", "0.0625",
            "--dense-units", "8", "--epochs", "1", "--n-train", "3", "--n-test", "20"]
    status, _, err = _run(capsys, *argv, "--out", tmp_path / "new")
    assert status != 0 and not (tmp_path / "new").exists(), err
    assert "n_train=3: a stratified subset needs at least one face of each" in err
    (tmp_path / "mine").mkdir()
    status, _, _ = _run(capsys, *argv, "--out", tmp_path / "mine")
    assert status != 0 and (tmp_path / "mine").is_dir()


def test_train_interrupted_while_saving_says_the_training_is_kept(capsys, tmp_path, fer2013_root,
                                                                  monkeypatch):
    """Killed in pretrained.save, after the last epoch: the message said "the
    last finished epoch is saved ... to continue", as if training were left;
    --resume then saves the model without training again."""
    from fersk import pretrained

    out = tmp_path / "m"
    argv = ["train", "--data", fer2013_root, "--model", "kaggle_cnn", "--width", "0.0625",
            "--dense-units", "8", "--epochs", "1", "--n-train", "40", "--n-test", "20",
            "--out", out]
    save = pretrained.save

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pretrained, "save", killed)
    status, _, err = _run(capsys, *argv)
    assert status == 130 and "training had finished and is kept" in err, err
    monkeypatch.setattr(pretrained, "save", save)
    status, stdout, _ = _run(capsys, *argv, "--resume")
    assert status == 0 and "Epoch 1/1" not in stdout and f"saved {out}" in stdout
