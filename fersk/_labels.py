"""A model's labels: FER-2013's seven names, and which network output is which class.

Below both the loaders (:mod:`fersk.datasets`, whose ``target`` holds
FER-2013's indices) and the model folders (:mod:`fersk.pretrained`, which
name the bundled models' classes with them), so that neither imports the
other for them; and below the estimators (Keras, ONNX, ensemble), which put
their probability columns in the order of ``classes_`` with the same rule.
Light: numpy only (the ONNX back end imports it without TensorFlow).
"""

import numbers

import numpy as np

#: FER-2013 class names, index = label.
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def fer2013_labels(classes, class_names):
    """The FER-2013 label of each of a model's classes, read from its names;
    None when they are not FER-2013's.

    A model trained on a user's folders has codes in folder order (4 =
    neutral) under FER-2013's names: its codes are not FER-2013's labels
    (4 = sad), its names are.  Classes named by their own numbers (a model
    saved without names) are taken as FER-2013 labels only when they are
    the seven, 0..6, as :func:`default_class_names` names them: a subset's
    numbers may be folder codes (0, 1, 2 = happy, sad, surprise), and a
    guess would score every prediction as another class.

    Examples
    --------
    >>> fer2013_labels([0, 1], ["happy", "neutral"]).tolist()
    [3, 6]
    >>> fer2013_labels(range(7), [str(c) for c in range(7)]).tolist()
    [0, 1, 2, 3, 4, 5, 6]
    >>> fer2013_labels([2, 5], ["2", "5"]) is None
    True
    >>> fer2013_labels([0, 1], ["cat", "dog"]) is None
    True
    """
    names = [str(n) for n in class_names]
    if len(set(names)) == len(names) and set(names) <= set(FER2013_CLASSES):
        return np.array([FER2013_CLASSES.index(n) for n in names])
    classes = list(classes)
    own_numbers = names == [str(c) for c in classes] and all(
        isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in classes
    ) and sorted(int(c) for c in classes) == list(range(len(FER2013_CLASSES)))
    return np.array([int(c) for c in classes]) if own_numbers else None


def class_names_of(model):
    """The names of a fitted classifier's (or Pipeline's) ``classes_``, in
    that order: those its model folder gave it (:func:`fersk.pretrained.load`),
    else :func:`default_class_names`.

    A model trained on a user's folders and saved with their names (codes
    in folder order, 4 = neutral) keeps them when loaded: FER-2013's order
    would misname its classes.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> model = DummyClassifier().fit(np.zeros((7, 1)), np.arange(7))
    >>> class_names_of(model)[:2]
    ['angry', 'disgust']
    """
    last = model.steps[-1][1] if hasattr(model, "steps") else model
    names = getattr(last, "_class_names", None)
    return list(names) if names is not None else default_class_names(list(last.classes_))


def check_class_names(names, classes):
    """``names`` as a list, if they are one distinct non-empty string per
    class of ``classes``; else a ValueError (a bare string, ``"ok"`` for two
    classes, named them 'o' and 'k').

    Examples
    --------
    >>> check_class_names(("happy", "sad"), [0, 1])
    ['happy', 'sad']
    >>> check_class_names("ok", [0, 1])
    Traceback (most recent call last):
        ...
    ValueError: class_names must be 2 distinct non-empty strings, one per class of [0, 1]; got 'ok'.
    """
    listed = None if isinstance(names, str) else list(names)
    if (listed is None or len(listed) != len(classes)
            or not all(isinstance(n, str) and n for n in listed) or len(set(listed)) != len(listed)):
        raise ValueError(
            f"class_names must be {len(classes)} distinct non-empty strings, one per class of "
            f"{list(classes)}; got {names!r}."
        )
    return listed


def default_class_names(classes):
    """Names of a model's classes when none were given: FER-2013's for
    exactly its seven labels 0..6, else each label as text.

    Integers that are some other set (0 and 1 of a user's own folders, a
    subset of FER-2013's) are not named by FER-2013's order: a guess there
    would put a wrong word on every prediction.

    Examples
    --------
    >>> default_class_names([0, 1, 2, 3, 4, 5, 6])[:2]
    ['angry', 'disgust']
    >>> default_class_names([0, 1])
    ['0', '1']
    """
    classes = list(classes)
    fer = len(classes) == len(FER2013_CLASSES) and all(
        isinstance(c, numbers.Integral) and not isinstance(c, bool) and c == k
        for k, c in enumerate(classes)
    )
    return list(FER2013_CLASSES) if fer else [str(c) for c in classes]


def _in_class_order(estimator, columns):
    """``columns`` (a column per network output) in the order of
    ``estimator.classes_``.

    They differ only where :func:`fersk.pretrained.load` gave a model its
    labels sorted (``labels="names"``: ``"angry", "disgust", "fear",
    "happy", "neutral", ...`` where the network answers in FER-2013's
    order): scikit-learn's scorers read probability columns in the sorted
    order of the labels, so ``classes_`` is kept sorted and the columns
    follow it (``_label_columns``: the output of each class).
    """
    order = getattr(estimator, "_label_columns", None)
    return columns if order is None else columns[:, order]


def _in_output_order(estimator, values):
    """``values`` given in the order of ``estimator.classes_`` (its labels,
    names), put in the order of its network's outputs: how a model folder
    stores them (the inverse of :func:`_in_class_order`)."""
    values = np.asarray(values)
    order = getattr(estimator, "_label_columns", None)
    if order is None:
        return values
    out = np.empty_like(values)
    out[order] = values
    return out


def _stored_classes(estimator):
    """The labels a model folder stores for ``estimator``, in its network's
    output order: those it was trained on (a model loaded with
    ``labels="names"`` shows names, and its folder keeps the codes)."""
    codes = getattr(estimator, "_label_codes", None)
    return np.asarray(codes) if codes is not None else _in_output_order(
        estimator, estimator.classes_)

