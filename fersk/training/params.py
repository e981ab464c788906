"""What the training command lines take: the ``KEY=VALUE`` argument type of
``fersk train --param`` and the benchmark scripts, and the representations."""

from fersk._lazy_validation import validate_params_on_call

__all__ = ["REPRESENTATIONS", "parse_param"]

#: Image representations a trained network can read (``--representation``).
REPRESENTATIONS = ("raw", "mapped_lbp")


# argparse passes a str; only a caller from Python can give anything else.
# An ill-formed one stays argparse.ArgumentTypeError, what argparse reports.
@validate_params_on_call({"text": [str]})
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
