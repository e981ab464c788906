"""A fit that fails leaves its estimator as it was.

Light (no Keras): the ensemble, which the ONNX back end imports without
TensorFlow, uses it too.
"""

import functools


def unchanged_if_fit_fails(fit):
    """Decorate ``fit`` so that a fit that raises leaves the estimator as it
    was: its checks come after some fitted attributes are set (the new
    classes, pixel rule), which must not end up over the previous network.

    A warm-started network trained part of the way keeps those weights (the
    network object is trained in place); every attribute is the previous
    fit's again.

    Examples
    --------
    >>> class Model:
    ...     @unchanged_if_fit_fails
    ...     def fit(self, y):
    ...         self.classes_ = sorted(set(y))
    ...         if len(self.classes_) < 2:
    ...             raise ValueError("two classes at least")
    ...         return self
    >>> model = Model().fit([3, 6])
    >>> try:
    ...     model.fit([9])
    ... except ValueError:
    ...     pass
    >>> model.classes_
    [3, 6]
    """
    @functools.wraps(fit)
    def guarded(self, *args, **kwargs):
        before = dict(vars(self))
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise

    return guarded
