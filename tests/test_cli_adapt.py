"""``fersk adapt``: a new last layer from a folder of labelled images, as a model folder."""

import numpy as np
import pytest
from PIL import Image

from conftest import half_bright_faces
from fersk import pretrained
from fersk.cli import main


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A folder of two classes of 24x24 'faces' (16 PNGs each), named left and right."""
    root = tmp_path_factory.mktemp("labelled")
    X, y = half_bright_faces(n=32, side=24)
    for i, (image, label) in enumerate(zip(X, y)):
        folder = root / ("left" if label == 0 else "right")
        folder.mkdir(exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:02d}.png")
    return root


def test_adapt_writes_a_model_folder_with_the_folders_classes(labelled, tmp_path, capsys):
    out = tmp_path / "mine"
    assert main(["adapt", "--data", str(labelled), "--out", str(out), "--cv", "2"]) == 0
    printed = capsys.readouterr().out
    assert "32 images in 2 classes: left 16, right 16" in printed
    assert "cross-validated accuracy of the new last layer (2 folds)" in printed
    info = pretrained.info(out)
    assert info["class_names"] == ["left", "right"]
    assert info["metrics"]["n_images"] == 32 and "cv2_accuracy" in info["metrics"]
    assert "fersk adapt" in info["description"]
    model = pretrained.load(out, backend="keras")
    X, y = half_bright_faces(n=32, side=24, seed=1)
    assert set(model.predict(X)) <= {"left", "right"}
    # Every command takes it: fersk predict reads an image with it.
    assert main(["predict", str(next((labelled / "left").iterdir())), "--model", str(out),
                 "--backend", "keras"]) == 0
    assert "left" in capsys.readouterr().out


def test_adapt_refuses_before_any_work(labelled, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    # An existing --out: only with --overwrite, and only a model folder.
    assert main(["adapt", "--data", str(labelled), "--out", str(out)]) == 2
    assert "exists; give another folder or --overwrite" in capsys.readouterr().err
    assert main(["adapt", "--data", str(labelled), "--out", str(out), "--overwrite"]) == 2
    assert "--out:" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"
    assert main(["adapt", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    one = tmp_path / "one"
    (one / "only").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(one / "only" / "a.png")
    assert main(["adapt", "--data", str(one), "--out", str(tmp_path / "x")]) == 2
    assert "needs two classes or more" in capsys.readouterr().err
    assert main(["adapt", "--data", str(labelled), "--out", str(tmp_path / "x"),
                 "--model", "no_such_model"]) == 2
    assert "--model:" in capsys.readouterr().err
    assert main(["adapt", "--data", str(labelled), "--out", str(tmp_path / "x"),
                 "--model", "fer2013_ensemble"]) == 2
    assert "is an ensemble" in capsys.readouterr().err
    broken = tmp_path / "broken"
    for name in ("a", "b"):
        (broken / name).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(broken / name / "ok.png")
    (broken / "a" / "bad.png").write_bytes(b"not an image")
    assert main(["adapt", "--data", str(broken), "--out", str(tmp_path / "x")]) == 2
    assert "bad.png" in capsys.readouterr().err
    # --cv 1 is no cross-validation: said so (the message blamed a class's size)
    assert main(["adapt", "--data", str(labelled), "--out", str(tmp_path / "x"),
                 "--cv", "1"]) == 2
    assert "--cv: cross-validation needs 2 folds or more" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_adapt_overwrite_replaces_a_model_folder(labelled, tmp_path, capsys):
    out = tmp_path / "mine"
    assert main(["adapt", "--data", str(labelled), "--out", str(out), "--cv", "0"]) == 0
    assert "cross-validated" not in capsys.readouterr().out
    assert main(["adapt", "--data", str(labelled), "--out", str(out), "--cv", "0",
                 "--C", "1", "--overwrite"]) == 0
    assert "C=1" in pretrained.info(out)["description"]


def test_adapt_names_the_images_without_a_face_and_keeps_the_models_cropper(tmp_path, capsys):
    from skimage import data

    root = tmp_path / "photos"
    for name, image in (("a/astronaut.png", data.astronaut()), ("a/astronaut_2.png", data.astronaut()),
                        ("b/coffee.png", data.coffee()), ("b/cat.png", data.chelsea())):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / name)
    out = tmp_path / "mine"
    assert main(["adapt", "--data", str(root), "--out", str(out), "--cv", "0", "-v"]) == 0
    printed = capsys.readouterr().out
    assert "no face found in 2 of 4 images" in printed and "b/coffee.png" in printed
    assert "a/astronaut.png" not in printed.split("note:")[1]
    assert "[FaceCropper] 4/4 images cropped" in printed  # -v: the cropping's progress
    model = pretrained.load(out, backend="keras")
    assert type(model.steps[0][1]).__name__ == "FaceCropper"
    assert model.steps[0][1].verbose == 0  # the saved cropper keeps the model's settings
    assert model.predict([data.astronaut()]).tolist()[0] in ("a", "b")


def test_adapt_cross_validates_the_model_it_saves(labelled, tmp_path, capsys, monkeypatch):
    """The card's cvK_accuracy scored the new layer on features averaged
    over the network's views; the saved model (the layer folded into the
    network) averages each view's probabilities, gated by its margin: not
    the figure's model.  Each fold is now scored as that model."""
    from sklearn.base import clone
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline

    from fersk import NetworkFeatures
    from fersk.datasets import load_image_folder
    from fersk.network_features import fold_head

    from fersk import network_features

    folded_heads = []
    real_fold_head = network_features.fold_head

    def counting_fold_head(pipe):
        folded_heads.append(pipe)
        return real_fold_head(pipe)

    monkeypatch.setattr(network_features, "fold_head", counting_fold_head)
    out = tmp_path / "mine"
    assert main(["adapt", "--data", str(labelled), "--out", str(out), "--cv", "2",
                 "--model", "fer2013_vgg_fast"]) == 0  # ten views
    assert len(folded_heads) == 3  # each fold's head as saved, then the model's
    monkeypatch.undo()
    capsys.readouterr()
    folder = load_image_folder(labelled, color=True)
    labels = np.asarray(folder.target_names)[folder.target]
    model = pretrained.load("fer2013_vgg_fast", backend="keras")
    faces, _ = clone(model[0]).crop(list(folder.images))
    head = make_pipeline(NetworkFeatures(FrozenEstimator(model[1:])),
                         LogisticRegression(C=0.1, max_iter=5000))
    right = 0
    for train, test in StratifiedKFold(2, shuffle=True, random_state=0).split(faces, labels):
        folded = fold_head(clone(head).fit(faces[train], labels[train]))
        right += int((folded.predict(faces[test]) == labels[test]).sum())
    assert pretrained.info(out)["metrics"]["cv2_accuracy"] == pytest.approx(right / len(labels))


def test_adapt_a_model_without_a_cropper_on_images_that_do_not_fit(labelled, tmp_path, capsys):
    """A model folder whose pipeline is the network alone reads the images
    as they are: 24x24 faces for a network of 16x16 ended in a traceback from
    inside the network's input check; now a usage error naming --data."""
    from sklearn.pipeline import Pipeline

    from fersk import CNNClassifier

    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (20, 16, 16), dtype=np.uint8), np.arange(20) % 2
    bare = Pipeline([("network", CNNClassifier(
        "mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1, random_state=0))]).fit(X, y)
    folder = pretrained.save(bare, tmp_path / "bare", class_names=["a", "b"])
    for cv in ("0", "2"):
        status = main(["adapt", "--data", str(labelled), "--model", str(folder),
                       "--out", str(tmp_path / "x"), "--cv", cv])
        err = capsys.readouterr().err
        assert status == 2 and "--data: bare has no FaceCropper" in err
        assert "fitted on images of shape (16, 16)" in err
    assert not (tmp_path / "x").exists()
