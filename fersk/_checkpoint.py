"""Crash-safe training state of the Keras estimators (``checkpoint_dir``).

A fit with ``checkpoint_dir`` works in a sub-folder of its own,
``<checkpoint_dir>/fersk-state-<key>/``, where ``key`` digests the
estimator's training parameters and the training data, so two fits (two
cross-validation folds, two runs on other data) never share a state, and
a fit run again with the same parameters and data finds its own.  In it:

``lock``
    The pid and host of the process fitting (created with ``O_EXCL``); a
    second fit (process or thread) of the very same key meanwhile gets a
    :class:`CheckpointInUseError` from :meth:`TrainingState.acquire`, and
    trains without a state (a warning) unless it must resume or keep this
    one.  The lock of a dead process on this host is taken over.
``epoch-<NNNNN>-<digest>.weights.h5``
    Weights, optimizer state (its step count drives the learning-rate
    schedule) after epoch ``NNNNN``; the newest two are kept.  Each is
    written to a ``tmp-*`` file, flushed to disk, then renamed into place,
    so a name always holds a complete file; ``digest`` (BLAKE2b of the
    content) is checked before it is read back.
``epoch-<NNNNN>.json``
    What else a resumed fit needs to carry on as an uninterrupted one
    would: the history of the epochs so far (``history_``, ``best_epoch_``),
    the counters of early stopping and of the plateau schedule, whether
    early stopping ended the training with this epoch (``stopped``: a
    resumed fit then trains no further epoch), and the states of the
    dropout and augmentation random generators.
``best-<digest>.weights.h5``
    The weights of the best epoch so far, which early stopping restores at
    the end (a link to that epoch's file, or a copy).
``final-<digest>.weights.h5`` and ``final.json``
    The fitted network (best weights restored) and its history, written
    when the caller keeps the state past the end of the fit
    (``_keep_checkpoint``) until it has saved the model; a fit that finds
    them trains no more.

Nothing else in ``checkpoint_dir`` is touched: only these names are
removed, and the sub-folder only when it is empty.
"""

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import time
import types
import uuid
import warnings
from pathlib import Path

import keras
import numpy as np

from fersk._fsync import fsync_path

#: Parameters that do not change what a fit computes: a fit that differs
#: only in these resumes the same state.
NOT_IN_KEY = frozenset(
    {"verbose", "checkpoint_dir", "predict_batch_size", "test_time_flip", "test_time_crops",
     "test_time_margin"}
)

STATE_PREFIX = "fersk-state-"
LOCK = "lock"
FINAL_JSON = "final.json"
_EPOCH_FILE = re.compile(r"^epoch-(\d+)-([0-9a-f]{16})\.weights\.h5$")
_EPOCH_RECORD = re.compile(r"^epoch-(\d+)\.json$")
_BEST_FILE = re.compile(r"^best-([0-9a-f]{16})\.weights\.h5$")
#: The counters of keras's EarlyStopping / ReduceLROnPlateau that a resumed
#: fit restores (each callback has some of them).
_CALLBACK_COUNTERS = ("wait", "best", "best_epoch", "stopped_epoch", "cooldown_counter")
_FINAL_FILE = re.compile(r"^final-([0-9a-f]{16})\.weights\.h5$")
_TEMPORARY = re.compile(r"^tmp-\d+-[0-9a-f]+\.(weights\.h5|json)$")
_DAMAGED = re.compile(r"^(epoch|final|best)-.*\.damaged$")

#: An unreadable lock younger than this may be one being written.
_FRESH_LOCK_SECONDS = 10.0
# How long a fit finding an empty lock waits for its owner to be written.
_OWNER_WRITE_WAIT_SECONDS = 1.0


class NoStateToResumeError(ValueError):
    """A fit asked only to resume (``fersk train --resume``) found no state
    of its own: the interrupted run had other parameters or data."""


class CheckpointInUseError(RuntimeError):
    """Another live process (or thread) is fitting with the same training
    state; ``owner`` is the lock's ``(pid, host)``, None if unreadable."""

    def __init__(self, message, owner=None):
        super().__init__(message)
        self.owner = owner

    @property
    def owner_text(self):
        """The lock's owner in words ("process 12 on host", "another fit")."""
        if self.owner is None:
            return "another fit"
        if self.owner == (os.getpid(), socket.gethostname()):
            return "another fit in this process"
        return f"process {self.owner[0]} on {self.owner[1]}"


# ----------------------------------------------------------------- the key
def _update_with_array(h, a):
    if a is None:
        h.update(b"None;")
        return
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape};".encode())
    h.update(a.data if a.dtype.kind != "O" else repr(a.tolist()).encode())


def fit_key(estimator, seed, arrays, extra=None, warm_weights=None):
    """The sub-folder key of one fit: 16 hex digits.

    Parameters
    ----------
    estimator : BaseKerasImageClassifier
        Its class and parameters (less :data:`NOT_IN_KEY`; ``random_state``
        as the integer seed drawn from it) enter the key.
    seed : int or None
        The seed drawn from ``random_state``.
    arrays : sequence of ndarray or None
        The training and validation arrays (shapes, dtypes and content).
    extra : object, default=None
        Anything else the fit depends on (class weights), by ``repr``.
    warm_weights : sequence of ndarray or None, default=None
        A warm start's starting weights (``model.weights`` as the fit
        found them, not as it leaves them: an interrupted warm fit puts
        them back, and its rerun finds its state by them).
    """
    import joblib

    params = {
        k: v for k, v in estimator.get_params(deep=False).items() if k not in NOT_IN_KEY
    }
    params["random_state"] = seed
    try:
        params_digest = joblib.hash(params)
    except Exception:
        # A lambda or nested function: its repr holds a memory address, so
        # every process would make a new key and never resume.
        names = []
        for name, value in sorted(params.items()):
            try:
                joblib.hash(value)
            except Exception:
                names.append(name)
        raise ValueError(
            f"checkpoint_dir: a resumed fit finds its state by the parameters, and "
            f"{', '.join(names) or 'a parameter'} cannot be pickled (a lambda or a function "
            "defined inside another): define it at module level, or set checkpoint_dir=None."
        ) from None
    # A function is pickled (so hashed) by its name: its code too, so that
    # a builder edited since the interruption does not load the old state.
    code = {name: _code_fingerprint(value) for name, value in sorted(params.items())
            if callable(value) and not isinstance(value, type)}
    code = {name: value for name, value in code.items() if value is not None}
    if code:
        params_digest += ";" + joblib.hash(code)
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{type(estimator).__module__}.{type(estimator).__qualname__};".encode())
    h.update(f"{params_digest};{extra!r};".encode())
    for a in arrays:
        _update_with_array(h, a)
    for w in warm_weights or ():
        _update_with_array(h, w)
    return h.hexdigest()


def _code_fingerprint(fn, depth=0):
    """What a function (a builder) computes, as far as its own code shows:
    its bytecode, constants and the names it uses (nested functions' too),
    its defaults and the values its closure holds (a decorator's wrapped
    function included), so that editing it changes the key; not the
    globals or other functions it calls.  None for what has no code (a
    class, a callable object: known by its name only).  The same in every
    process of one Python version (sets of constants sorted)."""
    if depth > 8:  # a closure holding itself
        return "..."
    if isinstance(fn, functools.partial):
        return ("partial", _code_fingerprint(fn.func, depth + 1), _value_digest(fn.args),
                _value_digest(sorted(fn.keywords.items())))
    if isinstance(fn, types.MethodType):
        return ("method", _code_fingerprint(fn.__func__, depth + 1), _value_digest(fn.__self__))
    code = getattr(fn, "__code__", None)
    if not isinstance(code, types.CodeType):
        return None
    cells = []
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # not yet assigned
            cells.append("<empty>")
            continue
        code_of_value = _code_fingerprint(value, depth + 1) if callable(value) else None
        cells.append(code_of_value if code_of_value is not None else _value_digest(value))
    return (_code_parts(code), _value_digest(getattr(fn, "__defaults__", None)),
            _value_digest(getattr(fn, "__kwdefaults__", None)), tuple(cells))


def _code_parts(code):
    """A code object's bytecode, constants (nested code objects as theirs)
    and names, without its line numbers."""
    consts = tuple(_code_parts(c) if isinstance(c, types.CodeType) else _ordered(c)
                   for c in code.co_consts)
    return (code.co_code, consts, code.co_names)


def _ordered(value):
    """``value`` with its frozensets (``x in {"a", "b"}`` compiles to one)
    as sorted tuples: their order, and so their pickle and ``joblib.hash``,
    follows the per-process string hashes."""
    if isinstance(value, frozenset):
        return ("frozenset", tuple(sorted(repr(_ordered(v)) for v in value)))
    if isinstance(value, (tuple, list)):
        return type(value)(_ordered(v) for v in value)
    if isinstance(value, dict):
        return {k: _ordered(v) for k, v in value.items()}
    return value


def _value_digest(value):
    """``joblib.hash`` of ``value``, or its type's name where it has none."""
    import joblib

    try:
        return joblib.hash(_ordered(value))
    except Exception:
        return f"<{type(value).__module__}.{type(value).__qualname__}>"


# ------------------------------------------------------------ file helpers
def _digest_and_sync(path):
    """BLAKE2b (16 hex digits) of a file's content, after flushing it to disk."""
    return _file_digest(path, sync=True)


def _file_digest(path, sync=False):
    """BLAKE2b (16 hex digits) of a file's content; ``sync`` also flushes
    the file to disk (it must then be writable)."""
    h = hashlib.blake2b(digest_size=8)
    with open(path, "r+b" if sync else "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
        if sync:
            os.fsync(f.fileno())
    return h.hexdigest()


def _commit(tmp, final):
    """Put the complete file ``tmp`` at ``final`` in one step (``os.replace``)."""
    os.replace(tmp, final)
    fsync_path(final.parent)


def _pid_alive(pid):
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)
        if not handle:
            return False
        ctypes.windll.kernel32.CloseHandle(handle)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _read_lock(path):
    """``(pid, host)`` written in a lock file, or None if it holds neither."""
    try:
        text = Path(path).read_text()
        pid, host = text.split()[:2]
        return int(pid), host
    except (OSError, ValueError):
        return None


def _read_lock_written(path, wait=_OWNER_WRITE_WAIT_SECONDS):
    """:func:`_read_lock`, waiting up to ``wait`` seconds for a lock just
    created (empty, its owner not written yet) to name its owner: a lock is
    made and then written, so a fit that finds it in between would
    otherwise name no owner ("another fit" for a fit of this process)."""
    deadline = time.monotonic() + wait
    while True:
        owner = _read_lock(path)
        if owner is not None or time.monotonic() >= deadline:
            return owner
        try:
            info = Path(path).stat()
        except FileNotFoundError:  # released meanwhile
            return None
        # Written but not a lock's text, or too old to be being written.
        if info.st_size or time.time() - info.st_mtime >= _FRESH_LOCK_SECONDS:
            return None
        time.sleep(0.01)


def _lock_alive(lock, owner):
    """Whether ``lock``, holding ``owner`` (:func:`_read_lock`), may belong to
    a running fit: a live process on this host, any on another host, or an
    unreadable lock young enough to be one being written."""
    if owner is None:
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:  # released meanwhile
            return False
        return age < _FRESH_LOCK_SECONDS
    return owner[1] != socket.gethostname() or _pid_alive(owner[0])


# ------------------------------------------------------------------ state
class TrainingState:
    """The training state of one fit: its sub-folder of ``checkpoint_dir``.

    Parameters
    ----------
    folder : str or path-like
        The sub-folder (``<checkpoint_dir>/fersk-state-<key>``).
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self._locked = False

    @classmethod
    def of_fit(cls, checkpoint_dir, key):
        return cls(Path(os.fspath(checkpoint_dir)) / f"{STATE_PREFIX}{key}")

    def has_saved(self):
        """Whether an epoch's or the final state is here (a fit to resume)."""
        return self.folder.is_dir() and any(
            _EPOCH_FILE.match(p.name) or p.name == FINAL_JSON for p in self.folder.iterdir()
        )

    # ------------------------------------------------------------- lock
    def acquire(self):
        """Create the folder and take its lock, or raise CheckpointInUseError."""
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = self.folder / LOCK
        me = f"{os.getpid()} {socket.gethostname()}\n"
        for _ in range(5):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_stale(lock)
                continue
            try:
                os.write(fd, me.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self._locked = True
            return self
        owner = _read_lock(lock)
        raise CheckpointInUseError(self._in_use_message(lock, owner), owner)

    def _in_use_message(self, lock, owner):
        who = "another process" if owner is None else f"process {owner[0]} on {owner[1]}"
        return (
            f"the training state {self.folder} is in use by {who} fitting the same "
            f"estimator on the same data (lock file {lock}). Wait for it to finish, give "
            "this fit another checkpoint_dir, or delete the lock file if no such fit runs."
        )

    def held_by(self):
        """Who holds this state's lock while fitting: ``(pid, host)`` of a
        live process (or of one on another host, which cannot be checked),
        ``(None, None)`` for a lock still being written; None when there is
        no lock or its process is dead (a stale lock, taken over)."""
        lock = self.folder / LOCK
        owner = _read_lock(lock)
        if not _lock_alive(lock, owner):
            return None
        return owner or (None, None)

    def _take_over_stale(self, lock):
        """Remove the lock of a dead process; raise if its owner may be alive."""
        owner = _read_lock_written(lock)
        if _lock_alive(lock, owner):
            raise CheckpointInUseError(self._in_use_message(lock, owner), owner)
        # Renamed away rather than deleted: of two processes taking over the
        # same stale lock only one succeeds, and the other cannot remove the
        # fresh lock of the winner.
        moved = lock.with_name(f"{LOCK}.stale-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(lock, moved)
        except FileNotFoundError:
            return
        if _read_lock(moved) != owner:  # a live lock taken meanwhile: put it back
            try:
                os.link(moved, lock)
            except OSError:
                pass
            moved.unlink(missing_ok=True)
            owner = _read_lock(lock)
            raise CheckpointInUseError(self._in_use_message(lock, owner), owner)
        moved.unlink(missing_ok=True)

    def release(self):
        """Give the lock back; a folder left empty (a fit stopped before its
        first epoch was saved) goes with it, so that no empty state reads as
        an interrupted run."""
        if self._locked:
            self._locked = False
            lock = self.folder / LOCK
            if _read_lock(lock) == (os.getpid(), socket.gethostname()):
                lock.unlink(missing_ok=True)
                try:
                    self.folder.rmdir()
                except OSError:  # not empty (a state, another's lock): kept
                    pass

    # ------------------------------------------------------------ write
    def _temporary(self, suffix):
        return self.folder / f"tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}{suffix}"

    def _write_weights(self, model, stem, before_rename=None):
        """``<stem>-<digest>.weights.h5``, whole or not at all;
        ``before_rename(tmp, final)`` runs once the temporary file is
        complete, before it takes its name (what must be on disk first)."""
        tmp = self._temporary(".weights.h5")
        try:
            model.save_weights(tmp)
            digest = _digest_and_sync(tmp)
            final = self.folder / f"{stem}-{digest}.weights.h5"
            if before_rename is not None:
                before_rename(tmp, final)
            _commit(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return final

    def _write_json(self, name, content):
        tmp = self._temporary(".json")
        try:
            with open(tmp, "w") as f:
                json.dump(content, f)
                f.flush()
                os.fsync(f.fileno())
            _commit(tmp, self.folder / name)
        finally:
            tmp.unlink(missing_ok=True)

    def _epoch_files(self):
        """``(epoch, path)`` of the epoch checkpoints, newest last."""
        found = []
        for path in self.folder.iterdir():
            m = _EPOCH_FILE.match(path.name)
            if m:
                found.append((int(m.group(1)), path.stat().st_mtime_ns, path))
        return [(epoch, path) for epoch, _, path in sorted(found)]

    def save_epoch(self, model, epoch, record=None, best_is_now=False):
        """Save the state after ``epoch`` epochs; keep it and the one before.

        ``record`` (JSON: the history so far, the callbacks' counters, the
        name of the best weights' file) is written beside the weights;
        with ``best_is_now`` these weights are the best so far, kept as
        ``best-*`` too.  Returns the best weights' file name, if any.
        The weights are renamed into place last, so that every epoch file
        has its record and its best weights already on disk.
        """
        best = None if record is None else record.get("best_weights")

        def record_first(tmp, weights):
            nonlocal best
            if record is not None:
                if best_is_now:
                    best = self._keep_as_best(tmp, weights)
                self._write_json(f"epoch-{epoch:05d}.json",
                                 {**record, "weights": weights.name, "best_weights": best})

        self._write_weights(model, f"epoch-{epoch:05d}", before_rename=record_first)
        self._prune()
        return best

    def _prune(self):
        """Keep the newest two epochs, their records and the best weights
        those name; remove the rest of the epochs' files."""
        epochs = self._epoch_files()
        for _, old in epochs[:-2]:
            old.unlink(missing_ok=True)
        kept = {epoch for epoch, _ in epochs[-2:]}
        referenced = set()
        for path in list(self.folder.iterdir()):
            m = _EPOCH_RECORD.match(path.name)
            if m is None:
                continue
            if int(m.group(1)) not in kept:
                path.unlink(missing_ok=True)
                continue
            try:
                referenced.add(json.loads(path.read_text()).get("best_weights"))
            except (OSError, ValueError, AttributeError):
                pass
        for path in list(self.folder.iterdir()):
            if _BEST_FILE.match(path.name) and path.name not in referenced:
                path.unlink(missing_ok=True)

    def _keep_as_best(self, tmp, weights):
        """The epoch's weights (``tmp``, to be renamed ``weights``) also as
        ``best-<digest>``: a hard link where the file system has them, else
        a copy."""
        best = self.folder / f"best-{weights.name.rsplit('-', 1)[1]}"
        if best.exists():
            return best.name
        other = self._temporary(".weights.h5")
        try:
            try:
                os.link(tmp, other)
            except OSError:
                shutil.copyfile(tmp, other)
                fsync_path(other)
            _commit(other, best)
        finally:
            other.unlink(missing_ok=True)
        return best.name

    def save_best(self, model, weights):
        """``best-<digest>`` from ``weights`` held in memory (early stopping's
        best epoch, whose own save failed), whole or not at all; ``model``
        keeps its weights."""
        current = model.get_weights()
        model.set_weights(weights)
        tmp = self._temporary(".weights.h5")
        try:
            model.save_weights(tmp)
            best = self.folder / f"best-{_digest_and_sync(tmp)}.weights.h5"
            if not best.exists():
                _commit(tmp, best)
        finally:
            tmp.unlink(missing_ok=True)
            model.set_weights(current)
        return best.name

    def save_final(self, model, history, seconds=None):
        """Save the fitted network, its history and the seconds its training
        took (every process's); drop the epoch checkpoints."""
        weights = self._write_weights(model, "final")
        self._write_json(FINAL_JSON, {"weights": weights.name, "history": history,
                                      "seconds": seconds})
        for _, old in self._epoch_files():
            old.unlink(missing_ok=True)
        for path in list(self.folder.iterdir()):
            if ((_FINAL_FILE.match(path.name) and path != weights)
                    or _EPOCH_RECORD.match(path.name) or _BEST_FILE.match(path.name)):
                path.unlink(missing_ok=True)

    # ------------------------------------------------------------- read
    def _candidates(self):
        """``(path, epoch, history)`` to try, best first."""
        found = []
        final = self.folder / FINAL_JSON
        if final.exists():
            try:
                content = json.loads(final.read_text())
                path = self.folder / content["weights"]
                history = {k: list(v) for k, v in content["history"].items()}
                # Read by the fit that finds the training done (None: an older state).
                self.final_seconds = content.get("seconds")
                if not _FINAL_FILE.match(path.name):
                    raise ValueError(f"unexpected weights file name {path.name!r}")
                found.append((path, None, history))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                self._set_aside(final, f"{type(exc).__name__}: {exc}")
        found += [(path, epoch, None) for epoch, path in reversed(self._epoch_files())]
        return found

    def _set_aside(self, path, reason):
        warnings.warn(
            f"fersk checkpoint {path} is damaged ({reason}); it is set aside as "
            f"{path.name}.damaged and the fit falls back to the previous checkpoint.",
            UserWarning, stacklevel=4,
        )
        try:
            os.replace(path, path.with_name(path.name + ".damaged"))
        except OSError:
            pass

    def _record(self, epoch, weights):
        """The record saved with epoch ``epoch``'s ``weights``, or None where
        there is none (states written before 2026-12-05 kept no record) or
        it belongs to other weights."""
        path = self.folder / f"epoch-{epoch:05d}.json"
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self._set_aside(path, f"{type(exc).__name__}: {exc}")
            return None
        if not isinstance(record, dict) or record.get("weights") != weights.name:
            return None
        return record

    def restore(self, model):
        """Load the newest sound state into ``model`` (compiled).

        Returns
        -------
        epoch : int
            Epochs done (0: nothing saved, train from the start).
        history : dict or None
            The finished fit's history when the state is final (train no
            more), else None.
        record : dict or None
            For an epoch's state: its record (``history`` so far,
            ``callbacks`` counters, ``best_weights``: the best epoch's
            weights as a list of arrays, or None; ``stopped``: early
            stopping ended the training there); None where the state
            has none (written by an earlier fersk).
        """
        for path in self.folder.iterdir():
            if _TEMPORARY.match(path.name):  # a write cut short; we hold the lock
                path.unlink(missing_ok=True)
        damaged = []
        for path, epoch, history in self._candidates():
            expected = (_EPOCH_FILE.match(path.name) or _FINAL_FILE.match(path.name)).groups()[-1]
            try:
                actual = _file_digest(path)
                if actual != expected:
                    raise ValueError(
                        f"its content digest is {actual}, not the {expected} it was "
                        f"written with ({path.stat().st_size} bytes)"
                    )
                if model.optimizer is not None and not model.optimizer.built:
                    model.optimizer.build(model.trainable_variables)
                record = None if epoch is None else self._record(epoch, path)
                if record is not None and record.get("best_weights"):
                    # The best epoch's weights first (early stopping keeps
                    # them as arrays), then this epoch's over them.
                    self._restore_best(model, record)
                model.load_weights(path)
            except Exception as exc:  # truncated, garbage, other network...
                damaged.append(path)
                self._set_aside(path, f"{type(exc).__name__}: {exc}")
                continue
            if history:
                return len(next(iter(history.values()), [])), history, None
            return epoch, None, record
        if damaged:
            raise ValueError(
                f"no usable training state in {self.folder}: "
                f"{', '.join(p.name for p in damaged)} "
                "(now *.damaged) could not be read back. Delete that folder to train from "
                "the start."
            )
        return 0, None, None

    def _restore_best(self, model, record):
        """Put the best epoch's weights named by ``record`` in it as arrays.

        A best file gone or damaged (a kill while the state was removed,
        bit rot) costs that epoch only, not the epochs' own files: it is set
        aside, the record says ``best_lost`` and early stopping counts its
        best afresh from the resumed epoch on."""
        best = self.folder / record["best_weights"]
        try:
            if not _BEST_FILE.match(best.name):
                raise ValueError(f"unexpected best weights name {best.name!r}")
            digest = _file_digest(best)
            if digest != _BEST_FILE.match(best.name).group(1):
                raise ValueError(f"its content digest is {digest}")
            model.load_weights(best)
        except Exception as exc:
            warnings.warn(
                f"fersk checkpoint {best} cannot be read ({type(exc).__name__}: {exc}): the "
                "best epoch's weights are lost, so early stopping restores the best epoch "
                "from the resumed one on.", UserWarning, stacklevel=4,
            )
            if best.exists():
                with contextlib.suppress(OSError):
                    os.replace(best, best.with_name(best.name + ".damaged"))
            record["best_file"], record["best_weights"], record["best_lost"] = None, None, True
            return
        record["best_file"], record["best_weights"] = best.name, model.get_weights()

    # ----------------------------------------------------------- remove
    def discard(self):
        """Remove fersk's files and, if empty then, the folder."""
        if not self.folder.is_dir():
            return
        if not self._locked:
            try:
                self.acquire()
            except CheckpointInUseError as exc:
                warnings.warn(f"training state not removed: {exc}", UserWarning, stacklevel=3)
                return
        # The weights first, the records and best files they name last: a
        # kill part way leaves either no epoch or a whole one (a best file
        # gone under a kept epoch would cost that epoch its best).
        def last(path):
            return bool(_EPOCH_RECORD.match(path.name) or _BEST_FILE.match(path.name))

        try:
            for path in sorted(self.folder.iterdir(), key=last):
                name = path.name
                if (
                    _EPOCH_FILE.match(name) or _FINAL_FILE.match(name) or _TEMPORARY.match(name)
                    or _EPOCH_RECORD.match(name) or _BEST_FILE.match(name)
                    or _DAMAGED.match(name) or name in (FINAL_JSON, FINAL_JSON + ".damaged")
                ):
                    path.unlink(missing_ok=True)
        finally:
            self.release()
        try:
            self.folder.rmdir()
        except OSError:  # something else is in it: not ours to delete
            pass


def discard_states(checkpoint_dir):
    """Remove every fit's training state under ``checkpoint_dir``, fersk's
    files only, then the state folders left empty.

    Raises CheckpointInUseError (and removes nothing of that fit) when a
    live process holds a state's lock: its run must not lose its epochs
    under it.  Files that are not fersk's stay, with their folders, and
    ``checkpoint_dir`` itself stays even when empty: it may be a folder of
    the user's (its mode, its ACLs), which the next fit would make anew
    without them.
    """
    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        return
    states = [TrainingState(p) for p in sorted(checkpoint_dir.iterdir())
              if p.is_dir() and p.name.startswith(STATE_PREFIX)]
    for state in states:  # every lock first: all or nothing
        try:
            state.acquire()
        except CheckpointInUseError:
            for taken in states:
                taken.release()
            raise
    for state in states:
        state.discard()


class SaveEachEpoch(keras.callbacks.Callback):
    """Saves the :class:`TrainingState` after every epoch.

    ``counted`` are the fit's early-stopping and plateau callbacks (listed
    before this one): their counters and, for early stopping, the best
    weights are saved too, and ``resumed`` (the record :meth:`TrainingState.restore`
    returned) puts them back when training starts again, with the history
    of the epochs before, so that a resumed fit ends as an uninterrupted
    one would.  A save that fails (a full disk) warns and keeps the
    previous state: the run goes on.
    """

    def __init__(self, state, counted=(), resumed=None):
        super().__init__()
        self.state = state
        self.counted = list(counted)
        self.resume(resumed)

    def resume(self, record):
        """Carry on from ``record`` (see :meth:`TrainingState.restore`)."""
        self.resumed = record
        # Seconds the epochs before took, in the processes that trained them
        # (a resumed run's card counts them too); None where a state kept none.
        self.seconds_before = (record or {}).get("seconds", 0.0 if record is None else None)
        self.start = time.perf_counter()
        self.history = {k: list(v) for k, v in (record or {}).get("history", {}).items()}
        self.best_file = (record or {}).get("best_file")
        self.best_on_disk = None  # early stopping's best_epoch that best_file holds

    def seconds(self):
        """Training seconds so far, every process's (None: unknown)."""
        if self.seconds_before is None:
            return None
        return self.seconds_before + time.perf_counter() - self.start

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        # After the counted callbacks' own on_train_begin, which resets them.
        if not self.resumed:
            return
        _set_seed_states(self.model, self.resumed.get("seed_states", []))
        for callback, counters in zip(self.counted, self.resumed.get("callbacks", [])):
            stopper = getattr(callback, "restore_best_weights", False)
            for name, value in counters.items():
                if not (stopper and self.resumed.get("best_lost")):  # else counted afresh
                    setattr(callback, name, value)
            if stopper:
                callback.best_weights = self.resumed.get("best_weights")
                if self.best_file is not None:
                    self.best_on_disk = callback.best_epoch

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        stopper = next((c for c in self.counted if getattr(c, "restore_best_weights", False)),
                       None)
        best_is_now = stopper is not None and stopper.best_epoch == epoch \
            and stopper.best_weights is not None
        if (stopper is not None and stopper.best_weights is not None and not best_is_now
                and stopper.best_epoch != self.best_on_disk):
            # The best epoch's save failed (a full disk): its weights are in
            # memory only, and a record naming older ones would resume wrong.
            try:
                self.best_file = self.state.save_best(self.model, stopper.best_weights)
                self.best_on_disk = stopper.best_epoch
            except OSError as exc:
                warnings.warn(f"could not save the best epoch's weights in {self.state.folder} "
                              f"({exc}); tried again next epoch.", UserWarning, stacklevel=2)
        record = {
            "history": self.history,
            "seed_states": _seed_states(self.model),
            "callbacks": [{name: _plain(getattr(c, name)) for name in _CALLBACK_COUNTERS
                           if hasattr(c, name)} for c in self.counted],
            "best_weights": self.best_file if stopper is not None else None,
            # Early stopping fired this epoch: a fit resumed from here trains
            # no further epoch, it only ends (best weights restored).
            "stopped": bool(getattr(self.model, "stop_training", False)),
            "seconds": self.seconds(),
        }
        try:
            best = self.state.save_epoch(self.model, epoch + 1, record, best_is_now=best_is_now)
        except OSError as exc:
            warnings.warn(
                f"could not save the training state of epoch {epoch + 1} in "
                f"{self.state.folder} ({exc}); the previous one is kept.",
                UserWarning, stacklevel=2,
            )
        else:
            self.best_file = best
            if best_is_now:
                self.best_on_disk = epoch


def _seed_variables(model):
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def _seed_states(model):
    """The states of the model's random generators (dropout, augmentation),
    in the model's order (their names carry a per-process counter):
    ``save_weights`` leaves them out, and without them a resumed fit drew
    its epochs' dropout masks and augmentations afresh."""
    return [keras.ops.convert_to_numpy(v).tolist() for v in _seed_variables(model)]


def _set_seed_states(model, states):
    variables = _seed_variables(model)
    if len(variables) == len(states):
        for v, state in zip(variables, states):
            v.assign(np.asarray(state, dtype=v.dtype))


def _plain(value):
    """A callback counter as JSON (numpy scalars, infinities as floats)."""
    if value is None:
        return None
    value = float(value)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value
