"""Reproducible and data-parallel training (docs/scaling.rst).

* The same ``random_state`` gives the same network while other threads of
  the process draw from Python's global ``random`` (as a Dask worker's or
  client's event loop does), build Keras models (a prediction) or fit
  networks of their own (an ensemble's members as nested Dask tasks or
  joblib threads), with or without ``degrade``.
* One ``CNNClassifier`` trains data-parallel on two devices: TensorFlow's
  ``MirroredStrategy`` and Keras's ``DataParallel`` on JAX, each on the CPU
  split into two logical devices in a fresh process (the split must come
  before the backend starts), against one-device training with the same
  seed.
"""

import os
import pickle
import random
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pytest
from sklearn.pipeline import make_pipeline

keras = pytest.importorskip("keras")

from conftest import half_bright_faces  # noqa: E402
from fersk import CNNClassifier, CNNEnsembleClassifier, MDSMappedLBP  # noqa: E402

TINY_CNN = {"width": 0.0625, "dense_units": 8}


def _faces(n=48, side=16, seed=0):
    return half_bright_faces(n, side, seed)


def _draw_random_meanwhile(work):
    """``work()`` while another thread draws from Python's global ``random``."""
    stop = threading.Event()

    def draw():
        while not stop.is_set():
            random.random()
            time.sleep(1e-4)  # thousands of draws a second, without holding the GIL

    thread = threading.Thread(target=draw, daemon=True)
    thread.start()
    try:
        return work()
    finally:
        stop.set()
        thread.join()


def test_same_seed_same_network_while_other_threads_draw_random():
    X, y = _faces()

    def fit():
        clf = CNNClassifier("kaggle_cnn", TINY_CNN, epochs=1, batch_size=16, random_state=0)
        return clf.fit(X, y).predict_proba(X)

    np.testing.assert_array_equal(fit(), _draw_random_meanwhile(fit))


def test_degraded_fit_same_while_other_threads_draw_random():
    # Keras shuffles a PyDataset's batches with Python's global random; the
    # degraded batches keep their own seeded order instead.
    X, y = _faces()

    def fit():
        clf = CNNClassifier("kaggle_cnn", TINY_CNN, epochs=2, batch_size=8, degrade=True,
                            random_state=0)
        return clf.fit(X, y).model_.get_weights()

    alone = fit()
    for a, b in zip(alone, _draw_random_meanwhile(fit)):
        np.testing.assert_array_equal(a, b)


def _fit_weights(seed, X, y):
    clf = CNNClassifier("kaggle_cnn", TINY_CNN, epochs=2, batch_size=8, random_state=seed)
    return clf.fit(X, y).model_.get_weights()


def test_seeded_fits_in_two_threads_same_as_one_after_the_other():
    # TensorFlow's global seed and Keras's seed source are one per process:
    # unguarded, two fits at once reseeded each other (max |dw| ~0.02-0.17).
    X, y = _faces()
    alone = [_fit_weights(s, X, y) for s in (0, 1)]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda s: _fit_weights(s, X, y), (0, 1)))
    for a, b in zip(alone, together):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)


def test_fit_same_while_another_thread_predicts():
    # A prediction builds its inference model (new Keras layers), which drew
    # seeds from the fit's private generator (max |dp| ~0.11 before).
    X, y = _faces()
    other = CNNClassifier("kaggle_cnn", TINY_CNN, epochs=1, random_state=1).fit(X, y)
    alone = _fit_weights(0, X, y)
    fresh = pickle.loads(pickle.dumps(other))  # no inference model built yet
    with ThreadPoolExecutor(2) as pool:
        fit = pool.submit(_fit_weights, 0, X, y)
        pool.submit(fresh.predict_proba, X).result()
        for u, v in zip(alone, fit.result()):
            np.testing.assert_array_equal(u, v)


def test_ensemble_members_fitted_in_threads_same_as_in_turn():
    # What a Dask worker does with an ensemble's members (nested joblib
    # tasks in threads of one process), here with joblib's threads.
    X, y = _faces(seed=1)
    ensemble = CNNEnsembleClassifier([
        ("raw", CNNClassifier("kaggle_cnn", TINY_CNN, epochs=2, batch_size=8, random_state=0)),
        ("lbp", make_pipeline(MDSMappedLBP(), CNNClassifier("kaggle_cnn", TINY_CNN, epochs=2,
                                                            batch_size=8, random_state=1))),
    ])
    in_turn = ensemble.fit(X, y).predict_proba(X)
    with joblib.parallel_backend("threading", n_jobs=2):
        threads = ensemble.set_params(n_jobs=2).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(in_turn, threads)


#: Builds the same data and a network without batch norm or dropout, then
#: prints max |p_one - p_two| for it and for a tiny kaggle_cnn.
_SCRIPT = """
import pickle, numpy as np, keras
from fersk import CNNClassifier

def plain(input_shape, n_classes, seed=None):
    init = lambda: keras.initializers.GlorotUniform(seed)
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, activation="relu", kernel_initializer=init())(inputs)
    x = keras.layers.Flatten()(keras.layers.MaxPooling2D(4)(x))
    outputs = keras.layers.Dense(n_classes, activation="softmax", kernel_initializer=init())(x)
    return keras.Model(inputs, outputs, name="plain")

rng = np.random.RandomState(0)
X = rng.randint(0, 160, size=(N, 16, 16)); y = np.arange(N) % 2
X[y == 0, :, :8] += 90; X[y == 1, :, 8:] += 90; X = X.astype(np.uint8)
for arch, params in [(plain, None), ("kaggle_cnn", {"width": 0.0625, "dense_units": 8})][FIRST:]:
    kw = dict(architecture=arch, architecture_params=params, epochs=EPOCHS, batch_size=BATCH,
              random_state=0)
    one = CNNClassifier(**kw).fit(X, y)
    with parallel():
        two = CNNClassifier(**kw).fit(X, y)
    assert replicated(two.model_), "the model was not trained on two devices"
    p1, p2 = one.predict_proba(X), two.predict_proba(X)
    # The fitted model pickles and reloads without the devices.
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(two)).predict_proba(X), p2)
    print(getattr(arch, "__name__", arch), float(np.abs(p1 - p2).max()))
"""

_TF = """
import os
os.environ["KERAS_BACKEND"] = "tensorflow"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
parallel = strategy.scope
def replicated(model):
    return all(isinstance(w.value, tf.distribute.DistributedValues) for w in model.weights)
"""

_JAX = """
import contextlib, os
os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
import keras
devices = keras.distribution.list_devices("cpu")
assert len(devices) == 2, devices
@contextlib.contextmanager
def parallel():
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    try:
        yield
    finally:
        keras.distribution.set_distribution(None)
def replicated(model):
    return all(len(w.value.sharding.device_set) == 2 for w in model.weights)
"""


def _run(prelude, backend, first=0, n=32, batch=16, epochs=2):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    sizes = f"FIRST, N, BATCH, EPOCHS = {first}, {n}, {batch}, {epochs}\n"
    script = textwrap.dedent(prelude) + sizes + textwrap.dedent(_SCRIPT)
    res = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return {name: float(diff) for name, diff in (line.split() for line in res.stdout.split("\n") if line)}


def test_mirrored_strategy_on_two_cpu_devices_matches_one_device():
    pytest.importorskip("tensorflow")
    diffs = _run(_TF, "tensorflow")
    # The gradient of a global batch is the same sum, split in two: equal up
    # to float rounding.
    assert diffs["plain"] < 1e-5
    # Batch norm normalises each replica's half batch with its own
    # statistics: close, not equal (docs/scaling.rst gives the size).
    assert diffs["kaggle_cnn"] < 0.1


def test_jax_data_parallel_on_two_cpu_devices_matches_one_device():
    pytest.importorskip("jax")
    # One network, and enough steps (48) for a compiled fit: JAX runs the
    # eager fits of a few steps slowly.
    diffs = _run(_JAX, "jax", first=1, n=64, batch=4, epochs=3)
    # One program over a batch sharded in two: batch norm sees the global
    # batch, so even a network with batch norm matches up to float rounding.
    assert diffs["kaggle_cnn"] < 1e-5
