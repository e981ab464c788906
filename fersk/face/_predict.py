"""Every face of every photo through a fitted pipeline: :func:`predict_faces`.

Above the cropper: it finds the faces with the pipeline's own
:class:`FaceCropper` and classifies the crops with the rest of the pipeline.
"""

import functools

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import StrOptions, validate_params

from .._validation import restore_layout
from ._cropper import FaceCropper
from ._records import _NO_FACE, _crops_to_classify, _warn_no_face

__all__ = ["predict_faces"]


@validate_params(
    {
        "model": "no_validation",  # what it must be is checked below, with the fix
        "X": "no_validation",  # images or files, as FaceCropper takes them
        "faces": [StrOptions({"all", "largest"})],
        "on_no_face": [StrOptions({"skip", "whole", "center"})],
    },
    prefer_skip_nested_validation=True,
)
def predict_faces(model, X, *, faces="all", on_no_face="skip"):
    """Classify every face of every photo with a fitted pipeline.

    A fitted pipeline starting with a :class:`FaceCropper` (such as
    :func:`fersk.pretrained.load`'s) classifies one face per image, the
    largest; this finds every face (or the largest, ``faces='largest'``),
    crops each as the pipeline's cropper does, and runs the crops through
    the rest of the pipeline.  Images the cropper takes whole as face crops
    (``detector=None``, ``precropped_max_side``) are one face each.

    Parameters
    ----------
    model : sklearn.pipeline.Pipeline
        Fitted, its first step a :class:`FaceCropper`, its last a
        classifier with ``predict_proba``.
    X : list of (array-like or path) or array-like
        Photos or image files, as :class:`FaceCropper` takes them.
    faces : {'all', 'largest'}, default='all'
        Every face of each image, or its largest only (the face
        ``model.predict`` classifies).
    on_no_face : {'skip', 'whole', 'center'}, default='skip'
        An image without a face: 'skip' gives it one record whose
        ``"label"`` and ``"proba"`` are None; 'whole' and 'center' classify
        the whole image or its centre, as :class:`FaceCropper`'s
        ``on_no_face`` does (the bundled pipelines' ``model.predict`` uses
        'whole'), and a :class:`NoFaceWarning` names the images.  Either
        way the record's ``"face"`` and ``"box"`` are None and its
        ``"kind"`` is 'none', so the label of an image without a face is
        never mistaken for a face's.

    Returns
    -------
    records : list of dict
        One per face, image by image and largest face first: ``"image"``
        (index into ``X``), ``"face"`` (rank in its image), ``"box"``
        ``(row, col, height, width)``, ``"confidence"``, ``"eyes"``,
        ``"kind"`` ('detected', 'precropped': the image taken whole as a
        face crop, or 'none': no face), ``"label"`` (a class of the model)
        and ``"proba"`` (ndarray over ``model.classes_``).  An image
        without a face is not dropped: it has one record (see
        ``on_no_face``).

    Raises
    ------
    ValueError
        When ``model`` is not such a pipeline, or for input the cropper
        refuses.

    Examples
    --------
    >>> import numpy as np
    >>> from skimage import data
    >>> from fersk import pretrained, predict_faces
    >>> model = pretrained.load()
    >>> records = predict_faces(model, [data.astronaut(), np.zeros((100, 100))])
    >>> [(r["image"], r["face"], r["box"], r["kind"]) for r in records]  # MTCNN's box
    [(0, 0, (64.0, 182.0, 107.0, 83.0), 'detected'), (1, None, None, 'none')]
    >>> pretrained.info()["class_names"][records[0]["label"]]
    'happy'

    The bundled models take images of up to 64 pixels a side whole, as
    face crops (``precropped_max_side``): ``np.zeros((64, 64))`` would be
    one face, box ``(0.0, 0.0, 64.0, 64.0)``, kind 'precropped'.  With
    ``on_no_face='whole'`` the image without a face is classified as
    ``model.predict`` classifies it:

    >>> import warnings
    >>> from fersk.face import NoFaceWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", NoFaceWarning)
    ...     grey = predict_faces(model, [np.zeros((100, 100))], on_no_face="whole")
    ...     same = bool(grey[0]["label"] == model.predict([np.zeros((100, 100))])[0])
    >>> grey[0]["kind"], same
    ('none', True)
    """
    if not isinstance(model, Pipeline) or not isinstance(model.steps[0][1], FaceCropper):
        raise ValueError(
            "predict_faces needs a fitted Pipeline whose first step is a FaceCropper; "
            f"got {type(model).__name__}."
        )
    cropper = model.steps[0][1]
    images, flat = cropper._images(X)
    cfg = cropper._config(np.uint8)
    work = functools.partial(
        _crops_to_classify, largest=faces == "largest", on_no_face=on_no_face
    )
    per_image = cropper._run(images, cfg, work)
    pairs = [pair for found in per_image for pair in found]
    if pairs:
        # rows in, rows on: the next steps take the cropper's output as model.predict gives it
        crops = restore_layout(np.stack([crop for crop, _ in pairs]), flat)
        proba = model[1:].predict_proba(crops)
        # fersk's classifiers predict the argmax of their probabilities; any
        # other (SVC's Platt-scaled probabilities) is asked, as model.predict is.
        labels = (model.classes_[np.argmax(proba, axis=1)]
                  if getattr(model.steps[-1][1], "_predicts_proba_argmax", False)
                  else model[1:].predict(crops))
    else:
        proba, labels = np.zeros((0, len(model.classes_))), []
    by_image = {}
    for (_, record), p, label in zip(pairs, proba, labels):
        record = {**record, "label": label, "proba": p}
        by_image.setdefault(record["image"], []).append(record)
    if on_no_face != "skip":
        no_face = [i for i, found in by_image.items() if found[0]["kind"] == "none"]
        _warn_no_face(no_face, len(images), on_no_face)
    skipped = {"label": None, "proba": None}
    return [
        record
        for i in range(len(images))
        for record in by_image.get(i) or [{"image": i, **_NO_FACE, **skipped}]
    ]
