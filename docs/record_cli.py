"""Re-record the example outputs shown in docs/cli.rst with a given model.

docs/cli.rst shows what ``fersk demo``, ``fersk predict`` and ``fersk
evaluate`` print with the default model.  When the bundled default changes,
run, from the repository root::

    python docs/record_cli.py --model NEW_DEFAULT --data ../shared/data/fer2013

and paste each ``.. code-block:: text`` it prints over the block of the same
command in docs/cli.rst (then say there which model they were recorded with).

The inputs the docs name are rebuilt in a fresh temporary folder (or
``--workdir``): scikit-image's astronaut and coffee photos, three FER-2013
PublicTest faces saved as PNG, a ``broken.jpg`` that is not an image, an empty
folder, and the test suite's four-frame clip (the third frame without a
face) as a GIF and an H.264 mp4.  Each command runs there in this process,
through :func:`fersk.cli.main`, with ``--model`` added; its stdout and stderr
are captured together, in the order a terminal shows them.  Only the
timings (seconds) change from run to run; TensorFlow being warm after the
first command, predict's are about half those of a fresh ``fersk`` process.
It takes about 1.5 minutes on 2 CPU cores, mostly ``fersk evaluate``.  The
train smoke run does not use the default model and is not re-recorded.
"""

import argparse
import contextlib
import io
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from fersk.cli import main

# The data folder as docs/cli.rst spells it (the docs are run from the repository root).
DOCS_DATA = "../shared/data/fer2013"
FACES = ("PublicTest_10248771", "PublicTest_10984020", "PublicTest_11832974")
COMMANDS = (
    "fersk demo",
    "fersk predict photos empty missing.png",
    "fersk predict photos/astronaut.png photos/faces photos/broken.jpg clip.gif --every 2 --json",
    "fersk predict clip.mp4 --on-no-face skip --csv -",
    "fersk predict clip.gif --on-no-face skip --csv -",
    f"fersk evaluate --data {DOCS_DATA} --out eval",
)


def build_inputs(folder, fer2013):
    """Write, under ``folder``, the files that the commands of docs/cli.rst read."""
    import imageio.v3 as iio

    faces = folder / "photos" / "faces"
    faces.mkdir(parents=True, exist_ok=True)
    (folder / "empty").mkdir(exist_ok=True)
    Image.fromarray(data.astronaut()).save(folder / "photos" / "astronaut.png")
    Image.fromarray(data.coffee()).save(folder / "photos" / "coffee.jpg")  # no face
    (folder / "photos" / "broken.jpg").write_bytes(b"this is not a JPEG")
    for name in FACES:
        (source,) = sorted((fer2013 / "test").glob(f"*/{name}.*"))
        Image.open(source).save(faces / f"{name}.png")
    # The clip of tests/test_cli.py: face, mirrored face, no face, face.
    face = data.astronaut()[:256, 100:356]
    frames = np.stack([face, face[:, ::-1], data.coffee()[:256, :256], face])
    iio.imwrite(folder / "clip.gif", frames, duration=[100, 200, 100, 100], loop=0)
    iio.imwrite(folder / "clip.mp4", frames, plugin="pyav", codec="libx264", fps=10)


def record(command, model, fer2013):
    """Run one docs command with ``--model``: its exit status and its output
    (stdout and stderr interleaved), the data path spelled as in the docs."""
    argv = [str(fer2013) if a == DOCS_DATA else a for a in shlex.split(command)[1:]]
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        status = main(argv + ["--model", model])
    return status, output.getvalue().replace(str(fer2013), DOCS_DATA)


def code_block(command, output):
    lines = [f"$ {command}", *output.rstrip("\n").split("\n")]
    return ".. code-block:: text\n\n" + "\n".join(f"   {s}" if s else "" for s in lines) + "\n"


def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a bundled model's name or a model folder")
    parser.add_argument("--data", default="../shared/data/fer2013",
                        help="the FER-2013 image folders (train/, test/)")
    parser.add_argument("--workdir", default=None,
                        help="where the inputs are built and the commands run (default: a "
                        "fresh temporary folder)")
    args = parser.parse_args(argv)
    fer2013 = Path(args.data).resolve()
    model = str(Path(args.model).resolve()) if Path(args.model).is_dir() else args.model
    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            args.workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="fersk-cli-"))
        folder = Path(args.workdir).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        build_inputs(folder, fer2013)
        here = os.getcwd()
        os.chdir(folder)
        try:
            for command in COMMANDS:
                start = time.perf_counter()
                status, output = record(command, model, fer2013)
                print(f"[{command}: exit status {status}, {time.perf_counter() - start:.0f} s]",
                      file=sys.stderr, flush=True)
                print(code_block(command, output), flush=True)
        finally:
            os.chdir(here)


if __name__ == "__main__":
    run()
