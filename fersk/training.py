"""Training recipes on FER-2013: the library behind ``fersk train`` and the bundled models.

The command line (``fersk train``) and ``benchmarks/train_pretrained.py``
call these functions; so can a user, from Python:

* :func:`train_fer2013` trains a network (optionally behind a
  representation, or fine-tuning a saved model) on the Training split with
  PublicTest as validation data, and returns the end-to-end pipeline and
  the metrics of its model card;
* :func:`ensemble_fer2013` joins trained models into Levi & Hassner's
  soft-voting ensemble without retraining them;
* :func:`fer2013_splits`, :func:`publictest_metrics`,
  :func:`ablate_test_time_views`, :func:`representation_steps`,
  :func:`ensemble_member`, :func:`describe` and
  :func:`machine_description` are their parts.

PrivateTest is never read: models are selected on PublicTest, as the
Kaggle protocol says.
"""

import os
import time
import warnings

import numpy as np

from fersk._progress import log

__all__ = [
    "REPRESENTATIONS", "PREDICTION_PARAMS", "machine_description", "representation_steps",
    "fer2013_splits", "publictest_metrics", "ablate_test_time_views", "train_fer2013",
    "distillation_targets", "ensemble_fer2013", "ensemble_member", "describe", "parse_param",
    "discard_training_state",
]


def parse_param(text):
    """One ``KEY=VALUE`` network parameter of the command lines (``--param``).

    Parameters
    ----------
    text : str
        ``KEY=VALUE``; VALUE is read as JSON (numbers, true/false, lists,
        objects, quoted strings) or, failing that, taken as a bare word.

    Returns
    -------
    pair : (str, object)

    Raises
    ------
    argparse.ArgumentTypeError
        When ``text`` is not ``KEY=VALUE`` with an identifier as KEY.

    Examples
    --------
    >>> parse_param("crop_size=40"), parse_param("optimizer=sgd")
    (('crop_size', 40), ('optimizer', 'sgd'))
    >>> parse_param('augment={"zoom": 0}')
    ('augment', {'zoom': 0})
    """
    import argparse
    import json

    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # a bare word: optimizer=sgd


def machine_description():
    """A short description of where the training ran, for model cards.

    Returns
    -------
    description : str
        CPU model, core count, accelerators seen by the Keras backend,
        Keras version and backend.

    Examples
    --------
    >>> from fersk.training import machine_description
    >>> "Keras" in machine_description()
    True
    """
    import platform

    import keras

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    devices = "CPU only"
    if keras.backend.backend() == "jax":
        import jax

        devices = ", ".join(sorted({d.device_kind for d in jax.devices()}))
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        devices = f"{len(gpus)} GPU" if gpus else "CPU only"
    return (
        f"{cpu}, {os.cpu_count()} cores, {devices}, Keras {keras.__version__} "
        f"({keras.backend.backend()})"
    )


#: Image representations a trained network can read (``--representation``).
REPRESENTATIONS = ("raw", "mapped_lbp")


def representation_steps(representation, seed):
    """The pipeline steps between the cropper and the network.

    Parameters
    ----------
    representation : {"raw", "mapped_lbp"}
        What the network reads: grey faces, or Levi & Hassner's mapped LBP.
    seed : int
        Seed of the representation (the MDS embedding).

    Returns
    -------
    steps : list of (str, estimator)
        Empty for "raw".

    Examples
    --------
    >>> from fersk.training import representation_steps
    >>> [name for name, _ in representation_steps("mapped_lbp", 0)]
    ['mdsmappedlbp']
    """
    if representation == "mapped_lbp":
        from fersk import MDSMappedLBP

        return [("mdsmappedlbp", MDSMappedLBP(random_state=seed))]
    return []


def fer2013_splits(data, *, n_train=None, n_test=None, seed=0, load_verbose=1, cache=True):
    """FER-2013 Training and PublicTest images and labels.

    Parameters
    ----------
    data : str or path-like
        The Kaggle ``fer2013.csv`` or the image-folder root.
    n_train, n_test : int or None, default=None
        Stratified, seeded subsets (smoke runs); None keeps all.
    seed : int, default=0
        Seed of the subsets.
    load_verbose : int, default=1
        Verbosity of :func:`fersk.datasets.load_fer2013`.
    cache : bool, default=True
        Use ``load_fer2013``'s cache.

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
        48x48 uint8 faces and their labels 0-6.

    Examples
    --------
    >>> from fersk.training import fer2013_splits
    >>> X, y, Xt, yt = fer2013_splits("../shared/data/fer2013")  # doctest: +SKIP
    28555 Training / 3589 PublicTest images
    """
    from sklearn.model_selection import train_test_split

    from fersk.datasets import load_fer2013

    fer = load_fer2013(data, usage=["Training", "PublicTest"], verbose=load_verbose, cache=cache)
    train = fer.usage == "Training"
    X_train, y_train = fer.images[train], fer.target[train]
    X_test, y_test = fer.images[~train], fer.target[~train]
    if not len(X_train) or not len(X_test):
        raise ValueError(
            f"{data} holds {len(X_train)} Training and {len(X_test)} PublicTest images; "
            "training needs both (PublicTest is the validation data)."
        )
    if n_train is not None and n_train < len(X_train):
        X_train, _, y_train, _ = train_test_split(
            X_train, y_train, train_size=n_train, stratify=y_train, random_state=seed
        )
    if n_test is not None and n_test < len(X_test):
        X_test, _, y_test, _ = train_test_split(
            X_test, y_test, train_size=n_test, stratify=y_test, random_state=seed
        )
    log(None, f"{len(X_train)} Training / {len(X_test)} PublicTest images")
    return X_train, y_train, X_test, y_test


def publictest_metrics(steps, X_test, y_test):
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

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        ``FaceCropper("mtcnn", size=(48, 48), precropped_max_side=64)``
        followed by ``steps``.
    metrics : dict
        ``publictest_accuracy``, ``publictest_accuracy_with_detection`` (the
        faces re-cropped by the scikit-image cascade),
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
        "publictest_accuracy_with_detection": round(float(detection_acc), 4),
        "publictest_confusion_matrix": confusion_matrix(y_test, y_pred).tolist(),
        "inference_images_per_second": round(infer, 1),
    }


#: Network parameters that only change prediction: a trained network's
#: may be set when it is packaged (``--from-checkpoint``).
PREDICTION_PARAMS = ("test_time_crops", "predict_batch_size", "jit_compile")


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
    for crops, views in (("center", 1), ("five", 5)):
        for flip in (False, True):
            net.set_params(test_time_crops=crops, test_time_flip=flip)
            name = f"{views * (2 if flip else 1)} views ({crops}{' + mirror' if flip else ''})"
            scores[name] = round(float(Pipeline(steps).score(X_test, y_test)), 4)
    net.set_params(test_time_crops=kept["test_time_crops"], test_time_flip=kept["test_time_flip"])
    return scores


def train_fer2013(
    data,
    *,
    architecture,
    architecture_params,
    epochs,
    patience,
    batch_size,
    learning_rate,
    augment,
    representation="raw",
    learning_rate_schedule="constant",
    test_time_flip=False,
    init_from=None,
    teacher=None,
    teacher_weight=0.5,
    network_params=None,
    training_state=None,
    keep_training_state=False,
    n_train=None,
    n_test=None,
    seed=0,
    command="",
    checkpoint=None,
    from_checkpoint=False,
    load_verbose=1,
    cache=True,
):
    """Train a network on FER-2013 Training, selected on PublicTest.

    The recipe behind ``fersk train`` and the bundled models: a
    :class:`~fersk.CNNClassifier` fitted on the Training split with the
    PublicTest split as ``validation_data`` (early stopping, best weights
    restored), then put behind ``FaceCropper(size=(48, 48))``.

    Parameters
    ----------
    data : str or path-like
        The Kaggle ``fer2013.csv`` or the image-folder root.
    architecture, architecture_params : str, dict
        The network (:data:`fersk.architectures.ARCHITECTURES`).
    epochs, patience, batch_size, learning_rate : int, int, int, float
        The network's ``epochs``, ``n_iter_no_change``, ``batch_size`` and
        ``learning_rate``.
    augment : bool or dict
        The network's ``augment``.
    representation : {"raw", "mapped_lbp"}, default="raw"
        What the network reads (see :func:`representation_steps`).
    learning_rate_schedule : str, default="constant"
        The network's schedule.
    test_time_flip : bool, default=False
        The saved network averages each face and its mirror image.
    init_from : str or None, default=None
        A pretrained model (name or folder) whose network is trained
        further (``warm_start``) on its own representation;
        ``architecture``, ``architecture_params``, ``augment`` and
        ``representation`` are then the model's, not read.
    teacher : str or None, default=None
        A pretrained model (name or folder) to distil (Hinton et al.,
        2015): the network is trained against ``(1 - teacher_weight)`` times
        the one-hot labels plus ``teacher_weight`` times the teacher's
        probabilities for each Training face (its own test-time views), as
        the estimator's ``sample_proba``.
    teacher_weight : float, default=0.5
        The teacher's share of the targets, in ``[0, 1]``.
    network_params : dict or None, default=None
        Any other :class:`~fersk.CNNClassifier` parameters (the FER-2013
        recipe: ``crop_size``, ``optimizer``, ``label_smoothing``...).
    training_state : str, path-like or None, default=None
        The network's ``checkpoint_dir``: a fit interrupted there continues
        where it stopped when this is called again with the same arguments.
        The state is removed when this function returns (unless
        ``keep_training_state``), not when the fit ends: a run killed while
        scoring or dumping ``checkpoint`` resumes without training again.
    keep_training_state : bool, default=False
        Leave the state in ``training_state`` (holding the fitted network)
        for the caller to remove with :func:`discard_training_state` once it
        has saved the model (``fersk train`` does, after
        :func:`fersk.pretrained.save`): a kill before the save then loses
        no training.
    n_train, n_test : int or None, default=None
        Stratified subsets (smoke runs).
    seed : int, default=0
        ``random_state`` of everything.
    command : str, default=""
        The command line recorded in the metrics.
    checkpoint : str, path-like or None, default=None
        Where the fitted steps and the fit time are dumped with joblib.
    from_checkpoint : bool, default=False
        Read them back from ``checkpoint`` instead of training (packaging
        again, e.g. with other prediction-time settings: ``test_time_flip``
        and the :data:`PREDICTION_PARAMS` in ``network_params`` apply).
    load_verbose : int, default=1
        Verbosity of the data loading.
    cache : bool, default=True
        Use ``load_fer2013``'s cache.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        ``FaceCropper -> [representation] -> network``, fitted.
    metrics : dict
        The model card's: PublicTest accuracy (with detection too, and per
        set of test-time views for crop-trained networks), confusion matrix,
        epochs, training time, parameters, hardware, command.

    Examples
    --------
    >>> from fersk.training import train_fer2013
    >>> pipe, metrics = train_fer2013(  # doctest: +SKIP
    ...     "../shared/data/fer2013", architecture="vgg_fer", architecture_params={},
    ...     epochs=36, patience=100, batch_size=128, learning_rate=0.05,
    ...     augment={"shift": 0.05, "zoom": 0}, learning_rate_schedule="warmup_cosine",
    ...     network_params={"optimizer": "sgd", "crop_size": 40, "label_smoothing": 0.1,
    ...                     "jit_compile": True},
    ...     training_state="runs/vgg.state")
    """
    import joblib
    from sklearn.pipeline import Pipeline

    from fersk import CNNClassifier, pretrained

    X_train, y_train, X_test, y_test = fer2013_splits(
        data, n_train=n_train, n_test=n_test, seed=seed, load_verbose=load_verbose, cache=cache
    )
    training = {
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "learning_rate_schedule": learning_rate_schedule,
        "n_iter_no_change": patience,
        "test_time_flip": test_time_flip,
        "random_state": seed,
        "verbose": 1,
        **(network_params or {}),
        "checkpoint_dir": None if training_state is None else str(training_state),
    }
    init_metrics = {}
    sample_proba = None
    if teacher is not None and not from_checkpoint:
        sample_proba = distillation_targets(teacher, X_train, y_train, teacher_weight)
    if from_checkpoint:
        steps, fit_seconds = joblib.load(checkpoint)
        # Prediction-time settings may be chosen after training.
        steps[-1][1].set_params(test_time_flip=test_time_flip, **{
            k: v for k, v in (network_params or {}).items() if k in PREDICTION_PARAMS
        })
    else:
        if init_from is not None:
            start_pipe = pretrained.load(init_from)
            init_metrics = pretrained.info(init_from)["metrics"]
            steps = start_pipe.steps[1:]
            steps[-1][1].set_params(warm_start=True, **training)
        else:
            net = CNNClassifier(
                architecture, architecture_params, **{"augment": augment, **training}
            )
            steps = [*representation_steps(representation, seed), ("network", net)]
        if training_state is not None:
            # Kept past the fit, until the model is saved (discard_training_state).
            steps[-1][1]._keep_checkpoint = True
        start = time.perf_counter()
        Xt_train, Xt_test = X_train, X_test
        if len(steps) > 1:  # the representation; a loaded one is fitted already
            representation_pipe = Pipeline(steps[:-1])
            if init_from is None:
                Xt_train = representation_pipe.fit_transform(X_train)
            else:
                Xt_train = representation_pipe.transform(X_train)
            Xt_test = representation_pipe.transform(X_test)
        try:
            steps[-1][1].fit(
                Xt_train, y_train, validation_data=(Xt_test, y_test), sample_proba=sample_proba
            )
        finally:
            steps[-1][1].__dict__.pop("_keep_checkpoint", None)
        fit_seconds = time.perf_counter() - start
        # The saved model's own fit builds a new network, as any estimator's,
        # and does not look for this run's training state.
        steps[-1][1].set_params(warm_start=False, checkpoint_dir=None)
        if checkpoint is not None:
            joblib.dump((steps, fit_seconds), checkpoint)

    net = steps[-1][1]
    pipe, metrics = publictest_metrics(steps, X_test, y_test)
    metrics["test_time_flip"] = bool(net.test_time_flip)
    if net.test_time_flip:
        net.set_params(test_time_flip=False)
        metrics["publictest_accuracy_without_flip"] = round(
            float(Pipeline(steps).score(X_test, y_test)), 4
        )
        net.set_params(test_time_flip=True)
    if getattr(net, "crop_size", None) is not None:
        metrics["publictest_accuracy_by_test_time_views"] = ablate_test_time_views(
            steps, X_test, y_test
        )
    metrics.update({
        "representation": "mapped_lbp" if len(steps) > 1 else "raw",
        "n_train": int(len(X_train)),
        "n_publictest": int(len(X_test)),
        "epochs_run": int(net.n_epochs_),
        "best_epoch": int(net.best_epoch_ + 1),
        "train_seconds": round(fit_seconds, 1),
        "learnable_parameters": int(net.n_trainable_params_),
        "fixed_parameters": int(net.n_fixed_params_),
        "hardware": machine_description(),
        "command": command,
    })
    if init_from is not None:
        metrics["init_from"] = {
            "model": str(init_from),
            **{k: init_metrics[k] for k in ("command", "train_seconds", "publictest_accuracy",
                                            "hardware") if k in init_metrics},
        }
    if teacher is not None:
        metrics["teacher"] = {
            "model": str(teacher), "weight": teacher_weight,
            "publictest_accuracy": pretrained.info(teacher)["metrics"].get("publictest_accuracy"),
        }
    if not keep_training_state:
        discard_training_state(pipe)
    return pipe, metrics


def discard_training_state(pipe):
    """Remove the training state :func:`train_fer2013` kept, once the model is saved.

    Parameters
    ----------
    pipe : sklearn.pipeline.Pipeline
        The pipeline :func:`train_fer2013` returned with
        ``keep_training_state=True``; its network's state (a sub-folder of
        ``training_state``) is removed, nothing else.  Does nothing when no
        state was kept.

    Examples
    --------
    >>> from fersk import pretrained
    >>> from fersk.training import discard_training_state, train_fer2013
    >>> pipe, metrics = train_fer2013(  # doctest: +SKIP
    ...     "fer2013.csv", architecture="kaggle_cnn", architecture_params={}, epochs=30,
    ...     patience=5, batch_size=64, learning_rate=1e-3, augment=True,
    ...     training_state="runs/cnn.state", keep_training_state=True)
    >>> pretrained.save(pipe, "my_model", metrics=metrics)  # doctest: +SKIP
    >>> discard_training_state(pipe)  # after the save  # doctest: +SKIP

    A pipeline whose network kept no state is left as it is:

    >>> from sklearn.pipeline import Pipeline
    >>> from fersk import CNNClassifier
    >>> discard_training_state(Pipeline([("network", CNNClassifier())]))
    """
    discard = getattr(pipe.steps[-1][1], "_discard_checkpoint", None)
    if discard is not None:
        discard()


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
        Their labels; each must be one of the teacher's classes.
    weight : float, default=0.5
        The teacher's share, in ``[0, 1]``: 0 gives the one-hot labels.

    Returns
    -------
    sample_proba : ndarray of shape (n_samples, n_teacher_classes)
        Rows summing to 1, columns in the order of the teacher's
        ``classes_``: the ``sample_proba`` of a fersk network's ``fit``.

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
    from fersk import pretrained

    if not 0 <= weight <= 1:
        raise ValueError(f"teacher_weight must be in [0, 1]; got {weight!r}.")
    model = teacher if hasattr(teacher, "predict_proba") else pretrained.load(teacher)
    y = np.asarray(y)
    unknown = sorted(set(np.unique(y).tolist()) - set(model.classes_.tolist()))
    if unknown:
        raise ValueError(f"labels {unknown} are not classes of the teacher {model.classes_.tolist()}.")
    onehot = (y[:, None] == model.classes_[None, :]).astype(np.float64)
    return (1 - weight) * onehot + weight * np.asarray(model.predict_proba(X), dtype=np.float64)


def ensemble_fer2013(
    data, members, *, weights=None, test_time_flip=False, n_test=None, seed=0, command="",
    load_verbose=1, cache=True,
):
    """Join trained models into Levi & Hassner's soft-voting ensemble.

    Each member joins a :class:`~fersk.CNNEnsembleClassifier` as its model
    without the FaceCropper: the network as a
    :class:`~sklearn.frozen.FrozenEstimator`, behind its own representation
    when it has one (a Pipeline), and is not retrained.

    Parameters
    ----------
    data : str or path-like
        FER-2013 (PublicTest scores the ensemble and each member).
    members : list of str
        Pretrained models (names or folders) with the same FaceCropper, or
        ``MODEL:MEMBER`` for one member of a pretrained ensemble (see
        :func:`ensemble_member`).
    weights : list of float or None, default=None
        Soft-vote weights, one per member.
    test_time_flip : bool, default=False
        Switch every member's mirror-image averaging on.
    n_test : int or None, default=None
        Stratified PublicTest subset.
    seed : int, default=0
        Seed of the subset.
    command : str, default=""
        The command line recorded in the metrics.
    load_verbose : int, default=1
        Verbosity of the data loading.
    cache : bool, default=True
        Use ``load_fer2013``'s cache.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        ``FaceCropper -> CNNEnsembleClassifier``.
    metrics : dict
        PublicTest accuracy of the ensemble and of each member, weights,
        summed training time and parameters, hardware, command.

    Examples
    --------
    >>> from fersk.training import ensemble_fer2013
    >>> pipe, metrics = ensemble_fer2013(  # doctest: +SKIP
    ...     "../shared/data/fer2013", ["fer2013_vgg", "fer2013_cnn"], weights=[2, 1])
    """
    from sklearn.base import clone
    from sklearn.frozen import FrozenEstimator

    from fersk import CNNEnsembleClassifier

    X_train, y_train, X_test, y_test = fer2013_splits(
        data, n_test=n_test, seed=seed, load_verbose=load_verbose, cache=cache
    )
    pairs, member_metrics = [], {}
    cropper = None
    for member in members:
        meta, pipe = ensemble_member(member)
        if cropper is None:
            cropper = pipe.steps[0][1]
        if pipe.steps[0][1].get_params() != cropper.get_params() or len(pipe.steps) > 3:
            raise ValueError(
                f"{member}: an ensemble member must be FaceCropper -> [representation] -> "
                f"network with the first member's FaceCropper; it has {meta['steps']}."
            )
        if test_time_flip:
            pipe.steps[-1][1].set_params(test_time_flip=True)
        # The member as trained, representation included: a refit MDSMappedLBP
        # is not the one the network learned on (its embedding depends on the
        # machine's floating point, not only on its parameters).
        pairs.append((meta["name"], FrozenEstimator(pipe[1:] if len(pipe.steps) == 3
                                                    else pipe.steps[-1][1])))
        recorded = meta["metrics"]
        member_metrics[meta["name"]] = {
            "publictest_accuracy": round(float(pipe[1:].score(X_test, y_test)), 4),
            "description": meta["description"],
            **{k: recorded[k] for k in ("command", "train_seconds", "hardware",
                                        "learnable_parameters", "init_from") if k in recorded},
        }
    # Nothing is fitted: every member is frozen.
    ensemble = CNNEnsembleClassifier(pairs, weights=weights).fit(X_train, y_train)
    pipe, metrics = publictest_metrics([("cnnensembleclassifier", ensemble)], X_test, y_test)
    train_seconds = sum(
        m.get("train_seconds", 0) + m.get("init_from", {}).get("train_seconds", 0)
        for m in member_metrics.values()
    )
    metrics.update({
        "members": member_metrics,
        "weights": ensemble.weights_.tolist(),
        "test_time_flip": bool(test_time_flip),
        "n_train": int(len(X_train)),
        "n_publictest": int(len(X_test)),
        "train_seconds": round(train_seconds, 1),
        "learnable_parameters": sum(
            m.get("learnable_parameters", 0) for m in member_metrics.values()
        ),
        "hardware": machine_description(),
        "command": command,
    })
    pipe.steps[0] = ("facecropper", clone(cropper))
    return pipe, metrics


def ensemble_member(member):
    """A pretrained model, or one member of a pretrained ensemble, as a pipeline.

    Parameters
    ----------
    member : str
        A pretrained model's name or folder, or ``MODEL:MEMBER`` for the
        member named MEMBER of the ensemble MODEL.

    Returns
    -------
    info : dict
        As :func:`fersk.pretrained.info`; for a member, its name,
        description and recorded metrics.
    pipeline : sklearn.pipeline.Pipeline
        ``FaceCropper -> [representation] -> network``, fitted.

    Examples
    --------
    >>> from fersk.training import ensemble_member
    >>> info, pipe = ensemble_member("fer2013_ensemble:gpu_vgg_lbp")
    >>> info["name"], [type(est).__name__ for _, est in pipe.steps]
    ('gpu_vgg_lbp', ['FaceCropper', 'MDSMappedLBP', 'CNNClassifier'])
    """
    from sklearn.pipeline import Pipeline

    from fersk import pretrained

    model, sep, name = str(member).rpartition(":")
    if not sep or not model:
        return pretrained.info(member), pretrained.load(member)
    meta, pipe = pretrained.info(model), pretrained.load(model)
    ensemble = pipe.steps[-1][1]
    named = getattr(ensemble, "named_estimators_", {})
    if name not in named:
        raise ValueError(f"{member}: {model} has no ensemble member {name!r} ({sorted(named)}).")
    sub = named[name]
    steps = [pipe.steps[0]] + (sub.steps if isinstance(sub, Pipeline) else [("network", sub)])
    recorded = meta["metrics"].get("members", {}).get(name, {})
    return {**meta, "name": name, "description": recorded.get("description", meta["description"]),
            "steps": [(s, f"{type(e).__module__}.{type(e).__qualname__}") for s, e in steps],
            "metrics": recorded}, Pipeline(steps)


def describe(
    *, architecture, shape, representation, subset="", init_from=None, learning_rate=None,
    schedule=None,
):
    """The one-line description of a trained model, for its card.

    Parameters
    ----------
    architecture : str
        The network's architecture.
    shape : str
        Its size in words (e.g. "width 0.25"), or "".
    representation : {"raw", "mapped_lbp"}
        What it reads.
    subset : str, default=""
        Said after "Training" (e.g. " (700 images)").
    init_from : str or None, default=None
        The model it was fine-tuned from.
    learning_rate : float or None, default=None
        The fine-tuning rate.
    schedule : str or None, default=None
        The fine-tuning schedule.

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
