"""Where a bundled pipeline's prediction time goes, on face-sized inputs.

``pretrained.load(model)`` (one view with ``--views center``, as
``fersk.ensemble.one_view`` gives it) predicts FER-2013 PublicTest faces
(48x48, what a user holding face crops passes); the same call is then
taken apart, each part timed alone on the same faces (best of
``--rounds``):

* the ``FaceCropper`` step as it runs (a batch of face crops of the output
  size is returned as is) and as it ran before (image by image: the same
  crops, forced here by passing a list);
* the network step's input checks (``validate_images`` and the pixel rule);
* the network's compiled inference calls alone (batches of 256);
* turning outputs into probabilities.

The parts are the Keras path's (``backend="keras"``); the whole call as
loaded (``backend="auto"``: the int8 graph on ONNX Runtime where a model
ships one) is timed beside, and, where it runs on ONNX Runtime, taken
apart too: its input checks (with the float32 copy the graph takes), its
``decision_function`` (checks, the graph's calls, the views' gate) and the
outputs turned into probabilities, as shares of the as-loaded call.

Prints seconds per 1,000 faces and each part's share of its whole call.

    python benchmarks/bench_pipeline_overhead.py [--model wild_vgg_fast] [--views center]
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FER2013, best_of, machine  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="bundled model or folder (default: the default)")
    parser.add_argument("--views", choices=("as-loaded", "center"), default="center")
    parser.add_argument("--data", default=str(FER2013))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    from fersk import pretrained
    from fersk.datasets import load_fer2013
    from fersk.ensemble import one_view

    faces = load_fer2013(args.data, usage="PublicTest").images[: args.n]
    model = pretrained.load(args.model, backend="keras")  # its parts are Keras's
    as_loaded = pretrained.load(args.model)
    if args.views == "center":
        model, as_loaded = one_view(model), one_view(as_loaded)
    as_loaded.predict_proba(faces[:300])
    cropper, net = model[0], model[-1]
    model.predict_proba(faces[:300])  # trace the compiled paths once
    model.predict_proba(faces)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_pipe, _ = best_of(lambda: model.predict_proba(faces), args.rounds)
        t_loaded, _ = best_of(lambda: as_loaded.predict_proba(faces), args.rounds)
        t_crop, crops = best_of(lambda: cropper.transform(faces), args.rounds)
        t_crop_list, crops_list = best_of(lambda: cropper.transform(list(faces)), args.rounds)
    assert np.array_equal(crops, crops_list)
    t_check, x = best_of(lambda: net._validate_X(crops, reset=False), args.rounds)

    def network():  # the network's views as set, gated by test_time_margin where it has one
        return net._gated_outputs(x, net._outputs_of_views)

    t_net, outputs = best_of(network, args.rounds)
    outputs = np.asarray(outputs, dtype=np.float64)
    t_post, _ = best_of(lambda: net._outputs_to_proba(outputs), args.rounds)

    per_k = 1000 / len(faces)
    rows = [
        ("whole call: pipeline.predict_proba (Keras)", t_pipe, t_pipe),
        ("FaceCropper step (batch of face crops)", t_crop, t_pipe),
        ("FaceCropper, image by image (before)", t_crop_list, t_pipe),
        ("network step: input checks", t_check, t_pipe),
        ("network step: compiled inference (its views)", t_net, t_pipe),
        ("network step: outputs to probabilities", t_post, t_pipe),
        ("whole call as loaded (backend auto)", t_loaded, t_loaded),
    ]
    loaded_net = as_loaded[-1]
    if hasattr(loaded_net, "path"):  # on ONNX Runtime: its parts, shares of its own call
        t_ocrop, loaded_crops = best_of(lambda: as_loaded[0].transform(faces), args.rounds)
        t_ocheck, _ = best_of(lambda: loaded_net._validate_X(loaded_crops), args.rounds)
        t_odec, dec = best_of(lambda: loaded_net.decision_function(loaded_crops), args.rounds)
        t_opost, _ = best_of(lambda: loaded_net._outputs_to_proba(dec), args.rounds)
        rows += [
            ("  as loaded: FaceCropper step", t_ocrop, t_loaded),
            ("  as loaded: input checks, float32 copy", t_ocheck, t_loaded),
            ("  as loaded: decision_function (all of it)", t_odec, t_loaded),
            ("  as loaded: ONNX Runtime and gate (the rest)", t_odec - t_ocheck, t_loaded),
            ("  as loaded: outputs to probabilities", t_opost, t_loaded),
        ]
    name = args.model or pretrained.DEFAULT_MODEL
    print(f"{name}, {args.views} view(s), {len(faces)} PublicTest faces, best of {args.rounds}; {machine()}")
    print(f"{'part':<46} {'s / 1,000 faces':>16} {'share of its call':>18} {'faces/s':>9}")
    for label, t, whole in rows:
        print(f"{label:<46} {t * per_k:>16.3f} {t / whole:>17.1%} {len(faces) / t:>9.0f}")


if __name__ == "__main__":
    main()
