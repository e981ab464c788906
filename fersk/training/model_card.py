"""What a trained model's card records: PublicTest metrics, test-time views, description."""

import os
import time
import warnings

from fersk._lazy_validation import validate_params_on_call

__all__ = ["publictest_metrics", "ablate_test_time_views", "describe"]

# Whether the steps fit together (their last a fitted network) is for
# scikit-learn's Pipeline to say.
_STEPS_AND_DATA = {"steps": [list], "X_test": ["array-like"], "y_test": ["array-like"]}


def _describe_constraints():
    from numbers import Real

    from sklearn.utils._param_validation import Interval, StrOptions

    from fersk._keras_params import LEARNING_RATE_SCHEDULES
    from fersk.training.params import REPRESENTATIONS

    return {
        "architecture": [str, None],
        "shape": [str],
        "representation": [StrOptions(set(REPRESENTATIONS))],
        "subset": [str],
        "init_from": [str, os.PathLike, None],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "schedule": [StrOptions(set(LEARNING_RATE_SCHEDULES)), None],
    }


def _metrics_constraints():
    from sklearn.utils._param_validation import HasMethods

    return {**_STEPS_AND_DATA, "cropper": [HasMethods(["crop"]), None]}


@validate_params_on_call(_metrics_constraints)
def publictest_metrics(steps, X_test, y_test, cropper=None):
    """The end-to-end pipeline ``FaceCropper -> steps`` and its PublicTest metrics.

    Accuracy on FER-2013's faces as they are (crops already, see
    FaceCropper's notes) and through face detection, as photos would go;
    the confusion matrix and the classification rate.

    Parameters
    ----------
    steps : list of (str, estimator)
        Fitted steps after the cropper.
    X_test, y_test : ndarray
        PublicTest faces and labels.
    cropper : FaceCropper or None, default=None
        The pipeline's first step (a fine-tuned model's own cropper); None:
        ``FaceCropper("mtcnn", size=(48, 48), precropped_max_side=64)``.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        ``cropper`` followed by ``steps``.
    metrics : dict
        ``publictest_accuracy``, ``publictest_accuracy_skimage_detection``
        (the faces re-cropped by the scikit-image cascade, not the model's
        own detector, which takes such crops whole; cards written before
        2026-12-07 call it ``publictest_accuracy_with_detection``),
        ``publictest_confusion_matrix``, ``inference_images_per_second``.

    Examples
    --------
    >>> import numpy as np
    >>> from fersk import CNNClassifier
    >>> from fersk.training import publictest_metrics
    >>> X = np.random.default_rng(0).integers(0, 256, (20, 48, 48), dtype=np.uint8)
    >>> y = np.arange(20) % 7
    >>> net = CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1).fit(X, y)
    >>> pipe, metrics = publictest_metrics([("network", net)], X, y)
    >>> sorted(metrics)[:2]
    ['inference_images_per_second', 'publictest_accuracy']
    """
    from sklearn.metrics import accuracy_score, confusion_matrix
    from sklearn.pipeline import Pipeline

    from fersk import FaceCropper
    from fersk.face import NoFaceWarning

    model = Pipeline(steps)
    start = time.perf_counter()
    proba = model.predict_proba(X_test)
    infer = len(X_test) / (time.perf_counter() - start)
    y_pred = model.classes_[proba.argmax(axis=1)]
    # Faces of up to 64 pixels a side are taken whole (as FER-2013's 48x48
    # crops); larger photos go through MTCNN, whose box with margin 0 framed
    # web faces best for these networks (benchmarks/bench_in_the_wild.py).
    if cropper is None:
        cropper = FaceCropper("mtcnn", size=(48, 48), precropped_max_side=64)
    pipe = Pipeline([("facecropper", cropper), *steps])
    with warnings.catch_warnings():
        # What detection does to FER's tight crops, measured with the
        # scikit-image cascade: MTCNN costs about 65 ms a face here, minutes
        # on PublicTest, for a number the saved pipeline (which takes such
        # crops whole) never produces.
        warnings.simplefilter("ignore", NoFaceWarning)
        detection_acc = Pipeline(
            [("facecropper", FaceCropper("skimage", size=(48, 48))), *steps]
        ).score(X_test, y_test)
    return pipe, {
        "publictest_accuracy": round(float(accuracy_score(y_test, y_pred)), 4),
        # Named for its detector: "with detection" read as the model's own.
        "publictest_accuracy_skimage_detection": round(float(detection_acc), 4),
        # A row and a column per class, in the order of classes_ (a subset
        # without a class must not shift the others).
        "publictest_confusion_matrix": confusion_matrix(
            y_test, y_pred, labels=model.classes_).tolist(),
        "inference_images_per_second": round(infer, 1),
    }


@validate_params_on_call(_STEPS_AND_DATA)
def ablate_test_time_views(steps, X_test, y_test):
    """PublicTest accuracy of a crop-trained network with each set of test-time views.

    Parameters
    ----------
    steps : list of (str, estimator)
        Fitted steps after the cropper, the last a network trained with
        ``crop_size``.
    X_test, y_test : ndarray
        PublicTest faces and labels.

    Returns
    -------
    scores : dict
        Accuracy with the centre view, + its mirror, the five crops and the
        ten crops (five + mirrors); the network's settings are restored.

    Examples
    --------
    >>> from fersk.training import ablate_test_time_views
    >>> ablate_test_time_views(steps, X_test, y_test)  # doctest: +SKIP
    {'1 views (center)': 0.65, '2 views (center + mirror)': 0.66, ...}
    """
    from sklearn.pipeline import Pipeline

    net = steps[-1][1]
    kept = net.get_params()
    scores = {}
    try:
        for crops, views in (("center", 1), ("five", 5)):
            for flip in (False, True):
                net.set_params(test_time_crops=crops, test_time_flip=flip)
                if "test_time_margin" in kept:  # each face gets the views named, not a gated mix
                    net.set_params(test_time_margin=None)
                name = f"{views * (2 if flip else 1)} views ({crops}{' + mirror' if flip else ''})"
                scores[name] = round(float(Pipeline(steps).score(X_test, y_test)), 4)
    finally:  # the caller's network as given, whatever was raised
        net.set_params(**{k: kept[k] for k in ("test_time_crops", "test_time_flip",
                                               "test_time_margin") if k in kept})
    return scores


@validate_params_on_call(_describe_constraints)
def describe(
    *, architecture, shape, representation, subset="", init_from=None, learning_rate=None,
    schedule=None,
):
    """The one-line description of a trained model, for its card.

    Parameters
    ----------
    architecture : str or None
        The network's architecture (not read with ``init_from``).
    shape : str
        Its size in words (e.g. "width 0.25"), or "".
    representation : {"raw", "mapped_lbp"}
        What it reads.
    subset : str, default=""
        Said after "Training" (e.g. " (700 images)").
    init_from : str, path-like or None, default=None
        The model it was fine-tuned from.
    learning_rate : float or None, default=None
        The fine-tuning rate (needed with ``init_from``).
    schedule : {"constant", "plateau", "cosine", "warmup_cosine"} or None, default=None
        The fine-tuning schedule (needed with ``init_from``).

    Returns
    -------
    description : str

    Examples
    --------
    >>> from fersk.training import describe
    >>> describe(architecture="vgg_fer", shape="", representation="raw")
    'vgg_fer on raw 48x48 grey faces, trained on FER-2013 Training, selected on PublicTest; FaceCropper in front for photos.'
    """
    if init_from is not None:
        if learning_rate is None or schedule is None:
            raise ValueError(
                "describe: a fine-tuned model's description (init_from) needs its "
                f"learning_rate and schedule; got {learning_rate!r} and {schedule!r}."
            )
        from fersk import pretrained

        return (
            f"{pretrained.info(init_from)['description']} Fine-tuned on FER-2013 Training "
            f"(warm start, learning rate {learning_rate:g}, {schedule} schedule), selected "
            "on PublicTest."
        )
    what = {
        "raw": "raw 48x48 grey faces",
        "mapped_lbp": "mapped-LBP images (Levi & Hassner) of 48x48 grey faces",
    }[representation]
    return (
        f"{architecture}{f' ({shape})' if shape else ''} on {what}, trained on FER-2013 "
        f"Training{subset}, selected on PublicTest; FaceCropper in front for photos."
    )
