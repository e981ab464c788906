"""Nothing silently wrong at the input (issue #20): the pixel rule holds for
every network step on its own, a single image is never read as a batch,
uint16 holding 8-bit values warns, an absurd crop size is refused at fit,
and the Keras floor admits no release with a known loading flaw."""

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from fersk import FaceCropper, pretrained
from fersk._image_files import array_to_uint8

BUNDLED = pretrained.available()


@pytest.fixture(scope="module")
def faces():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (4, 48, 48), dtype=np.uint8)


@pytest.mark.parametrize("name", [  # wild_ensemble (40 passes a face) with -m extended
    n if n != "wild_ensemble" else pytest.param(n, marks=pytest.mark.extended) for n in BUNDLED])
def test_network_step_alone_follows_the_pixel_rule(name, faces):
    """faces / 255 to the network step alone: a clear error (never another
    answer); uint16 of the same faces: the uint8 answer."""
    model = pretrained.load(name)
    step = model[-1]
    expected = step.predict_proba(faces)
    with pytest.raises(ValueError, match=r"fitted on uint8 pixel values .* \[0, 1\]"):
        step.predict_proba(faces / 255)
    np.testing.assert_array_equal(step.predict_proba(faces.astype(np.uint16) * 257), expected)
    np.testing.assert_array_equal(step.predict_proba(faces.astype(np.float32)), expected)
    with pytest.raises(ValueError, match="not on that scale"):
        step.predict_proba(faces * 300.0)


def test_bundled_cnn_records_its_input_dtype():
    assert pretrained.load("fer2013_cnn")[-1].input_dtype_ == "|u1"


@pytest.mark.parametrize(
    "shape, n_out",
    [((40, 15, 3), None), ((256, 256), None), ((48, 48), None), ((48, 48, 3), None),
     ((48, 48, 1), None), ((1, 48, 48), 1)],
)
def test_single_image_is_never_a_batch(shape, n_out):
    """Through a bundled pipeline: an error naming the fix, or exactly one
    prediction; never one prediction per row."""
    model = pretrained.load("fer2013_cnn").set_params(facecropper__detector=None)
    image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    if n_out is None:
        with pytest.raises(ValueError, match=re.escape("[image] or image[np.newaxis]")):
            model.predict(image)
        with pytest.raises(ValueError, match=re.escape("[image] or image[np.newaxis]")):
            model[-1].predict(image)  # the network step alone too
    else:
        assert model.predict(image).shape == (n_out,)
    if n_out is None and shape[-1] != 1:
        assert model.predict([image]).shape == (1,)  # wrapped: one prediction


def test_declared_rows_are_still_rows():
    X = np.random.default_rng(2).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    rows = X.reshape(3, -1)
    batch = FaceCropper(detector=None).fit_transform(X)
    np.testing.assert_array_equal(
        FaceCropper(detector=None, image_shape=(48, 48)).transform(rows), batch.reshape(3, -1)
    )
    np.testing.assert_array_equal(
        FaceCropper(detector=None).fit(rows).transform(rows), batch.reshape(3, -1)
    )
    # narrow grey images, fitted knowingly, stay a batch
    narrow = np.zeros((40, 15, 3), np.uint8)
    cropper = FaceCropper(detector=None, size=(4, 4)).fit(narrow[..., np.newaxis])
    assert cropper.transform(narrow[..., np.newaxis]).shape == (40, 4, 4)


def test_uint16_with_8bit_values_warns():
    X = np.random.default_rng(3).integers(0, 256, (2, 48, 48)).astype(np.uint16)
    with pytest.warns(UserWarning, match=r"at most 255: 8-bit .*astype\(np.uint8\)"):
        FaceCropper(detector=None).fit_transform(X)
    with pytest.warns(UserWarning, match="at most 255"):
        FaceCropper(detector=None).fit_transform([X[0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        array_to_uint8(X * 257)  # true 16-bit values: no warning
        array_to_uint8(np.zeros((2, 2), np.uint16))  # tiny: no warning


def test_bool_image_reads_alike_in_a_list_and_in_a_batch():
    """A mask is 0/255 pixels by the pixel rule, whether it comes in a
    batch array or in a list of images (before, a listed one was 0/1)."""
    mask = np.zeros((48, 48), bool)
    mask[8:40, 8:40] = True
    cropper = FaceCropper(detector=None).fit(mask[np.newaxis])
    batch = cropper.transform(mask[np.newaxis])
    assert batch.max() == 255
    np.testing.assert_array_equal(cropper.transform([mask]), batch)


@pytest.mark.parametrize("kind", ["palette", "exif_rotated", "cmyk", "16bit"])
def test_pil_image_in_a_list_reads_as_its_file(tmp_path, kind):
    # NumPy alone read a palette image's indices, CMYK as RGB, 16 bits as
    # int32, and no EXIF orientation: another face than the file's.
    from PIL import Image

    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:16], rgb[16:] = 250, 30
    im = Image.fromarray(rgb)
    path = tmp_path / ("face.jpg" if kind in ("exif_rotated", "cmyk") else "face.png")
    if kind == "palette":
        im.convert("P", palette=Image.ADAPTIVE, colors=4).save(path)
    elif kind == "exif_rotated":
        exif = Image.Exif()
        exif[0x0112] = 3  # stored upside down
        im.save(path, exif=exif, quality=100)
    elif kind == "cmyk":
        im.convert("CMYK").save(path, quality=100)
    else:
        Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(path)
    cropper = FaceCropper(detector=None, size=(8, 8))
    from_file = cropper.fit_transform([str(path)])
    with Image.open(path) as opened:
        from_pil = cropper.fit_transform([opened])
    np.testing.assert_array_equal(from_pil, from_file)
    assert from_file[0, :4].mean() != from_file[0, 4:].mean()


def test_wide_image_file_with_8bit_values_warns(tmp_path):
    # A 32-bit TIFF of 8-bit values (Pillow mode "I") is read as 16-bit
    # pixels, nearly black: said, as for a uint16 array.
    from PIL import Image

    img = np.full((16, 16), 200, np.int32)
    Image.fromarray(img).save(tmp_path / "i32.tif")
    with pytest.warns(UserWarning, match="values are all at most 255"):
        FaceCropper(detector=None, size=(8, 8)).fit_transform([str(tmp_path / "i32.tif")])
    Image.fromarray((img * 257).astype(np.uint16)).save(tmp_path / "i16.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # true 16-bit values: no word
        crop = FaceCropper(detector=None, size=(8, 8)).fit_transform([str(tmp_path / "i16.png")])
    assert crop.mean() == 200


def test_each_16bit_file_of_8bit_values_is_named_in_its_warning(tmp_path):
    """Three nearly black 16-bit files in one run: three warnings, each
    naming its file.  The warning's words were the same for every file, so
    Python's default filter showed the first alone and the others were
    predicted near-black without a word (and no file was named)."""
    from PIL import Image

    paths = []
    for k in range(3):
        paths.append(str(tmp_path / f"dark{k}.png"))
        Image.fromarray(np.full((16, 16), 100 + k, np.uint16)).save(paths[-1])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")  # Python's own: one per message and place
        for path in paths:
            FaceCropper(detector=None, size=(8, 8)).fit_transform([path])
    words = [str(w.message) for w in seen if "at most 255" in str(w.message)]
    assert len(words) == 3, words
    assert all(any(p in w for w in words) for p in paths), words


def test_big_endian_uint16_is_read_as_uint16():
    """A '>u2' array is uint16 in the other byte order: the same pixels
    and the same warning as native uint16, never the rule of other
    integers (values 0..255 as they are, or an error above 255)."""
    rng = np.random.default_rng(0)
    wide = rng.integers(0, 65536, (2, 16, 16)).astype(np.uint16)
    np.testing.assert_array_equal(array_to_uint8(wide.astype(">u2")), array_to_uint8(wide))
    narrow = (wide % 256).astype(">u2")
    with pytest.warns(UserWarning, match="at most 255"):
        assert array_to_uint8(narrow).max() == 0


def test_uint16_with_8bit_values_warns_at_the_network_step(faces):
    step = pretrained.load("fer2013_cnn")[-1]
    with pytest.warns(UserWarning, match="at most 255"):
        step.predict(faces.astype(np.uint16))


@pytest.mark.parametrize("size", [(100000, 100000), 5000, (48, 4097)])
def test_size_too_large_is_refused_at_fit(size):
    with pytest.raises(ValueError, match=r"'size' parameter .* ints in \[1, 4096\]"):
        FaceCropper(detector=None, size=size).fit(np.zeros((1, 48, 48), np.uint8))
    FaceCropper(detector=None, size=4096).fit(np.zeros((1, 48, 48), np.uint8))


def test_keras_floor():
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"keras>=3.13.2",' in text


def test_bundled_pipelines_read_fer_rows_and_refuse_one_square_image():
    # The Kaggle CSV's rows (n, 2304) are FER-2013's 48x48 faces; one grey
    # photo (256, 256) is not 256 rows.
    from fersk import pretrained

    model = pretrained.load("fer2013_cnn")
    faces = np.random.RandomState(0).randint(0, 256, (4, 48, 48)).astype(np.uint8)
    np.testing.assert_array_equal(model.predict_proba(faces.reshape(4, -1)),
                                  model.predict_proba(faces))
    with pytest.raises(ValueError, match=r"wrapped: \[image\]"):
        model.predict(np.zeros((256, 256), np.uint8))


@pytest.mark.parametrize("item, said", [
    (b"faces/a.jpg", r"X\[0\] is bytes \(b'faces/a.jpg'\): a file path is a str or a pathlib.Path"),
    (None, r"X\[0\] is None, neither an image \(an array\) nor a file path"),
    (object(), r"X\[0\] is object, neither an image"),
])
def test_an_item_neither_image_nor_path_is_named(item, said):
    """A bytes path was "file paths; ... put FaceCropper, which reads files,
    in front of it", said by FaceCropper itself; None was "a 1-D input:
    reshape your data"."""
    from fersk import CNNClassifier, FaceCropper

    with pytest.raises(ValueError, match=said):
        FaceCropper(size=48).fit_transform([item])
    with pytest.raises(ValueError, match=said):
        CNNClassifier("mtcnn_cnn").fit([item], [0])
