"""Trained models joined into Levi & Hassner's soft-voting ensemble, without retraining."""

import os

from fersk._lazy_validation import validate_params_on_call
from fersk.training.machine import machine_description
from fersk.training.model_card import publictest_metrics
from fersk.training.recipes import _check_fer2013_classes, _seed, _subset, fer2013_splits

__all__ = ["ensemble_fer2013", "ensemble_member"]


def _ensemble_constraints():
    from fersk.ensemble import CNNEnsembleClassifier

    return {
        "data": [str, os.PathLike],
        "members": [list, tuple],  # each checked by ensemble_member
        "weights": CNNEnsembleClassifier._parameter_constraints["weights"],
        "test_time_flip": ["boolean"],
        "n_test": _subset(),
        "seed": _seed(),
        "command": [str],
        "load_verbose": ["verbose"],
        "cache": ["boolean"],
    }


@validate_params_on_call(_ensemble_constraints)
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
    members : list or tuple of str
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
        summed training time and parameters, hardware, command; ``n_train``
        the faces the members were trained on, as their own metrics say
        (one number when they agree, else one a member; absent when a
        member does not say).

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
        if isinstance(pipe.steps[-1][1], CNNEnsembleClassifier):
            raise ValueError(
                f"member {str(member)!r} is an ensemble: name its networks one by one as "
                f"MODEL:MEMBER ({sorted(pipe.steps[-1][1].named_estimators_)})."
            )
        # Scored and averaged by FER-2013's codes: a folder-trained model's
        # 4 (neutral) would be read as sad.
        _check_fer2013_classes(meta, f"member {str(member)!r}")
        if meta["name"] == "model" and os.path.isdir(member):
            # train_in_the_wild.py and fersk train save runs as <run>/model.
            meta = {**meta, "name": os.path.basename(os.path.dirname(os.path.abspath(member)))}
        if meta["name"] in member_metrics:
            raise ValueError(
                f"members {meta['name']!r} and {str(member)!r} would share the name "
                f"{meta['name']!r} in the ensemble; give the folders distinct names."
            )
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
            **{k: recorded[k] for k in ("command", "train_seconds", "hardware", "n_train",
                                        "learnable_parameters", "init_from") if k in recorded},
            # the views this member predicts from in the ensemble, as saved or set here
            "test_time_flip": bool(pipe.steps[-1][1].test_time_flip),
            "test_time_crops": pipe.steps[-1][1].test_time_crops,
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
        # True when every member averages mirrors (False left the members'
        # own settings, and the card said no flip while members flipped)
        "test_time_flip": all(m["test_time_flip"] for m in member_metrics.values()),
        "n_publictest": int(len(X_test)),
        "train_seconds": round(train_seconds, 1),
        "learnable_parameters": sum(
            m.get("learnable_parameters", 0) for m in member_metrics.values()
        ),
        "hardware": machine_description(),
        "command": command,
    })
    # The faces the members learnt from, as their cards say (the Training
    # split loaded here trains nothing: every member is frozen).
    trained_on = [m["n_train"] for m in member_metrics.values() if "n_train" in m]
    if trained_on and len(trained_on) == len(member_metrics):
        same = all(n == trained_on[0] for n in trained_on)
        metrics["n_train"] = trained_on[0] if same else {
            name: m["n_train"] for name, m in member_metrics.items()}
    pipe.steps[0] = ("facecropper", clone(cropper))
    return pipe, metrics


@validate_params_on_call({"member": [str, os.PathLike]})
def ensemble_member(member):
    """A pretrained model, or one member of a pretrained ensemble, as a pipeline.

    Parameters
    ----------
    member : str or path-like
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
    # A folder whose path holds ':' (runs/12:30/model) is a model, not MODEL:MEMBER.
    if not sep or not model or os.path.isdir(member):
        return pretrained.info(member), pretrained.load(member, backend="keras")
    meta, pipe = pretrained.info(model), pretrained.load(model, backend="keras")
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
