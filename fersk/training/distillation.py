"""Soft targets for distillation (Hinton et al., 2015): ``fersk train --teacher``."""

import os

import numpy as np

from fersk._lazy_validation import validate_params_on_call

__all__ = ["distillation_targets"]


def _constraints():
    from numbers import Real

    from sklearn.utils._param_validation import HasMethods, Interval

    from fersk._constraints import NotBool

    return {
        "teacher": [str, os.PathLike, HasMethods(["predict_proba"])],
        "X": ["array-like"],
        "y": ["array-like"],
        "weight": [NotBool(Interval(Real, 0, 1, closed="both"))],
    }


@validate_params_on_call(_constraints)
def distillation_targets(teacher, X, y, weight=0.5):
    """Soft targets mixing one-hot labels with a teacher model's probabilities.

    Parameters
    ----------
    teacher : str, path-like or sklearn.pipeline.Pipeline
        A pretrained model (name or folder, see :func:`fersk.pretrained.load`)
        or any fitted classifier with ``predict_proba`` and ``classes_``.
    X : array-like
        The images the teacher classifies (those the student trains on).
    y : array-like of shape (n_samples,)
        Their labels; each must be one of the teacher's classes, and each
        teacher class must have a label in ``y`` unless the classes are the
        integers 0..n-1 (the student then keeps a column for a class without
        a sample).
    weight : float, default=0.5
        The teacher's share, in ``[0, 1]``: 0 gives the one-hot labels.

    Returns
    -------
    sample_proba : ndarray of shape (n_samples, n_teacher_classes)
        Rows summing to 1, a column per teacher class in sorted order (the
        order of the student's ``classes_``, whatever the order of the
        teacher's): the ``sample_proba`` of a fersk network's ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> from fersk.training import distillation_targets
    >>> X, y = np.zeros((4, 1)), np.array([0, 0, 0, 1])
    >>> teacher = DummyClassifier(strategy="prior").fit(X, y)
    >>> distillation_targets(teacher, X, y, weight=0.5)[0]
    array([0.875, 0.125])
    """
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import column_or_1d

    from fersk import pretrained

    # Keras: the teacher's own probabilities, not its int8 graph's (backend "auto").
    model = teacher if hasattr(teacher, "predict_proba") else pretrained.load(teacher, backend="keras")
    if not hasattr(model, "classes_"):  # any object with predict_proba and classes_
        raise NotFittedError(f"the teacher {type(model).__name__} is not fitted (no classes_).")
    # One label per image: a y of another length (or a column, or one-hot
    # rows) was broadcast against the images without a word.
    y = column_or_1d(y, warn=False)
    if len(y) != len(X):
        raise ValueError(f"X and y must be as long: {len(X)} images, {len(y)} labels.")
    unknown = sorted(set(np.unique(y).tolist()) - set(model.classes_.tolist()))
    if unknown:
        raise ValueError(f"labels {unknown} are not classes of the teacher {model.classes_.tolist()}.")
    # The student's classes_ are the sorted labels; a teacher's need not be
    # (pretrained.load(labels="names") keeps its network's output order).
    order = np.argsort(model.classes_, kind="stable")
    classes = model.classes_[order]
    # The student's classes_ are y's labels, widened to 0..n-1 only for
    # integer columns 0..n-1: any other teacher classes y lacks would leave
    # the columns shifted against them (class 3's faces taught as class 1).
    contiguous = classes.dtype.kind in "iu" and np.array_equal(classes, np.arange(len(classes)))
    absent = sorted(set(classes.tolist()) - set(np.unique(y).tolist()))
    if absent and not contiguous:
        raise ValueError(
            f"the teacher's classes {absent} have no label in y: a student fitted on these "
            f"targets takes y's classes {np.unique(y).tolist()} for the columns of the "
            f"teacher's {classes.tolist()}, shifted; give each teacher class a sample, or "
            "distil a teacher of y's classes."
        )
    onehot = (y[:, None] == classes[None, :]).astype(np.float64)
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    if proba.shape != (len(y), len(classes)):
        raise ValueError(
            f"the teacher's predict_proba gave shape {proba.shape} for {len(y)} images and "
            f"{len(classes)} classes: expected ({len(y)}, {len(classes)})."
        )
    return (1 - weight) * onehot + weight * proba[:, order]
