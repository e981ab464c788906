"""Write the old-format model folders used by tests/test_pretrained.py.

The folders are written by the OLD fersk code that wrote those formats, so
they are genuine, not hand-edited:

* ``format1_cnn``  -- model folder format 1, written by commit ``b808c94``
  (the last commit whose ``fersk/pretrained.py`` has ``FORMAT_VERSION = 1``;
  its child ``c2ff9f6`` moved to format 2).  Like the old bundled
  ``fer2013_cnn``: Pipeline ``facecropper`` (FaceCropper) -> ``network``
  (CNNClassifier), one ``network.keras`` file.
* ``format2_ensemble`` -- model folder format 2, written by commit
  ``c914405`` (``FORMAT_VERSION = 2``).  Like the old bundled
  ``fer2013_ensemble``: Pipeline ``facecropper`` -> ``cnnensembleclassifier``
  (CNNEnsembleClassifier) with a raw member ``fer2013_cnn`` and a member
  ``fer2013_mapped_lbp`` on an MDSMappedLBP representation (P=4, so its
  stored 16x16 ``code_distances_`` stay small).

Each folder also holds ``inputs.npy`` (a few deterministic 48x48 grey
images) and ``expected_proba.npy``, the old code's ``predict_proba`` of them
with ``facecropper__detector=None``.  The networks are tiny (``mtcnn_cnn``
at width 0.125, fitted one epoch on 28 synthetic 24x24 images), so each
folder is a few tens of KB.

How to regenerate (from the repository root)::

    for sha in b808c94 c914405; do
        git worktree add --detach /tmp/oldfersk_$sha $sha
    done
    cd /tmp   # so that the current checkout is not imported
    PYTHONPATH=/tmp/oldfersk_b808c94 python /path/to/repo/tests/data/old_formats/make_fixtures.py 1
    PYTHONPATH=/tmp/oldfersk_c914405 python /path/to/repo/tests/data/old_formats/make_fixtures.py 2
    git -C /path/to/repo worktree remove --force /tmp/oldfersk_b808c94
    git -C /path/to/repo worktree remove --force /tmp/oldfersk_c914405

Training on CPU is deterministic enough here, but the test compares the
loaded folder with its own ``expected_proba.npy``, so a regenerated folder
need not equal the committed one bit for bit.
"""

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline

HERE = Path(__file__).resolve().parent
COMMITS = {1: "b808c94", 2: "c914405"}
DESCRIPTION = {
    1: "Tiny format-1 fixture (FaceCropper -> CNNClassifier), written by fersk at commit b808c94.",
    2: "Tiny format-2 fixture (FaceCropper -> CNNEnsembleClassifier of a raw and a "
       "mapped-LBP member), written by fersk at commit c914405.",
}
NAMES = {1: "format1_cnn", 2: "format2_ensemble"}


def training_data():
    """28 synthetic 24x24 grey images, four per FER-2013 class 0..6: a
    class-dependent brightness gradient plus noise."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(7), 4)
    ramp = np.linspace(0, 1, 24)
    X = np.empty((len(y), 24, 24))
    for i, c in enumerate(y):
        angle = np.pi * c / 7
        X[i] = 60 + 120 * (np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]) / 1.5
    X += rng.normal(0, 20, X.shape)
    return np.clip(X, 0, 255).astype(np.uint8), y


def inputs():
    """The images whose probabilities are recorded (the test's inputs)."""
    return np.random.default_rng(1).integers(0, 256, (5, 48, 48), dtype=np.uint8)


def network(**kwargs):
    from fersk import CNNClassifier

    return CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 8}, epochs=1,
                         batch_size=8, random_state=0, verbose=0, **kwargs)


def build(version):
    from fersk import FaceCropper

    cropper = FaceCropper(detector="mtcnn", size=(24, 24))
    if version == 1:
        last = ("network", network())
    else:
        from fersk import CNNEnsembleClassifier, MDSMappedLBP

        last = ("cnnensembleclassifier", CNNEnsembleClassifier(
            [("fer2013_cnn", None, network()),
             ("fer2013_mapped_lbp", MDSMappedLBP(P=4, R=1, random_state=0), network())],
            weights=[3.0, 2.0],
        ))
    return Pipeline([("facecropper", cropper), last])


def main(version):
    from fersk import pretrained

    if pretrained.FORMAT_VERSION != version:
        sys.exit(f"this fersk ({pretrained.__file__}) writes format "
                 f"{pretrained.FORMAT_VERSION}, not {version}: set PYTHONPATH to a "
                 f"worktree of commit {COMMITS[version]}.")
    X, y = training_data()
    pipe = build(version).set_params(facecropper__detector=None).fit(X, y)
    proba = pipe.predict_proba(inputs())
    metrics = {"train_accuracy": float((pipe.predict(X) == y).mean()),
               "n_train": int(len(y)), "written_by_commit": COMMITS[version]}
    pipe.set_params(facecropper__detector="mtcnn")  # as the bundled folders had it
    folder = pretrained.save(pipe, HERE / NAMES[version], description=DESCRIPTION[version],
                             metrics=metrics)
    np.save(folder / "inputs.npy", inputs())
    np.save(folder / "expected_proba.npy", proba)
    assert json.loads((folder / "pipeline.json").read_text())["format_version"] == version
    # The old code reads back what it wrote.
    again = pretrained.load(folder).set_params(facecropper__detector=None)
    np.testing.assert_allclose(again.predict_proba(inputs()), proba, atol=1e-6)
    for p in sorted(folder.iterdir()):
        print(f"{p.relative_to(HERE)}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("1", "2"):
        sys.exit("usage: make_fixtures.py 1|2")
    main(int(sys.argv[1]))
