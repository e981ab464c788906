"""``fersk train``: train a network on FER-2013 and write a model folder.

Imported by :func:`fersk.cli.main` only when this command runs; the
argument parser (in :mod:`fersk.cli`) describes its options.  The training
itself is :func:`fersk.training.train_fer2013`, shared with
``benchmarks/train_pretrained.py``.
"""

import inspect
import json
import os
import socket
from pathlib import Path

from fersk import pretrained, training
from fersk._checkpoint import (
    FINAL_JSON,
    STATE_PREFIX,
    CheckpointInUseError,
    NoStateToResumeError,
    TrainingState,
)
from fersk.architectures import ARCHITECTURES
from fersk.classifiers import CNNClassifier

from ._common import EXIT_OK, _check_data, _Failure, _UsageError

__all__ = ["run"]


def _architecture_params(architecture, width, dense_units):
    """Builder keyword arguments from --width/--dense-units, checked."""
    if architecture not in ARCHITECTURES:
        raise _UsageError(
            f"--model: unknown architecture {architecture!r}; choose one of "
            f"{sorted(ARCHITECTURES)}."
        )
    accepted = inspect.signature(ARCHITECTURES[architecture]).parameters
    params = {}
    if width is not None:
        params["width"] = width
    if dense_units is not None:
        key = "dense_units" if "dense_units" in accepted else "head_units"
        params[key] = dense_units
    return params


#: The folder of ``fersk train --out`` holding an unfinished run's state.
TRAINING_STATE = "training_state"


def _holds_interrupted_run(out):
    """Whether ``out``'s training state holds a saved epoch: a run stopped
    before its first epoch ended left nothing to resume."""
    state = Path(out) / TRAINING_STATE
    return state.is_dir() and any(
        TrainingState(p).has_saved() for p in state.glob(STATE_PREFIX + "*") if p.is_dir())


def _holds_finished_training(out):
    """Whether ``out``'s training state holds a finished fit (killed while
    scoring or saving): --resume saves it without training again."""
    state = Path(out) / TRAINING_STATE
    return state.is_dir() and any(
        (p / FINAL_JSON).is_file() for p in state.glob(STATE_PREFIX + "*") if p.is_dir())


def _run_in_progress(out):
    """``(pid, host)`` of a live process training into ``out`` (its lock in
    ``out``'s training state, held from before the first epoch ends; pid
    None for a lock being written), or None."""
    state = Path(out) / TRAINING_STATE
    if not state.is_dir():
        return None
    for folder in sorted(state.glob(STATE_PREFIX + "*")):
        holder = TrainingState(folder).held_by() if folder.is_dir() else None
        if holder is not None:
            return holder
    return None


def _holds_other_files(out):
    """Whether ``out`` is anything but a folder holding at most the
    training state (a model folder, another file)."""
    return out.exists() and (
        not out.is_dir() or any(p.name != TRAINING_STATE for p in out.iterdir()))


def _kept_network(args, net):
    """How to save the network ``net`` a run trained and could not save:
    its final state stays in ``--out/training_state``, which --resume loads."""
    kept = getattr(net, "_kept_checkpoint", None)
    if kept is None:
        return "The trained network was not kept: run the command again to train it again."
    return (
        f"The trained network is kept in {kept}: run the same command again with --resume "
        "to save it without training again, once --out holds nothing else (move away what is "
        "there now), or with --resume --overwrite to replace a model folder there."
    )


def run(args):
    """Run ``fersk train``: train on FER-2013, write a pretrained-model folder.

    Checks the options and the output folder first, then trains with
    :func:`fersk.training.train_fer2013` (Training split, PublicTest as
    validation data, early stopping), prints the metrics as JSON and saves
    the pipeline with :func:`fersk.pretrained.save`.  An interrupted run
    keeps its state in ``--out/training_state`` for ``--resume``; it is
    removed once the model folder is saved.  An ``--out`` that a live run
    is training into (its state's lock) is refused, ``--overwrite`` or
    not; an ``--out`` written meanwhile by another run is not replaced
    without ``--overwrite`` (the trained network stays in the state, for
    ``--resume``).

    Parameters
    ----------
    args : argparse.Namespace
        The options of ``fersk train`` as :func:`fersk.cli.main` parses them
        (``data``, ``model``, ``out``, ``epochs``, ``init``, ``param``,
        ``resume``...), plus ``argv``, the command line recorded in the
        model card.

    Returns
    -------
    status : int
        0 once the model folder is written.

    Raises
    ------
    _UsageError
        Missing data, an unknown architecture or parameter, conflicting
        options, an output folder in the way or a run in progress into it
        (:func:`fersk.cli.main` returns 2).
    _Failure
        Unreadable FER-2013 data, or a model that cannot be saved in
        ``--out`` (written meanwhile by another run, a full disk)
        (:func:`fersk.cli.main` returns 1).

    See Also
    --------
    fersk.cli.main : Parses the command line and calls this function.
    fersk.training.train_fer2013 : The training itself.

    Examples
    --------
    >>> from fersk.cli import main
    >>> main(["train", "--data", "/nonexistent/fer2013.csv", "--model", "kaggle_cnn",
    ...       "--out", "model"])  # no such data: usage error
    2

    From the shell::

        fersk train --data fer2013.csv --model vgg_fer --augment --out my_model
        fersk predict photos/ --model my_model
    """
    _check_data(args.data)
    if args.init is not None:
        given = [
            flag for flag, value in (
                ("--model", args.model), ("--width", args.width),
                ("--dense-units", args.dense_units), ("--augment", args.augment or None),
                ("--representation", None if args.representation == "raw" else 1),
            ) if value is not None
        ]
        if given:
            raise _UsageError(
                f"--init fine-tunes a model with its own architecture, representation and "
                f"augmentation; drop {', '.join(given)}."
            )
        try:
            info = pretrained.info(args.init)
            if info["steps"][-1][1].endswith("CNNEnsembleClassifier"):
                raise ValueError(
                    f"{info['name']} is an ensemble of several networks, which fersk train "
                    "does not fine-tune as one; give a model of one network."
                )
            # Trained on FER-2013's codes, it keeps its class names: folder-order
            # names (4 neutral) would name FER-2013's 4 (sad) wrongly.
            training.recipes._check_fer2013_classes(info, f"{args.init!r}")
        except ValueError as exc:
            raise _UsageError(f"--init: {exc}") from None
        params = None
    elif args.model is None:
        raise _UsageError("give --model ARCH (a new network) or --init MODEL (fine-tuning).")
    else:
        params = _architecture_params(args.model, args.width, args.dense_units)
    if args.teacher is None and args.teacher_weight is not None:
        raise _UsageError("--teacher-weight is the share of a teacher's probabilities: give "
                          "--teacher MODEL with it (alone it would be ignored).")
    teacher_weight = 0.5 if args.teacher_weight is None else args.teacher_weight
    if args.teacher is not None:
        if not 0 <= teacher_weight <= 1:
            raise _UsageError(f"--teacher-weight must be in [0, 1]; got {teacher_weight}.")
        try:
            pretrained.info(args.teacher)
            training.recipes._check_fer2013_teacher(args.teacher)
        except ValueError as exc:
            raise _UsageError(f"--teacher: {exc}") from None
    network_params = dict(args.param)
    if network_params:
        # warm_start: --init says it; validation_fraction: PublicTest is the
        # validation data (a fraction would be recorded and never used);
        # source_weight: FER-2013 is one source.
        own = {"architecture", "architecture_params", "checkpoint_dir", "random_state",
               "warm_start", "validation_fraction", "source_weight"}
        unknown = sorted(set(network_params) - (set(CNNClassifier().get_params()) - own))
        if unknown:
            raise _UsageError(
                f"--param: {', '.join(unknown)} is not a CNNClassifier parameter this "
                "command lets you set."
            )
        # A parameter with an option of its own is set there: through --param
        # it would silently override that option (and the model card's words).
        options = {"epochs": "--epochs", "batch_size": "--batch-size",
                   "learning_rate": "--learning-rate", "n_iter_no_change": "--patience",
                   "learning_rate_schedule": "--schedule", "test_time_flip": "--test-time-flip"}
        if args.augment:
            options["augment"] = "--augment"
        taken = sorted(set(network_params) & set(options))
        # A fine-tune trains the --init network as built (warm_start): these
        # would be recorded in the model card and never used.
        built = sorted(set(network_params) & {"augment", "random_erasing", "input_scaling",
                                              "crop_size", "head", "image_shape"})
        if args.init is not None and built:
            raise _UsageError(
                f"--param: {', '.join(built)} {'is' if len(built) == 1 else 'are'} built into "
                f"the --init network, which a fine-tune trains as it is; drop "
                f"{'it' if len(built) == 1 else 'them'}."
            )
        if taken:
            raise _UsageError(
                "--param: " + ", ".join(f"{k} is set by {options[k]}" for k in taken)
                + "; give it there."
            )
        try:  # a bad value: said now, not after the data is read and --out made
            CNNClassifier(**network_params)._validate_params()
        except ValueError as exc:
            raise _UsageError(f"--param: {exc}") from None
    # Absolute: ``--out .`` is a folder with a name, which save writes beside.
    out = Path(os.path.abspath(args.out))
    state = out / TRAINING_STATE
    # A run still going on into --out holds its state's lock from the start
    # (before its first epoch is saved): never trained over, never replaced.
    running = _run_in_progress(out)
    if running is not None:
        pid, host = running
        who = "" if pid is None else f" (pid {pid}" + (
            ")" if host == socket.gethostname() else f" on {host})")
        raise _UsageError(
            f"--out: a run is in progress into {args.out!r}{who}: its training state is in "
            "use. Wait for it to end or give another --out; --overwrite and --resume never "
            "take the folder of a running run."
        )
    interrupted = _holds_interrupted_run(out)
    if args.resume and not interrupted:
        raise _UsageError(f"--resume: {args.out!r} holds no interrupted run ({state} holds "
                          "no saved epoch).")
    if interrupted and not args.resume and not args.overwrite:
        raise _UsageError(
            f"--out: {args.out!r} holds an interrupted run; --resume continues it, "
            "--overwrite starts again."
        )
    if _holds_other_files(out) and not args.overwrite:
        raise _UsageError(
            f"--out: {args.out!r} exists and is not empty; give another folder or --overwrite."
        )
    try:  # --overwrite replaces a model folder, nothing else: said before training
        pretrained._replaceable(out, ignore={TRAINING_STATE})
    except ValueError as exc:
        raise _UsageError(f"--out: {exc}") from None
    made = not out.exists()
    try:  # before training, not after it
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _UsageError(f"--out: cannot create {args.out!r} ({exc}).") from None
    command = _reproducing_command(args.argv)
    try:
        pipe, metrics = _train(args, params, teacher_weight, network_params, state, interrupted,
                               command)
    except BaseException:
        if made:  # this run's folder, left empty by a failure (a saved epoch keeps it)
            for folder in (state, out):
                try:
                    folder.rmdir()
                except OSError:
                    pass
        raise
    net = pipe.steps[-1][1]
    metrics.update(
        architecture=getattr(net, "architecture", type(net).__name__),
        architecture_params=getattr(net, "architecture_params", None),
        augment=bool(net.augment),
        seed=args.seed,
    )
    print(json.dumps({k: v for k, v in metrics.items() if "matrix" not in k}, indent=1))
    description = args.description or training.describe(
        architecture=args.model,
        shape=", ".join(f"{k} {v}" for k, v in (params or {}).items()),
        representation=args.representation,
        subset=f" ({metrics['n_train']} images)" if args.n_train else "",
        init_from=args.init,
        learning_rate=args.learning_rate,
        schedule=args.schedule,
    )
    if _holds_other_files(out) and not args.overwrite:
        # Empty when this run started: another run (or someone) saved into
        # it meanwhile; replaced only when --overwrite said so.
        raise _Failure(
            f"--out: {args.out!r} was written while this run trained (another run's model?) "
            f"and --overwrite was not given: it is not replaced. {_kept_network(args, net)}"
        )
    try:
        path = pretrained.save(pipe, out, description=description, metrics=metrics,
                               keep=(TRAINING_STATE,))
    except (ValueError, OSError) as exc:  # the state stays: nothing trained is lost
        raise _Failure(f"--out: cannot save the model in {args.out!r} ({exc}). "
                       f"{_kept_network(args, net)}") from None
    # Only now: a kill before the save leaves the fitted network in the
    # state, and --resume then saves it without training again.
    training.discard_training_state(pipe)
    if state.is_dir() and not any(state.iterdir()):
        state.rmdir()
    print(f"saved {path}")
    return EXIT_OK


def _reproducing_command(argv):
    """The command line that trains this model again, as a shell reads it:
    quoted (``--param 'augment={"zoom": 0}'`` recorded bare could not be
    pasted back), and without ``--resume`` / ``--overwrite``, which say how
    this run met its folder, not what it trained."""
    import shlex

    def run_only(token):  # the flags, or a prefix argparse accepted for them
        return len(token) > 2 and any(flag.startswith(token) for flag in ("--resume", "--overwrite"))

    return shlex.join(["fersk", *(t for t in argv if not run_only(t))])


def _train(args, params, teacher_weight, network_params, state, interrupted, command):
    """train_fer2013 with the command's options; its errors as the command's."""
    try:
        return training.train_fer2013(
            args.data,
            architecture=args.model,
            architecture_params=params,
            epochs=args.epochs,
            patience=args.patience,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            augment=args.augment,
            representation=args.representation,
            learning_rate_schedule=args.schedule,
            test_time_flip=args.test_time_flip,
            init_from=args.init,
            teacher=args.teacher,
            teacher_weight=teacher_weight,
            network_params=network_params,
            training_state=state,
            keep_training_state=True,
            resume=bool(args.resume),
            # The interrupted run's epochs go when the new fit starts (fersk's
            # files only, never a running run's), not before the data is read.
            restart=bool(interrupted and args.overwrite and not args.resume),
            n_train=args.n_train,
            n_test=args.n_test,
            seed=args.seed,
            command=command,
            load_verbose=int(args.verbose),
            cache=not args.no_cache,
        )
    except NoStateToResumeError:
        raise _UsageError(
            f"--resume: the interrupted run in {args.out!r} was started with other options or "
            "data (its training state is not this command's): give the options that run was "
            "started with, or --overwrite to start again."
        ) from None
    except CheckpointInUseError as exc:  # one started between the check above and the fit
        raise _UsageError(f"--out: a run is in progress into {args.out!r}: {exc}") from None
    except ValueError as exc:
        raise _Failure(getattr(exc, "without_python_hint", str(exc))) from None
