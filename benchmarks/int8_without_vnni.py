"""int8 graphs on a CPU without VNNI: the bundled models' predictions on an
AVX2-only x86 CPU (emulated) against this host's, one run.

The int8 graphs a model folder ships (:func:`fersk.pretrained.quantize`) run
on x86's uint8 x int8 kernels.  Without the int8 dot-product instructions
(AVX-512 VNNI / AVX-VNNI), ONNX Runtime sums pairs of products into
saturating 16-bit integers (``vpmaddubsw``), which can change results.  This
script predicts PublicTest faces with each model as loaded twice: in this
process's CPU, and in a child run by QEMU's user-mode emulator as a Haswell
(AVX2, FMA; no AVX-512, no VNNI; ``apt-get install qemu-user``), the same
Python, packages and files.  It prints accuracy on both and how many
predictions and probabilities differ.  Emulated time says nothing of speed.

    python benchmarks/int8_without_vnni.py --models wild_vgg_fast,wild_vgg_small,wild_vgg_stride2
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FER2013  # noqa: E402

#: Emulated CPU: AVX2 and FMA, without AVX-512 or any VNNI.
CPU = "Haswell"


def predict(model, n, out):
    """Child: ``model`` as loaded on the first ``n`` PublicTest faces -> ``out`` (.npz)."""
    from numpy._core._multiarray_umath import __cpu_features__ as features

    from fersk import pretrained
    from fersk.datasets import load_fer2013

    warnings.simplefilter("ignore")
    test = load_fer2013(FER2013 / "test", usage="PublicTest")
    pipe = pretrained.load(model)
    proba = pipe[-1].predict_proba(test.images[:n])
    np.savez(out, proba=proba, y=test.target[:n], classes=pipe.classes_)
    flags = [f for f in ("AVX2", "AVX512F", "AVX512VNNI", "AVX512_VNNI", "AVX_VNNI") if features.get(f)]
    print(json.dumps({"cpu_flags": flags}))


def run_child(emulated, model, n, out):
    python = os.path.realpath(sys.executable)  # the interpreter itself, not a shim script
    command = [python, __file__, "--child", model, "--n", str(n), "--out", str(out)]
    if emulated:
        command = ["qemu-x86_64", "-cpu", CPU] + command
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["cpu_flags"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="wild_vgg_fast,wild_vgg_small,wild_vgg_stride2")
    parser.add_argument("--n", type=int, default=3589, help="PublicTest faces")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return predict(args.child, args.n, args.out)
    if shutil.which("qemu-x86_64") is None:
        raise SystemExit("qemu-x86_64 not found: apt-get install qemu-user")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, model in enumerate(args.models.split(",")):
            results = {}
            for emulated in (False, True):
                # By position: a model folder's path is no file name.
                out = Path(tmp) / f"{index}-{emulated}.npz"
                flags = run_child(emulated, model, args.n, out)
                with np.load(out) as f:
                    results[emulated] = (f["proba"], f["y"], f["classes"], flags)
            (p, y, classes, here), (q, _, _, there) = results[False], results[True]
            rows.append([
                model, f"{np.mean(classes[p.argmax(1)] == y):.4f}",
                f"{np.mean(classes[q.argmax(1)] == y):.4f}",
                f"{int(np.sum(p.argmax(1) != q.argmax(1)))} of {len(y):,}",
                f"{np.abs(p - q).max():.1e}", f"{np.abs(p - q).mean():.1e}",
            ])
            print(f"{model}: this CPU {'+'.join(here)}, emulated {'+'.join(there)}", flush=True)
    header = ["model (as loaded)", "PublicTest, this CPU", f"PublicTest, {CPU} (QEMU)",
              "predictions changed", "max |dp|", "mean |dp|"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
