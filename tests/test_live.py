"""fersk.stream over videos the tests make: records, tracks, smoothing, detect-every-k.

The frames are black with the astronaut's face (scikit-image) pasted at
moving positions.  Most tests use the bundled network behind a FaceCropper
whose detector is a counting stand-in (the bounding boxes of the non-black
regions: exact, fast, and its calls can be counted); one runs the bundled
model end to end with MTCNN over an mp4 written with PyAV, and one runs
``fersk live`` on it.
"""

import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage import data

from fersk.cli import main

# The astronaut's face with some context (MTCNN needs it): rows, cols.
FACE = data.astronaut()[40:200, 160:310]
H, W = 240, 320


def _face(side):
    """The face patch resized to ``side`` pixels high."""
    h, w = FACE.shape[:2]
    patch = np.asarray(Image.fromarray(FACE).resize((round(w * side / h), side)))
    return np.maximum(patch, 1)  # no black pixel: the stand-in detector sees one region


def make_frames(n=8, faces=1, step=6, side=100, shape=(H, W)):
    """``n`` black frames with ``faces`` copies of the face moving right by
    ``step`` pixels a frame; the pasted boxes (row, col, height, width)."""
    patch = _face(side)
    ph, pw = patch.shape[:2]
    frames, boxes = [], []
    for t in range(n):
        frame = np.zeros((*shape, 3), np.uint8)
        frame_boxes = []
        for k in range(faces):
            r, c = 20 + 10 * k, 10 + k * (pw + 20) + step * t
            frame[r : r + ph, c : c + pw] = patch
            frame_boxes.append((r, c, ph, pw))
        frames.append(frame)
        boxes.append(frame_boxes)
    return frames, boxes


class CountingDetector:
    """The bounding boxes of the non-black regions, counting its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, image):
        self.calls += 1
        grey = image.max(axis=-1) if image.ndim == 3 else image
        labels, _ = ndimage.label(grey > 0)
        return [
            (s[0].start, s[1].start, s[0].stop - s[0].start, s[1].stop - s[1].start)
            for s in ndimage.find_objects(labels)
        ]


@pytest.fixture(scope="module")
def bundled():
    from fersk import pretrained

    return pretrained.load()


def _with_detector(bundled, detector):
    """The bundled network behind a FaceCropper with ``detector``."""
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    cropper = clone(bundled.steps[0][1]).set_params(detector=detector, precropped_max_side=None)
    return Pipeline([("facecropper", cropper), *bundled.steps[1:]])


def test_records_aligned_to_frames_and_tracks_stable(bundled):
    from fersk import stream

    frames, boxes = make_frames(n=6, faces=2)
    model = _with_detector(bundled, CountingDetector())
    records = list(stream(model, frames, fps=10))
    assert [r["frame"] for r in records] == [t for t in range(6) for _ in range(2)]
    assert [r["time"] for r in records[::2]] == pytest.approx([t / 10 for t in range(6)])
    for r in records:
        assert r["box"] in [tuple(map(float, b)) for b in boxes[r["frame"]]]
        assert r["name"] in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
        assert r["proba"].shape == (7,) and r["proba"].sum() == pytest.approx(1)
        assert r["label"] == model.classes_[r["proba"].argmax()]
    # Each pasted face keeps its track id while it moves.
    assert sorted({r["track"] for r in records}) == [0, 1]
    left = {r["track"] for r in records if r["box"][1] < boxes[r["frame"]][1][1]}
    assert len(left) == 1  # the left face is always the same track


def test_alpha_one_is_the_raw_per_frame_answer(bundled):
    from fersk import stream
    from fersk.face import predict_faces

    frames, _ = make_frames(n=4)
    model = _with_detector(bundled, CountingDetector())
    records = list(stream(model, frames, alpha=1.0))
    assert len(records) == 4
    expected = predict_faces(model, frames)
    for r, e in zip(records, expected):
        # The stream runs the network's traced step: equal up to float rounding.
        np.testing.assert_allclose(r["proba"], e["proba"], rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(r["proba"], r["raw_proba"])


def test_smoothing_is_the_documented_moving_average(bundled):
    from fersk import stream

    frames, boxes = make_frames(n=5, step=6)
    r, c, h, w = boxes[2][0]
    frames[2][r : r + h, c : c + w] = frames[2][r : r + h, c : c + w][::-1]  # another answer
    model = _with_detector(bundled, CountingDetector())
    alpha = 0.3
    records = list(stream(model, frames, alpha=alpha))
    assert {r["track"] for r in records} == {0}
    raw = np.array([r["raw_proba"] for r in records])
    expected = raw[0]
    np.testing.assert_allclose(records[0]["proba"], raw[0])
    for r, p in zip(records[1:], raw[1:]):
        expected = alpha * p + (1 - alpha) * expected
        np.testing.assert_allclose(r["proba"], expected, rtol=1e-12)
    assert not np.allclose(raw[0], raw[2])  # the check has something to smooth


@pytest.mark.parametrize("k", [1, 3, 4])
def test_detect_every_k_frames(bundled, k):
    from fersk import FaceCropper, stream

    n = 10
    frames, boxes = make_frames(n=n, step=3)
    detector = CountingDetector()
    model = _with_detector(bundled, detector)
    records = list(stream(model, frames, detect_every=k, alpha=1.0))
    assert detector.calls == len(range(0, n, k))
    assert [r["detected"] for r in records] == [t % k == 0 for t in range(n)]
    assert {r["track"] for r in records} == {0}
    for r in records:
        # Between detections: the last detected box, cropped as the cropper crops it.
        last = r["frame"] - r["frame"] % k
        assert r["box"] == tuple(map(float, boxes[last][0]))
    # The carried box is cropped with the same geometry as a detected one.
    cropper = model.steps[0][1]
    crop = FaceCropper(detector=lambda im: [boxes[0][0]], size=cropper.size,
                       margin=cropper.margin).fit_transform([frames[1]])
    expected = model[1:].predict_proba(crop)[0]
    if k > 1:
        np.testing.assert_allclose(records[1]["proba"], expected, rtol=1e-4, atol=1e-6)


def test_image_sequence_folder_and_glob(bundled, tmp_path):
    from fersk import stream

    frames, _ = make_frames(n=3)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"frame_{t:03d}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    model = _with_detector(bundled, CountingDetector())
    from_arrays = list(stream(model, frames, fps=5))
    for source in (tmp_path, str(tmp_path / "frame_*.png"), sorted(tmp_path.glob("*.png"))):
        if source is tmp_path:  # a file of another format is a gap in the sequence: said
            with pytest.warns(UserWarning, match=r"1 file\(s\) .* not read: \['notes.txt'\]"):
                records = list(stream(model, source, fps=5))
        else:
            records = list(stream(model, source, fps=5))
        assert [(r["frame"], r["time"], r["box"]) for r in records] == [
            (r["frame"], r["time"], r["box"]) for r in from_arrays
        ]
        np.testing.assert_allclose([r["proba"] for r in records],
                                   [r["proba"] for r in from_arrays])



def test_an_animation_in_an_image_sequence_gives_every_frame(tmp_path):
    """A folder (or glob, or list of paths) holding an animated GIF or a
    multi-page TIFF beside still frames gave each file's first frame alone,
    without a word, where the same file on its own gave every frame.  Each
    of its frames is now a frame of the sequence, in place."""
    from fersk.live import read_frames

    rng = np.random.RandomState(0)
    images = [rng.randint(0, 256, (20, 24), dtype=np.uint8) for _ in range(7)]
    pil = [Image.fromarray(im) for im in images]
    pil[0].save(tmp_path / "f1.tif", save_all=True, append_images=pil[1:3])
    pil[3].save(tmp_path / "f2.tif", save_all=True, append_images=pil[4:6])
    pil[6].save(tmp_path / "f3.png")
    for source in (tmp_path, str(tmp_path / "f*"), sorted(tmp_path.iterdir())):
        got = list(read_frames(source, fps=10))
        assert [i for i, _, _ in got] == list(range(7))
        assert [t for _, t, _ in got] == pytest.approx([i / 10 for i in range(7)])
        for (_, _, frame), image in zip(got, images):
            np.testing.assert_array_equal(frame, image)
    assert len(list(read_frames(tmp_path, max_frames=4))) == 4
    (tmp_path / "f4.png").mkdir()  # a folder named like a frame stopped the stream
    assert len(list(read_frames(tmp_path))) == 7
    assert len(list(read_frames(str(tmp_path / "f*")))) == 7
    (tmp_path / "f4.png").rmdir()
    gif = tmp_path / "gif"
    gif.mkdir()
    pil[0].save(gif / "a.gif", save_all=True, append_images=pil[1:2])
    pil[2].save(gif / "b.png")
    alone = [f for _, _, f in read_frames(gif / "a.gif")]
    got = [f for _, _, f in read_frames(gif)]
    assert len(alone) == 2 and len(got) == 3
    for a, b in zip(got, alone):
        np.testing.assert_array_equal(a, b)

@pytest.mark.parametrize("suffix", ["png", "webp"])
def test_an_animation_turned_by_exif_is_read_upright(tmp_path, suffix):
    """An animated PNG or WebP tagged orientation 6 gave its frames
    sideways, where its first frame read as a still image (read_image_file,
    the dataset loaders) was upright: the detector saw the faces turned."""
    from fersk._image_files import iter_video, read_image_file

    a = np.zeros((6, 4), np.uint8)
    a[0, 0] = 255
    b = a.copy()
    b[5, 3] = 128
    frames = [Image.fromarray(a), Image.fromarray(b)]
    exif = frames[0].getexif()
    exif[0x0112] = 6
    path = tmp_path / f"turned.{suffix}"
    extra = {"lossless": True} if suffix == "webp" else {}
    frames[0].save(path, save_all=True, append_images=frames[1:], exif=exif, duration=100,
                   **extra)
    got = [f for _, _, f in iter_video(path)]
    assert len(got) == 2 and got[0].shape[:2] == (4, 6)
    np.testing.assert_array_equal(got[0], read_image_file(path))


def test_frames_without_a_face_give_no_record(bundled):
    from fersk import stream

    frames, _ = make_frames(n=3)
    frames.insert(1, np.zeros_like(frames[0]))
    model = _with_detector(bundled, CountingDetector())
    records = list(stream(model, frames))
    assert [r["frame"] for r in records] == [0, 2, 3]
    assert {r["track"] for r in records} == {0}  # a frame missed keeps the track


def test_parameters_are_checked_by_name(bundled):
    from fersk import stream

    model = _with_detector(bundled, CountingDetector())
    for kwargs, name in [({"detect_every": 0}, "detect_every"), ({"alpha": 0}, "alpha"),
                         ({"alpha": 1.5}, "alpha"), ({"iou_threshold": 1}, "iou_threshold"),
                         ({"max_missed": -1}, "max_missed"), ({"fps": 0}, "fps")]:
        with pytest.raises(ValueError, match=name):
            list(stream(model, [np.zeros((8, 8))], **kwargs))
    with pytest.raises(ValueError, match="source"):
        list(stream(model, "no/such/video.mp4"))
    with pytest.raises(ValueError, match="source"):
        list(stream(model, 3.5))
    # One colour image without a list was 512 frames of 512x3 grey pixels.
    with pytest.raises(ValueError, match=r"source has shape \(512, 512, 3\).*\[image\]"):
        list(stream(model, data.astronaut()))
    assert {r["frame"] for r in stream(model, data.astronaut()[np.newaxis])} == {0}
    with pytest.raises(ValueError, match="FaceCropper"):
        list(stream(bundled[1:], [np.zeros((8, 8))]))


@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    iio = pytest.importorskip("imageio.v3")
    pytest.importorskip("av", reason="writing the test video needs PyAV (the test extra)")
    frames, boxes = make_frames(n=6, step=8)
    path = tmp_path_factory.mktemp("live") / "clip.mp4"
    iio.imwrite(path, np.stack(frames), plugin="pyav", codec="libx264", fps=10)
    return path, boxes


def test_bundled_model_over_an_mp4(bundled, mp4):
    from fersk import stream

    path, boxes = mp4
    records = list(stream(bundled, path, detect_every=2))
    assert [r["frame"] for r in records] == list(range(6))
    assert [r["time"] for r in records] == pytest.approx([t / 10 for t in range(6)])
    assert {r["track"] for r in records} == {0}
    for r in records:  # MTCNN's box lies on the pasted face
        row, col, h, w = boxes[r["frame"] - r["frame"] % 2][0]
        cy, cx = r["box"][0] + r["box"][2] / 2, r["box"][1] + r["box"][3] / 2
        assert row < cy < row + h and col < cx < col + w
    assert records[0]["name"] == "happy"


def test_fersk_live_on_a_video(capsys, mp4, tmp_path):
    path, _ = mp4
    out, jsonl, plot = tmp_path / "annotated.mp4", tmp_path / "faces.jsonl", tmp_path / "tracks.png"
    status = main(["live", "--video", str(path), "--out", str(out), "--json", str(jsonl),
                   "--plot", str(plot), "--window", "no", "--detect-every", "3"])
    err = capsys.readouterr().err
    assert status == 0, err
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [row["frame"] for row in rows] == list(range(6))
    assert {row["track"] for row in rows} == {0}
    assert [row["detected"] for row in rows] == [True, False, False, True, False, False]
    assert rows[0]["emotion"] == "happy" and len(rows[0]["probabilities"]) == 7
    import imageio.v3 as iio

    assert iio.imread(out, plugin="pyav").shape[0] == 6
    assert Image.open(plot).size[0] > 0
    assert "6 frames" in err and "2 detections" in err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_fersk_live_never_writes_over_its_video(capsys, mp4, tmp_path):
    """--out/--json/--plot naming the input video, or two of them one file:
    a usage error, the video untouched (before, --out replaced it)."""
    import shutil

    video = tmp_path / "clip.mp4"
    shutil.copy(mp4[0], video)
    before = video.read_bytes()
    for option in ("--out", "--json", "--plot"):
        assert main(["live", "--video", str(video), option, str(video), "--window", "no"]) == 2
        assert "is an input of this command" in capsys.readouterr().err
    same = str(tmp_path / "a.mp4")
    assert main(["live", "--video", str(video), "--out", same, "--json", same,
                 "--window", "no"]) == 2
    assert "name one file" in capsys.readouterr().err
    assert video.read_bytes() == before


def test_fersk_live_failed_run_leaves_its_outputs_as_they_were(capsys, mp4, tmp_path):
    """A video that fails part way (a frame that cannot be decoded): --json and
    --out keep what they held before, no temporary file stays, no plot
    (before, the failed run's half file replaced --json)."""
    from fersk.live import FaceStream

    jsonl, out, plot = tmp_path / "faces.jsonl", tmp_path / "annotated.mp4", tmp_path / "p.png"
    # an earlier run's outputs (a file fersk did not write is never replaced)
    assert main(["live", "--video", str(mp4[0]), "--json", str(jsonl), "--out", str(out),
                 "--window", "no", "--max-frames", "2"]) == 0
    earlier_json, earlier_video = jsonl.read_text(), out.read_bytes()
    capsys.readouterr()
    real_update, seen = FaceStream.update, []

    def update(self, frame, index=None, time=None):
        seen.append(index)
        if len(seen) == 3:
            raise ValueError("frame 2 cannot be decoded")
        return real_update(self, frame, index, time)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(FaceStream, "update", update)
        status = main(["live", "--video", str(mp4[0]), "--json", str(jsonl), "--out", str(out),
                       "--plot", str(plot), "--window", "no"])
    assert status == 1 and "frame 2 cannot be decoded" in capsys.readouterr().err
    assert jsonl.read_text() == earlier_json and out.read_bytes() == earlier_video
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotated.mp4", "faces.jsonl"]


def test_fersk_live_ctrl_c_keeps_the_frames_read(capsys, mp4, tmp_path):
    """Ctrl-C ends a camera's run: --json holds every frame read until then
    (whole frames), the plot is drawn, the summary says it was stopped."""
    from fersk.live import FaceStream

    jsonl, plot = tmp_path / "faces.jsonl", tmp_path / "tracks.png"
    real_update, seen = FaceStream.update, []

    def update(self, frame, index=None, time=None):
        seen.append(index)
        if len(seen) == 4:
            raise KeyboardInterrupt
        return real_update(self, frame, index, time)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(FaceStream, "update", update)
        status = main(["live", "--video", str(mp4[0]), "--json", str(jsonl), "--plot", str(plot),
                       "--window", "no"])
    err = capsys.readouterr().err
    assert status == 0, err
    assert [json.loads(line)["frame"] for line in jsonl.read_text().splitlines()] == [0, 1, 2]
    assert "stopped by Ctrl-C after 3 frames" in err and Image.open(plot).size[0] > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_fersk_live_camera_without_frames_fails_and_keeps_json(capsys, monkeypatch, tmp_path):
    """A camera that opens but gives no frame ended with "0 frames", exit
    status 0, and --json replaced by an empty file: now a failure naming the
    camera, and the earlier file is left as it was."""
    import sys
    import types

    class Capture:
        def __init__(self, index):
            self.released = False

        def isOpened(self):
            return True

        def read(self):
            return False, None

        def release(self):
            self.released = True

    fake = types.SimpleNamespace(VideoCapture=Capture, COLOR_BGR2RGB=4,
                                 cvtColor=lambda frame, code: frame)
    monkeypatch.setitem(sys.modules, "cv2", fake)
    jsonl = tmp_path / "faces.jsonl"
    earlier = '{"frame": 0, "track": 0, "box": [], "emotion": "happy", "probabilities": {}}\n'
    jsonl.write_text(earlier)  # an earlier run's (a user's file is never replaced)
    status = main(["live", "--camera", "0", "--json", str(jsonl), "--window", "no"])
    assert status == 1
    assert "camera 0 opened but gave no frame" in capsys.readouterr().err
    assert jsonl.read_text() == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces.jsonl"]


def test_fersk_live_json_to_stdout_without_window(capsys, mp4):
    path, _ = mp4
    status = main(["live", "--video", str(path), "--window", "no", "--max-frames", "2"])
    out = capsys.readouterr().out
    assert status == 0
    assert [json.loads(line)["frame"] for line in out.splitlines()] == [0, 1]


def test_fersk_live_with_a_model_folder_without_class_names(capsys, mp4, tmp_path):
    """class_names is optional in pipeline.json (load() names the classes
    itself); fersk live ended in a traceback (no names for FaceStream)."""
    import shutil
    from pathlib import Path

    import fersk

    folder = tmp_path / "nonames"
    shutil.copytree(Path(fersk.__file__).parent / "models" / "fer2013_cnn", folder)
    spec = json.loads((folder / "pipeline.json").read_text())
    del spec["class_names"]
    (folder / "pipeline.json").write_text(json.dumps(spec))
    status = main(["live", "--video", str(mp4[0]), "--model", str(folder), "--window", "no",
                   "--max-frames", "1"])
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 0 and row["emotion"] == "happy"
    assert set(row["probabilities"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise",
                                         "neutral"}


def test_fersk_live_usage_errors(capsys, monkeypatch):
    import sys

    assert main(["live"]) == 2
    assert main(["live", "--camera", "0", "--video", "x.mp4"]) == 2
    assert main(["live", "--video", "missing.mp4"]) == 2
    assert main(["live", "--video", "x.mp4", "--alpha", "0"]) == 2
    monkeypatch.setitem(sys.modules, "cv2", None)  # as if OpenCV were not installed
    assert main(["live", "--camera", "0"]) == 1
    assert "pip install 'fersk[live]'" in capsys.readouterr().err


def test_fersk_live_video_folder_says_it_is_a_folder(capsys, tmp_path):
    # A folder of images is a source for fersk.stream, not for --video: the
    # message says so instead of "no such file".
    photos = tmp_path / "photos"
    photos.mkdir()
    assert main(["live", "--video", str(photos)]) == 2
    err = capsys.readouterr().err
    assert "is a folder" in err and "video file" in err and "fersk.stream" in err
    assert "no such file" not in err
    assert main(["live", "--video", str(photos / "*.png")]) == 2
    assert "fersk.stream" in capsys.readouterr().err  # a glob: the Python API reads those


def test_detect_scale_maps_boxes_back_to_the_frame(bundled):
    from fersk import stream

    frames, boxes = make_frames(n=3, step=8)
    detector = CountingDetector()
    model = _with_detector(bundled, detector)
    full = list(stream(model, frames, alpha=1.0))
    half = list(stream(model, frames, alpha=1.0, detect_scale=0.5))
    assert detector.calls == 6 and [r["frame"] for r in half] == [0, 1, 2]
    for r, f in zip(half, full):
        # Found on the half-size copy, mapped back: within the reduction's rounding.
        np.testing.assert_allclose(r["box"], f["box"], atol=2.5)
        assert r["name"] in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    with pytest.raises(ValueError, match="detect_scale"):
        list(stream(model, frames, detect_scale=0))


def test_detect_scale_never_takes_a_reduced_frame_whole(bundled):
    # The bundled cropper takes images of up to 64 pixels whole (face crops):
    # a blank 120x100 frame halved is 60x50, and was taken for a face.
    from fersk.live import FaceStream

    assert bundled.steps[0][1].precropped_max_side == 64
    blank = np.full((120, 100), 128, np.uint8)
    for scale in (1.0, 0.5, 0.25):
        assert FaceStream(bundled, detect_scale=scale).update(blank) == []
    # A frame that is itself a face crop is still taken whole, at any scale.
    crop = np.full((48, 48), 128, np.uint8)
    for scale in (1.0, 0.5):
        (record,) = FaceStream(bundled, detect_scale=scale).update(crop)
        assert record["box"] == (0.0, 0.0, 48.0, 48.0)


def test_records_say_how_each_face_was_found(bundled, capsys, tmp_path):
    """A frame of at most 64 px a side is taken whole as a face crop: its
    record (and fersk live's JSON line) looked like a detected face's."""
    from fersk.live import FaceStream

    crop = np.full((48, 48), 128, np.uint8)
    (record,) = FaceStream(bundled).update(crop)
    assert record["kind"] == "precropped"
    frames, _ = make_frames(n=1)
    assert [r["kind"] for r in FaceStream(bundled).update(frames[0])] == ["detected"]
    gif = tmp_path / "tiny.gif"
    Image.fromarray(crop).save(gif, save_all=True, append_images=[Image.fromarray(crop + 40)])
    assert main(["live", "--video", str(gif), "--window", "no"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["kind"] for row in rows] == ["precropped", "precropped"]


def test_detect_scale_keeps_min_face_size_in_frame_pixels():
    from skimage import data as skdata

    from fersk import pretrained
    from fersk.live import FaceStream

    model = pretrained.load()
    model.set_params(facecropper__min_face_size=80)  # the astronaut's face: ~90 pixels
    frame = skdata.astronaut()
    for scale in (1.0, 0.5):
        (record,) = FaceStream(model, detect_scale=scale).update(frame)
        np.testing.assert_allclose(record["box"], (64, 182, 107, 83), atol=4)


def test_detect_scale_reads_frames_as_face_cropper_does():
    """A (h, w, 1) grey frame crashed Pillow's resize and a palette PIL image
    was read as its palette indices (no face) once detect_scale < 1: the
    reduced copy is made from the frame as FaceCropper reads it."""
    from PIL import Image
    from skimage import data as skdata

    from fersk import pretrained
    from fersk._image_files import to_gray
    from fersk.live import FaceStream

    model = pretrained.load()
    astronaut = skdata.astronaut()
    grey = to_gray(astronaut[None])[0][..., None]
    palette = Image.fromarray(astronaut).convert("P", palette=Image.Palette.ADAPTIVE)
    for frame in (grey, palette):
        for scale in (0.5, 0.6):
            (record,) = FaceStream(model, detect_scale=scale).update(frame)
            np.testing.assert_allclose(record["box"], (62, 180, 110, 86), atol=6)

def test_center_view_is_the_network_with_one_view(bundled):
    import copy

    from fersk import stream

    frames, _ = make_frames(n=2)
    model = _with_detector(bundled, CountingDetector())
    records = list(stream(model, frames, alpha=1.0, views="center"))
    one = copy.deepcopy(model)
    one.steps[-1][1].set_params(test_time_crops="center", test_time_flip=False)
    crops, _ = model.steps[0][1].crop_faces(frames)
    np.testing.assert_allclose([r["proba"] for r in records], one[1:].predict_proba(crops),
                               rtol=1e-4, atol=1e-6)
    net = model.steps[-1][1]
    assert (net.test_time_crops, net.test_time_flip) == ("center", True)  # the user's model is unchanged
    with pytest.raises(ValueError, match="views"):
        list(stream(model, frames, views="all"))


def test_stream_gates_the_views_as_predict_proba_on_keras():
    """The stream's traced Keras step gives the views ``test_time_margin``
    gives in ``predict_proba`` (it ran every view for every face before)."""
    from fersk import FaceStream, pretrained

    model = pretrained.load(backend="keras")
    assert model[-1].test_time_margin is not None
    crops = np.random.default_rng(0).integers(0, 256, (8, 48, 48)).astype(np.uint8)
    gated = FaceStream(model)._predict_proba(crops)
    np.testing.assert_allclose(gated, model[1:].predict_proba(crops), atol=1e-5)
    model[-1].set_params(test_time_margin=None)
    every = FaceStream(model)._predict_proba(crops)
    np.testing.assert_allclose(every, model[1:].predict_proba(crops), atol=1e-5)
    assert np.abs(every - gated).max() > 1e-3


def test_stream_refuses_a_networks_non_finite_outputs_as_predict_proba_does():
    """The stream's traced step read a diverged network's NaN outputs as
    probabilities (every face "angry", the first class), where predict_proba
    refuses them."""
    from fersk import FaceStream, pretrained

    model = pretrained.load("fer2013_cnn", backend="keras")
    crops = np.random.default_rng(0).integers(0, 256, (4, 48, 48)).astype(np.uint8)
    stream = FaceStream(model)
    np.testing.assert_allclose(stream._predict_proba(crops), model[1:].predict_proba(crops),
                               atol=1e-6)
    head = model[-1].model_.layers[-1]
    while hasattr(head, "layers"):  # the output layer inside a nested network
        head = head.layers[-1]
    kernel, bias = head.get_weights()
    head.set_weights([kernel, np.full_like(bias, np.nan)])
    for predict in (model[1:].predict_proba, stream._predict_proba):
        with pytest.raises(ValueError, match="outputs are not finite"):
            predict(crops)


def test_a_variable_rate_video_keeps_its_frames_times(tmp_path):
    """Phones record at variable frame rates: times were index / the
    stream's guessed rate (a frame at 1.0 s said 0.25 s)."""
    import fractions

    av = pytest.importorskip("av", reason="writing the test video needs PyAV (the test extra)")
    from fersk.live import read_frames

    path = tmp_path / "vfr.mp4"
    times_ms = [0, 100, 150, 400, 450, 1000]
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.codec_context.time_base = fractions.Fraction(1, 1000)
        for k, t in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * k, np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, fractions.Fraction(1, 1000)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
    read = list(read_frames(path))
    assert [i for i, _, _ in read] == list(range(6))
    assert [t for _, t, _ in read] == pytest.approx([t / 1000 for t in times_ms])
    assert read[3][2].shape == (48, 64, 3) and abs(int(read[3][2].mean()) - 60) <= 2


def test_a_rotated_phone_video_is_read_upright(bundled, tmp_path):
    """Phones store portrait video as landscape frames and the turn in the
    mp4's display matrix: the frames were read sideways, and no face found."""
    import struct

    av = pytest.importorskip("av", reason="writing the test video needs PyAV (the test extra)")
    from fersk import stream
    from fersk.live import read_frames

    upright = data.astronaut()[:320, 96:336]  # 320 x 240, the face inside
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # as a phone stores it: 240 x 320
    path = tmp_path / "portrait.mp4"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        for _ in range(3):
            for packet in video.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
    # The track header's identity matrix made the 90-degree one phones write.
    raw = bytearray(path.read_bytes())
    identity = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    at = raw.find(identity, raw.find(b"tkhd"))
    assert at > 0
    raw[at : at + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 240 << 16, 0, 0x40000000)
    path.write_bytes(bytes(raw))
    frames = [f for _, _, f in read_frames(path)]
    assert len(frames) == 3 and all(f.shape == (320, 240, 3) for f in frames)
    assert np.abs(frames[0].astype(int) - upright).mean() < 10  # upright, not upside down
    records = list(stream(bundled, path))
    assert [r["frame"] for r in records] == [0, 1, 2] and records[0]["name"] == "happy"


def _vfr_mp4(path, times_ms, size=(48, 64)):
    import fractions

    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=30)
        video.height, video.width = size
        video.pix_fmt = "yuv420p"
        video.codec_context.time_base = fractions.Fraction(1, 1000)
        for k, t in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(np.full((*size, 3), 20 * k, np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, fractions.Fraction(1, 1000)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)


def test_fersk_live_out_plays_as_its_source(capsys, tmp_path):
    """--out was written at the source's nominal rate (a GIF always at 15
    frames/s): a variable-rate clip of 1.0 s played in 0.17 s, its --json
    times disagreeing.  Each frame now keeps its source time."""
    pytest.importorskip("av", reason="mp4 needs the video extra (av)")
    import av

    times_ms = [0, 100, 150, 400, 450, 1000]
    clip, out = tmp_path / "vfr.mp4", tmp_path / "annotated.mp4"
    _vfr_mp4(clip, times_ms)
    status = main(["live", "--video", str(clip), "--out", str(out), "--window", "no",
                   "--json", str(tmp_path / "faces.jsonl")])
    assert status == 0, capsys.readouterr().err
    with av.open(str(out)) as container:
        times = [round(f.time, 3) for f in container.decode(video=0)]
    assert times == pytest.approx([t / 1000 for t in times_ms], abs=0.002)
    # --fps: that rate, whatever the source's times
    status = main(["live", "--video", str(clip), "--out", str(out), "--window", "no",
                   "--json", str(tmp_path / "faces.jsonl"), "--fps", "10"])
    with av.open(str(out)) as container:
        times = [round(f.time, 3) for f in container.decode(video=0)]
    assert status == 0 and times == pytest.approx([k / 10 for k in range(6)], abs=0.002)


def test_fersk_live_plot_of_a_kind_matplotlib_cannot_write_is_a_usage_error(capsys, tmp_path):
    """--plot tracks.txt crashed after the whole video was read."""
    pytest.importorskip("matplotlib")
    clip = tmp_path / "clip.mp4"
    pytest.importorskip("av")
    _vfr_mp4(clip, [0, 100])
    status = main(["live", "--video", str(clip), "--plot", str(tmp_path / "tracks.txt"),
                   "--window", "no", "--json", str(tmp_path / "f.jsonl")])
    assert status == 2 and "--plot: write one of" in capsys.readouterr().err
    assert not (tmp_path / "f.jsonl").exists()


def test_frames_numbered_without_zeros_come_in_number_order(tmp_path):
    """frame1, frame2 ... frame11 were read 1, 10, 11, 2, ...: indices, times
    and tracks followed the wrong sequence."""
    from fersk.live import read_frames

    for k in (1, 2, 10, 11, 3):
        Image.fromarray(np.full((8, 8), k, np.uint8)).save(tmp_path / f"frame{k}.png")
    for source in (tmp_path, str(tmp_path / "frame*.png")):
        assert [int(f[0, 0]) for _, _, f in read_frames(source)] == [1, 2, 3, 10, 11]


def test_live_plot_shows_the_longest_tracks_and_says_so(tmp_path):
    """--plot drew the first 8 track ids only: in a long video a face lost
    and found again gets new ids, so its later part was left out without a
    word.  The longest 8 are drawn, and the figure and the return say how
    many of how many."""
    pytest.importorskip("matplotlib")
    from fersk.cli.live import _plot_tracks, _shown_tracks

    names = ["happy", "sad"]
    history = {t: [(float(t), np.array([0.5, 0.5]))] * 2 for t in range(8)}  # short early tracks
    history.update({t: [(float(t + k), np.array([0.7, 0.3])) for k in range(20)] for t in (8, 9)})
    assert _shown_tracks(history) == [0, 1, 2, 3, 4, 5, 8, 9]
    assert _plot_tracks(history, names, tmp_path / "p.png") == (8, 10)
    assert (tmp_path / "p.png").is_file()
    assert _plot_tracks({0: history[0]}, names, tmp_path / "q.png") == (1, 1)
    assert _plot_tracks({}, names, tmp_path / "r.png") == (0, 0) and not (tmp_path / "r.png").exists()


def test_a_video_whose_writing_fails_at_its_end_leaves_no_temporary_file(tmp_path,
                                                                          monkeypatch):
    """fersk live --out: a failure while the encoder's last frames were
    written (a full disk) left the hidden temporary video beside the
    output; it is removed, the error raised."""
    pytest.importorskip("av", reason="writing the test video needs PyAV (the test extra)")
    from fersk.cli.live import _VideoWriter

    writer = _VideoWriter(tmp_path / "out.mp4", fps=10)
    writer.write(np.zeros((32, 32, 3), np.uint8))
    close = writer.container.close

    def full_disk():
        close()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer, "container", type("C", (), {
        "close": staticmethod(full_disk), "mux": writer.container.mux})())
    with pytest.raises(OSError, match="No space left"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


def test_a_frame_of_another_size_is_never_given_the_last_frames_boxes(bundled):
    """detect_every=2 carried the boxes of a 48x48 frame to the next, a
    64x64 one: its top-left 48x48 corner was classified as 'precropped'.
    A frame of another size, or one taken whole, is looked at afresh."""
    from skimage.transform import resize

    from fersk.live import FaceStream

    face = data.astronaut()[30:230, 120:320]
    f48, f64 = ((resize(face, (n, n), anti_aliasing=True) * 255).astype(np.uint8)
                for n in (48, 64))
    stream = FaceStream(bundled, detect_every=2, alpha=1.0)
    first, second = stream.update(f48), stream.update(f64)
    assert first[0]["box"] == (0, 0, 48, 48) and second[0]["box"] == (0, 0, 64, 64)
    assert second[0]["detected"]
    np.testing.assert_allclose(second[0]["raw_proba"], bundled.predict_proba(f64[None])[0],
                               rtol=1e-4, atol=1e-6)
    big = data.astronaut()
    small = big[::2, ::2]
    stream = FaceStream(bundled, detect_every=5)
    stream.update(big)
    (record,) = stream.update(small)
    assert record["detected"] and max(record["box"][0] + record["box"][2],
                                      record["box"][1] + record["box"][3]) <= 256


def test_video_frames_without_a_timestamp_keep_the_timeline_of_those_with_one(monkeypatch):
    """PyAV frames without a presentation time were timed index / rate from
    0 while the others were timed from the first timestamped frame: a video
    whose first frames carry none gave times that ran backwards.  A frame
    without a time now continues from the last one known."""
    import sys
    import types

    from fersk import _image_files

    class Frame:
        def __init__(self, time):
            self.time, self.rotation = time, 0

        def to_ndarray(self, format):
            return np.zeros((4, 4, 3), np.uint8)

    times = [None, None, 10.0, 10.1, None, 10.3]

    class Container:
        streams = types.SimpleNamespace(video=[types.SimpleNamespace(
            guessed_rate=10, average_rate=10)])

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def decode(self, stream):
            return (Frame(t) for t in times)

    monkeypatch.setitem(sys.modules, "av", types.SimpleNamespace(open=lambda path: Container()))
    got = [t for _, t, _ in _image_files._pyav_frames("clip.mp4", 1)]
    assert got == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])


def test_stream_class_names_are_checked_as_saving_checks_them(bundled):
    """FaceStream checked only the count: "ok" for two classes became 'o'
    and 'k', duplicate names were taken.  The rule is pretrained.save's."""
    from fersk import FaceStream

    for names in ("angrydisgust"[:7], ["a"] * 7, ["a", "b", "c", "d", "e", "f", ""],
                  list("abcdef")):
        with pytest.raises(ValueError, match="class_names must be 7 distinct non-empty strings"):
            FaceStream(bundled, class_names=names)
    assert FaceStream(bundled, class_names=tuple("abcdefg")).class_names == list("abcdefg")


def test_estimators_refuse_n_jobs_zero_by_name():
    """n_jobs=0 passed [None, Integral] and failed inside joblib ("n_jobs == 0
    in Parallel has no meaning"), naming neither estimator nor parameter."""
    from fersk import FaceCropper, LBPCodeTransformer, LBPHistogram, MDSMappedLBP

    X = np.zeros((2, 16, 16), np.uint8)
    for est in (LBPCodeTransformer(n_jobs=0), LBPHistogram(grid=(2, 2), n_jobs=0),
                FaceCropper(None, size=8, n_jobs=0), MDSMappedLBP(n_jobs=0)):
        with pytest.raises(ValueError, match=f"'n_jobs' parameter of {type(est).__name__}"):
            est.fit(X)
    assert LBPCodeTransformer(n_jobs=-1).fit_transform(X).shape == (2, 16, 16)


def test_ensemble_refuses_n_jobs_true_by_name():
    """CNNEnsembleClassifier's table was the one not passed through
    without_bools: n_jobs=True ran one worker (True == 1) without a word."""
    from sklearn.linear_model import LogisticRegression

    from fersk import CNNEnsembleClassifier

    X, y = np.arange(16.0).reshape(8, 2), np.arange(8) % 2
    ensemble = CNNEnsembleClassifier([("a", LogisticRegression())], n_jobs=True)
    with pytest.raises(ValueError, match="'n_jobs' parameter of CNNEnsembleClassifier must be "
                                         "None, an int in the range"):
        ensemble.fit(X, y)
    assert CNNEnsembleClassifier([("a", LogisticRegression())], n_jobs=1).fit(X, y).n_jobs == 1


def test_numeric_parameters_refuse_bools_with_their_usual_message():
    """scikit-learn's Interval takes True as 1: FaceCropper(size=True) cut 1x1
    crops, CNNClassifier(crop_size=True) trained on one pixel, LBP codes of
    one point, epochs=True one epoch.  Pairs and sequences already refused
    bools; single numbers now do too, with the same words as before."""
    from fersk import (
        CNNClassifier,
        FaceCropper,
        FaceStream,
        LBPCodeTransformer,
        MDSMappedLBP,
        local_binary_pattern_batch,
    )
    from fersk.training import distillation_targets

    X = np.zeros((2, 16, 16), np.uint8)
    for make, name in [
        (lambda: FaceCropper(None, size=True).fit(X), "size"),
        (lambda: FaceCropper(None, size=8, margin=True).fit(X), "margin"),
        (lambda: LBPCodeTransformer(P=True).fit(X), "P"),
        (lambda: MDSMappedLBP(n_components=True).fit(X), "n_components"),
        (lambda: CNNClassifier(crop_size=True).fit(X, [0, 1]), "crop_size"),
        (lambda: CNNClassifier(epochs=True).fit(X, [0, 1]), "epochs"),
        (lambda: CNNClassifier(test_time_margin=True).fit(X, [0, 1]), "test_time_margin"),
        (lambda: local_binary_pattern_batch(X, True, 1), "P"),
        (lambda: distillation_targets("fer2013_cnn", X, [0, 1], weight=True), "weight"),
    ]:
        with pytest.raises(ValueError, match=f"'{name}' parameter of .* Got True instead"):
            make()
    with pytest.raises(ValueError, match="'epochs' parameter of CNNClassifier must be an int in the "
                                         r"range \[1, inf\)"):
        CNNClassifier(epochs=0).fit(X, [0, 1])
    with pytest.raises(ValueError, match="'alpha' parameter"):
        FaceStream(None, alpha=True)


def test_fersk_live_never_replaces_a_file_it_did_not_write(capsys, mp4, tmp_path):
    """--out, --json and --plot replaced whatever file had the name (a
    user's video, notes, a figure); fersk demo, evaluate and --annotate
    already refused to.  Now a rerun replaces fersk live's own outputs
    (marked, or fersk's JSON lines) and stops before the work otherwise."""
    outputs = {"--out": tmp_path / "a.mp4", "--json": tmp_path / "a.jsonl",
               "--plot": tmp_path / "a.png"}
    args = ["live", "--video", str(mp4[0]), "--window", "no", "--max-frames", "2"]
    for option, path in outputs.items():
        path.write_bytes(b"the user's own file")
        assert main([*args, option, str(path)]) == 2
        assert "exists and fersk did not write it" in capsys.readouterr().err
        assert path.read_bytes() == b"the user's own file"
        path.unlink()
    every = [a for option, path in outputs.items() for a in (option, str(path))]
    assert main([*args, *every]) == 0
    first = {option: path.read_bytes() for option, path in outputs.items()}
    assert main([*args, *every]) == 0  # its own: replaced
    assert outputs["--json"].read_bytes() == first["--json"]
    capsys.readouterr()
    for kind in ("pdf", "svg", "jpg"):  # marked in each format's own way
        plot = tmp_path / f"p.{kind}"
        for _ in range(2):
            assert main([*args, "--plot", str(plot)]) == 0, capsys.readouterr().err


def test_a_bad_frame_or_camera_index_is_named_and_not_counted():
    """FaceStream(detect_scale<1).update(None) failed on max() of no sizes, a
    0-d frame was told to reshape "X", and a refused frame still counted in
    n_frames_; read_frames(-1) killed the process inside OpenCV (SIGSEGV)."""
    from fersk import pretrained
    from fersk.live import FaceStream, read_frames

    for scale in (1.0, 0.5):
        faces = FaceStream(pretrained.load("fer2013_cnn"), detect_scale=scale)
        for bad in (None, np.array(3), np.zeros((0, 5))):
            with pytest.raises(ValueError, match="frame"):
                faces.update(bad)
        assert faces.n_frames_ == 0
        faces.update(np.zeros((60, 80), np.uint8))
        assert faces.n_frames_ == 1
    with pytest.raises(ValueError, match="a camera index is 0 or more; got -1"):
        read_frames(-1)


def test_a_portrait_photo_stored_landscape_is_a_frame_of_another_size(tmp_path):
    """FaceStream compared np.shape of a PIL frame, its stored size: a
    portrait photo stored landscape (EXIF 6) after a landscape one was taken
    for a frame of the same size, and the landscape photo's box was cut
    from it (background classified)."""
    from PIL import Image

    from fersk import pretrained
    from fersk.live import FaceStream

    face = data.astronaut()[0:300, 100:400]
    land = np.full((480, 640, 3), 100, np.uint8)
    land[0:300, 300:600] = face
    port = np.full((640, 480, 3), 100, np.uint8)
    port[300:600, 0:300] = face
    Image.fromarray(land).save(tmp_path / "land.jpg", quality=95)
    im = Image.fromarray(np.ascontiguousarray(np.rot90(port, 1)))  # stored turned
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "port.jpg", exif=exif, quality=95)
    frames = [Image.open(tmp_path / "land.jpg"), Image.open(tmp_path / "port.jpg")]
    carried = FaceStream(pretrained.load(), detect_every=2)
    records = [carried.update(f) for f in frames]
    every = FaceStream(pretrained.load(), detect_every=1)
    expected = [every.update(f) for f in frames]
    assert records[1] and records[1][0]["detected"]
    assert records[1][0]["box"] == expected[1][0]["box"]
    assert records[1][0]["box"][0] > 300  # the face low in the upright portrait
