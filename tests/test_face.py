"""FaceCropper on real photographs and real FER-2013 faces."""

import math
import pickle
import sys
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
from PIL import Image
from skimage import data
from skimage.transform import resize, rotate
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks
from skimage.util import img_as_float

from fersk import FaceCropper, LBPHistogram
from fersk._image_files import to_gray
from fersk.face import NoFaceWarning

# Where the default detector, MTCNN, finds the astronaut's face (row, col, h,
# w), and where scikit-image's LBP cascade does; by eye the head spans rows
# 20-230 and columns 150-300 of the 512x512 image.
MTCNN_BOX = (64, 182, 107, 83)
ASTRO_BOX = (65, 175, 99, 99)


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()


@pytest.fixture(scope="module")
def astro_gray(astronaut):
    return to_gray(astronaut[np.newaxis])[0]


def _resized(patch, size):
    out = resize(patch.astype(float), size, order=1, anti_aliasing=True, preserve_range=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _quiet(cropper, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoFaceWarning)
        return cropper.fit(X).crop(X)


# --- real faces -----------------------------------------------------------


def test_astronaut_face_found_and_cropped_exactly(astronaut, astro_gray):
    cropper = FaceCropper()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a face is found: no warning
        crops, info = cropper.fit([astronaut]).crop([astronaut])
    assert crops.shape == (1, 48, 48) and crops.dtype == np.uint8
    np.testing.assert_array_equal(cropper.transform([astronaut]), crops)
    r, c, h, w = info.boxes[0]
    assert (r, c, h, w) == MTCNN_BOX
    assert 20 <= r and r + h <= 230 and 150 <= c and c + w <= 300  # on the face
    assert info.no_face_indices.size == 0 and info.n_faces[0] == 1
    assert np.isnan(info.angles[0])  # no alignment asked
    # The crop is exactly the box widened to a square about its centre
    # (107 x 107 at (64, 170)), resized with anti-aliasing.
    patch = astro_gray[64:171, 170:277]
    np.testing.assert_array_equal(crops[0], _resized(patch, (48, 48)))
    # At the box's own size nothing is resampled: the pixels themselves.
    same = FaceCropper(size=(107, 107)).fit_transform([astronaut])[0]
    np.testing.assert_array_equal(same, patch)


def test_margin_and_aspect_enlarge_the_box_about_its_centre(astronaut, astro_gray):
    # MTCNN's 107 x 83 box, centre (117.5, 223.5), is first widened to the
    # output's aspect ratio; margin 0.1 then adds 10.7 px a side: a 128 px
    # square centred on the face.
    out = FaceCropper(size=(128, 128), margin=0.1).fit_transform([astronaut])[0]
    np.testing.assert_array_equal(out, astro_gray[54:182, 160:288])
    # A 2:1 (width:height) output widens the box to 214 x 107 about its centre.
    wide = FaceCropper(size=(107, 214)).fit_transform([astronaut])[0]
    np.testing.assert_array_equal(wide, astro_gray[64:171, 116:330])
    # A negative margin crops tighter.
    tight = FaceCropper(size=(86, 86), margin=-0.1).fit_transform([astronaut])[0]
    np.testing.assert_array_equal(tight, astro_gray[74:160, 180:266])
    # The cascade's square box needs no widening.
    cascade = FaceCropper("skimage", size=(119, 119), margin=0.1)
    np.testing.assert_array_equal(
        cascade.fit_transform([astronaut])[0], astro_gray[55:174, 165:284]
    )


def test_box_beyond_the_border_repeats_edge_pixels(astro_gray):
    # A face box at the top edge: the margin reaches 5 rows above the image.
    cropper = FaceCropper(lambda im: [(5, 10, 50, 50)], size=(70, 70), margin=0.2)
    out, info = cropper.crop([astro_gray])
    expected = np.pad(astro_gray, ((5, 0), (0, 0)), mode="edge")[:70, :70]
    np.testing.assert_array_equal(out[0], expected)
    np.testing.assert_array_equal(info.boxes, [[5, 10, 50, 50]])


def test_colour_output(astronaut):
    crops = FaceCropper(color=True, size=(107, 107)).fit_transform([astronaut])
    assert crops.shape == (1, 107, 107, 3) and crops.dtype == np.uint8
    np.testing.assert_array_equal(crops[0], astronaut[64:171, 170:277])
    rgba = np.concatenate([astronaut, np.full(astronaut.shape[:2] + (1,), 7, np.uint8)], -1)
    np.testing.assert_array_equal(
        FaceCropper(color=True, size=(107, 107)).fit_transform([rgba]), crops
    )
    # Grey input, colour output: the grey crop on all three channels.
    grey = FaceCropper(color=True).fit_transform([to_gray(astronaut[None])[0]])[0]
    assert grey.shape == (48, 48, 3)
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])


def test_largest_of_several_faces_is_cropped(astronaut):
    # "Group" photos: the astronaut and a half-size copy of her, side by side,
    # one way and the other.
    small = _resized(astronaut, (256, 256))
    group = np.zeros((512, 768, 3), dtype=np.uint8)
    group[:, 256:] = astronaut
    group[128:384, :256] = small
    group2 = np.zeros_like(group)
    group2[:, :512] = astronaut
    group2[128:384, 512:] = small
    cropper = FaceCropper(min_face_size=0.08)
    _, info = cropper.crop([group, group2])
    assert (info.n_faces >= 2).all()
    for (r, c, h, w), left in zip(info.boxes, (256, 0)):
        assert h > 80 and left + 150 <= c and c + w <= left + 300  # the large face
    # ... and the smaller face is found when it is alone.
    alone = FaceCropper(min_face_size=0.08)
    _, info = alone.crop([group[:, :256]])
    assert info.n_faces[0] >= 1 and 30 < info.boxes[0, 2] < 80


# --- FER-2013 faces, already cropped ------------------------------------------


def test_fer_faces_documented_behaviour(fer_small):
    X = fer_small[0]
    # MTCNN on the frames themselves finds a face in only some of the 48x48
    # crops (the face fills the frame): 27 of these 140; the others are kept
    # whole, with a warning.  (The default second search on a padded copy
    # finds most of the others: below.)
    cropper = FaceCropper(retry_padding=0)
    with pytest.warns(NoFaceWarning, match=r"No face found in \d+ of 140 images") as rec:
        crops, info = cropper.fit(X).crop(X)
    assert crops.shape == X.shape and crops.dtype == np.uint8
    missing = info.no_face_indices
    assert 0.5 * len(X) < len(missing) < 0.95 * len(X)
    assert str(len(missing)) in str(rec[0].message)
    np.testing.assert_array_equal(np.isnan(info.boxes).all(1), info.n_faces == 0)
    np.testing.assert_array_equal(np.flatnonzero(info.n_faces == 0), missing)
    np.testing.assert_array_equal(crops[missing], X[missing])  # whole, 48 -> 48
    found = info.boxes[~np.isnan(info.boxes[:, 0])]
    assert (found[:, :2] >= 0).all() and (found[:, :2] + found[:, 2:] <= 48).all()
    # The default searches the misses again with room around the face.
    with pytest.warns(NoFaceWarning):
        _, padded = FaceCropper().crop(X)
    assert len(padded.no_face_indices) < 0.5 * len(missing)
    assert set(padded.no_face_indices) <= set(missing)
    # detector=None: a pass-through resize, no detection, no warning.
    passthrough = FaceCropper(detector=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same, info = passthrough.fit(X).crop(X)
        np.testing.assert_array_equal(same, X)
        small = FaceCropper(detector=None, size=(32, 32)).fit_transform(X[:5])
    np.testing.assert_array_equal(small, np.stack([_resized(x, (32, 32)) for x in X[:5]]))
    assert info.no_face_indices.size == 0
    np.testing.assert_array_equal(info.boxes, np.tile([0, 0, 48, 48], (len(X), 1)))


def test_fer_framing_is_the_cascade_box_with_zero_margin(fer_small):
    # Embed FER faces in context (edge padding, 2x upsampling) so that the
    # cascade can find them: the default margin=0 crop then matches the FER
    # face best, as documented.
    X = fer_small[0][::4]
    big = [_resized(np.pad(x, 24, mode="edge"), (192, 192)) for x in X]
    cropper = FaceCropper("skimage")
    _, info = _quiet(cropper, big)
    found = np.flatnonzero(info.n_faces > 0)
    assert len(found) >= len(X) // 2
    median_corr = {}
    for margin in (-0.15, 0.0, 0.15):
        corr = []
        for i in found:  # the same boxes, given by a callable
            box = tuple(info.boxes[i])
            crop = FaceCropper(lambda im: [box], margin=margin).fit_transform([big[i]])[0]
            corr.append(np.corrcoef(crop.ravel(), X[i].ravel().astype(float))[0, 1])
        median_corr[margin] = np.median(corr)
    assert median_corr[0.0] > 0.6
    assert median_corr[0.0] > max(median_corr[-0.15], median_corr[0.15]) + 0.05


# --- no face: the three policies ---------------------------------------------


@pytest.mark.parametrize("policy", ["whole", "center"])
def test_no_face_policies_keep_every_image(policy, astronaut):
    text = data.text()  # 172 x 448, no face
    constant = np.full((60, 80), 128, dtype=np.uint8)
    X = [data.brick(), astronaut, text, constant]
    cropper = FaceCropper(on_no_face=policy, size=(40, 40))
    with pytest.warns(NoFaceWarning, match=r"No face found in 3 of 4 images \(indices 0, 2, 3\)"):
        crops, info = cropper.fit(X).crop(X)
    assert crops.shape == (4, 40, 40)
    np.testing.assert_array_equal(info.no_face_indices, [0, 2, 3])
    assert np.isnan(info.boxes[[0, 2, 3]]).all() and not np.isnan(info.boxes[1]).any()
    if policy == "whole":
        expected = _resized(text, (40, 40))
    else:  # the centred 172 x 172 square
        expected = _resized(text[:, 138:310], (40, 40))
    np.testing.assert_array_equal(crops[2], expected)
    np.testing.assert_array_equal(crops[3], 128)


def test_no_face_raise_names_the_image_and_file(tmp_path, astronaut):
    with pytest.raises(ValueError, match=r"No face found in X\[1\].*on_no_face='raise'"):
        FaceCropper(on_no_face="raise").fit_transform([astronaut, data.brick()])
    path = tmp_path / "brick.png"
    Image.fromarray(data.brick()).save(path)
    with pytest.raises(ValueError, match=r"X\[0\] \(file '.*brick\.png'\)"):
        FaceCropper(on_no_face="raise").fit_transform([str(path)])
    # A face everywhere: no error, no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FaceCropper(on_no_face="raise").fit_transform([astronaut, astronaut[::-1, ::-1]])


# --- inputs: lists, files, arrays, flattened rows ---------------------------


def test_list_of_mixed_sizes_and_files(tmp_path, astronaut, fer_small):
    fer = fer_small[0][0]
    paths = []
    for name, image in [("astro.png", astronaut), ("fer.png", fer), ("brick.png", data.brick())]:
        paths.append(tmp_path / name)
        Image.fromarray(image).save(paths[-1])
    arrays = [astronaut, fer, data.brick()]
    cropper = FaceCropper(size=(32, 32))
    from_arrays, info = _quiet(cropper, arrays)
    mixed, mixed_info = _quiet(cropper, [str(paths[0]), fer, paths[2]])  # str, array, Path
    np.testing.assert_array_equal(mixed, from_arrays)
    np.testing.assert_array_equal(mixed_info.boxes, info.boxes)
    # A 1-D array of file names (a DataFrame column) is a list of files.
    np.testing.assert_array_equal(_quiet(cropper, np.array([str(p) for p in paths]))[0], from_arrays)


def test_unreadable_or_missing_file_names_the_file(tmp_path, astronaut):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a PNG")
    with pytest.raises(ValueError, match=r"X\[1\]: cannot read an image from the file '.*broken\.png'"):
        FaceCropper().fit_transform([astronaut, bad])
    missing = [str(tmp_path / "nowhere.jpg")]
    cropper = FaceCropper().fit(missing)  # fit does not read files ...
    with pytest.raises(ValueError, match=r"cannot read .*'.*nowhere\.jpg'"):
        cropper.transform(missing)  # ... transform does


def test_decompression_bomb_is_a_value_error_naming_the_file(tmp_path, monkeypatch):
    # Pillow refuses an image of more than 2 * MAX_IMAGE_PIXELS pixels with
    # DecompressionBombError, which is no ValueError: lowered here so that
    # a 64x64 file stands for a huge one.
    huge = tmp_path / "huge.png"
    Image.new("L", (64, 64)).save(huge)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ValueError, match=r"X\[0\]: cannot read .*huge\.png.*DecompressionBomb"):
        FaceCropper(detector=None, size=(16, 16)).fit_transform([huge])


def test_array_layouts_and_dtype_policy(fer_small, astronaut):
    X = fer_small[0][:6]
    # flattened rows -> flattened crops, identical to the batch layout
    batch = FaceCropper(detector=None, size=(24, 24)).fit_transform(X)
    flat = FaceCropper(detector=None, size=(24, 24)).fit_transform(X.reshape(6, -1))
    assert flat.shape == (6, 24 * 24)
    np.testing.assert_array_equal(flat, batch.reshape(6, -1))
    # One pixel rule (arrays as files): every dtype of the same image gives
    # the same uint8 crops.
    def crops(images, **kw):
        return FaceCropper(detector=None, size=(24, 24), **kw).fit_transform(images)

    np.testing.assert_array_equal(crops(X / 255.0), batch)
    np.testing.assert_array_equal(crops(X.astype(np.float32) / 255), batch)
    np.testing.assert_array_equal(crops(X.astype(np.float32), float_max=255), batch)
    np.testing.assert_array_equal(crops(X.astype(np.uint16) * 257), batch)
    np.testing.assert_array_equal(crops(X.astype(np.int64)), batch)
    assert crops(X / 255.0).dtype == np.uint8
    np.testing.assert_array_equal(crops(X > 127), crops((X > 127).astype(np.uint8) * 255))
    with pytest.raises(ValueError, match=r"values from 0 to 2550, outside 0\.\.255"):
        crops(X.astype(np.int64) * 10)
    with pytest.raises(ValueError, match=r"values from -1 to .*outside 0\.\.255"):
        crops(X.astype(np.int16) - 1)
    with pytest.raises(ValueError, match=r"float image with values from 0 to 255; .*float_max=255"):
        crops(X.astype(np.float64))
    with pytest.raises(ValueError, match=r"X\[1\] is a float image"):
        crops([X[0] / 255, X[1] * 1.0])
    # detection does not depend on the scale of the values
    c8, cf = FaceCropper(), FaceCropper()
    faces8 = c8.fit_transform([astronaut])
    facesf = cf.fit_transform([img_as_float(astronaut)])
    np.testing.assert_array_equal(c8.crop([astronaut])[1].boxes,
                                  cf.crop([img_as_float(astronaut)])[1].boxes)
    np.testing.assert_array_equal(faces8, facesf)
    # batch of colour images
    both = FaceCropper(size=(107, 107), color=True).fit_transform(np.stack([astronaut] * 2))
    np.testing.assert_array_equal(both[1], astronaut[64:171, 170:277])


def test_one_colour_image_without_batch_axis_is_refused(astronaut):
    from fersk import LBPCodeTransformer, MDSMappedLBP

    for est in (FaceCropper(), LBPCodeTransformer(), MDSMappedLBP()):
        with pytest.raises(ValueError, match=r"\[image\] or image\[np.newaxis\]"):
            est.fit_transform(astronaut)
    # narrow grey images are still possible, with their channel axis
    narrow = np.zeros((40, 20, 3, 1), np.uint8)
    assert FaceCropper(detector=None, size=(4, 4)).fit_transform(narrow).shape == (40, 4, 4)


@pytest.mark.parametrize(
    "X, match",
    [
        ([], "empty list"),
        ([np.zeros((10, 10)), np.zeros(5)], r"X\[1\] must be a grey .* got shape \(5,\)"),
        ([np.zeros((10, 10, 2))], r"X\[0\] must be a grey .* got shape \(10, 10, 2\)"),
        ([np.zeros((10, 0))], r"X\[0\] is an empty image"),
        ([np.full((30, 30), np.nan)], r"X\[0\] contains NaN"),
        ([np.array([["a", "b"], ["c", "d"]])], r"X\[0\] must be a numeric image"),
        ("photo.jpg", "single path"),
        (np.zeros(5), "1-D"),
        (np.full((2, 16), np.nan), "NaN"),
        (np.zeros((3, 10)), "square"),
    ],
)
def test_bad_input_is_a_clear_value_error(X, match):
    with pytest.raises(ValueError, match=match):
        FaceCropper().fit_transform(X)


def test_bad_parameters():
    X = [np.zeros((30, 30), dtype=np.uint8)]
    with pytest.raises(ValueError, match=r"'size' parameter of FaceCropper must be"):
        FaceCropper(size=(48, 0)).fit(X)
    with pytest.raises(ValueError, match="on_no_face"):
        FaceCropper(on_no_face="drop").fit(X)
    with pytest.raises(ValueError, match="detector"):
        FaceCropper(detector="dlib").fit(X)
    with pytest.raises(ValueError, match="margin"):
        FaceCropper(margin=-0.5).fit(X)
    for detector in ("skimage", None):
        with pytest.raises(ValueError, match=f"align=True needs eye landmarks.*{detector!r}"):
            FaceCropper(detector, align=True).fit(X)
    # transform validates too (the cropper need not be fitted)
    with pytest.raises(ValueError, match="scale_factor"):
        FaceCropper(scale_factor=1.0).transform(X)


def test_missing_backend_says_what_to_install(monkeypatch):
    X = [np.zeros((30, 30), dtype=np.uint8)]
    monkeypatch.setitem(sys.modules, "cv2", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'opencv-python-headless<5'"):
        FaceCropper("opencv").fit(X)
    monkeypatch.setitem(sys.modules, "mtcnn", None)
    with pytest.raises(ImportError, match="pip install mtcnn"):
        FaceCropper("mtcnn").transform(X)


# --- a callable detector and alignment ----------------------------------------


def _two_eyes(angle_deg, size=120):
    """A grey square with two bright 'eyes' whose line is at ``angle_deg``."""
    image = np.zeros((size, size), dtype=np.uint8)
    c = size / 2 - 0.5
    t = math.radians(angle_deg)
    eyes = [(c - 20 * math.sin(t), c - 20 * math.cos(t)), (c + 20 * math.sin(t), c + 20 * math.cos(t))]
    rr, cc = np.mgrid[:size, :size]
    for r, col in eyes:
        image[(rr - r) ** 2 + (cc - col) ** 2 <= 9] = 255
    return image, eyes


@pytest.mark.parametrize("angle", [25.0, -15.0])
def test_callable_detector_alignment_levels_the_eyes(angle):
    image, eyes = _two_eyes(angle)

    def detector(im):
        # a decoy small face, then the real one with its eye landmarks
        return [(0, 0, 10, 10), (20, 20, 80, 80, {"left_eye": eyes[0], "right_eye": eyes[1]})]

    cropper = FaceCropper(detector, align=True, size=(80, 80))
    crops, info = cropper.crop([image])
    crop = crops[0]
    np.testing.assert_array_equal(info.boxes[0], [20, 20, 80, 80])
    assert info.n_faces[0] == 2
    assert info.angles[0] == pytest.approx(angle)
    # both eyes on one row, 40 px apart, centred
    rows, cols = np.nonzero(crop > 127)
    left, right = cols < 40, cols >= 40
    assert abs(rows[left].mean() - rows[right].mean()) < 0.5
    assert cols[right].mean() - cols[left].mean() == pytest.approx(40, abs=1)
    # unaligned, the eye line keeps its slope
    crop0 = FaceCropper(detector, size=(80, 80)).fit_transform([image])[0]
    rows, cols = np.nonzero(crop0 > 127)
    assert abs(rows[cols < 40].mean() - rows[cols >= 40].mean()) > 10


def test_callable_without_landmarks_and_bad_output():
    image, _ = _two_eyes(10)
    cropper = FaceCropper(lambda im: [(20, 20, 80, 80)], align=True)
    _, info = cropper.crop([image])
    assert np.isnan(info.angles[0]) and info.n_faces[0] == 1
    with pytest.raises(ValueError, match=r"\(row, col, height, width\)"):
        FaceCropper(lambda im: [(1, 2, 3)]).fit_transform([image])
    with pytest.raises(ValueError, match="height and width positive"):
        FaceCropper(lambda im: [(1, 2, 0, 4)]).fit_transform([image])
    with pytest.raises(ValueError, match="landmarks for image 0"):
        FaceCropper(lambda im: [(1, 2, 3, 4, [1, 2, 3])], align=True).fit_transform([image])
    # One box instead of a list of boxes: named (it was "'int' object is not iterable").
    for one_box in ((20, 20, 80, 80), np.array([20, 20, 80, 80])):
        with pytest.raises(ValueError, match=r"must return a list of faces.*\[box\]"):
            FaceCropper(lambda im, b=one_box: b).fit_transform([image])


def test_callable_detector_gets_uint8_by_the_pixel_rule():
    """As documented: a float [0, 1] image reaches the callable as 0-255 uint8."""
    image, _ = _two_eyes(10)
    seen = []
    detector = lambda im: seen.append((im.dtype, int(im.max()))) or [(20, 20, 80, 80)]  # noqa: E731
    as_float = image.astype(np.float64) / 255
    FaceCropper(detector).fit_transform([as_float])
    FaceCropper(detector).fit_transform(as_float[None])
    assert seen == [(np.dtype(np.uint8), int(image.max()))] * 2


# --- engineering: parallel, progress, pickling, sklearn ---------------------


def test_n_jobs_gives_identical_output(fer_small, astronaut):
    X = [astronaut, data.brick()] + list(fer_small[0][:10])
    one, two = FaceCropper(n_jobs=1), FaceCropper(n_jobs=2)
    (a, info_a), (b, info_b) = _quiet(one, X), _quiet(two, X)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(info_a.boxes, info_b.boxes)
    np.testing.assert_array_equal(info_a.no_face_indices, info_b.no_face_indices)


def test_verbose_reports_progress(capsys, fer_small):
    # fersk's progress printer (fersk._progress): stdout in library use
    _quiet(FaceCropper(detector=None, verbose=1), fer_small[0])
    out = capsys.readouterr().out
    assert "[FaceCropper] 140/140 images cropped, 0 without a face" in out
    assert out.count("[FaceCropper]") > 1  # one line per chunk
    _quiet(FaceCropper(detector=None), fer_small[0])
    assert capsys.readouterr().out == ""


def test_predict_faces_progress_counts_images_taken_whole_as_without_a_face(capsys):
    """on_no_face='whole' gives one 'none' record an image without a face;
    the progress line counted it as a face ('0 without a face')."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from fersk import predict_faces

    pipe = make_pipeline(FaceCropper("skimage", size=8, verbose=1),
                         FunctionTransformer(lambda a: a.reshape(len(a), -1)),
                         LogisticRegression())
    pipe[1:].fit(np.random.default_rng(0).integers(0, 256, (4, 8, 8)), [0, 1, 0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        records = predict_faces(pipe, [np.zeros((100, 100), np.uint8)] * 3, on_no_face="whole")
    assert [r["kind"] for r in records] == ["none"] * 3
    assert "3/3 images searched, 3 without a face" in capsys.readouterr().out


def test_pickle_clone_and_pipeline(tmp_path, astronaut, fer_small):
    cropper = FaceCropper(margin=0.1, size=(32, 32))
    expected = cropper.fit_transform([astronaut])  # builds MTCNN
    path = tmp_path / "cropper.joblib"
    joblib.dump(cropper, path)
    assert path.stat().st_size < 10_000  # the network is not in it
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.transform([astronaut]), expected)
    np.testing.assert_array_equal(loaded.crop([astronaut])[1].boxes, [MTCNN_BOX])
    assert pickle.loads(pickle.dumps(clone(cropper))).get_params() == cropper.get_params()
    # stateless: transform without fit
    np.testing.assert_array_equal(FaceCropper(margin=0.1, size=(32, 32)).transform([astronaut]), expected)
    # in a pipeline, on raw lists of images
    pipe = make_pipeline(FaceCropper(detector=None), LBPHistogram(grid=(2, 2)))
    assert pipe.fit_transform(list(fer_small[0][:4])).shape == (4, 4 * 59)


def test_fit_records_shape_for_arrays_only(fer_small):
    X = fer_small[0][:3]
    cropper = FaceCropper().fit(X)
    assert cropper.n_features_in_ == 48 * 48 and cropper.image_shape_ == (48, 48)
    cropper.fit([X[0], X[1][:40]])  # a list of sizes: no fixed shape
    assert not hasattr(cropper, "n_features_in_") and not hasattr(cropper, "image_shape_")
    # any image size is accepted by transform after an array fit
    cropper.fit(X)
    assert _quiet(cropper, np.zeros((2, 30, 50), np.uint8))[0].shape == (2, 48, 48)


@parametrize_with_checks(
    [
        # sklearn's checks feed 2-D data with any number of features: read
        # each row as a one-row image (no face is ever found in those).
        # Their values are not pixels: float_max=255 reads them as 0-255
        # levels (the checks shift them to be non-negative: positive_only).
        FaceCropper(image_shape=(1, -1), size=(4, 4), float_max=255),
        FaceCropper(image_shape=(1, -1), detector=None, color=True, size=(3, 5), float_max=255),
    ],
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoFaceWarning)
        check(estimator)


# --- optional back ends ------------------------------------------------------


def _tilted(astronaut, degrees):
    return rotate(astronaut, degrees, center=(225, 115), preserve_range=True).astype(np.uint8)


def test_opencv_backend(astronaut):
    pytest.importorskip("cv2")
    try:
        FaceCropper("opencv").fit([astronaut])
    except ImportError as exc:  # OpenCV 5: no Haar cascades
        pytest.skip(str(exc))
    cropper = FaceCropper("opencv", align=True)
    crops, info = _quiet(cropper, [astronaut, _tilted(astronaut, 20), data.brick()])
    assert crops.shape == (3, 48, 48)
    r, c, h, w = info.boxes[0]
    assert 20 <= r and r + h <= 230 and 150 <= c and c + w <= 300
    np.testing.assert_array_equal(info.no_face_indices, [2])
    # the astronaut's eye line is slightly tilted; turned 20 degrees
    # anticlockwise it is about -17 degrees
    assert abs(info.angles[0]) < 6
    assert info.angles[1] == pytest.approx(-17, abs=4)


@pytest.mark.slow
def test_mtcnn_backend(astronaut):
    pytest.importorskip("mtcnn")
    cropper = FaceCropper("mtcnn", align=True, color=True)
    crops, info = _quiet(cropper, [astronaut, _tilted(astronaut, 20), np.full((80, 80), 9, np.uint8)])
    assert crops.shape == (3, 48, 48, 3)
    r, c, h, w = info.boxes[0]
    assert 20 <= r and r + h <= 230 and 150 <= c and c + w <= 300
    np.testing.assert_array_equal(info.no_face_indices, [2])
    assert abs(info.angles[0]) < 6
    assert info.angles[1] == pytest.approx(-17, abs=4)
    faces = cropper.detect([astronaut])[0]
    assert faces[0]["confidence"] > 0.9 and faces[0]["eyes"] is not None
    # larger minimum faces than mtcnn's own pyramid allows still work
    big = FaceCropper("mtcnn", min_face_size=0.15)
    assert big.crop([astronaut])[1].n_faces[0] == 1


def test_file_paths_16_bit_and_palette_images_are_read_faithfully(tmp_path):
    """16-bit files keep their high byte (not clipped white); palette files
    keep their colours with color=True (one rule for every reader)."""
    from PIL import Image

    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "wide.png")
    out = FaceCropper(detector=None, size=(64, 64)).fit_transform([str(tmp_path / "wide.png")])
    np.testing.assert_array_equal(out[0], (ramp >> 8).astype(np.uint8))

    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:, :16] = (200, 30, 30)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(tmp_path / "pal.png")
    out = FaceCropper(detector=None, size=(32, 32), color=True).fit_transform([str(tmp_path / "pal.png")])
    assert out.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(out[0, 5, 5], (200, 30, 30))

    Image.fromarray(np.ones((8, 8), np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(ValueError, match=r"X\[0\].*float.tif.*floating-point"):
        FaceCropper(detector=None).fit_transform([str(tmp_path / "float.tif")])


# ------------------------------------------------------ every face of a photo
def _two_boxes(image):
    """A detector: a small and a large face, eyes for the large one."""
    return [(5, 5, 10, 10), (20, 30, 30, 40, ((30, 40), (30, 60)))]


def test_detect_returns_every_face_largest_first_and_stores_nothing():
    photos = [np.full((64, 80), 100, np.uint8), np.zeros((32, 32), np.uint8)]
    cropper = FaceCropper(detector=_two_boxes, size=(16, 16))
    before = dict(vars(cropper))
    faces = cropper.detect(photos)
    assert vars(cropper) == before
    assert len(faces) == 2 and len(faces[0]) == 2
    big, small = faces[0]
    assert big == {"box": (20.0, 30.0, 30.0, 40.0), "confidence": None,
                   "eyes": ((30.0, 40.0), (30.0, 60.0))}
    assert small["box"] == (5.0, 5.0, 10.0, 10.0) and small["eyes"] is None
    whole = FaceCropper(detector=None).detect(photos)
    assert [f[0]["box"] for f in whole] == [(0.0, 0.0, 64.0, 80.0), (0.0, 0.0, 32.0, 32.0)]
    assert FaceCropper().detect([np.zeros((64, 64), np.uint8)]) == [[]]


def test_crop_faces_gives_one_crop_per_face_as_transform_would(astronaut):
    photos = [astronaut, np.zeros((40, 40, 3), np.uint8), astronaut]
    cropper = FaceCropper(detector=_two_boxes, size=(16, 16))
    crops, faces = cropper.crop_faces(photos)
    assert crops.shape == (6, 16, 16) and crops.dtype == np.uint8
    assert [(f["image"], f["face"]) for f in faces] == [
        (0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)
    ]
    # each crop is the single-face crop of its box
    for crop, face in zip(crops, faces):
        r, c, h, w = face["box"]
        single = FaceCropper(detector=lambda im, b=(r, c, h, w): [b], size=(16, 16))
        np.testing.assert_array_equal(crop, single.transform([photos[face["image"]]])[0])
    none = FaceCropper().crop_faces([np.zeros((64, 64), np.uint8)])
    assert none[0].shape == (0, 48, 48) and none[1] == []


def test_predict_faces_classifies_every_face_and_lists_images_without_one(astronaut):
    from sklearn.pipeline import make_pipeline

    from fersk import CNNClassifier, predict_faces

    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (20, 16, 16), dtype=np.uint8), np.arange(20) % 2
    pipe = make_pipeline(
        FaceCropper(detector=_two_boxes, size=(16, 16)),
        CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1, random_state=0),
    ).fit(X, y)
    photos = [astronaut, astronaut]
    records = predict_faces(pipe, photos)
    assert [(r["image"], r["face"]) for r in records] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    crops, _ = pipe[0].crop_faces(photos)
    expected = pipe[1:].predict_proba(crops)
    for record, p in zip(records, expected):
        np.testing.assert_allclose(record["proba"], p)
        assert record["label"] == pipe.classes_[p.argmax()]
    pipe.set_params(facecropper__detector="skimage", facecropper__size=(16, 16))
    records = predict_faces(pipe, [np.zeros((64, 64), np.uint8), astronaut])
    assert records[0] == {"image": 0, "face": None, "box": None, "confidence": None,
                          "eyes": None, "kind": "none", "label": None, "proba": None}
    assert records[1]["box"] == (65.0, 175.0, 99.0, 99.0) and records[1]["face"] == 0
    assert records[1]["kind"] == "detected"
    # The face model.predict classifies, and the image without one as it does.
    images = [np.zeros((64, 64), np.uint8), astronaut]
    with pytest.warns(NoFaceWarning, match="indices 0"):
        largest = predict_faces(pipe, images, faces="largest", on_no_face="whole")
    with pytest.warns(NoFaceWarning):
        expected = pipe.predict_proba(images)
    assert [(r["image"], r["face"], r["kind"]) for r in largest] == [
        (0, None, "none"), (1, 0, "detected")
    ]
    np.testing.assert_allclose([r["proba"] for r in largest], expected, rtol=1e-5)
    with pytest.warns(NoFaceWarning, match="centre-cropped"):
        (centre,) = predict_faces(pipe, images[:1], on_no_face="center")
    assert centre["kind"] == "none" and centre["label"] is not None
    # Images the cropper takes whole are face crops.
    pipe.set_params(facecropper__precropped_max_side=64)
    (crop,) = predict_faces(pipe, images[:1])
    assert crop["kind"] == "precropped" and crop["box"] == (0.0, 0.0, 64.0, 64.0)
    with pytest.raises(ValueError, match="'on_no_face' parameter of predict_faces must be"):
        predict_faces(pipe, images, on_no_face="raise")
    with pytest.raises(ValueError, match="'faces' parameter of predict_faces must be"):
        predict_faces(pipe, images, faces="first")
    with pytest.raises(ValueError, match="first step is a FaceCropper"):
        predict_faces(pipe[1:], crops)


@pytest.mark.slow
def test_mtcnn_searches_large_photos_on_a_small_copy(astronaut, monkeypatch):
    pytest.importorskip("mtcnn")
    import fersk.face

    big = np.repeat(np.repeat(astronaut, 4, axis=0), 4, axis=1)  # 2048 x 2048
    model = fersk.face._mtcnn_model()
    seen = []
    original = model.detect_faces

    def spy(images, **kw):
        seen.extend(image.shape for image in images)
        return original(images, **kw)

    monkeypatch.setattr(model, "detect_faces", spy)
    small_face = FaceCropper("mtcnn").detect([astronaut])[0][0]
    big_face = FaceCropper("mtcnn").detect([big])[0][0]
    assert seen == [(512, 512, 3), (640, 640, 3)]
    # boxes and eyes come back in the big photo's pixels
    np.testing.assert_allclose(big_face["box"], np.multiply(small_face["box"], 4), rtol=0.1)
    np.testing.assert_allclose(big_face["eyes"], np.multiply(small_face["eyes"], 4), rtol=0.05)


# --- already-cropped faces and large photos ---------------------------------


def test_precropped_max_side_takes_small_images_whole(astronaut, fer_small):
    faces = fer_small[0][:6]
    rule = FaceCropper(precropped_max_side=64)
    expected = FaceCropper(detector=None).fit_transform(faces)
    np.testing.assert_array_equal(rule.fit_transform(faces), expected)
    found = rule.detect(list(faces[:2]) + [astronaut])
    assert [f[0]["box"] for f in found[:2]] == [(0.0, 0.0, 48.0, 48.0)] * 2
    # larger images still go through the detector
    assert found[2][0]["box"] == MTCNN_BOX
    np.testing.assert_array_equal(
        rule.transform([astronaut]), FaceCropper().transform([astronaut])
    )
    with pytest.raises(ValueError, match="precropped_max_side"):
        FaceCropper(precropped_max_side=0).fit(faces)


@pytest.mark.parametrize(
    "params",
    [
        {"detector": None},  # each face its own crop: the batch is returned as is
        {"precropped_max_side": 64},
        {"detector": None, "margin": 0.1},  # the per-image path: edges repeated
        {"detector": None, "size": (40, 40)},
        {"detector": None, "color": True},
    ],
)
def test_face_sized_batches_crop_as_image_by_image(fer_small, params):
    # A batch of face crops goes a vectorised way when each image is its own
    # crop; the crops and what crop() reports equal the per-image path's
    # (a list of the same images).
    faces = fer_small[0][:8]
    cropper = FaceCropper(**{"size": (48, 48), **params}).fit(faces)
    crops, info = cropper.crop(faces)
    crops_one_by_one, info_one_by_one = cropper.crop(list(faces))
    np.testing.assert_array_equal(crops, crops_one_by_one)
    assert crops is not faces and not np.shares_memory(crops, faces)
    for key in info_one_by_one:
        np.testing.assert_array_equal(info[key], info_one_by_one[key])
    rows = cropper.set_params(image_shape=(48, 48)).fit(faces.reshape(8, -1))
    np.testing.assert_array_equal(
        rows.transform(faces.reshape(8, -1)), crops_one_by_one.reshape(8, -1)
    )
    if not params.get("color"):
        # With a channel axis of 1 too: (n, 48, 48) as every other path
        # gives (the vectorised way returned (n, 48, 48, 1), which the
        # network step then refused).
        channel = cropper.set_params(image_shape=None).fit(faces[..., None])
        np.testing.assert_array_equal(channel.transform(faces[..., None]), crops)


def test_min_face_size_in_pixels_or_as_a_fraction(astronaut):
    # the face is 99 pixels: searched for from 90 pixels it is found, from
    # 180 pixels (an int) or 0.35 of the 512-pixel side (a float) it is not
    found = FaceCropper(min_face_size=90).detect([astronaut])[0]
    assert [f["box"] for f in found] == [MTCNN_BOX]
    assert FaceCropper(min_face_size=180).detect([astronaut])[0] == []
    assert FaceCropper(min_face_size=0.35).detect([astronaut])[0] == []
    # an int is pixels: 1 is "any size" (the detector's window), 1.0 the whole side
    found = FaceCropper(min_face_size=1).detect([astronaut])[0]
    np.testing.assert_allclose(found[0]["box"], MTCNN_BOX, atol=10)  # a finer pyramid
    assert FaceCropper(min_face_size=1.0).detect([astronaut])[0] == []
    # the cascade: on a reduced copy from 90 pixels
    found = FaceCropper("skimage", min_face_size=90).detect([astronaut])[0]
    np.testing.assert_allclose(found[0]["box"], ASTRO_BOX, atol=10)
    assert FaceCropper("skimage", min_face_size=180).detect([astronaut])[0] == []
    for bad in (0, -3, 1.5):
        with pytest.raises(ValueError, match="min_face_size"):
            FaceCropper(min_face_size=bad).fit([astronaut])


def _scene_with_face(astronaut, side, top, left, rgb=False):
    """A flat grey photo of side x side pixels with the astronaut's head pasted in."""
    head = astronaut[40:190, 150:300]  # the 99-pixel face at (25, 25) of this patch
    scene = np.full((side, side, 3) if rgb else (side, side), 120, np.uint8)
    scene[top : top + 150, left : left + 150] = head if rgb else to_gray(head[None])[0]
    return scene


def test_small_face_in_a_large_photo_is_found_in_bounded_memory(astronaut):
    import tracemalloc

    scene = _scene_with_face(astronaut, 3000, 2100, 1300, rgb=True)
    cropper = FaceCropper(min_face_size=90)
    cropper.detect([astronaut])  # MTCNN is built (once) outside the measurement
    tracemalloc.start()
    try:
        crops, info = cropper.crop([scene])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # MTCNN's box of the astronaut at full resolution is (24, 32, 107, 83)
    # in the pasted head, so (2124, 1332, 107, 83) in the photo's own
    # pixels; it is found there on a copy of 0.22 times the size
    np.testing.assert_allclose(info.boxes[0], (2124, 1332, 107, 83), atol=8)
    assert crops.shape == (1, 48, 48)
    # the 27 MB photo is searched on a reduced copy and never held as a
    # float image (that alone would be 72 MB as grey, 216 MB as RGB)
    assert peak < 2 * scene.nbytes


def test_large_photo_crop_equals_the_crop_of_its_region(astronaut):
    scene = _scene_with_face(astronaut, 3000, 2100, 1300)
    box = (2125, 1325, 99, 99)
    crop = FaceCropper(detector=lambda image: [box]).transform([scene])[0]
    region = scene[2100:2250, 1300:1450]
    shifted = FaceCropper(detector=lambda image: [(25, 25, 99, 99)]).transform([region])[0]
    np.testing.assert_array_equal(crop, shifted)


def test_whole_image_policy_on_a_huge_image_stays_small():
    import tracemalloc

    rng = np.random.default_rng(0)
    tile = rng.integers(0, 256, (50, 50), dtype=np.uint8)
    huge = np.tile(tile, (60, 60))  # 3000 x 3000, no face
    FaceCropper().detect([tile])  # MTCNN is built (once) outside the measurement
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NoFaceWarning)
            crop = FaceCropper(min_face_size=0.5).transform([huge])[0]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert crop.shape == (48, 48)
    assert peak < 4 * huge.nbytes  # not the 72 MB float64 copy of the photo


def test_alignment_rotates_within_the_face_region_only(astronaut):
    # the same eyes in a small and in a large photo: the same aligned crop
    eyes = ((2160.0, 1345.0), (2170.0, 1395.0))
    box = (2125, 1325, 99, 99)
    scene = _scene_with_face(astronaut, 3000, 2100, 1300)
    region = scene[2000:2400, 1200:1600]
    big = FaceCropper(detector=lambda im: [(*box, eyes)], align=True).transform([scene])[0]
    small = FaceCropper(
        detector=lambda im: [(box[0] - 2000, box[1] - 1200, 99, 99,
                              tuple((r - 2000, c - 1200) for r, c in eyes))],
        align=True,
    ).transform([region])[0]
    np.testing.assert_array_equal(big, small)


# --- MTCNN, the default: batches of images -----------------------------------


def _spy_on_mtcnn(monkeypatch):
    """The images of each call to MTCNN's detector (a list per call)."""
    import fersk.face

    model = fersk.face._mtcnn_model()
    calls = []
    original = model.detect_faces

    def spy(images, **kw):
        calls.append([image.shape for image in images])
        return original(images, **kw)

    monkeypatch.setattr(model, "detect_faces", spy)
    return calls


def test_images_of_one_size_go_to_mtcnn_together_with_the_same_faces(
    astronaut, fer_small, monkeypatch, tmp_path
):
    from mtcnn.utils import bboxes

    faces = list(fer_small[0][:40])
    path = tmp_path / "astro.png"
    Image.fromarray(astronaut).save(path)
    X = faces[:20] + [astronaut, str(path), np.zeros((30, 30), np.uint8)] + faces[20:]
    cropper = FaceCropper(retry_padding=0)  # the calls of the first search only
    alone = [cropper.detect([x])[0] for x in X]
    calls = _spy_on_mtcnn(monkeypatch)
    together = cropper.detect(X)
    # 43 images: chunks of 11, 11, 11 and 10 (FaceCropper._run); in each,
    # one call per size: the FER faces of a chunk together, the astronaut's
    # array and file (no larger than the copy MTCNN searches) together
    assert sorted(map(len, calls)) == [1, 2, 9, 10, 10, 11]
    assert [(512, 512, 3)] * 2 in calls and [(30, 30, 3)] in calls
    # the same faces as one image at a time: boxes and eyes exactly,
    # confidences to float32 rounding
    assert sum(map(len, together)) >= 8  # faces were found
    for one, many in zip(alone, together):
        assert [(f["box"], f["eyes"]) for f in one] == [(f["box"], f["eyes"]) for f in many]
        np.testing.assert_allclose(
            [f["confidence"] for f in one], [f["confidence"] for f in many], rtol=1e-6
        )
    # crop and crop_faces go the same way
    crops, info = _quiet(cropper, X)
    np.testing.assert_array_equal(
        info.boxes[info.n_faces > 0], [f[0]["box"] for f in together if f]
    )
    np.testing.assert_array_equal(crops[20], cropper.transform([astronaut])[0])
    assert len(cropper.crop_faces(X)[1]) == sum(map(len, together))
    # mtcnn's own sort is back once fersk's calls are done
    assert bboxes.sort_by_scores.__module__ == "mtcnn.utils.bboxes"


def test_batches_are_bounded_and_errors_come_in_input_order(fer_small, monkeypatch):
    import fersk.face

    faces = list(fer_small[0][:40])
    monkeypatch.setattr(fersk.face, "_MTCNN_BATCH_PIXELS", 4 * 48 * 48)
    calls = _spy_on_mtcnn(monkeypatch)
    FaceCropper(retry_padding=0).detect(faces)  # 4 chunks of 10 images
    assert [len(c) for c in calls] == [4, 4, 2] * 4
    # the second, padded search of the misses is batched the same way
    del calls[:]
    FaceCropper().detect(faces)
    assert max(sum(s[0] * s[1] for s in c) for c in calls) <= 4 * 48 * 48 * 2.7
    # the first image without a face is named, whichever batch it is in
    black = np.zeros((48, 48), np.uint8)
    found = [i for i, f in enumerate(FaceCropper().detect(faces)) if f]
    X = [faces[found[0]], black, faces[found[1]], np.zeros((80, 80), np.uint8)]
    with pytest.raises(ValueError, match=r"No face found in X\[1\]"):
        FaceCropper(on_no_face="raise").transform(X)


# --- MTCNN's image steps in NumPy ----------------------------------------------


def test_tf_image_ops_equal_tensorflow_bit_for_bit():
    """fersk._tf_image_ops gives TensorFlow's float32 values exactly: area
    resizes down and up, odd sizes, float64 input as mtcnn hands it, and
    crops inside, across and outside the image."""
    tf = pytest.importorskip("tensorflow")
    from fersk._tf_image_ops import AreaPyramid, crop_and_resize, resize_area

    rng = np.random.default_rng(0)
    for n, h, w in ((1, 480, 640), (2, 97, 131), (3, 13, 700)):
        images = (rng.integers(0, 256, (n, h, w, 3)) - 127.5) / 128
        pyramid = AreaPyramid(images)
        shapes = [(int(h * s), int(w * s)) for s in 0.6 * 0.709 ** np.arange(4)]
        shapes += [(1, 1), (h, w), (2 * h + 1, w // 3 + 1)]
        for shape in shapes:
            if min(shape) < 1:
                continue
            expected = tf.image.resize(images, shape, method="area").numpy()
            np.testing.assert_array_equal(pyramid.resize(shape), expected)
        np.testing.assert_array_equal(
            resize_area(images, shapes[0]),
            tf.image.resize(images, shapes[0], method="area").numpy(),
        )
        boxes = rng.uniform(-0.3, 1.3, (25, 4))
        indices = rng.integers(0, n, 25)
        for size in ((24, 24), (48, 48)):
            expected = tf.image.crop_and_resize(images, boxes, indices, size).numpy()
            np.testing.assert_array_equal(crop_and_resize(images, boxes, indices, size), expected)


def test_mtcnn_image_steps_in_numpy_give_the_same_faces(astronaut, fer_small):
    """mtcnn with its pyramid and patches made in NumPy finds exactly the
    faces (boxes, confidences, landmarks) it finds with TensorFlow's."""
    pytest.importorskip("mtcnn")
    import mtcnn.stages.stage_pnet as stage_pnet
    import mtcnn.utils.images as images_module

    import fersk.face
    from fersk.face import _mtcnn_calls

    assert _mtcnn_calls._mtcnn_batches_are_exact()
    model = fersk.face._mtcnn_model()
    frame = np.asarray(Image.fromarray(astronaut).resize((640, 480)))
    batches = [[astronaut], [frame, frame[:, ::-1].copy()], list(fer_small[0][:6])]
    n_faces = 0
    for images in batches:
        images = [np.stack([i] * 3, axis=-1) if i.ndim == 2 else i for i in images]
        with _mtcnn_calls._stable_mtcnn_sort():
            expected = model.detect_faces(images, min_face_size=20)
        with _mtcnn_calls._stable_mtcnn_sort(), _mtcnn_calls._numpy_mtcnn_image_steps():
            assert stage_pnet.apply_scales is _mtcnn_calls._numpy_apply_scales
            found = model.detect_faces(images, min_face_size=20)
        assert found == expected
        n_faces += sum(map(len, found))
    assert n_faces >= 3
    # mtcnn's own steps are back once fersk's calls are done
    assert stage_pnet.apply_scales.__module__ == "mtcnn.utils.images"
    assert images_module.normalize_images.__module__ == "mtcnn.utils.images"


def test_mtcnn_pyramid_starts_where_the_smallest_face_needs(monkeypatch):
    """Up to 20 pixels the pyramid is mtcnn's; for larger smallest faces it is
    the tail of the 20-pixel pyramid from one level before the first where
    that face fits PNet's 12-pixel cell (before, every photo was scanned
    from 20-pixel faces up and the smaller faces dropped after)."""
    pytest.importorskip("mtcnn")
    from mtcnn.utils.images import build_scale_pyramid

    from fersk._mtcnn_pyramid import _pyramid_scales

    for w, h in [(640, 480), (450, 600), (48, 48), (2000, 333)]:
        for face in (12, 15.3, 20):
            np.testing.assert_array_equal(
                _pyramid_scales(w, h, face, 0.709), build_scale_pyramid(w, h, face, 0.709))
    whole = build_scale_pyramid(600, 450, 20, 0.709)
    tail = _pyramid_scales(600, 450, 45, 0.709)
    np.testing.assert_array_equal(tail, whole[len(whole) - len(tail):])
    assert tail[0] > 12 / 45 >= tail[1]
    assert (tail**2).sum() < (whole**2).sum() / 3  # PNet's pixels
    monkeypatch.setattr("fersk._mtcnn_pyramid._PYRAMID_EXTRA_LEVELS", 0)
    assert _pyramid_scales(600, 450, 45, 0.709)[0] <= 12 / 45


EXPW_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "expw-dev"


def _iou(a, b):
    (r1, c1, h1, w1), (r2, c2, h2, w2) = a, b
    dh = max(0.0, min(r1 + h1, r2 + h2) - max(r1, r2))
    dw = max(0.0, min(c1 + w1, c2 + w2) - max(c1, c2))
    return dh * dw / (h1 * w1 + h2 * w2 - dh * dw)


@pytest.mark.parametrize("detector", [  # the Keras detector's row (11 s) with -m extended
    pytest.param("mtcnn", marks=pytest.mark.extended), "mtcnn-onnx"])
def test_shorter_pyramid_finds_the_labelled_faces_of_the_whole_one(detector, monkeypatch, tmp_path):
    """On real web photos (ExpW development photos, labelled boxes) the
    cropper finds every labelled face with the shorter pyramid that it finds
    with the whole one (IoU >= 0.4)."""
    import csv

    pytest.importorskip("mtcnn")
    if not (EXPW_ROOT / "faces.csv").is_file():
        pytest.skip(f"ExpW development photos not found at {EXPW_ROOT}")
    if detector == "mtcnn-onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("tf2onnx")
        from fersk.onnx import export_mtcnn

        monkeypatch.setenv("FERSK_CACHE", str(tmp_path))
        export_mtcnn()
    from fersk import _mtcnn_pyramid

    labelled = {}
    with open(EXPW_ROOT / "faces.csv", newline="") as f:
        for row in csv.DictReader(f):
            labelled.setdefault(row["file"], []).append(
                tuple(float(row[k]) for k in ("y", "x", "h", "w")))
    names = sorted(labelled)[:60]
    photos = [EXPW_ROOT / "images" / name for name in names]

    def hits(found):
        return [any(_iou(box, f["box"]) >= 0.4 for f in faces)
                for name, faces in zip(names, found) for box in labelled[name]]

    cropper = FaceCropper(detector)
    short = hits(cropper.detect(photos))
    monkeypatch.setattr(_mtcnn_pyramid, "_PYRAMID_EXTRA_LEVELS", 10**6)
    whole = hits(cropper.detect(photos))
    assert sum(whole) >= 40
    assert all(s for s, w in zip(short, whole) if w)


def test_mtcnn_networks_as_graphs_give_the_same_faces(astronaut, fer_small):
    """mtcnn's networks run as TensorFlow graphs find exactly the faces
    (boxes, confidences, landmarks) they find run eagerly, with one trace
    per network for every pyramid level and number of patches, and
    mtcnn's own networks are back after fersk's calls."""
    pytest.importorskip("mtcnn")
    import fersk.face
    from fersk.face import _mtcnn_calls

    model = fersk.face._mtcnn_model()
    networks = [stage._model for stage in model.stages]
    frame = np.asarray(Image.fromarray(astronaut).resize((640, 480)))
    batches = [[astronaut], [frame, frame[:, ::-1].copy()], list(fer_small[0][:6])]
    n_faces = 0
    for images in batches:
        images = [np.stack([i] * 3, axis=-1) if i.ndim == 2 else i for i in images]
        with _mtcnn_calls._stable_mtcnn_sort(), _mtcnn_calls._numpy_mtcnn_image_steps():
            expected = model.detect_faces(images, min_face_size=20)
            with _mtcnn_calls._graph_mtcnn_networks(model):
                assert not any(s._model is n for s, n in zip(model.stages, networks))
                found = model.detect_faces(images, min_face_size=20)
        assert found == expected
        n_faces += sum(map(len, found))
    assert n_faces >= 3
    for network in networks:
        assert _mtcnn_calls._MTCNN_GRAPHS[id(network)][2].experimental_get_tracing_count() == 1
    # fersk's calls leave mtcnn's Keras networks in place
    FaceCropper().detect([frame])
    assert all(s._model is n for s, n in zip(model.stages, networks))


@pytest.mark.parametrize("factor", [2, 3, 5, 17])
def test_block_mean_is_the_rounded_mean_of_each_block(factor):
    """The reduced copy of large photos: each pixel the rounded (half to
    even) mean of its block, grey or RGB, ragged edges left out."""
    from fersk.face._geometry import _block_mean

    rng = np.random.default_rng(factor)
    for shape in [(7 * factor + 3, 5 * factor + 1, 3), (4 * factor, 9 * factor)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        h, w = shape[0] // factor, shape[1] // factor
        blocks = image[: h * factor, : w * factor].reshape(h, factor, w, factor, *shape[2:])
        expected = np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)
        np.testing.assert_array_equal(_block_mean(image, factor), expected)


@pytest.mark.parametrize("detector", ["mtcnn", "mtcnn-onnx"])
def test_a_grey_photo_gives_one_answer_grey_or_as_rgb(detector, astro_gray, onnx_cache):
    """MTCNN stretched a grey photo's contrast but not the same picture's as
    RGB: a low-contrast grey astronaut was found as (h, w) and missed as
    (h, w, 3); grey JPEGs and their RGB copies got other boxes (27 of 30
    muxspace photos)."""
    pytest.importorskip("mtcnn")
    if detector == "mtcnn-onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("tf2onnx")
        from fersk.onnx import export_mtcnn

        export_mtcnn()
    dim = np.rint(100 + astro_gray.astype(float) * 30 / 255).astype(np.uint8)
    for grey in (dim, astro_gray):
        rgb = np.stack([grey] * 3, axis=-1)
        as_grey, as_rgb = FaceCropper(detector=detector).detect([grey, rgb])
        assert len(as_grey) == len(as_rgb) == 1
        assert as_grey[0]["box"] == as_rgb[0]["box"]


def test_predict_faces_of_a_pipeline_on_flattened_rows():
    """FaceCropper gives rows for rows, and a scikit-learn classifier after it
    takes them: predict_faces passed it images (a ValueError where
    model.predict worked)."""
    from sklearn.linear_model import LogisticRegression

    from fersk import predict_faces

    X = np.random.default_rng(0).integers(0, 256, (20, 256)).astype(np.uint8)
    y = np.arange(20) % 2
    model = make_pipeline(FaceCropper(detector=None, size=8), LogisticRegression()).fit(X, y)
    records = predict_faces(model, X[:3])
    assert [r["image"] for r in records] == [0, 1, 2]
    np.testing.assert_array_equal([r["label"] for r in records], model.predict(X[:3]))
    np.testing.assert_allclose(np.stack([r["proba"] for r in records]), model.predict_proba(X[:3]))



def test_predict_faces_labels_are_model_predicts_when_it_is_not_the_probabilities_argmax():
    """A classifier whose predict is not the argmax of its probabilities
    (SVC's Platt-scaled probabilities): predict_faces (and so fersk predict
    and serve) labelled faces by the argmax, a third of them otherwise than
    model.predict, which the docstring promises."""
    from sklearn.svm import SVC

    from fersk import predict_faces

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (90, 64)).astype(np.uint8)
    y = np.arange(90) % 3
    model = make_pipeline(FaceCropper(detector=None, size=8),
                          SVC(probability=True, random_state=0)).fit(X[:60], y[:60])
    proba_argmax = model.classes_[model.predict_proba(X[60:]).argmax(1)]
    assert (proba_argmax != model.predict(X[60:])).any()  # the case at hand
    records = predict_faces(model, X[60:])
    np.testing.assert_array_equal([r["label"] for r in records], model.predict(X[60:]))
    np.testing.assert_allclose(np.stack([r["proba"] for r in records]),
                               model.predict_proba(X[60:]))

def test_rows_after_fit_are_images_of_the_fitted_shape():
    """Rows of 32x72 images (2,304 values) given after a fit on those
    images were cut as 48x48 squares: scrambled pixels, no error; rows of
    48x48x3 images were refused as not square."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (3, 32, 72)).astype(np.uint8)
    X[:, :, :36] = 0
    cropper = FaceCropper(detector=None, size=(32, 72)).fit(X)
    np.testing.assert_array_equal(cropper.transform(X.reshape(3, -1)), cropper.transform(X).reshape(3, -1))
    rgb = rng.integers(0, 256, (3, 48, 48, 3)).astype(np.uint8)
    cropper = FaceCropper(detector=None, size=(24, 24), color=True).fit(rgb)
    np.testing.assert_array_equal(cropper.transform(rgb.reshape(3, -1)), cropper.transform(rgb).reshape(3, -1))


def test_the_first_error_is_the_first_image_s(tmp_path):
    """An image waiting for MTCNN's batch had its error (no face) said after
    a later file's (cannot read): errors come in input order."""
    pytest.importorskip("mtcnn")
    blank = np.zeros((64, 64), np.uint8)
    with pytest.raises(ValueError, match=r"No face found in X\[0\]"):
        FaceCropper(on_no_face="raise").transform([blank, str(tmp_path / "missing.jpg")] + [blank] * 6)


def test_no_face_warning_points_at_the_users_line():
    """A fixed stacklevel pointed into scikit-learn's set_output wrapper
    (transform, fit_transform) or past the caller (crop)."""
    from sklearn.linear_model import LogisticRegression

    from fersk import predict_faces

    blank = [np.zeros((64, 64), np.uint8)] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoFaceWarning)
        cropper = FaceCropper("skimage", size=8).fit(blank)
        rows = np.array([[0] * 4096, [255] * 4096], np.uint8)  # 64x64 images
        model = make_pipeline(FaceCropper("skimage", size=8), LogisticRegression()).fit(rows, [0, 1])
    calls = [lambda: cropper.transform(blank), lambda: cropper.fit_transform(blank),
             lambda: cropper.crop(blank), lambda: predict_faces(model, rows, on_no_face="whole")]
    for call in calls:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        said = [w for w in caught if issubclass(w.category, NoFaceWarning)]
        assert len(said) == 1 and said[0].filename == __file__, said[0].filename
