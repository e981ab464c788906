"""Write a trained model folder into ``fersk/models/<name>`` as a bundled
model: its description and metrics (the training record plus, with
``--metrics``, the figures measured of the bundled model as loaded), and
with ``--int8`` the int8 graphs of :func:`fersk.pretrained.quantize`,
kept only where they cost at most ``--max-cost`` on PublicTest
(calibrated on ``--calibration`` FER-2013 Training faces, seed 0).

Saving again replaces the folder whole, int8 graphs included, so the
measured figures are merged in by running this again with ``--metrics``:
quantisation is deterministic (same calibration faces, same graph; the
script checks the SHA-256 against ``--expect-int8-sha256`` when given).

    python benchmarks/bundle_model.py runs/student/v1/model --name wild_vgg_one_view \
        --description "..." --int8 [--metrics measured.json]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FER2013  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="the trained model folder (fersk.pretrained.save)")
    parser.add_argument("--name", required=True, help="the bundled model's name")
    parser.add_argument("--description", required=True)
    parser.add_argument("--metrics", default=None,
                        help="a JSON object merged into the folder's metrics")
    parser.add_argument("--int8", action="store_true", help="ship int8 graphs (pretrained.quantize)")
    parser.add_argument("--max-cost", type=float, default=0.005)
    parser.add_argument("--calibration", type=int, default=512)
    parser.add_argument("--data", default=FER2013)
    parser.add_argument("--expect-int8-sha256", default=None)
    args = parser.parse_args(argv)

    from fersk import pretrained
    from fersk.datasets import load_fer2013

    pipe = pretrained.load(args.folder, backend="keras")
    metrics = dict(pretrained.info(args.folder)["metrics"])
    if args.metrics:
        metrics.update(json.loads(Path(args.metrics).read_text()))
    target = pretrained.MODELS_DIR / args.name
    pretrained.save(pipe, target, description=args.description, metrics=metrics)
    print(f"saved {target}", flush=True)
    if not args.int8:
        return
    train = load_fer2013(Path(args.data) / "train")
    pick = np.random.default_rng(0).choice(len(train.target), args.calibration, replace=False)
    public = load_fer2013(Path(args.data) / "test", usage="PublicTest")
    record = pretrained.quantize(target, train.images[np.sort(pick)], public.images,
                                 public.target, max_cost=args.max_cost)
    print(json.dumps(record, indent=1), flush=True)
    if args.expect_int8_sha256:
        found = [r["sha256"] for r in record.values()]
        if found != args.expect_int8_sha256.split(","):
            raise SystemExit(f"int8 graphs differ from the expected: {found}")


if __name__ == "__main__":
    main()
