"""Parameter constraints of fersk for scikit-learn's parameter validation.

scikit-learn validates ``_parameter_constraints`` (estimators) and
:func:`~sklearn.utils._param_validation.validate_params` (functions)
against constraint objects; its own cover numbers, strings, types and
array-likes.  The objects here cover fersk's structured values - a pair
of ints such as a crop ``size``, an ``image_shape``, a dict of strengths
or probabilities such as ``augment`` and ``degrade`` - so that every
parameter is checked once, at the place scikit-learn checks parameters,
with its error (:class:`~sklearn.utils._param_validation.InvalidParameterError`,
a ValueError and a TypeError) naming the parameter and what it allows.

Checks that depend on the data (a crop larger than the images, a grid
with more cells than pixels) stay in ``fit``.
"""

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, Options, _Constraint

__all__ = ["ImageShape", "IntPair", "KeywordDict", "NumberSequence", "store_parameters"]


def store_parameters(estimator, arguments):
    """Set each argument of an ``__init__`` on ``estimator``, as given.

    ``arguments`` is the ``locals()`` of the estimator's ``__init__``: its
    explicit signature is the parameter list (scikit-learn's ``get_params``
    and ``clone`` read it, and ``_parameter_constraints`` validates the
    values in ``fit``), and this one loop stores them all untouched,
    instead of a line per parameter in every estimator.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator
    >>> from fersk._constraints import store_parameters
    >>> class Blur(BaseEstimator):
    ...     def __init__(self, sigma=1.0, *, mode="reflect"):
    ...         store_parameters(self, locals())
    >>> Blur(2.0).get_params()
    {'mode': 'reflect', 'sigma': 2.0}
    """
    for name, value in arguments.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


def _number_text(interval):
    """``interval`` as words: "an int >= 1", "a number in [0, 1)"..."""
    kind = "an int" if interval.type is Integral else "a number"
    # Ints as written (a seed's bound 4294967295, not 4.29497e+09).
    left, right = (v if v is None or isinstance(v, int) else f"{v:g}"
                   for v in (interval.left, interval.right))
    low = ">=" if interval.closed in ("left", "both") else ">"
    high = "<=" if interval.closed in ("right", "both") else "<"
    if interval.right is None:
        return f"{kind} {low} {left}"
    if interval.left is None:
        return f"{kind} {high} {right}"
    brackets = {"both": "[]", "left": "[)", "right": "(]", "neither": "()"}[interval.closed]
    return f"{kind} in {brackets[0]}{left}, {right}{brackets[1]}"


def _is_number_in(value, interval):
    """``value`` is a number (not a bool) of ``interval``'s type inside it."""
    return (
        not isinstance(value, (bool, np.bool_))
        and isinstance(value, interval.type)
        and interval.is_satisfied_by(value)
    )


class _FerskConstraint(Options):
    """Base of fersk's constraints.

    A subclass of :class:`~sklearn.utils._param_validation.Options` only
    because scikit-learn's ``make_constraint`` passes instances of its
    own constraint classes through and refuses any other object; the
    options themselves are not used.
    """

    def __init__(self):
        _Constraint.__init__(self)
        self.type, self.options, self.deprecated = object, set(), set()

    def __repr__(self):
        return f"<{type(self).__name__}: {self}>"


class Number(_FerskConstraint):
    """A number of ``interval``'s type inside it, not a bool.

    scikit-learn's :class:`~sklearn.utils._param_validation.Interval` takes
    ``True`` as the int 1 (``width=True`` built a network of width 1).

    Parameters
    ----------
    interval : sklearn.utils._param_validation.Interval
        The numbers allowed.

    Examples
    --------
    >>> from numbers import Integral
    >>> from sklearn.utils._param_validation import Interval
    >>> from fersk._constraints import Number
    >>> units = Number(Interval(Integral, 1, None, closed="left"))
    >>> units.is_satisfied_by(8), units.is_satisfied_by(True), units.is_satisfied_by(0)
    (True, False, False)
    >>> str(units)
    'an int >= 1'
    """

    def __init__(self, interval):
        super().__init__()
        self.interval = interval

    def is_satisfied_by(self, val):
        return _is_number_in(val, self.interval)

    def __str__(self):
        return _number_text(self.interval)


class NotBool(Number):
    """:class:`Number`, described as scikit-learn describes ``interval``.

    What :func:`without_bools` puts in place of each Interval of a
    parameter table: scikit-learn's Interval takes ``True`` as 1
    (``crop_size=True`` trained a network on a 1x1 crop, ``epochs=True``
    one epoch), while the messages stay scikit-learn's.

    Examples
    --------
    >>> from numbers import Integral
    >>> from sklearn.utils._param_validation import Interval
    >>> from fersk._constraints import NotBool
    >>> epochs = NotBool(Interval(Integral, 1, None, closed="left"))
    >>> epochs.is_satisfied_by(3), epochs.is_satisfied_by(True), str(epochs)
    (True, False, 'an int in the range [1, inf)')
    """

    def __str__(self):
        return str(self.interval)


#: ``n_jobs``: None, a count of workers, or joblib's negative counts (-1: all
#: cores).  0 passed ``[None, Integral]`` and failed inside joblib ("n_jobs ==
#: 0 in Parallel has no meaning"), naming no parameter; True was taken as one
#: worker where a table was not passed through :func:`without_bools`.
N_JOBS = [None, NotBool(Interval(Integral, None, -1, closed="right")),
          NotBool(Interval(Integral, 1, None, closed="left"))]


def without_bools(constraints):
    """A parameter table (``_parameter_constraints``, ``validate_params``'s
    dict) with every Interval refusing bools (:class:`NotBool`).

    Examples
    --------
    >>> from numbers import Real
    >>> from sklearn.utils._param_validation import Interval
    >>> from fersk._constraints import without_bools
    >>> table = without_bools({"alpha": [Interval(Real, 0, 1, closed="both")], "mode": ["boolean"]})
    >>> table["alpha"][0].is_satisfied_by(True), table["mode"]
    (False, ['boolean'])
    """
    return {key: [NotBool(c) if isinstance(c, Interval) else c for c in rules]
            if isinstance(rules, list) else rules
            for key, rules in constraints.items()}


class IntPair(_FerskConstraint):
    """A tuple or list of two ints >= 1 (and <= ``max_value`` when given).

    Parameters
    ----------
    names : str, default="(height, width)"
        What the two ints are, for the error message.
    max_value : int or None, default=None
        The largest value allowed.

    Examples
    --------
    >>> from fersk._constraints import IntPair
    >>> pair = IntPair()
    >>> pair.is_satisfied_by((48, 40)), pair.is_satisfied_by((48, 0)), pair.is_satisfied_by(48)
    (True, False, False)
    >>> str(IntPair(max_value=4096))
    'a pair (height, width) of ints in [1, 4096]'
    """

    def __init__(self, names="(height, width)", *, max_value=None):
        super().__init__()
        self.names = names
        self.interval = Interval(Integral, 1, max_value, closed="both" if max_value else "left")

    def is_satisfied_by(self, val):
        return (
            isinstance(val, (tuple, list))
            and len(val) == 2
            and all(_is_number_in(v, self.interval) for v in val)
        )

    def __str__(self):
        ints = _number_text(self.interval).replace("an int", "ints", 1)
        return f"a pair {self.names} of {ints}"


class ImageShape(_FerskConstraint):
    """How flattened rows are images: ``(height, width[, channels])``.

    A tuple or list of two or three ints >= 1, one of which may be -1
    (inferred from the row length, as in :func:`numpy.reshape`).

    Examples
    --------
    >>> from fersk._constraints import ImageShape
    >>> shape = ImageShape()
    >>> [shape.is_satisfied_by(s) for s in [(48, 48), [48, -1, 3], (48,), (-1, -1), (48, 0)]]
    [True, True, False, False, False]
    """

    def is_satisfied_by(self, val):
        if not isinstance(val, (tuple, list)) or len(val) not in (2, 3):
            return False
        if not all(isinstance(s, Integral) and not isinstance(s, (bool, np.bool_)) for s in val):
            return False
        return list(val).count(-1) <= 1 and all(s >= 1 or s == -1 for s in val)

    def __str__(self):
        return "a tuple (height, width[, channels]) of ints >= 1 (one may be -1)"


class KeywordDict(_FerskConstraint):
    """A dict whose known keys map to numbers of given ranges.

    Parameters
    ----------
    entries : dict of str to Interval
        The keys checked, each with the numbers it allows (bools are not
        numbers here).
    others : bool, default=False
        Whether keys outside ``entries`` are allowed (and not checked).

    Examples
    --------
    >>> from numbers import Real
    >>> from sklearn.utils._param_validation import Interval
    >>> from fersk._constraints import KeywordDict
    >>> probabilities = KeywordDict(dict.fromkeys(["blur", "noise"], Interval(Real, 0, 1, closed="both")))
    >>> probabilities.is_satisfied_by({"blur": 0.5}), probabilities.is_satisfied_by({"blur": 2})
    (True, False)
    >>> probabilities.is_satisfied_by({"rain": 0.5})
    False
    >>> str(probabilities)
    "a dict mapping some of 'blur', 'noise' to a number in [0, 1]"
    """

    def __init__(self, entries, *, others=False):
        super().__init__()
        self.entries = dict(entries)
        self.others = others

    def is_satisfied_by(self, val):
        if not isinstance(val, dict):
            return False
        if not self.others and not set(val) <= set(self.entries):
            return False
        return all(
            _is_number_in(value, self.entries[key])
            for key, value in val.items() if key in self.entries
        )

    def __str__(self):
        keys = sorted(self.entries)
        texts = {_number_text(self.entries[key]) for key in keys}
        if not self.others and len(texts) == 1:
            return f"a dict mapping some of {', '.join(map(repr, keys))} to {texts.pop()}"
        checked = "; ".join(f"{key!r} {_number_text(self.entries[key])}" for key in keys)
        return f"a dict of keyword arguments (when given: {checked})"


class NumberSequence(_FerskConstraint):
    """A non-empty 1-D sequence (list, tuple, array) of numbers in a range.

    Parameters
    ----------
    interval : Interval
        The numbers allowed (bools, NaN and infinities are not).

    Examples
    --------
    >>> from numbers import Integral
    >>> from sklearn.utils._param_validation import Interval
    >>> from fersk._constraints import NumberSequence
    >>> points = NumberSequence(Interval(Integral, 1, 32, closed="both"))
    >>> points.is_satisfied_by([8, 16]), points.is_satisfied_by([8, 64]), points.is_satisfied_by([])
    (True, False, False)
    >>> str(points)
    'a non-empty sequence of ints in [1, 32]'
    """

    def __init__(self, interval):
        super().__init__()
        self.interval = interval

    def is_satisfied_by(self, val):
        if not isinstance(val, (tuple, list, np.ndarray)):
            return False
        values = np.asarray(val, dtype=object)
        if values.ndim != 1 or values.size == 0:
            return False
        return all(
            _is_number_in(v, self.interval) and np.isfinite(float(v)) for v in values
        )

    def __str__(self):
        text = _number_text(self.interval)
        text = text.replace("an int", "ints", 1).replace("a number", "finite numbers", 1)
        return f"a non-empty sequence of {text}"
