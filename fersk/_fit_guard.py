"""A fit that fails leaves its estimator as it was.

Light (no Keras): the ensemble, which the ONNX back end imports without
TensorFlow, uses it too.
"""

import functools


def unchanged_if_fit_fails(fit):
    """Decorate ``fit`` so that a fit that raises leaves the estimator as it
    was: its checks come after some fitted attributes are set (the new
    classes, pixel rule), which must not end up over the previous network.

    Every attribute is the previous fit's again.  A warm start trains the
    previous network object in place; a warm fit stopped part way (an
    error, Ctrl-C) puts its weights back as they were before the fit
    (the Keras estimators' ``_train`` does it), so the estimator predicts
    as before and the same fit run again starts from the same weights
    (and finds its ``checkpoint_dir`` state, keyed on them).

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
