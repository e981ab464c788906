"""Fault injection on ``checkpoint_dir``: nothing lost, nothing silently wrong.

Tiny fits (12x12 images, a vgg_fer of width 0.125, 3 epochs of 2 batches)
killed with SIGKILL at chosen write points in a child process, damaged
checkpoint files, a held lock, and a shared ``checkpoint_dir`` under
parallel cross-validation.  The user's own files in ``checkpoint_dir``
must survive all of it.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from sklearn.model_selection import cross_validate  # noqa: E402

import fersk  # noqa: E402
from fersk import _checkpoint  # noqa: E402
from fersk._checkpoint import CheckpointInUseError, SaveEachEpoch  # noqa: E402
from fersk.classifiers import CNNClassifier  # noqa: E402

pytestmark = pytest.mark.skipif(os.name == "nt", reason="SIGKILL and pid locks: POSIX")

KW = dict(
    architecture="vgg_fer", architecture_params={"width": 0.125, "dense_units": 8},
    epochs=3, batch_size=16, optimizer="sgd", learning_rate=0.01,
    learning_rate_schedule="warmup_cosine", n_iter_no_change=None, random_state=0,
)
STEPS = 3 * 2  # epochs x batches of 32 images


def _faces(n=32, side=12, seed=0):
    """Two classes: the left or the right half brighter."""
    rng = np.random.RandomState(seed)
    X = rng.rand(n, side, side).astype(np.float32)
    y = np.arange(n) % 2
    X[y == 0, :, : side // 2] += 0.6
    X[y == 1, :, side // 2 :] += 0.6
    return X, y


def _with_user_files(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("mine")
    (folder / "runs").mkdir()
    (folder / "runs" / "old.weights.h5").write_bytes(b"not fersk's")
    return folder


def _user_files_intact(folder):
    return (
        (folder / "notes.txt").read_text() == "mine"
        and (folder / "runs" / "old.weights.h5").read_bytes() == b"not fersk's"
    )


def _state_folders(folder):
    return sorted(p for p in folder.iterdir() if p.name.startswith(_checkpoint.STATE_PREFIX))


def _interrupt_after(monkeypatch, n_epochs):
    """Make the next fit stop (as killed) once ``n_epochs`` states are saved."""
    original = SaveEachEpoch.on_epoch_end

    def on_epoch_end(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch + 1 == n_epochs:
            raise KeyboardInterrupt

    monkeypatch.setattr(SaveEachEpoch, "on_epoch_end", on_epoch_end)


def _killed_after_two_epochs(ckpt, X, y, monkeypatch):
    """The state folder of a KW fit stopped (as killed) after epoch 2."""
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        CNNClassifier(**KW, checkpoint_dir=ckpt).fit(X, y)
    monkeypatch.undo()
    (state,) = _state_folders(ckpt)
    return state


CHILD = textwrap.dedent("""
    import json, os, signal, sys
    import numpy as np
    from fersk import _checkpoint
    from fersk.classifiers import CNNClassifier

    data = np.load(sys.argv[1])
    kw = json.loads(sys.argv[2])
    kill_at, how = int(sys.argv[3]), sys.argv[4]
    calls = [0]
    commit = _checkpoint._commit

    def killed_at_a_write(tmp, final):
        calls[0] += 1
        if calls[0] == kill_at:
            if how == "half-written":  # killed while h5py was writing
                with open(tmp, "r+b") as f:
                    f.truncate(os.path.getsize(tmp) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
        commit(tmp, final)

    _checkpoint._commit = killed_at_a_write
    CNNClassifier(**kw).fit(data["X"], data["y"])
""")


def _fit_in_child_killed(tmp_path, kw, kill_at, how):
    X, y = _faces()
    np.savez(tmp_path / "data.npz", X=X, y=y)
    env = {
        **os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(fersk.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    }
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "data.npz"), json.dumps(kw), str(kill_at),
         how],
        env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("kill_at", [3, 4], ids=["at-record", "at-weights"])
@pytest.mark.parametrize(
    "how", ["half-written", pytest.param("before-rename", marks=pytest.mark.extended)])
def test_sigkill_during_a_checkpoint_write_resumes_from_the_last_epoch(tmp_path, how, kill_at):
    ckpt = _with_user_files(tmp_path / "ckpt")
    # Each epoch commits its record, then its weights: the third commit is
    # epoch 2's record, the fourth its weights, so the kill leaves epoch 1's
    # state and a temporary file (half-written, or complete but not renamed).
    child = _fit_in_child_killed(tmp_path, {**KW, "checkpoint_dir": str(ckpt)}, kill_at, how)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    (state,) = _state_folders(ckpt)
    names = sorted(p.name for p in state.iterdir())
    assert [n for n in names if n.startswith("epoch-")][0].startswith("epoch-00001-"), names
    assert any(n.startswith("tmp-") for n in names) and "lock" in names, names
    assert _user_files_intact(ckpt)

    X, y = _faces()
    with warnings.catch_warnings():  # the temporary file is no checkpoint: silently dropped
        warnings.filterwarnings("error", message=".*damaged")
        resumed = CNNClassifier(**KW, checkpoint_dir=ckpt).fit(X, y)
    # Epochs 2 and 3 only (not from zero), the schedule's step count continued,
    # the whole history kept: the very fit of an uninterrupted process.
    assert resumed.n_epochs_ == 3
    assert int(resumed.model_.optimizer.iterations) == STEPS
    assert np.isfinite(resumed.history_["loss"]).all()
    whole = CNNClassifier(**KW).fit(X, y)
    assert resumed.history_ == whole.history_
    for a, b in zip(resumed.model_.get_weights(), whole.model_.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Done: fersk's sub-folder is gone, the user's files are not.
    assert _state_folders(ckpt) == [] and _user_files_intact(ckpt)


def test_a_completed_fit_removes_only_its_own_files(tmp_path):
    ckpt = _with_user_files(tmp_path / "ckpt")
    X, y = _faces()
    CNNClassifier(**{**KW, "epochs": 1}, checkpoint_dir=str(ckpt)).fit(X, y)
    assert ckpt.is_dir() and _user_files_intact(ckpt)
    assert sorted(p.name for p in ckpt.iterdir()) == ["notes.txt", "runs"]


def test_fits_on_other_data_use_other_sub_folders(tmp_path):
    ckpt = _with_user_files(tmp_path / "ckpt")
    kw = {**KW, "epochs": 1, "checkpoint_dir": ckpt}
    fitted = []
    for seed in (0, 1):
        clf = CNNClassifier(**kw)
        clf._keep_checkpoint = True  # as train_fer2013 does: kept until discarded
        fitted.append(clf.fit(*_faces(seed=seed)))
    folders = _state_folders(ckpt)
    assert len(folders) == 2
    assert sorted(str(c._kept_checkpoint) for c in fitted) == [str(f) for f in folders]

    # The same fit again (verbose and prediction settings apart) finds its
    # own final state: the fitted network, without training again.
    X, y = _faces(seed=1)
    again = CNNClassifier(**{**kw, "verbose": 1, "test_time_flip": True})
    again._keep_checkpoint = True
    again.fit(X, y)
    assert str(again._kept_checkpoint) == str(fitted[1]._kept_checkpoint)
    assert int(again.model_.optimizer.iterations) == int(fitted[1].model_.optimizer.iterations)
    again.set_params(test_time_flip=False)
    np.testing.assert_allclose(again.predict_proba(X), fitted[1].predict_proba(X), rtol=1e-6)
    assert again.history_ == fitted[1].history_

    for clf in fitted:
        clf._discard_checkpoint()
    again._discard_checkpoint()  # already removed: nothing to do
    assert _state_folders(ckpt) == [] and _user_files_intact(ckpt)


@pytest.mark.parametrize(
    "damage", ["truncated", *(pytest.param(d, marks=pytest.mark.extended) for d in ("empty", "garbage"))])
def test_a_damaged_checkpoint_falls_back_to_the_previous_with_a_warning(
    tmp_path, monkeypatch, damage
):
    ckpt = tmp_path / "ckpt"
    X, y = _faces()
    state = _killed_after_two_epochs(ckpt, X, y, monkeypatch)
    epochs = sorted(state.glob("epoch-*.weights.h5"))
    assert [p.name[:11] for p in epochs] == ["epoch-00001", "epoch-00002"]
    content = epochs[1].read_bytes()
    epochs[1].write_bytes({
        "empty": b"",
        "truncated": content[: len(content) // 3],
        "garbage": np.random.RandomState(0).bytes(len(content)),
    }[damage])

    with pytest.warns(UserWarning, match=r"epoch-00002-.*is damaged"):
        resumed = CNNClassifier(**KW, checkpoint_dir=ckpt).fit(X, y)
    assert resumed.n_epochs_ == 3  # from epoch 1, the last sound state, history whole
    assert int(resumed.model_.optimizer.iterations) == STEPS
    assert _state_folders(ckpt) == []


@pytest.mark.parametrize("degrade", [False, True])
def test_a_resumed_fit_is_the_uninterrupted_fit(tmp_path, monkeypatch, degrade):
    """Killed after epoch 2 of 4 and fitted again: the same weights, history_,
    n_epochs_ and best_epoch_ as a fit never interrupted, early stopping's
    best weights and the plateau schedule's counters included (before, the
    history held the resumed epochs only, early stopping forgot the best
    epoch before the kill and Keras's shuffling and dropout started over)."""
    X, y = _faces(48)
    X = (X * 120).astype(np.uint8)
    Xv, yv = _faces(16, seed=1)
    Xv = (Xv * 120).astype(np.uint8)
    kw = {**KW, "epochs": 4, "learning_rate": 0.05, "learning_rate_schedule": "plateau",
          "n_iter_no_change": 3, "degrade": degrade}
    whole = CNNClassifier(**kw).fit(X, y, validation_data=(Xv, yv))
    ckpt = tmp_path / "ckpt"
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        CNNClassifier(**kw, checkpoint_dir=ckpt).fit(X, y, validation_data=(Xv, yv))
    monkeypatch.undo()
    resumed = CNNClassifier(**kw, checkpoint_dir=ckpt).fit(X, y, validation_data=(Xv, yv))
    assert resumed.n_epochs_ == whole.n_epochs_ and resumed.best_epoch_ == whole.best_epoch_
    assert resumed.history_ == whole.history_
    for a, b in zip(resumed.model_.get_weights(), whole.model_.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert _state_folders(ckpt) == []


def _stopping_data():
    """16x16 uint8 faces and a tiny network whose early stopping fires
    (patience 1, a big rate) well before its 6 epochs."""
    rng = np.random.RandomState(0)
    X = (rng.rand(40, 16, 16) * 120).astype(np.uint8)
    y = np.arange(40) % 2
    X[y == 0, :, :8] += 100
    kw = dict(architecture="vgg_fer", architecture_params={"width": 0.125, "dense_units": 4},
              epochs=6, batch_size=16, optimizer="sgd", learning_rate=0.5, n_iter_no_change=1,
              random_state=0)
    return X, y, kw


@pytest.mark.parametrize("validation", [0.25, None], ids=["best-weights", "no-validation"])
def test_a_fit_killed_after_early_stopping_fired_trains_no_more(tmp_path, monkeypatch,
                                                                 validation):
    """Killed right after the epoch where early stopping fired (its state
    saved, the fit not returned yet), the resumed fit trained one more
    epoch or several (n_epochs_ 3 instead of 2; other weights where no best
    weights are restored): the record kept early stopping's counters but
    not that it had stopped.  Now it trains no epoch, it only ends as the
    uninterrupted fit: weights, history_, n_epochs_, best_epoch_."""
    X, y, kw = _stopping_data()
    kw["validation_fraction"] = validation
    whole = CNNClassifier(**kw).fit(X, y)
    assert 1 < whole.n_epochs_ < kw["epochs"]  # stopped early, as this test needs
    ckpt = tmp_path / "ckpt"
    _interrupt_after(monkeypatch, whole.n_epochs_)
    with pytest.raises(KeyboardInterrupt):
        CNNClassifier(**kw, checkpoint_dir=ckpt).fit(X, y)
    monkeypatch.undo()
    resumed = CNNClassifier(**kw, checkpoint_dir=ckpt).fit(X, y)
    assert resumed.n_epochs_ == whole.n_epochs_ and resumed.best_epoch_ == whole.best_epoch_
    assert resumed.history_ == whole.history_
    assert int(resumed.model_.optimizer.iterations) == int(whole.model_.optimizer.iterations)
    for a, b in zip(resumed.model_.get_weights(), whole.model_.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert _state_folders(ckpt) == []


def test_an_interrupted_warm_start_resumes_its_own_state(tmp_path, monkeypatch):
    """A warm fit with checkpoint_dir keyed its state on the live network's
    weights; interrupted (Ctrl-C), it left model_ partly trained, so the
    same fit run again in the process made another key, trained all its
    epochs over the partial weights and left the first state orphaned.
    Now the interrupted fit puts the starting weights back, and the rerun
    resumes its state: the uninterrupted warm fit's weights, no state
    left."""
    X, y, kw = _stopping_data()
    kw.update(learning_rate=0.05, n_iter_no_change=None, epochs=2)
    warm = dict(warm_start=True, epochs=4, learning_rate=0.01)
    # Two equal first fits (a pickled copy would draw new dropout seeds).
    whole = CNNClassifier(**kw).fit(X, y).set_params(**warm).fit(X, y)
    ckpt = tmp_path / "ckpt"
    clf = CNNClassifier(**kw).fit(X, y).set_params(**warm, checkpoint_dir=ckpt)
    before = [w.copy() for w in clf.model_.get_weights()]
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    monkeypatch.undo()
    for a, b in zip(clf.model_.get_weights(), before):  # as it was before that fit
        np.testing.assert_array_equal(a, b)
    assert len(_state_folders(ckpt)) == 1
    clf.fit(X, y)  # the same call again, in the same process
    assert clf.n_epochs_ == 4 and clf.history_ == whole.history_
    assert int(clf.model_.optimizer.iterations) == int(whole.model_.optimizer.iterations)
    for a, b in zip(clf.model_.get_weights(), whole.model_.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert _state_folders(ckpt) == []


def _early_stopped_data():
    rng = np.random.RandomState(0)
    X = (rng.rand(48, 16, 16) * 120).astype(np.uint8)
    y = np.arange(48) % 2
    X[y == 0, :, :8] += 100
    Xv = (np.random.RandomState(1).rand(16, 16, 16) * 200).astype(np.uint8)
    kw = dict(architecture="vgg_fer", architecture_params={"width": 0.0625, "dense_units": 8},
              epochs=4, batch_size=16, optimizer="sgd", learning_rate=0.05, n_iter_no_change=3,
              random_state=0)
    return X, y, (Xv, np.arange(16) % 2), kw


def test_a_failed_save_of_the_best_epoch_is_made_good_the_next_epoch(tmp_path, monkeypatch):
    """The best epoch's save fails (a full disk: a warning, the run goes on):
    the later records named no best weights, and a resumed fit ended on other
    weights than the uninterrupted one.  Its weights, in memory, are saved
    the next epoch."""
    import errno

    X, y, val, kw = _early_stopped_data()
    whole = CNNClassifier(**kw).fit(X, y, validation_data=val)
    assert whole.best_epoch_ == 0  # the epoch whose save fails below
    original = _checkpoint.TrainingState._keep_as_best
    calls = []

    def full_disk_once(self, tmp, weights):
        calls.append(weights)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, tmp, weights)

    monkeypatch.setattr(_checkpoint.TrainingState, "_keep_as_best", full_disk_once)
    _interrupt_after(monkeypatch, 2)
    ckpt = tmp_path / "ckpt"
    with pytest.warns(UserWarning, match="could not save"), pytest.raises(KeyboardInterrupt):
        CNNClassifier(**kw, checkpoint_dir=ckpt).fit(X, y, validation_data=val)
    monkeypatch.undo()
    resumed = CNNClassifier(**kw, checkpoint_dir=ckpt).fit(X, y, validation_data=val)
    assert resumed.best_epoch_ == whole.best_epoch_ and resumed.history_ == whole.history_
    for a, b in zip(resumed.model_.get_weights(), whole.model_.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_lost_best_file_costs_the_best_epoch_not_the_state(tmp_path, monkeypatch):
    """best-* gone (a kill while the state was removed: it went first) made
    every epoch file *.damaged and the fit fail; now the fit resumes from the
    epoch, with a warning that early stopping counts its best afresh."""
    X, y, val, kw = _early_stopped_data()
    ckpt = tmp_path / "ckpt"
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        CNNClassifier(**kw, checkpoint_dir=ckpt).fit(X, y, validation_data=val)
    monkeypatch.undo()
    (state,) = _state_folders(ckpt)
    (best,) = state.glob("best-*")
    best.unlink()
    with pytest.warns(UserWarning, match="best epoch's weights are lost"):
        resumed = CNNClassifier(**kw, checkpoint_dir=ckpt).fit(X, y, validation_data=val)
    assert resumed.n_epochs_ == 4 and len(resumed.history_["loss"]) == 4
    assert _state_folders(ckpt) == []


CHILD_BEST = textwrap.dedent("""
    import errno, os, signal, sys
    import numpy as np
    from fersk import _checkpoint
    from fersk.classifiers import CNNClassifier

    sys.path.insert(0, sys.argv[2])
    from test_checkpoint_safety import _early_stopped_data

    X, y, val, kw = _early_stopped_data()
    keep = _checkpoint.TrainingState._keep_as_best
    calls = []

    def full_disk_once(self, tmp, weights):
        calls.append(1)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return keep(self, tmp, weights)

    def killed_at_its_write(tmp, final):  # the best weights written from memory
        with open(tmp, "r+b") as f:
            f.truncate(os.path.getsize(tmp) // 2)
        os.kill(os.getpid(), signal.SIGKILL)

    save_best = _checkpoint.TrainingState.save_best

    def save_best_killed(self, model, weights):
        _checkpoint._commit = killed_at_its_write
        return save_best(self, model, weights)

    _checkpoint.TrainingState._keep_as_best = full_disk_once
    _checkpoint.TrainingState.save_best = save_best_killed
    CNNClassifier(**kw, checkpoint_dir=sys.argv[1]).fit(X, y, validation_data=val)
""")


def test_sigkill_while_the_best_weights_are_written_from_memory(tmp_path):
    """The best epoch's weights saved late (its own save failed): a kill at
    that write leaves the last epoch's state and a temporary file, and the
    fit resumes from it with the user's files intact."""
    ckpt = _with_user_files(tmp_path / "ckpt")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.pathsep.join(
        [str(Path(fersk.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.run([sys.executable, "-W", "ignore", "-c", CHILD_BEST, str(ckpt),
                            str(Path(__file__).parent)],
                           env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    (state,) = _state_folders(ckpt)
    names = sorted(p.name for p in state.iterdir())
    assert any(n.startswith("tmp-") for n in names), names
    assert not any(n.startswith("best-") for n in names), names
    X, y, val, kw = _early_stopped_data()
    with warnings.catch_warnings():  # the temporary file is no checkpoint: silently dropped
        warnings.filterwarnings("error", message=".*damaged")
        resumed = CNNClassifier(**kw, checkpoint_dir=ckpt).fit(X, y, validation_data=val)
    assert resumed.n_epochs_ == 4 and np.isfinite(resumed.history_["loss"]).all()
    assert _state_folders(ckpt) == [] and _user_files_intact(ckpt)


def test_removing_a_state_takes_its_best_file_last(tmp_path):
    state = _checkpoint.TrainingState(tmp_path / "s")
    state.acquire()
    names = ["best-0123456789abcdef.weights.h5", "epoch-00002.json",
             "epoch-00002-0123456789abcdef.weights.h5"]
    for name in names:
        (state.folder / name).write_bytes(b"x")
    removed = []
    original = Path.unlink

    def record(path, missing_ok=False):
        removed.append(path.name)
        original(path, missing_ok=missing_ok)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Path, "unlink", record)
        state.discard()
    assert removed.index(names[2]) < min(removed.index(names[0]), removed.index(names[1]))
    assert not state.folder.exists()


def test_a_state_without_its_record_resumes_with_a_warning(tmp_path, monkeypatch):
    """A state written before the records existed: the epochs go on from it,
    and the warning says that the history starts there."""
    ckpt = tmp_path / "ckpt"
    X, y = _faces()
    state = _killed_after_two_epochs(ckpt, X, y, monkeypatch)
    for record in state.glob("epoch-*.json"):
        record.unlink()
    with pytest.warns(UserWarning, match="without the history of its 2 epochs"):
        resumed = CNNClassifier(**KW, checkpoint_dir=ckpt).fit(X, y)
    assert resumed.n_epochs_ == 1
    assert int(resumed.model_.optimizer.iterations) == STEPS


def test_no_sound_checkpoint_is_a_clear_error_naming_the_files(tmp_path, monkeypatch):
    ckpt = tmp_path / "ckpt"
    X, y = _faces()
    state = _killed_after_two_epochs(ckpt, X, y, monkeypatch)
    for path in state.glob("epoch-*.weights.h5"):
        path.write_bytes(b"")
    with pytest.warns(UserWarning, match="damaged"), pytest.raises(
        ValueError, match=r"no usable training state .*epoch-00002-.*epoch-00001-.*Delete"
    ):
        CNNClassifier(**KW, checkpoint_dir=ckpt).fit(X, y)
    # Nothing is lost by the error: the files are set aside, not deleted.
    assert len(list(state.glob("*.damaged"))) == 2


def test_a_live_lock_is_left_alone_and_a_dead_ones_is_taken_over(tmp_path):
    """A state whose lock a live process holds is neither read nor written
    by a second fit of the same parameters and data: it trains without a
    state, with a warning (it failed, CheckpointInUseError), unless it must
    resume or keep that state (fersk train), which is told."""
    ckpt = tmp_path / "ckpt"
    X, y = _faces()
    kw = {**KW, "epochs": 1, "checkpoint_dir": ckpt}
    first = CNNClassifier(**kw)
    first._keep_checkpoint = True
    first.fit(X, y)
    state = Path(first._kept_checkpoint)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (state / "lock").write_text(f"{other.pid} {socket.gethostname()}\n")
        files = {p.name: p.read_bytes() for p in state.iterdir()}
        with pytest.warns(UserWarning, match=rf"process {other.pid} on .* holds the training "
                                             "state .*trains without saving its state"):
            apart = CNNClassifier(**kw).fit(X, y)
        assert apart.n_epochs_ == 1 and int(apart.model_.optimizer.iterations) == 2
        assert {p.name: p.read_bytes() for p in state.iterdir()} == files  # untouched
        for flag in ("_resume_only", "_keep_checkpoint"):
            told = CNNClassifier(**kw)
            setattr(told, flag, True)
            with pytest.raises(CheckpointInUseError, match=rf"in use by process {other.pid}"):
                told.fit(X, y)
    finally:
        other.kill()
        other.wait()
    # Its owner is dead now: the lock is stale and taken over.
    second = CNNClassifier(**kw).fit(X, y)
    np.testing.assert_allclose(second.predict_proba(X), first.predict_proba(X), rtol=1e-6)
    assert not state.exists()


def test_a_lock_found_before_its_owner_is_written_names_its_owner(tmp_path):
    """A fit finding another's lock between its creation and the writing of
    the owner read no owner and said "another fit" (the parallel-search
    test below failed about once in ten runs on a loaded machine); now it
    waits for the owner to be written and names it."""
    import threading

    state = _checkpoint.TrainingState(tmp_path / "fersk-state-x")
    state.folder.mkdir()
    lock = state.folder / "lock"
    lock.touch()  # created by O_EXCL, not yet written
    me = (os.getpid(), socket.gethostname())
    writer = threading.Timer(0.05, lambda: lock.write_text(f"{me[0]} {me[1]}\n"))
    writer.start()
    try:
        with pytest.raises(CheckpointInUseError) as raised:
            state.acquire()
    finally:
        writer.join()
    assert raised.value.owner == me
    assert raised.value.owner_text == "another fit in this process"
    # A lock left empty (a fit killed between the two steps) is not waited on
    # once it is too old to be being written: it is stale, taken over.
    lock.write_text("")
    os.utime(lock, (1, 1))
    assert state.acquire() is state and _checkpoint._read_lock(lock) == me
    state.release()


BUILDER = textwrap.dedent("""
    import keras


    def build(input_shape, n_classes, seed=None):
        activation = "{activation}"
        assert activation in {{"relu", "tanh", "elu", "gelu", "selu"}}
        inputs = keras.Input(input_shape)
        x = keras.layers.Dense(4, activation=activation)(keras.layers.Flatten()(inputs))
        return keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax")(x))
""")


def test_an_edited_builder_does_not_resume_the_old_state(tmp_path, monkeypatch):
    """A callable architecture entered the key by its module and name only
    (joblib pickles a function by reference): after the builder was edited
    (relu -> tanh, same shapes), a fit found the old state and loaded its
    weights without a word.  Now its code enters the key, the same in
    every process (another PYTHONHASHSEED orders its set constant
    otherwise)."""
    import importlib

    module = tmp_path / "fersk_test_builder.py"
    module.write_text(BUILDER.format(activation="relu"))
    monkeypatch.syspath_prepend(str(tmp_path))
    import fersk_test_builder as builder

    X, y, _ = _stopping_data()
    ckpt = tmp_path / "ckpt"
    kw = dict(epochs=1, batch_size=16, random_state=0, checkpoint_dir=str(ckpt))

    def key():
        return _checkpoint.fit_key(CNNClassifier(builder.build, **kw), 0, (X, y))

    relu = key()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path), str(Path(fersk.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    child = ("import numpy as np; from fersk import _checkpoint; from fersk.classifiers import "
             "CNNClassifier; import fersk_test_builder as b; "
             f"d = np.load({str(tmp_path / 'd.npz')!r}); "
             f"print(_checkpoint.fit_key(CNNClassifier(b.build, **{kw!r}), 0, (d['X'], d['y'])))")
    np.savez(tmp_path / "d.npz", X=X, y=y)
    for hash_seed in ("1", "2"):  # two orders of the builder's set of names
        run = subprocess.run([sys.executable, "-c", child],
                             env={**env, "PYTHONHASHSEED": hash_seed, "TF_CPP_MIN_LOG_LEVEL": "3"},
                             capture_output=True, text=True, timeout=120)
        assert run.stdout.split()[-1:] == [relu], run.stderr[-2000:]

    first = CNNClassifier(builder.build, **kw)
    first._keep_checkpoint = True  # its fitted network stays in the state
    first.fit(X, y)
    module.write_text(BUILDER.format(activation="tanh"))
    importlib.reload(builder)
    assert key() != relu
    edited = CNNClassifier(builder.build, **kw)
    edited._keep_checkpoint = True
    edited.fit(X, y)
    assert edited._kept_checkpoint != first._kept_checkpoint  # not the relu network's state
    assert len(_state_folders(ckpt)) == 2
    first._discard_checkpoint()
    edited._discard_checkpoint()


def test_cross_validate_in_parallel_with_one_checkpoint_dir(tmp_path):
    ckpt = _with_user_files(tmp_path / "ckpt")
    X, y = _faces(64)
    result = cross_validate(
        CNNClassifier(**KW, checkpoint_dir=str(ckpt)), X, y, cv=2, n_jobs=2,
        return_estimator=True,
    )
    assert np.isfinite(result["test_score"]).all()
    # Each fold trained all its epochs, none resumed another fold's state.
    assert [est.n_epochs_ for est in result["estimator"]] == [3, 3]
    assert [int(est.model_.optimizer.iterations) for est in result["estimator"]] == [STEPS] * 2
    assert _state_folders(ckpt) == [] and _user_files_intact(ckpt)


def test_search_candidates_differing_in_prediction_settings_fit_in_parallel(
        tmp_path, monkeypatch):
    """Candidates that differ only in test_time_flip share a state key; run
    at once (threads), one got CheckpointInUseError and GridSearchCV scored
    it NaN with a mere FitFailedWarning, though the docs say such fits never
    touch each other's state, even in parallel.  Now it trains without a
    state (a warning): every score is finite, every state removed."""
    import threading

    import joblib
    from sklearn.exceptions import FitFailedWarning
    from sklearn.model_selection import GridSearchCV

    from fersk import _keras_base

    ckpt = _with_user_files(tmp_path / "ckpt")
    X, y, kw = _stopping_data()
    kw.update(epochs=2, learning_rate=0.05, n_iter_no_change=None)
    # Both fits have tried to take the one lock before either trains: the
    # two candidates overlap, whatever the threads' timing.  (The timeout only
    # ends a hang: 60 s broke the barrier on a loaded 2-core machine, where
    # the other thread was still building its network.)
    both = threading.Barrier(2, timeout=600)
    acquire = _checkpoint.TrainingState.acquire

    def acquire_then_wait(self):
        try:
            return acquire(self)
        finally:
            both.wait()

    monkeypatch.setattr(_checkpoint.TrainingState, "acquire", acquire_then_wait)
    said = []
    monkeypatch.setattr(_keras_base, "warn_user", said.append)
    one_split = [(np.arange(24), np.arange(24, 40))]
    search = GridSearchCV(CNNClassifier(**kw, checkpoint_dir=ckpt),
                          {"test_time_flip": [False, True]}, cv=one_split, n_jobs=2,
                          refit=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitFailedWarning)
        with joblib.parallel_backend("threading"):
            search.fit(X, y)
    assert np.isfinite(search.cv_results_["split0_test_score"]).all()
    assert len(said) == 1 and "another fit in this process holds the training state" in said[0]
    assert _state_folders(ckpt) == [] and _user_files_intact(ckpt)


@pytest.mark.slow
def test_fersk_train_keeps_the_state_until_the_model_is_saved(capsys, tmp_path, fer2013_root,
                                                              monkeypatch):
    from fersk import pretrained
    from fersk.cli import main

    out = tmp_path / "model"
    argv = [
        "train", "--data", str(fer2013_root), "--model", "kaggle_cnn", "--out", str(out),
        "--width", "0.0625", "--dense-units", "8", "--epochs", "2", "--batch-size", "32",
        "--n-train", "64", "--n-test", "70",
    ]
    save = pretrained.save

    def killed_while_saving(*args, **kwargs):
        raise KeyboardInterrupt  # as a kill after training, before the folder is written

    monkeypatch.setattr(pretrained, "save", killed_while_saving)
    assert main(argv) == 130
    capsys.readouterr()
    (state,) = _state_folders(out / "training_state")
    assert (state / "final.json").is_file()
    monkeypatch.setattr(pretrained, "save", save)

    # The trained network is in the state: --resume saves it, training nothing.
    assert main([*argv, "--resume"]) == 0
    stdout = capsys.readouterr().out
    assert "Epoch" not in stdout and "saved" in stdout
    assert not (out / "training_state").exists()
    assert pretrained.info(out)["metrics"]["epochs_run"] == 2


def _interrupted_out(tmp_path, lock_pid):
    """A model folder holding an interrupted `fersk train` run, its lock
    held by ``lock_pid``, and a file of the user's in the state folder."""
    out = tmp_path / "model"
    state = out / "training_state" / f"{_checkpoint.STATE_PREFIX}0123456789abcdef"
    state.mkdir(parents=True)
    (state / "epoch-0001-0123456789abcdef.weights.h5").write_bytes(b"weights")
    (state / _checkpoint.LOCK).write_text(f"{lock_pid} {socket.gethostname()}\n")
    (out / "training_state" / "notes.txt").write_text("mine")
    return out, state


def _dead_pid():
    pid = 4_000_000
    while _checkpoint._pid_alive(pid):
        pid += 1
    return pid


@pytest.mark.parametrize("live", [True, False])
def test_fersk_train_overwrite_never_takes_a_running_fit_or_user_files(
        capsys, tmp_path, monkeypatch, live):
    # --overwrite on a folder with an interrupted run removed the whole state
    # folder (shutil.rmtree): a fit still running into it lost its epochs,
    # and any file of the user's there went with them.
    from PIL import Image

    from fersk.cli import main

    monkeypatch.setenv("FERSK_CACHE", str(tmp_path / "cache"))
    rng = np.random.RandomState(0)
    for split, prefix in (("train", "Training"), ("test", "PublicTest")):
        for label in ("happy", "sad"):
            folder = tmp_path / "fer" / split / label
            folder.mkdir(parents=True)
            for i in range(6):
                Image.fromarray(rng.randint(0, 256, (48, 48), dtype=np.uint8)).save(
                    folder / f"{prefix}_{label}{i}.png")
    out, state = _interrupted_out(tmp_path, os.getpid() if live else _dead_pid())
    status = main(["train", "--data", str(tmp_path / "fer"), "--model", "kaggle_cnn",
                   "--width", "0.0625", "--epochs", "1", "--batch-size", "4",
                   "--out", str(out), "--overwrite"])
    err = capsys.readouterr().err
    assert (out / "training_state" / "notes.txt").read_text() == "mine"
    if live:  # refused before anything is touched
        assert status == 2 and "--overwrite" in err and "in use" in err
        assert (state / "epoch-0001-0123456789abcdef.weights.h5").is_file()
    else:  # a dead run's state is fersk's to remove (when the new fit starts)
        assert status == 0, err
        assert not state.exists() and (out / "pipeline.json").is_file()


@pytest.mark.parametrize("option", [None, "--overwrite", "--resume"])
def test_fersk_train_refuses_an_out_a_live_run_trains_into(capsys, tmp_path, monkeypatch,
                                                          option):
    """Two `fersk train` runs into one --out both went on, the later
    silently replacing the other's model: a state folder holding only a
    live run's lock (its first epoch not saved yet) was not seen as a run
    in progress.  Now such an --out is refused, --overwrite or --resume
    given or not, before anything is touched; a dead run's lock is not."""
    from PIL import Image

    from fersk.cli import main

    monkeypatch.setenv("FERSK_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "fer" / "train" / "happy"
    data.mkdir(parents=True)
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(data / "Training_1.png")
    out = tmp_path / "model"
    state = out / "training_state" / f"{_checkpoint.STATE_PREFIX}0123456789abcdef"
    state.mkdir(parents=True)
    argv = ["train", "--data", str(tmp_path / "fer"), "--model", "kaggle_cnn", "--out", str(out),
            *([option] if option else [])]
    (state / _checkpoint.LOCK).write_text(f"{os.getpid()} {socket.gethostname()}\n")
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2 and f"a run is in progress into {str(out)!r} (pid {os.getpid()})" in err
    assert sorted(p.name for p in state.iterdir()) == [_checkpoint.LOCK]
    assert sorted(p.name for p in out.iterdir()) == ["training_state"]
    # The lock of a dead run is no run in progress (this data then fails to load,
    # or --resume finds nothing to resume).
    (state / _checkpoint.LOCK).write_text(f"{_dead_pid()} {socket.gethostname()}\n")
    status = main(argv)
    assert "in progress" not in capsys.readouterr().err and status in (1, 2)


@pytest.mark.slow
def test_fersk_train_never_replaces_a_model_saved_into_out_meanwhile(capsys, tmp_path,
                                                                     fer2013_root, monkeypatch):
    """A model saved into --out while a run trained (another run into the
    same folder) was replaced by the later run without a word.  Now, without
    --overwrite, the run refuses to save (status 1), its network kept in the
    training state; --resume --overwrite then saves it, training nothing."""
    from fersk import pretrained, training
    from fersk.cli import main

    out = tmp_path / "model"
    argv = ["train", "--data", str(fer2013_root), "--model", "vgg_fer", "--out", str(out),
            "--width", "0.0625", "--dense-units", "8", "--epochs", "1", "--batch-size", "16",
            "--n-train", "40", "--n-test", "20"]
    train = training.train_fer2013

    def another_run_saves_meanwhile(*args, **kwargs):
        pipe, metrics = train(*args, **kwargs)
        pretrained.save(pipe, out, description="another run's", keep=("training_state",))
        return pipe, metrics

    monkeypatch.setattr(training, "train_fer2013", another_run_saves_meanwhile)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "was written while this run trained" in err and "--resume --overwrite" in err
    assert pretrained.info(out)["description"] == "another run's"
    (state,) = _state_folders(out / "training_state")
    assert (state / "final.json").is_file()
    monkeypatch.undo()

    assert main([*argv, "--resume", "--overwrite"]) == 0
    stdout = capsys.readouterr().out
    assert "Epoch" not in stdout and "saved" in stdout
    assert pretrained.info(out)["description"] != "another run's"
    assert not (out / "training_state").exists()


def test_discarding_the_states_keeps_the_users_checkpoint_dir(tmp_path):
    """discard_states (fersk train --overwrite's restart) removed
    checkpoint_dir itself once its states were gone: a folder of the
    user's, made anew by the next fit without its mode."""
    folder = tmp_path / "mine"
    folder.mkdir()
    os.chmod(folder, 0o750)
    (folder / f"{_checkpoint.STATE_PREFIX}0123").mkdir()  # an interrupted fit's state
    _checkpoint.discard_states(folder)
    assert folder.is_dir() and list(folder.iterdir()) == []
    assert folder.stat().st_mode & 0o777 == 0o750
