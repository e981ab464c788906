"""Training a network on FER-2013: splits, representation, the fit and its checkpoint.

PrivateTest is never read: models are selected on PublicTest, as the
Kaggle protocol says.
"""

import os
import time

import numpy as np

from fersk._lazy_validation import validate_params_on_call
from fersk._progress import log
from fersk.training.distillation import distillation_targets
from fersk.training.machine import machine_description
from fersk.training.model_card import ablate_test_time_views, publictest_metrics
from fersk.training.params import REPRESENTATIONS

__all__ = [
    "PREDICTION_PARAMS", "representation_steps", "fer2013_splits",
    "train_fer2013", "discard_training_state",
]



def _seed():
    """The constraint of a seed: what NumPy and Keras take as one."""
    from numbers import Integral

    from sklearn.utils._param_validation import Interval

    return [Interval(Integral, 0, 2**32 - 1, closed="both")]


def _subset():
    """The constraint of ``n_train`` and ``n_test``: a size, or None for all."""
    from numbers import Integral

    from sklearn.utils._param_validation import Interval

    return [Interval(Integral, 1, None, closed="left"), None]


def _representation_constraints():
    from sklearn.utils._param_validation import StrOptions

    return {"representation": [StrOptions(set(REPRESENTATIONS))], "seed": _seed()}


def _splits_constraints():
    return {
        "data": [str, os.PathLike],
        "n_train": _subset(),
        "n_test": _subset(),
        "seed": _seed(),
        "load_verbose": ["verbose"],
        "cache": ["boolean"],
    }


def _train_constraints():
    # The network's parameters are checked as CNNClassifier checks them,
    # here before the data are loaded (fersk.classifiers imports Keras,
    # which the training needs anyway).
    from numbers import Real

    from sklearn.utils._param_validation import Interval

    from fersk._constraints import NotBool
    from fersk.classifiers import CNNClassifier

    net = CNNClassifier._parameter_constraints
    return {
        **_splits_constraints(),
        **_representation_constraints(),
        "architecture": [*net["architecture"], None],  # None: with init_from
        "architecture_params": net["architecture_params"],
        "epochs": net["epochs"],
        "patience": net["n_iter_no_change"],
        "batch_size": net["batch_size"],
        "learning_rate": net["learning_rate"],
        "augment": net["augment"],
        "learning_rate_schedule": net["learning_rate_schedule"],
        "test_time_flip": [*net["test_time_flip"], None],  # None: as init_from's
        "init_from": [str, os.PathLike, None],
        "teacher": [str, os.PathLike, None],
        "teacher_weight": [NotBool(Interval(Real, 0, 1, closed="both"))],
        "network_params": [dict, None],
        "training_state": net["checkpoint_dir"],
        "keep_training_state": ["boolean"],
        "resume": ["boolean"],
        "restart": ["boolean"],
        "command": [str],
        "checkpoint": [str, os.PathLike, None],
        "from_checkpoint": ["boolean"],
    }


def _discard_constraints():
    from sklearn.pipeline import Pipeline

    return {"pipe": [Pipeline]}


@validate_params_on_call(_representation_constraints)
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


@validate_params_on_call(_splits_constraints)
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
    for name, n, y in (("n_train", n_train, y_train), ("n_test", n_test, y_test)):
        # Stratified subsets: a face of each class at least (train_test_split's
        # own error calls both of them "train_size").
        if n is not None and n < len(np.unique(y)):
            raise ValueError(f"{name}={n}: a stratified subset needs at least one face of "
                             f"each of the {len(np.unique(y))} classes.")
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


#: Network parameters that only change prediction: a trained network's
#: may be set when it is packaged (``--from-checkpoint``).
PREDICTION_PARAMS = ("test_time_crops", "test_time_margin", "predict_batch_size", "jit_compile")


def _check_fer2013_classes(info, what):
    """A model (its :func:`fersk.pretrained.info`) whose probabilities are
    read by FER-2013's class codes: its codes must be FER-2013's labels
    (a folder-trained model's 4 is neutral, FER-2013's sad)."""
    from fersk._labels import fer2013_labels

    labels = fer2013_labels(info["classes"], info["class_names"])
    if labels is None or labels.tolist() != list(info["classes"]):
        raise ValueError(
            f"{what} has the classes {info['classes']} named {info['class_names']}: not "
            "FER-2013's labels (0 angry ... 6 neutral), so its probabilities would be read "
            "as the wrong classes; give a model trained on FER-2013's labels."
        )


def _check_fer2013_teacher(teacher):
    """A teacher for FER-2013's labels: its class codes must be FER-2013's
    (the targets mix its columns with the one-hot codes by position)."""
    from fersk import pretrained

    _check_fer2013_classes(pretrained.info(teacher), f"teacher {str(teacher)!r}")


@validate_params_on_call(_train_constraints)
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
    test_time_flip=None,
    init_from=None,
    teacher=None,
    teacher_weight=0.5,
    network_params=None,
    training_state=None,
    keep_training_state=False,
    resume=False,
    restart=False,
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
    architecture, architecture_params : str or callable, dict or None
        The network (:data:`fersk.architectures.ARCHITECTURES`), as
        :class:`~fersk.CNNClassifier` takes them; None with ``init_from``.
    epochs, patience, batch_size, learning_rate : int, int or None, int, float
        The network's ``epochs``, ``n_iter_no_change``, ``batch_size`` and
        ``learning_rate``.
    augment : bool or dict
        The network's ``augment``.
    representation : {"raw", "mapped_lbp"}, default="raw"
        What the network reads (see :func:`representation_steps`).
    learning_rate_schedule : str, default="constant"
        The network's schedule.
    test_time_flip : bool or None, default=None
        The saved network averages each face and its mirror image.  None:
        as the ``init_from`` model (or the checkpoint's steps) does; off
        for a new network.
    init_from : str, path-like or None, default=None
        A pretrained model (name or folder) whose network is trained
        further (``warm_start``) on its own representation;
        ``architecture``, ``architecture_params``, ``augment`` and
        ``representation`` are then the model's, not read.
    teacher : str, path-like or None, default=None
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
    resume : bool, default=False
        Only continue an interrupted fit: a
        :class:`fersk._checkpoint.NoStateToResumeError` (a ``ValueError``)
        before any training when ``training_state`` holds no state of this
        fit (the interrupted run had other arguments or data), instead of
        starting a new one beside it (``fersk train --resume``).
    restart : bool, default=False
        Discard every training state in ``training_state`` (an interrupted
        run's epochs) and train anew, when the fit starts: after the data
        is read and the targets are built, so that a call that fails before
        (unreadable data, a bad teacher) keeps them (``fersk train
        --overwrite``).  Not with ``resume``.
    n_train, n_test : int or None, default=None
        Stratified subsets (smoke runs).  With ``from_checkpoint``, the
        metrics' ``n_train`` is the checkpoint's (the faces trained on).
    seed : int, default=0
        ``random_state`` of everything.
    command : str, default=""
        The command line recorded in the metrics.
    checkpoint : str, path-like or None, default=None
        Where the fitted steps, the fit time and the number of faces trained
        on are dumped with joblib,
        through a temporary file beside it renamed over it once whole: a
        failed write (a full disk) leaves the previous checkpoint as it was.
    from_checkpoint : bool, default=False
        Read them back from ``checkpoint`` (which must then be given)
        instead of training (packaging
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

    if from_checkpoint and checkpoint is None:
        raise ValueError("from_checkpoint=True reads the fitted steps from checkpoint: give it.")
    if restart and resume:
        raise ValueError("resume continues the interrupted run that restart discards: give one.")
    if teacher is not None:
        _check_fer2013_teacher(teacher)
    if init_from is not None and not from_checkpoint:
        _check_fer2013_classes(pretrained.info(init_from), f"init_from {str(init_from)!r}")
    if "warm_start" in (network_params or {}):
        raise ValueError("network_params: warm_start is set by init_from (a fine-tune starts "
                         "from its network, a new network from scratch); drop it.")
    ignored = sorted({"validation_fraction", "source_weight"} & set(network_params or {}))
    if ignored:  # they would be recorded in the model card and never used
        raise ValueError(
            f"network_params: {', '.join(ignored)} cannot apply here: PublicTest is the "
            "validation data, and FER-2013 one source; drop it."
        )
    try:  # a bad value said before the data is read (the fit's own check comes later)
        CNNClassifier(**(network_params or {}))._validate_params()
    except ValueError as exc:
        raise ValueError(f"network_params: {exc}") from None
    X_train, y_train, X_test, y_test = fer2013_splits(
        data, n_train=n_train, n_test=n_test, seed=seed, load_verbose=load_verbose, cache=cache
    )
    training = {
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "learning_rate_schedule": learning_rate_schedule,
        "n_iter_no_change": patience,
        **({} if test_time_flip is None else {"test_time_flip": test_time_flip}),
        "random_state": seed,
        "verbose": 1,
        **(network_params or {}),
        "checkpoint_dir": None if training_state is None else str(training_state),
    }
    init_metrics = {}
    start_cropper = None
    sample_proba = None
    if teacher is not None and not from_checkpoint:
        sample_proba = distillation_targets(teacher, X_train, y_train, teacher_weight)
    n_trained = int(len(X_train))
    if from_checkpoint:
        steps, fit_seconds, *trained = joblib.load(checkpoint)
        record = trained[0] if trained else {}
        # The faces the steps were trained on, not this call's n_train (a card
        # packaged with another n_train stated the wrong training set).
        # Checkpoints from before the record carry none: this call's count.
        n_trained = record.get("n_train", n_trained)
        # The start's card and cropper, as when trained (a card packaged from
        # a checkpoint lost the start's record, the pipeline its cropper);
        # older checkpoints: the start as it is now.
        if init_from is not None and "init_metrics" not in record:
            start_pipe = pretrained.load(init_from, backend="keras")
            record = {**record, "init_metrics": pretrained.info(init_from)["metrics"],
                      "start_cropper": start_pipe.steps[0][1]}
        init_metrics = record.get("init_metrics", {})
        start_cropper = record.get("start_cropper")
        # Prediction-time settings may be chosen after training.
        steps[-1][1].set_params(**{
            k: v for k, v in (network_params or {}).items() if k in PREDICTION_PARAMS
        })
        if test_time_flip is not None:
            steps[-1][1].set_params(test_time_flip=test_time_flip)
    else:
        if init_from is not None:
            start_pipe = pretrained.load(init_from, backend="keras")  # trained further
            start_cropper = start_pipe.steps[0][1]  # kept: its geometry is the network's
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
            steps[-1][1]._resume_only = resume
            steps[-1][1]._restart = restart
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
            steps[-1][1].__dict__.pop("_resume_only", None)
            steps[-1][1].__dict__.pop("_restart", None)
        fit_seconds = time.perf_counter() - start
        # A resumed fit: the epochs of the processes before count too (the
        # training state records them); this process's alone when unknown.
        before = getattr(steps[-1][1], "_training_seconds", None)
        if before is not None:
            fit_seconds = max(fit_seconds, before)
        # The saved model's own fit builds a new network, as any estimator's,
        # and does not look for this run's training state.
        steps[-1][1].set_params(warm_start=False, checkpoint_dir=None)
        if checkpoint is not None:
            _dump_checkpoint((steps, fit_seconds, {"n_train": n_trained,
                                                   "init_metrics": init_metrics,
                                                   "start_cropper": start_cropper}), checkpoint)

    net = steps[-1][1]
    pipe, metrics = publictest_metrics(steps, X_test, y_test, cropper=start_cropper)
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
        "n_train": n_trained,
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


@validate_params_on_call(_discard_constraints)
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


def _dump_checkpoint(value, checkpoint):
    """``joblib.dump`` to a temporary file beside ``checkpoint`` (a link's
    target), renamed over it once flushed: written straight into it, a
    failed dump (disk full) would destroy the previous good checkpoint."""
    import joblib

    from fersk._fsync import written_atomically

    target = os.path.realpath(checkpoint)
    # The same extension: joblib picks the compression by it (.gz, .xz...).
    with written_atomically(target, suffix=f".tmp{os.path.splitext(target)[1]}") as tmp:
        joblib.dump(value, tmp)
