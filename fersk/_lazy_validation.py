"""scikit-learn's ``validate_params``, set up at a function's first call.

The command line's parser imports :mod:`fersk.training` (``--param``'s
type, ``--representation``'s choices), and ``fersk --help`` imports no
scikit-learn (a second of start-up; ``tests/test_cli.py`` checks it).  So
the functions of :mod:`fersk.training` cannot be decorated with
:func:`~sklearn.utils._param_validation.validate_params` when their module
is imported: :func:`validate_params_on_call` builds the constraints and
applies ``validate_params(constraints, prefer_skip_nested_validation=True)``
at the first call instead.  The checks and their errors
(:class:`~sklearn.utils._param_validation.InvalidParameterError`, a
ValueError and a TypeError, naming the function and the parameter) are
scikit-learn's own.
"""

import functools

__all__ = ["validate_params_on_call"]


def validate_params_on_call(constraints):
    """Decorator: scikit-learn's ``validate_params``, built at the first call.

    Parameters
    ----------
    constraints : dict or callable
        The constraints of ``validate_params``: a dict of plain
        constraints (types, None, "boolean", "array-like"...), or a
        function without arguments returning the dict, for constraints
        that are scikit-learn objects (``Interval``, ``StrOptions``...): it
        imports them and is called once, at the first call.

    Returns
    -------
    decorator : callable
        Wraps a function; the wrapper keeps its name, docstring and
        signature.

    Examples
    --------
    >>> from fersk._lazy_validation import validate_params_on_call
    >>> def _constraints():
    ...     from numbers import Integral
    ...     from sklearn.utils._param_validation import Interval
    ...     return {"n": [Interval(Integral, 1, None, closed="left")]}
    >>> @validate_params_on_call(_constraints)
    ... def twice(n):
    ...     return 2 * n
    >>> twice(3)
    6
    >>> twice(0)
    Traceback (most recent call last):
    ...
    sklearn.utils._param_validation.InvalidParameterError: The 'n' parameter of twice must be an int in the range [1, inf). Got 0 instead.
    """

    def decorate(func):
        validated = None

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            nonlocal validated
            if validated is None:
                from sklearn.utils._param_validation import validate_params

                given = constraints() if callable(constraints) else constraints
                validated = validate_params(given, prefer_skip_nested_validation=True)(func)
            return validated(*args, **kwargs)

        return wrapper

    return decorate
