"""A first prediction prints nothing to stderr; FERSK_TF_LOGS=1 shows TensorFlow's lines."""

import os
import subprocess
import sys

import pytest

SCRIPT = """
import fersk
from fersk import pretrained
from skimage import data
print(pretrained.load().predict([data.astronaut()]))
import logging, sys
print("tensorflow logger level", logging.getLogger("tensorflow").level
      if "tensorflow" in sys.modules else "not imported")
"""


def _run(env_extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "FERSK_TF_LOGS")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.mark.slow
def test_import_load_and_first_prediction_print_nothing_to_stderr():
    out = _run({})
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert out.stdout.strip().startswith("[")
    # TensorFlow's Python warnings (retracing notices) stay off the terminal too.
    assert ("tensorflow logger level 40" in out.stdout
            or "tensorflow logger level not imported" in out.stdout)


@pytest.mark.slow
@pytest.mark.extended
def test_fersk_tf_logs_shows_tensorflow_lines():
    out = _run({"FERSK_TF_LOGS": "1"})
    assert out.returncode == 0, out.stderr
    # TensorFlow's own start-up lines (the machine's; at least one is printed
    # on every machine: CPU features, CUDA drivers or oneDNN).
    assert out.stderr.strip() != ""


def test_python_exceptions_still_reach_stderr_under_the_silencer():
    code = ("from fersk._quiet import native_stderr_silenced\n"
            "import sys\n"
            "with native_stderr_silenced():\n"
            "    print('hidden', file=sys.stderr)\n"
            "print('shown', file=sys.stderr)\n"
            "raise SystemExit('boom')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k != "FERSK_TF_LOGS"})
    assert "hidden" not in out.stderr and "shown" in out.stderr and "boom" in out.stderr
