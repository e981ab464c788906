"""Writing a model folder whole beside its place and renaming it in, so
that a crash leaves the old model or the new one, never a mixture."""

import json
import os
import secrets
import shutil
import stat
import warnings
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import validate_params

from fersk._fsync import fsync_path
from fersk._labels import _in_output_order, _stored_classes, check_class_names, class_names_of

from ._codec import _step_entry, _unfrozen
from ._folders import info
from ._int8 import _is_own_int8
from ._loading import load
from ._spec import FORMAT_VERSION, _keras_files, _read_spec, _safe_class


@validate_params(
    {
        "pipeline": [Pipeline],
        "path": [str, os.PathLike],
        "description": [str],
        "metrics": [dict, None],
        "keep": [tuple, list],
        "class_names": [list, tuple, None],
    },
    prefer_skip_nested_validation=True,
)
def save(pipeline, path, *, description="", metrics=None, keep=(), class_names=None):
    """Write a fitted pipeline as a pretrained-model folder.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Steps of the classes in :data:`SAFE_CLASSES`, the last a fitted
        fersk network estimator or a fitted
        :class:`~fersk.CNNEnsembleClassifier` whose members are such
        networks on representations of :data:`SAFE_CLASSES` (members that
        are :class:`~sklearn.frozen.FrozenEstimator` s are stored as the
        estimators they wrap, dropped members as ``'drop'``); parameters
        must be JSON values (a named ``architecture``, not a callable).
        A pipeline returned by :func:`load` can be saved again: that is how
        a folder of an earlier format is re-saved in this one (see
        :func:`convert`).
    path : str or path-like
        Folder to create with ``pipeline.json`` and the ``.keras`` network
        files, or a model folder to replace; relative to the working
        directory, which may be the folder itself (``"."``: the process's
        working directory then moves into the new folder, of the same
        path).  The new folder is written beside it
        (``<path>.tmp-<random>``), flushed to disk and renamed into place,
        so that a crash leaves the old model or the new one, never a
        mixture; it gets the old folder's permissions.  The old folder's
        files other than its ``pipeline.json``, the networks it named and
        their int8 graphs (:func:`quantize`'s
        ``<network>.int8-<hash>.onnx``, the hash that of the file's bytes:
        a file of such a name whose bytes are not is the user's) are kept,
        hard-linked into the new folder where the file system allows (a
        file linked from elsewhere stays that file); a file written into it
        while save runs is moved into the new folder (or, where that has
        one of the same name, left in the old one, renamed
        ``<path>.tmp-<random>`` or ``<path>.old-<random>``, with a warning).
    description : str, default=""
        One line on what the model is.
    metrics : dict or None, default=None
        JSON-serialisable results for the model card (accuracy, training
        time, hardware, command...): string keys; NumPy numbers and arrays
        are stored as numbers and lists.
    keep : tuple or list of str, default=()
        Names of entries of the folder at ``path`` that are not a model's
        and go on living in it (``fersk train`` keeps its ``training_state``
        there until the model is saved): they neither make the folder
        refused nor are lost; the new folder gets a copy of them.  Plain
        names, not ``pipeline.json`` (the model's own).
    class_names : list of str or None, default=None
        A name per class, in the order of the last step's ``classes_``:
        what :func:`info`, ``load(labels="names")``, the command line and
        the web app show.  None: FER-2013's names when the classes are
        exactly its labels 0-6, else each label as text (``"0"``,
        ``"1"``...), and a model that :func:`load` gave keeps its folder's
        names; a model trained on other folders (e.g.
        :func:`fersk.datasets.load_image_folder`'s ``target``, indices into
        its ``target_names``) passes ``class_names=list(data.target_names)``,
        and so does one trained on :func:`fersk.datasets.load_ferplus`'s
        codes (FER+'s order: 0 is neutral there).

    Returns
    -------
    path : pathlib.Path
        The folder written.

    Raises
    ------
    ValueError
        If ``path`` is a file, or a non-empty folder that is not a model
        folder (no readable ``pipeline.json``) besides ``keep``: save never
        replaces what fersk did not write.
        If ``class_names`` are not distinct strings, one per class.
        If the last step is not a classifier (a :class:`~fersk.CNNRegressor`
        pipeline is saved with ``joblib.dump``).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from fersk import CNNClassifier, FaceCropper, pretrained
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.integers(0, 256, (20, 16, 16), dtype=np.uint8), np.arange(20) % 2
    >>> pipe = make_pipeline(
    ...     FaceCropper(detector=None, size=(16, 16)),
    ...     CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1,
    ...                   random_state=0),
    ... ).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = pretrained.save(pipe, tmp, description="a toy")
    ...     again = pretrained.load(folder)
    ...     same = np.allclose(again.predict_proba(X), pipe.predict_proba(X))
    >>> same
    True
    """
    from fersk._keras_base import BaseKerasImageEstimator
    from fersk.ensemble import CNNEnsembleClassifier

    network = _unfrozen(pipeline.steps[-1][1])
    fitted_network = isinstance(network, BaseKerasImageEstimator) and hasattr(network, "model_")
    fitted_ensemble = isinstance(network, CNNEnsembleClassifier) and hasattr(
        network, "estimators_"
    )
    if not (fitted_network or fitted_ensemble):
        onnx = type(network).__name__ == "OnnxNetworkClassifier"
        raise ValueError(
            "the pipeline's last step must be a fitted fersk network estimator or a fitted "
            "CNNEnsembleClassifier of them"
            + ("; it runs on ONNX Runtime (load's backend 'auto' picks a folder's int8 graphs): "
               "load the model with backend='keras' to save it." if onnx else ".")
        )
    if not hasattr(network, "classes_"):  # a CNNRegressor: a folder is a classifier's
        raise ValueError(
            f"a model folder holds a classifier (classes, their names, a model card); the "
            f"pipeline's last step is a {type(network).__name__}: save it with "
            "joblib.dump(pipeline, 'model.joblib')."
        )
    # A folder lists the classes in the order of the network's outputs
    # (a model loaded with labels="names" has them sorted otherwise).
    classes = _stored_classes(network).tolist()
    # Given in classes_' order; a loaded model keeps its folder's names.
    names = check_class_names(
        class_names_of(network) if class_names is None else class_names, network.classes_.tolist())
    names = _in_output_order(network, names).tolist()
    metrics = _json_metrics(metrics)
    for entry in keep:
        if (not isinstance(entry, str) or entry in ("", ".", "..", "pipeline.json")
                or "/" in entry or os.sep in entry):
            # pipeline.json is the model's own: "kept", the user's file would be
            # replaced by the new model's and the old one retired.
            raise ValueError(
                f"keep names entries of the folder that are not the model's; {entry!r} is "
                "not such a name (a plain file or folder name other than pipeline.json)."
            )
    # Absolute: "." has no name to write the new folder beside.
    path = Path(os.path.abspath(path))
    name = path.name
    if path.is_symlink():  # replace the folder linked to, not the link
        path = path.resolve()
    previous = _replaceable(path, ignore=set(keep))
    kept = [path / k for k in keep if (path / k).exists()] if path.is_dir() else []
    path.parent.mkdir(parents=True, exist_ok=True)
    # The folder is written whole beside its place, then renamed into it:
    # killed at any point, ``path`` holds the old model or the new one,
    # never the new networks under the old pipeline.json.
    try:  # the folder replaced is the working directory: "." follows it
        in_it = os.path.samefile(os.getcwd(), path)
    except OSError:
        in_it = False
    staging = _sibling(path, "tmp")
    staging.mkdir()
    try:
        records = {}
        steps = [_step_entry(step, est, staging, step, records) for step, est in pipeline.steps]
        spec = {
            "format_version": FORMAT_VERSION,
            "name": name,
            "description": description,
            "classes": classes,
            "class_names": names,
            "steps": steps,
            "networks": records,
            "metrics": metrics,
        }
        _write_json(staging / "pipeline.json", spec)
        own, carried = set(), {}
        if previous is not None or kept:  # what is not the old model comes along
            own, carried = _carry_foreign_files(path, previous or {}, staging)
        if path.is_dir():  # a private (0o700) folder stays private: not mkdir's umask mode
            os.chmod(staging, stat.S_IMODE(os.stat(path).st_mode))
        _fsync_tree(staging)
        old = _move_into_place(staging, path, replace=previous is not None or bool(kept))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:  # outside the try: ``staging`` may now name the old folder
        _retire(old, path, own, carried)
    if in_it:
        os.chdir(path)
    return Path(path)


def _replaceable(path, ignore=()):
    """The ``pipeline.json`` of the model folder at ``path``, None if there is
    nothing there (or an empty folder); ValueError for anything else.

    ``ignore``: names of entries that do not count (``fersk train``'s own
    training state).
    """
    if not path.exists():
        return None
    if not path.is_dir():
        raise ValueError(f"{path} exists and is not a folder: give a folder to save the model in.")
    if not any(p.name not in ignore for p in path.iterdir()):
        return None
    try:
        # A pipeline.json of fersk's own shape naming only fersk's classes:
        # another tool's {"steps": [...]} is not a model to replace.
        spec = _read_spec(path)
        for cls in _step_classes(spec["steps"]):
            _safe_class(cls)
    except (OSError, ValueError, RecursionError):
        raise ValueError(
            f"{path} is not empty and is not a fersk model folder (no readable pipeline.json "
            "naming fersk's classes): fersk will not replace it; give a new or empty folder, "
            "or remove it yourself."
        ) from None
    return spec


def _step_classes(steps):
    """Every ``class`` a list of step entries names, members' included."""
    for step in steps:
        yield step["class"]
        for member in step.get("members", []):
            yield from _step_classes(
                [member["network"]] + ([member["representation"]]
                                       if member.get("representation") is not None else []))


def _sibling(path, kind):
    """A fresh name beside ``path``: ``<path>.tmp-<random>`` (or ``.old-``)."""
    return path.parent / f"{path.name}.{kind}-{secrets.token_hex(4)}"


def _json_metrics(metrics):
    """``metrics`` as JSON values (NumPy scalars and arrays as numbers and
    lists), checked before any network is written: keys must be strings, as
    JSON would otherwise turn ``{1: 2}`` into ``{"1": 2}``."""
    def plain(value, where):
        if isinstance(value, dict):
            keys = [k for k in value if not isinstance(k, str)]
            if keys:
                raise ValueError(f"metrics{where}: keys must be strings (JSON's); got {keys[:3]!r}.")
            return {k: plain(v, f"{where}[{k!r}]") for k, v in value.items()}
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, (list, tuple)):
            return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise ValueError(f"metrics{where}: a {type(value).__name__} is not a JSON value.")

    return plain(metrics or {}, "")


def _write_json(file, spec):
    with open(file, "w", encoding="utf-8") as f:
        f.write(json.dumps(spec, indent=1) + "\n")


def _link_or_copy(source, target):
    """A hard link to the file ``source`` at ``target`` (the same file: its
    other links, and an edit made while save runs, stay with it), or a copy
    where the file system has no hard links.  Returns the linked file's
    ``(st_dev, st_ino)``, None for a copy."""
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, target, follow_symlinks=False)
        return None
    st = os.stat(target, follow_symlinks=False)
    return st.st_dev, st.st_ino


def _carry_foreign_files(path, previous, staging):
    """Carry into the new folder what the old one held besides its model
    (notes, a licence...): fersk deletes only files it wrote.  Files are
    hard-linked where the file system allows (else copied), so a user's
    file linked from elsewhere stays that file.  Returns the names of the
    old model's files and, for the entries carried, the ``(st_dev,
    st_ino)`` of each file linked (None for a folder or a copy)."""
    networks = {k for k in _keras_files(previous) if k.endswith(".keras")}
    own = {"pipeline.json", *networks}
    carried = {}
    for entry in path.iterdir():
        target = staging / entry.name
        # int8 graphs by the names quantize gives them (recorded or left by an
        # interrupted run), not whatever file a record names.
        if entry.name in own or _is_own_int8(entry.name, networks, entry):
            own.add(entry.name)
            continue
        if target.exists():  # the new model's file: the user's would be lost
            raise ValueError(
                f"{entry} is not a file of the model saved there before, and the new model "
                f"writes a file of that name: fersk will not replace it; move it, or save "
                "to another folder."
            )
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, target, symlinks=True, copy_function=_link_or_copy)
            carried[entry.name] = None
        else:
            carried[entry.name] = _link_or_copy(entry, target)
    return own, carried


def _fsync_tree(folder):
    """Everything under ``folder`` on disk before it is renamed into place
    (else a power cut could leave the rename without the data)."""
    for root, _, files in os.walk(folder):
        for file in files:
            if not os.path.islink(os.path.join(root, file)):
                fsync_path(os.path.join(root, file))
        fsync_path(root)


def _renameat2(a, b, flags):
    """Linux's ``renameat2``; False where the system or the file system does
    not offer it (OSError, e.g. FileExistsError, where it fails)."""
    import ctypes
    import errno

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError, TypeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(code, os.strerror(code), os.fspath(b))


def _exchange(a, b):
    """Swap two paths in one step (``RENAME_EXCHANGE``); False where the
    system or the file system does not offer it."""
    return _renameat2(a, b, 2)


def _rename_no_replace(source, target):
    """Rename ``source`` to ``target`` unless something is there (True if
    renamed): ``RENAME_NOREPLACE``, else a check then a rename."""
    try:
        if _renameat2(source, target, 1):
            return True
    except FileExistsError:
        return False
    if os.path.lexists(target):
        return False
    os.rename(source, target)
    return True


def _move_into_place(staging, path, replace):
    """Rename the finished folder ``staging`` to ``path``; returns where the
    model folder there before now is, if ``replace`` (else None), for
    :func:`_retire` to empty once the new one is in place."""
    if not replace:
        os.replace(staging, path)  # also over an empty folder
        old = None
    elif _exchange(staging, path):
        old = staging  # now the old folder
    else:
        # Two renames: killed between them, ``path`` is missing and the old
        # model waits, whole, in ``<path>.old-<random>`` (load says so).
        old = _sibling(path, "old")
        os.rename(path, old)
        os.rename(staging, path)
    fsync_path(path.parent)
    return old


def _replaced_while_saving(entry, linked):
    """Whether the old folder's ``entry`` is no longer the file ``linked``
    (its ``(st_dev, st_ino)`` when it was hard-linked into the new folder):
    replaced by a new file since.  False for a folder or a copy."""
    if linked is None:
        return False
    try:
        st = os.stat(entry, follow_symlinks=False)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) != linked


def _retire(old, path, own, carried):
    """Remove the replaced model folder ``old``, deleting only what fersk
    wrote or copied: the old model's files (``own``) and the entries copied
    into the new folder ``path`` (``carried``).  Anything else, written into
    the folder while save ran, moves into ``path``; where ``path`` has that
    name already, ``old`` is kept, with a warning."""
    stayed = []
    for entry in old.iterdir():
        is_dir = entry.is_dir() and not entry.is_symlink()
        if entry.name in carried and _replaced_while_saving(entry, carried[entry.name]):
            # a file the user replaced (a new file of that name) after it
            # was linked into the new folder: theirs, kept beside it
            stayed.append(entry.name)
            continue
        if entry.name in carried or (entry.name in own and not is_dir):
            if is_dir:
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)
        elif not _rename_no_replace(entry, path / entry.name):
            stayed.append(entry.name)
    fsync_path(path)
    try:
        old.rmdir()
    except OSError:  # not empty: names in both, or written there just now
        warnings.warn(
            f"{old}, the previous model folder, is kept: {sorted(stayed) or 'files'} were "
            f"written into {path} while the model was saved, and the new model has files of "
            "those names; move what you need out of it, then remove it.",
            UserWarning, stacklevel=3)
    fsync_path(path.parent)


@validate_params(
    {"source": [str, os.PathLike], "path": [str, os.PathLike]},
    prefer_skip_nested_validation=True,
)
def convert(source, path):
    """Re-save a model folder of an earlier format in the current one.

    Parameters
    ----------
    source : str or path-like
        A bundled model's name or a model folder, of any format :func:`load`
        reads (folders of formats 1 to 3 are converted while read).
    path : str or path-like
        Folder to write, as by :func:`save`.

    Returns
    -------
    path : pathlib.Path
        The folder written: the same predictions (on the ``"keras"``
        backend), description and metrics, in format
        :data:`FORMAT_VERSION`.  A folder's int8 graphs are not carried
        over (they are made from calibration faces: :func:`quantize`
        again), so ``backend="auto"`` then predicts in float32.

    Examples
    --------
    >>> import tempfile
    >>> from fersk import pretrained
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = pretrained.convert("fer2013_cnn", tmp + "/fer2013_cnn")
    ...     same = pretrained.info(folder)["metrics"] == pretrained.info("fer2013_cnn")["metrics"]
    >>> same
    True
    """
    meta = info(source)
    return save(load(source, backend="keras"), path, description=meta["description"],
                metrics=meta["metrics"])
