"""Reading ``pipeline.json``: its shape checked, earlier formats upgraded,
and the classes a model folder may name."""

import importlib
import json
import re

from fersk._labels import default_class_names

#: The classes a ``pipeline.json`` may name (module-qualified).
SAFE_CLASSES = (
    "fersk.face.FaceCropper",
    "fersk.lbp.LBPCodeTransformer",
    "fersk.lbp.LBPHistogram",
    "fersk.mapped_lbp.MDSMappedLBP",
    "fersk.classifiers.CNNClassifier",
    "fersk.classifiers.LBCNNClassifier",
    "fersk.ensemble.CNNEnsembleClassifier",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.pipeline.Pipeline",
)


#: Version of the ``pipeline.json`` layout written: 2 added ensembles, 3
#: stores every estimator by one rule (an ensemble's members as its
#: ``estimators`` parameter, nothing derivable), 4 records each network
#: file's size, SHA-256 and shapes under ``networks``.  1-3 are read too.
FORMAT_VERSION = 4


def _read_spec(path):
    """``pipeline.json`` parsed and checked in shape; ValueError naming what is wrong."""
    file = path / "pipeline.json"
    try:
        spec = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file} is not valid JSON ({exc}).") from None
    except RecursionError:
        raise ValueError(f"{file} is nested too deeply to describe a model.") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{file} must hold a JSON object; it holds a {type(spec).__name__}.")
    version = spec.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ValueError(f"{file}: format_version must be a whole number; got {version!r}.")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has format version {version}; this fersk reads up to "
            f"{FORMAT_VERSION}: upgrade fersk."
        )
    _expect(spec, "steps", list, file)
    if not spec["steps"]:
        raise ValueError(f"{file}: 'steps' is empty.")
    for key, kind in (("name", str), ("description", str), ("classes", list),
                      ("class_names", list), ("metrics", dict)):
        if key in spec:
            _expect(spec, key, kind, file)
    for step in spec["steps"]:
        _check_step(step, file)
    if version >= 4:
        _check_networks(spec, file)
        _check_int8(spec, file)
    else:  # earlier formats recorded nothing to check the files against
        spec.pop("networks", None)
    if version < FORMAT_VERSION:
        for step in spec["steps"]:
            _upgrade_entry(step)
        spec["format_version"] = FORMAT_VERSION
    return spec


#: What format 4 records of each network file, and the JSON type of each.
_NETWORK_RECORD = {"size": int, "sha256": str, "n_params": int, "input_shape": list,
                   "output_shape": list}


def _check_networks(spec, file):
    """Format 4's ``networks``: well-formed records (one per ``keras_file``,
    checked as each network is loaded)."""
    _expect(spec, "networks", dict, file)
    for name, record in spec["networks"].items():
        for key, kind in _NETWORK_RECORD.items():
            _expect(record, key, kind, f"{file}: networks[{name!r}]")
        if not re.fullmatch(r"[0-9a-f]{64}", record["sha256"]):
            raise ValueError(f"{file}: networks[{name!r}]['sha256'] is not a SHA-256 digest.")


#: What ``pipeline.json`` records of each int8 graph (:func:`fersk.pretrained.quantize`).
_INT8_RECORD = {"file": str, "size": int, "sha256": str, "keras_sha256": str}


def _check_int8(spec, file):
    """``int8``: one well-formed record per network file that has an int8 graph."""
    if "int8" not in spec:
        return
    _expect(spec, "int8", dict, file)
    for name, record in spec["int8"].items():
        where = f"{file}: int8[{name!r}]"
        if not isinstance(record, dict):
            raise ValueError(f"{where} must be a JSON object; got {type(record).__name__}.")
        for key, kind in _INT8_RECORD.items():
            _expect(record, key, kind, where)
        for key in ("sha256", "keras_sha256"):
            if not re.fullmatch(r"[0-9a-f]{64}", record[key]):
                raise ValueError(f"{where}[{key!r}] is not a SHA-256 digest.")
        if name not in spec["networks"]:
            raise ValueError(f"{where}: no network file {name!r} is recorded under 'networks'.")


def _upgrade_entry(entry):
    """A step of format 1 or 2 as format 3 (in place).

    Format 2 stored an ensemble's members under ``members`` as
    ``(name, representation or null, network)``; format 3 stores them as
    the ensemble's ``estimators`` parameter: the network alone, or
    ``Pipeline([("representation", ...), ("network", ...)])``.  Attributes
    that format 3 derives at load (``code_distances_``, ``weights_``...) are
    dropped and the ensemble's ``input_shape_`` is now ``image_shape_``.
    """
    if "members" in entry:
        pairs = []
        for member in entry.pop("members"):
            network, representation = member["network"], member.get("representation")
            _upgrade_entry(network)
            estimator = network
            if representation is not None:
                _upgrade_entry(representation)
                estimator = {
                    "name": member["name"], "class": "sklearn.pipeline.Pipeline",
                    "params": {"steps": [
                        {"__tuple__": ["representation", {"__estimator__": representation}]},
                        {"__tuple__": ["network", {"__estimator__": network}]},
                    ]},
                    "fitted": {},
                }
            pairs.append({"__tuple__": [member["name"], {"__estimator__": estimator}]})
        entry["params"]["estimators"] = pairs
        if "input_shape_" in entry["fitted"]:
            entry["fitted"]["image_shape_"] = entry["fitted"].pop("input_shape_")
    for attr in getattr(_safe_class(entry["class"]), "_derived_attributes", ()):
        entry["fitted"].pop(attr, None)


def _expect(entry, key, kind, where):
    if not isinstance(entry, dict) or key not in entry:
        raise ValueError(f"{where}: an entry lacks {key!r}.")
    if not isinstance(entry[key], kind) or isinstance(entry[key], bool) != (kind is bool):
        raise ValueError(
            f"{where}: {key!r} must be a {kind.__name__}; got {type(entry[key]).__name__}."
        )


def _check_step(step, where):
    if not isinstance(step, dict):
        raise ValueError(f"{where}: each step must be a JSON object; got {type(step).__name__}.")
    for key, kind in (("name", str), ("class", str), ("params", dict), ("fitted", dict)):
        _expect(step, key, kind, where)
    if "keras_file" in step:
        _expect(step, "keras_file", str, where)
    if "members" in step:
        _expect(step, "members", list, where)
        for member in step["members"]:
            _expect(member, "name", str, where)
            _expect(member, "network", dict, where)
            _check_step(member["network"], where)
            if member.get("representation") is not None:
                _check_step(member["representation"], where)


def _safe_class(qualname):
    if qualname not in SAFE_CLASSES:
        raise ValueError(f"pipeline.json names {qualname!r}, which is not in fersk.pretrained.SAFE_CLASSES.")
    module, _, cls = qualname.rpartition(".")
    return getattr(importlib.import_module(module), cls)


def _class_names(classes):
    return default_class_names(classes)


def _keras_files(node):
    """The ``keras_file`` names in a ``pipeline.json`` document."""
    if isinstance(node, dict):
        own = {node["keras_file"]} if isinstance(node.get("keras_file"), str) else set()
        return own.union(*(_keras_files(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_keras_files(value) for value in node))
    return set()
