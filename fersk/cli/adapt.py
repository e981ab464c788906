"""``fersk adapt``: a new last layer for a model, from a folder of labelled faces.

The model's network reads the images (through the model's own
FaceCropper, so photos are framed as the model frames them at prediction);
a scikit-learn ``LogisticRegression`` fitted on its features
(:class:`fersk.NetworkFeatures`) becomes the network's output layer
(:func:`fersk.network_features.fold_head`), and the result is written as a
model folder that ``--model`` accepts everywhere.  The network itself is
not trained: seconds on a CPU for hundreds of faces.
"""

import os
import warnings
from pathlib import Path

import numpy as np

from fersk import pretrained
from fersk.datasets import load_image_folder

from ._common import EXIT_OK, _UsageError

__all__ = ["run"]


def run(args):
    """Run ``fersk adapt``: fit a new last layer on a labelled folder and save the model.

    Parameters
    ----------
    args : argparse.Namespace
        The options of ``fersk adapt`` as :func:`fersk.cli.main` parses
        them: ``data`` (a folder with one sub-folder of images per class),
        ``out``, ``model``, ``C``, ``cv``, ``overwrite`` and ``verbose``.

    Returns
    -------
    status : int
        0; a data path that is not a folder, an unreadable image in it,
        fewer than two classes, ``--cv 1``, an unknown model or an ensemble, an
        ``--out`` that exists without ``--overwrite`` (or, with it, is not a
        model folder) is a usage error (status 2), before any face is
        cropped.

    Examples
    --------
    >>> from fersk.cli import main
    >>> main(["adapt", "--data", "my_faces/", "--out", "my_model"])  # doctest: +SKIP
    0
    """
    from sklearn.base import clone
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline

    from fersk import NetworkFeatures
    from fersk.face import FaceCropper, NoFaceWarning

    if args.cv == 1:  # one fold is no cross-validation: said as such, not as a class's size
        raise _UsageError("--cv: cross-validation needs 2 folds or more (0: none).")
    data = Path(args.data)
    if not data.is_dir():
        raise _UsageError(
            f"--data: {args.data!r} is not a folder; give a folder with one sub-folder of "
            "images per class (its name is the class's)."
        )
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise _UsageError(f"--out: {args.out!r} exists; give another folder or --overwrite.")
    try:  # --overwrite replaces a model folder, nothing else: said before any work
        pretrained._replaceable(out)
    except ValueError as exc:
        raise _UsageError(f"--out: {exc}") from None
    try:
        meta = pretrained.info(args.model)
    except ValueError as exc:
        raise _UsageError(f"--model: {exc}") from None
    if meta["steps"][-1][1].endswith("CNNEnsembleClassifier"):
        raise _UsageError(
            f"--model: {meta['name']} is an ensemble: its members' features have no one "
            "output layer to take the new one; choose a model of one network."
        )
    try:
        folder = load_image_folder(data, color=True, verbose=int(args.verbose))
    except ValueError as exc:  # an unreadable image names itself
        raise _UsageError(f"--data: {exc}") from None
    names = np.asarray(folder.target_names)
    counts = np.bincount(folder.target, minlength=len(names))
    present = names[counts > 0]
    if len(present) < 2:
        raise _UsageError(
            f"--data: {args.data!r} holds images of {len(present)} class folder(s) "
            f"({list(present)}); a new last layer needs two classes or more."
        )
    labels = names[folder.target]  # the folder names are the new model's classes
    images = list(folder.images)
    print(f"{len(images)} images in {len(present)} classes: "
          + ", ".join(f"{n} {c}" for n, c in zip(names, counts) if c), flush=True)
    pipeline = pretrained.load(args.model, backend="keras")
    # The model's own cropper, once: the folds and the final fit read the same
    # faces, and the images it found no face in are named by file.
    cropper_step = pipeline.steps[0] if isinstance(pipeline.steps[0][1], FaceCropper) else None
    rest = pipeline[1:] if cropper_step is not None else pipeline
    if cropper_step is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NoFaceWarning)
            # A copy reports progress under -v; the saved cropper keeps its settings.
            cropper = clone(cropper_step[1]).set_params(verbose=int(args.verbose))
            images, info = cropper.crop(images)
        no_face = [str(folder.filenames[i]) for i in info.no_face_indices]
        if no_face:
            print(f"note: no face found in {len(no_face)} of {len(folder.filenames)} images; "
                  f"read as the model reads them (on_no_face={cropper_step[1].on_no_face!r}): "
                  + ", ".join(no_face[:10]) + (", ..." if len(no_face) > 10 else ""), flush=True)
    head = make_pipeline(NetworkFeatures(FrozenEstimator(rest)),
                         LogisticRegression(C=args.C, max_iter=5000))
    metrics = {"n_images": len(labels), "images_per_class": {
        str(n): int(c) for n, c in zip(names, counts) if c}}
    try:
        folded = _new_last_layer(head, images, labels, counts, args.cv, metrics)
    except ValueError as exc:
        if cropper_step is not None:
            raise
        # No FaceCropper: the images reach the network as read (any size, colour).
        raise _UsageError(
            f"--data: {meta['name']} has no FaceCropper, so its network reads the images "
            f"as they are, and they do not fit it: {exc}"
        ) from None
    model = folded if cropper_step is None else Pipeline([cropper_step, *folded.steps])
    description = (f"{meta['name']} with a new last layer: LogisticRegression(C={args.C:g}) on "
                   f"its network's features, fitted on {len(labels)} images of {os.fspath(data)!r} "
                   "(fersk adapt).")
    pretrained.save(model, out, description=description, metrics=metrics)
    print(f"wrote {args.out}: classes {', '.join(map(str, model.steps[-1][1].classes_))}")
    return EXIT_OK


def _new_last_layer(head, images, labels, counts, cv_folds, metrics):
    """The head fitted on every image and folded into the network; with
    ``cv_folds`` its cross-validated accuracy first (into ``metrics``)."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    from fersk.network_features import fold_head

    if cv_folds:
        folds = min(cv_folds, int(counts[counts > 0].min()))
        if folds >= 2:
            cv = StratifiedKFold(folds, shuffle=True, random_state=0)
            # Each fold's head folded into the network, as the saved model
            # predicts (its views' probabilities averaged and gated), not the
            # head on view-averaged features.
            def rows(index):  # cropped faces (an array), or the images as read (a list)
                return images[index] if isinstance(images, np.ndarray) else [
                    images[i] for i in index]

            predicted = np.empty(len(labels), dtype=labels.dtype)
            for train, test in cv.split(np.zeros(len(labels)), labels):
                fold = fold_head(clone(head).fit(rows(train), labels[train]))
                predicted[test] = fold.predict(rows(test))
            accuracy = float(np.mean(predicted == labels))
            metrics[f"cv{folds}_accuracy"] = accuracy
            print(f"cross-validated accuracy of the new last layer ({folds} folds): "
                  f"{accuracy:.3f}", flush=True)
        else:
            print(f"--cv: a class has {int(counts[counts > 0].min())} image(s): "
                  "no cross-validation", flush=True)
    return fold_head(head.fit(images, labels))
