"""Write a trained model folder into ``fersk/models/<name>`` as a bundled
model: its description and metrics (the training record plus, with
``--metrics``, the figures measured of the bundled model as loaded), and
with ``--int8`` the int8 graphs of :func:`fersk.pretrained.quantize`,
kept only where they cost at most ``--max-cost`` on PublicTest
(calibrated on ``--calibration`` FER-2013 Training faces, seed 0).

Saving again replaces the folder whole, int8 graphs included, so the
measured figures are merged in by running this again with ``--metrics``.
Quantisation gives the same graph again (same calibration faces): the same
probabilities to the bit, though not the same bytes (tf2onnx numbers some
constants' names anew); ``--same-as FOLDER`` checks the probabilities on
PublicTest against another folder's int8 graphs.

    python benchmarks/bundle_model.py runs/student/v1/model --name wild_vgg_one_view \
        --description "..." --int8 [--metrics measured.json] [--param test_time_margin=0.2]

``--int8-only`` makes the int8 graphs of the folder given, in place, and
nothing else (how the bundled ``wild_vgg_fast`` and ``wild_vgg_small`` got
theirs, 2026-12-05):

    python benchmarks/bundle_model.py fersk/models/wild_vgg_fast --int8-only

``--float-input`` keeps every node up to the first convolution in float32
(the same predictions on x86 CPUs without VNNI; ``wild_vgg_stride2``'s
graph, 2026-12-06):

    python benchmarks/bundle_model.py fersk/models/wild_vgg_stride2 --int8-only --float-input
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FER2013, prediction_params  # noqa: E402

from fersk.training.params import parse_param  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="the trained model folder (fersk.pretrained.save)")
    parser.add_argument("--name", help="the bundled model's name")
    parser.add_argument("--description")
    parser.add_argument("--int8-only", action="store_true",
                        help="only make the int8 graphs of FOLDER, in place")
    parser.add_argument("--metrics", default=None,
                        help="a JSON object merged into the folder's metrics")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        type=parse_param, help="a prediction setting of the network, set "
                        "before saving (test_time_crops=center...)")
    parser.add_argument("--int8", action="store_true", help="ship int8 graphs (pretrained.quantize)")
    parser.add_argument("--max-cost", type=float, default=0.005)
    parser.add_argument("--calibration", type=int, default=512)
    parser.add_argument("--float-input", action="store_true",
                        help="every node up to the first convolution in float32 (the same "
                        "predictions on CPUs without VNNI)")
    parser.add_argument("--data", default=FER2013)
    parser.add_argument("--same-as", default=None,
                        help="a folder whose int8 graphs must give the same probabilities")
    args = parser.parse_args(argv)

    from fersk import pretrained
    from fersk.datasets import load_fer2013

    if args.int8_only:
        _quantize(pretrained, load_fer2013, Path(args.folder), args)
        return
    if not args.name or not args.description:
        parser.error("--name and --description are needed (or --int8-only)")
    params = prediction_params(args.param, parser)
    pipe = pretrained.load(args.folder, backend="keras")
    pipe.steps[-1][1].set_params(**params)
    metrics = dict(pretrained.info(args.folder)["metrics"])
    if args.metrics:
        metrics.update(json.loads(Path(args.metrics).read_text()))
    target = pretrained.MODELS_DIR / args.name
    pretrained.save(pipe, target, description=args.description, metrics=metrics)
    print(f"saved {target}", flush=True)
    if args.int8:
        _quantize(pretrained, load_fer2013, target, args)


def _quantize(pretrained, load_fer2013, target, args):
    train = load_fer2013(Path(args.data) / "train")
    pick = np.random.default_rng(0).choice(len(train.target), args.calibration, replace=False)
    public = load_fer2013(Path(args.data) / "test", usage="PublicTest")
    record = pretrained.quantize(target, train.images[np.sort(pick)], public.images,
                                 public.target, max_cost=args.max_cost,
                                 float_input=args.float_input)
    print(json.dumps(record, indent=1), flush=True)
    if args.same_as:
        made = pretrained.load(target, backend="onnx-int8").predict_proba(public.images)
        other = pretrained.load(args.same_as, backend="onnx-int8").predict_proba(public.images)
        gap = float(np.abs(made - other).max())
        print(f"max |dp| against {args.same_as} on {len(public.target)} PublicTest faces: {gap}")
        if gap > 0:
            raise SystemExit("the int8 graphs give other probabilities")


if __name__ == "__main__":
    main()
