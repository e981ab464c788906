"""How fersk says what it is doing: log lines and progress counts.

One printer and one stream rule for the loaders (:mod:`fersk.datasets`),
the training helpers (:mod:`fersk.training`) and the ``fersk`` commands.

Stream rule
-----------
Progress and log lines are diagnostics, printed (and flushed) to
:func:`stream`:

* ``sys.stdout`` by default, that is in library use (``verbose=`` of the
  loaders, the training helpers' counts), as Keras prints its epoch lines
  and scikit-learn its ``verbose`` output: a notebook shows them inline,
  in order with Keras's lines;
* ``sys.stderr`` inside :func:`printing_to` ``("stderr")``, which the
  ``fersk`` commands whose stdout carries their results (``predict``:
  CSV/JSON/the table; ``evaluate``: the report or JSON) enter, so every
  progress line of the command, its own and those of the library code it
  calls, stays off the results.  ``fersk train`` keeps stdout: its output
  is the training log (Keras's epoch lines, the counts, the metrics).

The stream is looked up at each print (``sys.stdout`` as it is then), so
``contextlib.redirect_stdout`` and pytest's capture apply.  Errors and
warnings are not progress: they go to stderr (Python's warnings, the
commands' error lines) whatever the rule.

Light on purpose: :mod:`fersk.cli` imports it before TensorFlow.
"""

import contextlib
import sys
import time

__all__ = []

#: The name in :mod:`sys` of the stream progress goes to (see the module).
_STREAM = "stdout"


def stream():
    """The stream progress and log lines go to now: ``sys.stdout`` or ``sys.stderr``."""
    return getattr(sys, _STREAM)


@contextlib.contextmanager
def printing_to(name):
    """Send progress and log lines to ``sys.<name>`` ("stdout" or "stderr") inside."""
    global _STREAM
    if name not in ("stdout", "stderr"):
        raise ValueError(f"progress goes to 'stdout' or 'stderr'; got {name!r}.")
    saved, _STREAM = _STREAM, name
    try:
        yield
    finally:
        _STREAM = saved


def log(tag, message):
    """Print ``[tag] message`` (``message`` alone when ``tag`` is None), flushed."""
    print(message if tag is None else f"[{tag}] {message}", file=stream(), flush=True)


class Progress:
    """Report how many of ``total`` items are done: ``[tag] <text>[, detail], 1.2 s``.

    Parameters
    ----------
    tag : str
        Who reports: the function or command name, printed in brackets.
    total : int
        Items in all.
    verbose : int or bool
        0 (False): silent.  1 (True): a line each time another ``every``
        fraction of ``total`` is done, and at the end.  2 or more: a line
        at every :meth:`update`.
    text : str, default="{done}/{total} images"
        The count, formatted with ``done`` and ``total``.
    every : float, default=0.1
        Fraction of ``total`` between two lines at ``verbose=1``; 0 reports
        every update.
    """

    def __init__(self, tag, total, verbose, *, text="{done}/{total} images", every=0.1):
        self.tag, self.total, self.verbose = tag, total, verbose
        self.text, self.every = text, every
        self.done, self._steps = 0, 0  # ``every`` steps reported
        self.start = time.perf_counter()

    def update(self, done, detail=None):
        """``done`` items are done in all (a count, not an increment); maybe report."""
        self.done = done
        if not self.verbose or not self.total:
            return
        steps = int(done / self.total / self.every + 1e-9) if self.every > 0 else done
        if self.verbose > 1 or steps > self._steps or done >= self.total:
            self._steps = steps
            count = self.text.format(done=done, total=self.total)
            detail = "" if detail is None else f", {detail}"
            log(self.tag, f"{count}{detail}, {time.perf_counter() - self.start:.1f} s")

    def note(self, message):
        """Log ``message`` under this tag when verbose."""
        if self.verbose:
            log(self.tag, message)
