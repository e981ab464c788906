"""Prune a trained ``vgg_fer`` network to a narrower width, for fine-tuning.

Filter pruning (Li et al., ICLR 2017, "Pruning Filters for Efficient
ConvNets"): every convolution keeps the output channels whose kernels,
scaled by their batch norm, have the largest L1 norm; the next
convolution (or the dense layer after the flattening) keeps the matching
input channels.  The result is an ordinary ``vgg_fer`` of the narrower
``width`` (about width**2 the multiply-adds), saved as a model folder that
``train_pretrained.py --init`` fine-tunes: far cheaper on two CPU cores
than training the narrow network from scratch.  ``--stem-stride 2`` also
makes the first convolution strided (``vgg_fer``'s ``stem_stride``: stage 1
at half size, its pooling dropped, every weight kept where it was);
``--stem-stride-conv 2`` strides the second instead (the first at full size;
today's default ``wild_vgg_fast`` has that stride already, and without
these options a pruned network keeps its start's strides).

    python benchmarks/narrow_vgg.py fer2013_vgg --width 0.75 --out runs/narrow/vgg_w075_pruned
    python benchmarks/narrow_vgg.py wild_vgg_fast --width 0.75 --stem-stride 2 --stem-stride-conv 1 \
        --out runs/stem/start
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# This folder on the path for _common: the tests run this script with
# runpy.run_path, which (unlike `python script.py`) does not add it.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FER2013  # also puts this checkout first on the path


def _channel_scores(conv, bn):
    """L1 norm of each output channel's kernel times its batch-norm scale."""
    gamma, _, _, variance = bn.get_weights()
    scale = np.abs(gamma) / np.sqrt(variance + bn.epsilon)
    return np.abs(conv.get_weights()[0]).sum(axis=(0, 1, 2)) * scale


def prune_into(old, new):
    """Copy ``old``'s most important channels into the narrower ``new``.

    ``old`` and ``new`` are ``vgg_fer`` networks (``keras.Model``) of the
    same depth; ``new`` has as many or fewer channels per convolution (and
    may lack stage 1's pooling: ``stem_stride=2``).
    """
    keep = None  # kept channels of the tensor flowing into the layer

    def weighted(model):  # poolings hold no weights and may differ in number
        return [layer for layer in model.layers if type(layer).__name__ != "MaxPooling2D"]

    old_layers = weighted(old)
    for i, (a, b) in enumerate(zip(old_layers, weighted(new))):
        kind = type(a).__name__
        if kind == "Conv2D":
            kernel = a.get_weights()[0]
            if keep is not None:
                kernel = kernel[:, :, keep, :]
            n_out = b.get_weights()[0].shape[-1]
            scores = _channel_scores(a, old_layers[i + 1])
            keep_out = np.sort(np.argsort(-scores, kind="stable")[:n_out])
            b.set_weights([kernel[..., keep_out], *a.get_weights()[1:]])
            keep = keep_out
        elif kind == "BatchNormalization":
            b.set_weights([w[keep] for w in a.get_weights()])
        elif kind == "Flatten":
            spatial = tuple(int(d) for d in a.input.shape[1:3])
        elif kind == "Dense" and keep is not None:
            # Flattened (height, width, channel) rows: keep the kept channels'.
            kernel, bias = a.get_weights()
            kernel = kernel.reshape(*spatial, -1, kernel.shape[-1])[:, :, keep, :]
            b.set_weights([kernel.reshape(-1, kernel.shape[-1]), bias])
            keep = None
        elif a.get_weights():
            b.set_weights(a.get_weights())


def narrow(pipe, width, stem_stride=None, stem_stride_conv=None):
    """The pipeline with its ``vgg_fer`` network pruned to ``width`` (and its
    first convolution -- or with ``stem_stride_conv=2`` its second -- of
    stride ``stem_stride``; None: as it was)."""
    import keras

    from fersk._keras_base import count_params

    net = pipe.steps[-1][1]
    if net.architecture != "vgg_fer":
        raise ValueError(f"only vgg_fer networks are pruned here; got {net.architecture!r}")
    old = net.model_
    old_norm = old.get_layer("standardize")
    mean = float(np.ravel(keras.ops.convert_to_numpy(old_norm.mean))[0])
    std = float(np.sqrt(np.ravel(keras.ops.convert_to_numpy(old_norm.variance))[0]))
    # Images whose pixel mean and variance are the fitted ones, so that the
    # rebuilt Normalization layer standardizes exactly as before.
    x = np.full((2, *old.input_shape[1:]), mean, dtype=np.float32)
    x[0] += std
    x[1] -= std
    params = {**net.architecture_params, "width": width}
    if stem_stride is not None:
        params["stem_stride"] = stem_stride
    if stem_stride_conv is not None:
        params["stem_stride_conv"] = stem_stride_conv
    net.set_params(architecture_params=params)
    new = net._assemble_model(x, len(net.classes_), net.random_state)
    prune_into(old.layers[-1], new.layers[-1])
    net.model_ = new
    net.n_trainable_params_ = count_params(new.trainable_weights)
    net.n_fixed_params_ = count_params(new.non_trainable_weights)
    return pipe


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a bundled model's name or a model folder")
    parser.add_argument("--width", type=float, default=0.75)
    parser.add_argument("--stem-stride", type=int, choices=(1, 2), default=None,
                        help="the first convolution's stride (default: as it was)")
    parser.add_argument("--stem-stride-conv", type=int, choices=(1, 2), default=None,
                        help="which of stage 1's convolutions takes --stem-stride: 2 keeps "
                             "the first at full size (default: as it was)")
    parser.add_argument("--data", default=str(FER2013))
    parser.add_argument("--n-test", type=int, default=None, help="stratified subset (smoke runs)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    from fersk import pretrained
    from fersk.training import fer2013_splits

    pipe = narrow(pretrained.load(args.model, backend="keras"), args.width, args.stem_stride,
                  args.stem_stride_conv)
    net = pipe.steps[-1][1]
    _, _, X_test, y_test = fer2013_splits(args.data, n_test=args.n_test, load_verbose=0)
    views = {"test_time_flip": net.test_time_flip, "test_time_crops": net.test_time_crops}
    net.set_params(test_time_flip=False, test_time_crops="center")
    one_view = round(float(pipe.score(X_test, y_test)), 4)
    net.set_params(**views)
    metrics = {
        "publictest_accuracy_one_view_before_fine_tuning": one_view,
        "pruned_from": str(args.model),
        "width": args.width,
        "stem_stride": args.stem_stride,
        "stem_stride_conv": args.stem_stride_conv,
        "learnable_parameters": int(net.n_trainable_params_),
        "command": "python benchmarks/narrow_vgg.py " + " ".join(argv or sys.argv[1:]),
    }
    print(json.dumps(metrics, indent=1))
    path = pretrained.save(
        pipe, args.out, metrics=metrics,
        description=f"{args.model} pruned to vgg_fer width {args.width}"
        + (f", {'second' if args.stem_stride_conv == 2 else 'first'} convolution of stride "
           f"{args.stem_stride}" if args.stem_stride else "")
        + " (not fine-tuned)",
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
