"""The ``.keras`` network files of a model folder: where they may be, what
format 4 records of them, and the checks that they are the networks
``pipeline.json`` describes."""

import hashlib
import json
import zipfile
from pathlib import Path

def _sha256(file):
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _network_record(model, file):
    """What format 4 records of a network and its file."""
    return {
        "size": file.stat().st_size,
        "sha256": _sha256(file),
        "n_params": int(model.count_params()),
        "input_shape": json.loads(json.dumps(model.input_shape)),
        "output_shape": json.loads(json.dumps(model.output_shape)),
    }


def _check_network_file(folder, target, record):
    """A network file against its record (size, SHA-256), if one: the
    Keras loader checks it before reading, the ONNX one before using the
    graph exported from it.  Returns the mismatch message's start."""
    mismatch = (f"{target} is not the network {Path(folder) / 'pipeline.json'} describes "
                "(a save interrupted, or files of different folders mixed)")
    if record is not None:
        size = target.stat().st_size
        if size != record["size"]:
            raise ValueError(f"{mismatch}: {size} bytes, recorded {record['size']}.")
        if _sha256(target) != record["sha256"]:
            raise ValueError(f"{mismatch}: its SHA-256 differs from the one recorded.")
    return mismatch


def _load_network(folder, name, networks):
    """The network of ``keras_file`` ``name``, checked against its record."""
    import keras

    target = _keras_path(folder, name)
    record = None if networks is None else networks.get(name)
    if networks is not None and record is None:
        raise ValueError(
            f"{Path(folder) / 'pipeline.json'} records no size, SHA-256 and shapes for {name!r} "
            "under 'networks'."
        )
    mismatch = _check_network_file(folder, target, record)
    # Keras reports a damaged zip as "File not found"; say what it is.
    try:
        with zipfile.ZipFile(target) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{target} is not a valid Keras file ({exc}).") from None
    if damaged is not None:
        raise ValueError(f"{target} is not a valid Keras file ({damaged} is damaged).")
    try:
        model = keras.saving.load_model(target, safe_mode=True)
    except Exception as exc:  # whatever a malformed archive provokes inside Keras
        what = "is refused by Keras's safe mode" if "safe_mode" in str(exc) else (
            "is not a valid Keras file")
        raise ValueError(f"{target} {what} ({type(exc).__name__}: {exc}).") from exc
    if record is not None:
        found = _network_record(model, target)
        for key in ("n_params", "input_shape", "output_shape"):
            if found[key] != record[key]:
                raise ValueError(f"{mismatch}: {key} {found[key]}, recorded {record[key]}.")
    return model


def _check_network_params(est, folder, name):
    """The network file must be the one the estimator's parameters build
    (same parameter count): a card saying width 0.5 over a width-0.25
    network gives other probabilities than the card's."""
    import keras

    from fersk._keras_base import BaseKerasImageEstimator

    if not isinstance(est, BaseKerasImageEstimator):
        return
    inner = [layer for layer in est.model_.layers if isinstance(layer, keras.Model)]
    if len(inner) != 1:
        return  # not a network assembled by fit: nothing to rebuild
    network = inner[-1]
    try:
        # the outputs found: classes_ are checked against them apart
        n_outputs = network.output_shape[-1]
        built = est._build_network(tuple(network.input_shape[1:]), n_outputs, 0)
        expected = int(built.count_params())
    except Exception as exc:  # parameters that cannot build this network
        raise ValueError(
            f"{Path(folder) / name}: the parameters in pipeline.json cannot build its network "
            f"({type(exc).__name__}: {exc})."
        ) from exc
    if expected != int(network.count_params()):
        raise ValueError(
            f"{Path(folder) / name} holds a network of {network.count_params()} parameters; "
            f"the parameters in pipeline.json build one of {expected}: they do not belong "
            "together."
        )


def _keras_path(folder, name):
    """The network file: a ``.keras`` file inside the model folder, nothing else."""
    root = Path(folder).resolve()
    target = (root / name).resolve()
    if not target.is_relative_to(root) or target.suffix != ".keras":
        raise ValueError(
            f"keras_file {name!r} must name a .keras file inside the model folder {root}."
        )
    if not target.is_file():
        raise ValueError(f"keras_file {name!r} is missing from {root}.")
    return target


def _inference_copy(model):
    """The model without its compiled optimizer: its state (Adam's moments)
    would double the file and is of no use for prediction."""
    import keras

    # clone_model would copy the compiled state too; from_config does not.
    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy
