"""The names of FER-2013's seven labels, index = label.

Below both the loaders (:mod:`fersk.datasets`, whose ``target`` holds these
indices) and the model folders (:mod:`fersk.pretrained`, which name the
bundled models' classes with them), so that neither imports the other for
them.
"""

import numbers

#: FER-2013 class names, index = label.
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


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
