"""Faces in the wild: loaders with a source per face, the padded second
search of MTCNN, and the domain degradations.

Loader tests build small folders of real files (links into ``../shared``)
so that they run in seconds; they skip when the shared data is absent.
"""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from skimage import data as skdata

from fersk import FaceCropper
from fersk.datasets import (
    bundled_cropper,
    load_expw,
    load_in_the_wild,
    load_muxspace,
    load_sfew,
)
from fersk.degrade import DEGRADATIONS, degrade_faces

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not (SHARED / "sfew-train").is_dir(),
    reason=f"in-the-wild development data not found at {SHARED}",
)


def _link_subset(src, dst, per_class, classes=None):
    for cls in sorted(os.listdir(src)):
        if classes is not None and cls not in classes:
            continue
        (dst / cls).mkdir(parents=True)
        for f in sorted(os.listdir(src / cls))[:per_class]:
            os.symlink(src / cls / f, dst / cls / f)


def test_bundled_cropper_is_the_default_pipelines_first_step():
    from fersk import pretrained

    cropper = bundled_cropper()
    loaded = pretrained.load(backend="keras")[0]
    assert cropper.get_params() == loaded.get_params()
    # As loaded (backend "auto") MTCNN may run on ONNX Runtime: the same boxes
    # (tests/test_onnx.py), every other setting the same.
    auto = pretrained.load()[0].get_params()
    assert auto.pop("detector") in ("mtcnn", "mtcnn-onnx")
    assert {k: v for k, v in cropper.get_params().items() if k != "detector"} == auto


def test_retry_padding_finds_a_face_that_fills_the_frame():
    # The astronaut's face cut tight: MTCNN misses a face with no room around it.
    face = skdata.astronaut()[70:165, 180:270]
    crops, info = FaceCropper(retry_padding=0).crop([face])
    assert info.n_faces[0] == 0
    crops, info = FaceCropper().crop([face])
    assert info.n_faces[0] == 1
    r, c, h, w = info.boxes[0]
    # The box is in the frame's own pixels (it may reach past its edges).
    assert -0.3 * face.shape[0] < r < face.shape[0] / 2 and h > face.shape[0] / 2


def test_retry_padding_changes_nothing_when_a_face_is_found():
    photo = skdata.astronaut()
    a = FaceCropper(retry_padding=0).crop([photo])
    b = FaceCropper().crop([photo])
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1].boxes, b[1].boxes)


def test_retry_padding_is_validated():
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="retry_padding"):
        FaceCropper(retry_padding=-1).fit([skdata.astronaut()])


@needs_shared
def test_load_sfew_sources_labels_and_no_face_flag(tmp_path):
    root = tmp_path / "sfew"
    _link_subset(SHARED / "sfew-train", root, 2)
    sfew = load_sfew(root, cache_dir=tmp_path / "cache")
    assert sfew.images.shape == (14, 48, 48) and sfew.images.dtype == np.uint8
    assert set(sfew.source) == {"sfew"}
    names = list(sfew.target_names)
    for f, t in zip(sfew.filenames, sfew.target):
        assert Path(f).parent.name == names[t]
    assert sfew.face_found.dtype == bool and sfew.face_found.mean() > 0.5
    # Frames without a face are kept (cropped whole), never dropped.
    assert len(sfew.target) == len(sfew.face_found) == 14
    # Cached: the same arrays, read back.
    again = load_sfew(root, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again.images, sfew.images)
    assert len(list((tmp_path / "cache").glob("sfew-*.npz"))) == 1


def test_wild_cache_reads_a_photo_rewritten_within_the_same_second(tmp_path):
    """Same name, same size, the same whole second: the crop is made anew
    (before, the key held whole seconds and gave the older photo's crop)."""
    from PIL import Image

    photo = tmp_path / "sfew" / "happy" / "frame.bmp"  # BMP: same size for any content
    photo.parent.mkdir(parents=True)
    face = skdata.astronaut()[30:230, 120:320]
    cropper = FaceCropper(detector=None)
    second = 1_700_000_000 * 10**9
    Image.fromarray(face).save(photo)
    os.utime(photo, ns=(second + 100, second + 100))
    first = load_sfew(tmp_path / "sfew", cropper=cropper, cache_dir=tmp_path / "cache")
    size = photo.stat().st_size
    Image.fromarray(np.ascontiguousarray(face[::-1])).save(photo)  # upside down
    os.utime(photo, ns=(second + 200, second + 200))
    assert photo.stat().st_size == size
    again = load_sfew(tmp_path / "sfew", cropper=cropper, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again.images, first.images[:, ::-1])


def test_wild_cache_reads_a_photo_rewritten_with_its_old_time_put_back(tmp_path):
    """Same name, same size and the very same modification time put back
    (``cp -p``, ``touch -r``): the change time in the key tells it apart."""
    from PIL import Image

    photo = tmp_path / "sfew" / "happy" / "frame.bmp"
    photo.parent.mkdir(parents=True)
    face = skdata.astronaut()[30:230, 120:320]
    cropper = FaceCropper(detector=None)
    Image.fromarray(face).save(photo)
    first = load_sfew(tmp_path / "sfew", cropper=cropper, cache_dir=tmp_path / "cache")
    st = photo.stat()
    Image.fromarray(np.ascontiguousarray(face[::-1])).save(photo)
    os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (photo.stat().st_size, photo.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    again = load_sfew(tmp_path / "sfew", cropper=cropper, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again.images, first.images[:, ::-1])


def test_wild_cache_keeps_an_entry_per_crop_setting(tmp_path, capsys):
    """A load with another cropper replaced the first cropper's entry (one
    entry a folder), so switching between two croppers cropped every photo
    again each time; the docs say a changed crop setting leaves the older
    file behind.  A changed file still replaces its setting's entry."""
    from PIL import Image

    photo = tmp_path / "sfew" / "happy" / "frame.png"
    photo.parent.mkdir(parents=True)
    Image.fromarray(skdata.astronaut()[30:230, 120:320]).save(photo)
    cache = tmp_path / "cache"
    small, large = FaceCropper(detector=None, size=(32, 32)), FaceCropper(detector=None)
    load_sfew(tmp_path / "sfew", cropper=small, cache_dir=cache)
    load_sfew(tmp_path / "sfew", cropper=large, cache_dir=cache)
    assert len(list(cache.glob("sfew-*.npz"))) == 2
    capsys.readouterr()
    again = load_sfew(tmp_path / "sfew", cropper=small, cache_dir=cache, verbose=1)
    assert "read from cache" in "".join(capsys.readouterr()) and again.images.shape[1:] == (32, 32)
    Image.fromarray(skdata.camera()[:200, :200]).save(photo)
    os.utime(photo, ns=(1_700_000_000 * 10**9, 1_700_000_000 * 10**9))
    load_sfew(tmp_path / "sfew", cropper=small, cache_dir=cache)
    assert len(list(cache.glob("sfew-*.npz"))) == 2


def test_wild_loader_reads_every_image_type_and_names_what_it_skips(tmp_path):
    """A .webp frame is read like a .jpg (before, only jpg/png/bmp were, and
    the rest vanished without a word); what is not an image is named."""
    from PIL import Image

    folder = tmp_path / "sfew" / "happy"
    folder.mkdir(parents=True)
    face = skdata.astronaut()[30:230, 120:320]
    Image.fromarray(face).save(folder / "a.webp")
    Image.fromarray(face).save(folder / "b.jpg")
    (folder / "notes.txt").write_text("not a frame")
    (folder / "more").mkdir()
    # the folder named as one: "not image files" alone read as if it were a file
    with pytest.warns(UserWarning, match=r"2 entries .*folders inside a class folder are not "
                                         r"walked\) and were not read: happy/more/, happy/notes.txt"):
        sfew = load_sfew(tmp_path / "sfew", cropper=FaceCropper(detector=None), cache=False)
    assert [Path(f).name for f in sfew.filenames] == ["a.webp", "b.jpg"]


@pytest.mark.skipif(os.name == "nt", reason="file names are Unicode on Windows")
def test_wild_loader_reads_a_file_name_that_is_not_utf8(tmp_path):
    """A Latin-1 name (b"caf\\xe9.png", surrogate-escaped by Python) made the
    cache key a UnicodeEncodeError, even with cache=False."""
    from PIL import Image

    folder = tmp_path / "sfew" / "happy"
    folder.mkdir(parents=True)
    face = skdata.astronaut()[30:230, 120:320]
    Image.fromarray(face).save(folder / "a.png")
    try:
        Image.fromarray(face).save(os.fsencode(folder) + b"/caf\xe9.png")
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    cropper = FaceCropper(detector=None)
    for cache in (False, True, True):
        sfew = load_sfew(tmp_path / "sfew", cropper=cropper, cache=cache,
                         cache_dir=tmp_path / "cache")
        assert [os.fsencode(Path(f).name) for f in sfew.filenames] == [b"a.png", b"caf\xe9.png"]
        np.testing.assert_array_equal(sfew.images[0], sfew.images[1])


@needs_shared
def test_load_sfew_crops_as_the_bundled_pipeline_does(tmp_path):
    root = tmp_path / "sfew"
    _link_subset(SHARED / "sfew-train", root, 1, classes=["happy", "sad"])
    sfew = load_sfew(root, cache=False)
    expected = bundled_cropper().fit_transform(list(sfew.filenames))
    np.testing.assert_array_equal(sfew.images, expected)


def test_wild_loaders_leave_out_hidden_folders_as_the_others_do(tmp_path):
    """__MACOSX (a zip made on a Mac) was an unknown class folder to
    load_sfew and load_muxspace; load_fer2013 and load_image_folder leave
    out names starting with "." or "__"."""
    from PIL import Image

    face = skdata.astronaut()[30:230, 120:320]
    for root, cls in ((tmp_path / "sfew", "happy"), (tmp_path / "mux", "happiness")):
        (root / cls).mkdir(parents=True)
        Image.fromarray(face).save(root / cls / "a.png")
        (root / "__MACOSX" / cls).mkdir(parents=True)
        (root / "__MACOSX" / cls / "._a.png").write_bytes(b"resource fork")
        (root / cls / "__thumb.png").write_bytes(b"not a frame")
    cropper = FaceCropper(detector=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped to name either
        sfew = load_sfew(tmp_path / "sfew", cropper=cropper, cache=False)
        web = load_muxspace(tmp_path / "mux", cropper=cropper, cache=False)
    assert [Path(f).name for f in sfew.filenames] == ["a.png"] and sfew.target.tolist() == [3]
    assert [Path(f).name for f in web.filenames] == ["a.png"] and web.target.tolist() == [3]


def test_load_sfew_refuses_unknown_class_folders(tmp_path):
    (tmp_path / "joy").mkdir()
    with pytest.raises(ValueError, match="unknown class folder"):
        load_sfew(tmp_path, cache=False)



@pytest.mark.parametrize("loader, cls", [(load_sfew, "happy"), (load_muxspace, "happiness")])
def test_two_folders_of_one_class_in_another_case_are_an_error(tmp_path, loader, cls):
    """``Happy/`` beside ``happy/`` (two copies unzipped over each other on a
    case-sensitive disk) were merged into one class, each image once or
    twice, where load_fer2013 refuses them: both now name the folders."""
    from PIL import Image

    for name in (cls.capitalize(), cls):
        (tmp_path / name).mkdir()
        Image.fromarray(skdata.astronaut()[30:230, 120:320]).save(tmp_path / name / "a.png")
    with pytest.raises(ValueError, match=f"two folders for class '{cls}'"):
        loader(tmp_path, cropper=FaceCropper(detector=None), cache=False)


@needs_shared
def test_load_muxspace_excludes_contempt_explicitly(tmp_path):
    root = tmp_path / "mux"
    _link_subset(SHARED / "muxspace-faces", root, 2,
                 classes=["contempt", "happiness", "fear"])
    web = load_muxspace(root, cache=False)
    assert len(web.target) == 4 and set(web.target) == {2, 3}
    assert len(web.excluded) == 2 and all("contempt" in why for _, why in web.excluded)
    with pytest.raises(ValueError, match="contempt"):
        load_muxspace(root, contempt="raise", cache=False)
    capped = load_muxspace(root, max_per_class=1, cache=False)
    assert sorted(capped.target) == [2, 3]
    assert sum("max_per_class" in why for _, why in capped.excluded) == 2
    assert len(capped.target) + len(capped.excluded) == 6


@needs_shared
def test_load_muxspace_caps_keep_their_own_cache_entries(tmp_path, capsys):
    # A capped load and a full one used to share one cache name, so each
    # replaced the other's entry and every switch cropped all photos again.
    root = tmp_path / "mux"
    _link_subset(SHARED / "muxspace-faces", root, 2, classes=["happiness", "fear"])
    cache = tmp_path / "cache"
    full = load_muxspace(root, cache_dir=cache)
    capped = load_muxspace(root, max_per_class=1, cache_dir=cache)
    names = sorted(p.name for p in cache.glob("muxspace-*.npz"))
    assert len(names) == 2 and any("-m1-s0-" in n for n in names)
    capsys.readouterr()
    again = load_muxspace(root, cache_dir=cache, verbose=1)
    assert "read from cache" in "".join(capsys.readouterr())
    np.testing.assert_array_equal(again.images, full.images)
    assert len(capped.target) == 2 and len(full.target) == 4
    assert sorted(p.name for p in cache.glob("muxspace-*.npz")) == names


@needs_shared
def test_load_expw_one_face_per_labelled_box(tmp_path):
    import csv

    root = tmp_path / "expw"
    (root / "images").mkdir(parents=True)
    with open(SHARED / "expw-dev" / "faces.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    two = [r for r in rows if sum(s["file"] == r["file"] for s in rows) == 2][:2]
    rows = rows[:4] + two
    with open(root / "faces.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for r in {r["file"] for r in rows}:
        os.symlink(SHARED / "expw-dev" / "images" / r, root / "images" / r)
    expw = load_expw(root, cache=False)
    assert len(expw.target) == len(rows)
    np.testing.assert_array_equal(expw.target, [int(r["label_id"]) for r in rows])
    assert set(expw.source) == {"expw"}
    # The two faces of one photo are two different crops.
    assert not np.array_equal(expw.images[-1], expw.images[-2])
    assert expw.face_found.mean() >= 0.5


def test_load_expw_one_detection_stands_for_one_labelled_face(tmp_path):
    """Two labelled boxes overlapping one detection: the better-overlapping
    face takes it, the other is 'not found' and cut from its own box (each
    took its best detection on its own, so both got the same crop and
    counted as found)."""
    from PIL import Image
    from skimage import data

    from fersk import FaceCropper

    root = tmp_path / "expw"
    (root / "images").mkdir(parents=True)
    Image.fromarray(data.astronaut()).save(root / "images" / "p.png")
    (root / "faces.csv").write_text(
        "file,face_id,x,y,w,h,label_id,label\n"
        "p.png,0,110,110,100,100,0,angry\n"   # IoU 0.68 with the detection
        "p.png,1,100,100,100,100,3,happy\n")  # IoU 1: it takes the detection
    cropper = FaceCropper(detector=lambda image: [(100, 100, 100, 100)], size=(48, 48))
    expw = load_expw(root, cropper=cropper, cache=False)
    np.testing.assert_array_equal(expw.face_found, [False, True])
    np.testing.assert_allclose(expw.boxes, [[110, 110, 100, 100], [100, 100, 100, 100]])
    assert not np.array_equal(expw.images[0], expw.images[1])


def test_load_expw_reads_boxes_in_the_upright_photo(tmp_path):
    """A photo stored sideways with an EXIF orientation tag: its label box is
    clipped to the upright photo the detector and cropper see (it was
    clipped to the stored size, width and height swapped: a negative width,
    then a ValueError)."""
    from PIL import Image
    from skimage import data

    upright = np.full((512, 800, 3), 90, np.uint8)
    upright[:, 380:800] = data.astronaut()[:, :420]  # the face near column 562
    root = tmp_path / "expw"
    (root / "images").mkdir(parents=True)
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # 512 wide, 800 high
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: upright again
    stored.save(root / "images" / "p.jpg", quality=95, exif=exif.tobytes())
    (root / "faces.csv").write_text(
        "file,face_id,x,y,w,h,label_id,label\np.jpg,0,562,64,83,107,3,happy\n")
    expw = load_expw(root, cache=False)
    np.testing.assert_allclose(expw.label_boxes[0], [64, 562, 107, 83])
    assert expw.face_found[0] and expw.target[0] == 3


def test_load_expw_names_a_bad_table(tmp_path):
    """A faces.csv without a column, or with text where numbers go, is named
    with its row (it was KeyError: 'label_id' / int()'s own message)."""
    root = tmp_path / "expw"
    (root / "images").mkdir(parents=True)
    (root / "faces.csv").write_text("file,x,y,w,h,label\na.jpg,1,2,3,3,happy\n")
    with pytest.raises(ValueError, match=r"faces\.csv: no column \['face_id', 'label_id'\]"):
        load_expw(root, cache=False)
    (root / "faces.csv").write_text(
        "file,face_id,x,y,w,h,label_id,label\na.jpg,0,1,2,3,3,happy,happy\n")
    with pytest.raises(ValueError, match=r"faces\.csv: row 2 is not numbers"):
        load_expw(root, cache=False)


def _expw_folder(root, rows, bom=False):
    """An ExpW folder: two 120 x 100 photos and faces.csv with ``rows``."""
    from PIL import Image

    (root / "images").mkdir(parents=True, exist_ok=True)
    for name in ("p.png", "q.png"):
        Image.fromarray(skdata.astronaut()[:100, :120]).save(root / "images" / name)
    text = "file,face_id,x,y,w,h,label_id,label\n" + "".join(r + "\n" for r in rows)
    (root / "faces.csv").write_text(("\ufeff" if bom else "") + text, encoding="utf-8")
    return root


def test_load_expw_names_the_row_of_a_missing_photo_or_a_bad_box(tmp_path):
    """A row whose photo is missing was a FileNotFoundError of os.stat (even
    with cache=False); an empty or outside box was blamed on "the detector
    ... image 0"; a byte-order mark hid the "file" column."""
    cropper = FaceCropper(detector=None)
    good = ["p.png,0,10,20,30,40,3,happy", "q.png,0,0,0,50,50,4,sad"]
    root = _expw_folder(tmp_path / "bom", good, bom=True)
    assert load_expw(root, cropper=cropper, cache=False).target.tolist() == [3, 4]
    root = _expw_folder(tmp_path / "missing", good + ["gone.jpg,0,0,0,5,5,1,disgust"])
    with pytest.raises(ValueError, match=r"faces\.csv: 1 row\(s\) name a photo that is not a "
                                         r"file in .*: row 4: 'gone\.jpg'"):
        load_expw(root, cropper=cropper, cache=False)
    for box, why in (("10,20,0,40", "w and h must be > 0"), ("10,20,30,-1", "must be > 0"),
                     ("10,nan,30,40", "finite"),
                     ("500,20,30,40", r"wholly outside its photo 'q\.png' \(120 x 100")):
        root = _expw_folder(tmp_path / "box", [good[0], f"q.png,0,{box},4,sad"])
        with pytest.raises(ValueError, match=rf"faces\.csv: row 3 has the box .*{why}"):
            load_expw(root, cropper=cropper, cache=False)



def test_load_expw_refuses_a_row_whose_label_name_and_number_disagree(tmp_path):
    """faces.csv carries each face's label twice (label_id, label); only the
    number was read, so a row edited in one column alone was loaded under
    the number without a word."""
    cropper = FaceCropper(detector=None)
    root = _expw_folder(tmp_path / "e", ["p.png,0,10,20,30,40,3,happy", "q.png,0,0,0,50,50,4,HAPPY"])
    with pytest.raises(ValueError, match=r"row 3 has label_id 4 \('sad'\) but label 'HAPPY'"):
        load_expw(root, cropper=cropper, cache=False)
    root = _expw_folder(tmp_path / "ok", ["p.png,0,10,20,30,40,3,Happy", "q.png,0,0,0,50,50,4,"])
    assert load_expw(root, cropper=cropper, cache=False).target.tolist() == [3, 4]

def test_load_expw_min_iou_is_a_number_in_0_1(tmp_path):
    """min_iou=0, 1 and np.float32(0.4) were refused (not a Python float)
    while 5.0 (no detection can match) was accepted."""
    from sklearn.utils._param_validation import InvalidParameterError

    root = _expw_folder(tmp_path / "expw", ["p.png,0,10,20,30,40,3,happy"])
    cropper = FaceCropper(detector=None)
    for min_iou in (0, 1, np.float32(0.4), 0.4):
        assert load_expw(root, cropper=cropper, min_iou=min_iou, cache=False).target.tolist() == [3]
    for min_iou in (5.0, -0.1):
        with pytest.raises(InvalidParameterError, match="min_iou"):
            load_expw(root, cropper=cropper, min_iou=min_iou, cache=False)
    # min_iou=0 took a detection apart from the labelled face (another
    # region or person) as that face, its label on the wrong crop.
    root = _expw_folder(tmp_path / "apart", ["p.png,0,60,50,30,40,3,happy"])

    def corner(image):  # nowhere near the labelled box
        return [(0, 0, 20, 20)]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        far = load_expw(root, cropper=FaceCropper(detector=corner), min_iou=0, cache=False)
    assert far.face_found.tolist() == [False]


@needs_shared
class _BoxDetector:
    """A detector object (its repr is its memory address), one fixed box."""

    def __init__(self, box):
        self.box = box

    def __call__(self, image):
        return [self.box]


def test_wild_crops_of_a_detector_function_or_object_are_not_cached(tmp_path, monkeypatch):
    """A callable detector's repr is a memory address (another detector at a
    reused address got the first one's crops), and pickling names a function
    by module and name only: two scripts' ``def detector`` (or one script's
    detector after an edit) shared one cache entry and got each other's
    crops.  Such crops are not cached (said); named detectors' are, and
    ``cache_dir="~/..."`` is the home folder's."""
    import sys
    import types

    from PIL import Image

    from fersk.datasets._wild import _key

    photo = tmp_path / "sfew" / "happy" / "frame.png"
    photo.parent.mkdir(parents=True)
    Image.fromarray(skdata.astronaut()[:200, :200]).save(photo)
    entries = ["happy/frame.png"]
    module = types.ModuleType("fersk_test_detector_script")
    monkeypatch.setitem(sys.modules, module.__name__, module)

    def script(box):  # the script's module-level detector, defined anew
        exec(f"def detector(image):\n    return [{box}]\n", module.__dict__)
        return module.detector

    for detector in (_BoxDetector((0, 0, 50, 50)), script((0, 0, 50, 50)), lambda image: []):
        assert _key(tmp_path / "sfew", entries, FaceCropper(detector=detector)) is None
    assert _key(tmp_path / "sfew", entries, FaceCropper(detector=None)) is not None
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    crops = []
    for box in ((0, 0, 50, 50), (20, 20, 120, 120)):  # one script edited: its own crops
        with pytest.warns(UserWarning, match="crops are not cached"):
            crops.append(load_sfew(tmp_path / "sfew", cropper=FaceCropper(detector=script(box)),
                                   cache_dir="~/fersk-cache").images[0])
    assert not np.array_equal(*crops)
    assert not (tmp_path / "home").exists()
    load_sfew(tmp_path / "sfew", cropper=FaceCropper(detector=None), cache_dir="~/fersk-cache")
    assert len(list((tmp_path / "home" / "fersk-cache").glob("sfew-*.npz"))) == 1


@needs_shared
def test_load_in_the_wild_groups_by_source(tmp_path):
    from sklearn.model_selection import LeaveOneGroupOut

    home = tmp_path / "data"
    _link_subset(SHARED / "sfew-train", home / "sfew-train", 1)
    _link_subset(SHARED / "muxspace-faces", home / "muxspace-faces", 1,
                 classes=["happiness", "sadness", "contempt"])
    wild = load_in_the_wild(home, sources=["sfew", "muxspace"], cache=False)
    assert len(wild.target) == len(wild.source) == len(wild.images) == 9
    assert list(np.unique(wild.source)) == ["muxspace", "sfew"]
    assert len(wild.excluded) == 1
    assert LeaveOneGroupOut().get_n_splits(groups=wild.source) == 2
    with pytest.raises(ValueError, match="sources"):
        load_in_the_wild(home, sources=["imagenet"])


def test_load_in_the_wild_refuses_a_source_named_twice(tmp_path):
    """sources=["sfew", "sfew"] loaded SFEW twice: every face twice."""
    from PIL import Image

    (tmp_path / "sfew-train" / "happy").mkdir(parents=True)
    Image.fromarray(skdata.camera()[:48, :48]).save(tmp_path / "sfew-train" / "happy" / "a.png")
    cropper = FaceCropper(detector=None)
    assert len(load_in_the_wild(tmp_path, sources=["sfew"], cropper=cropper,
                                cache=False).target) == 1
    with pytest.raises(ValueError, match=r"sources has \['sfew'\] more than once"):
        load_in_the_wild(tmp_path, sources=["sfew", "sfew"], cropper=cropper, cache=False)


def test_wild_loaders_return_X_y_as_load_fer2013(tmp_path):
    """return_X_y=True gives (images, target), the Bunch's own arrays, for
    each wild loader and for load_in_the_wild, as load_fer2013 does."""
    from PIL import Image

    face = skdata.camera()[:48, :48]
    for folder in ("sfew-train/happy", "sfew-train/sad", "muxspace-faces/happiness",
                   "muxspace-faces/anger", "expw-dev/images"):
        (tmp_path / folder).mkdir(parents=True)
    for name in ("sfew-train/happy/a.png", "sfew-train/sad/b.png",
                 "muxspace-faces/happiness/c.png", "muxspace-faces/anger/d.png",
                 "expw-dev/images/e.png"):
        Image.fromarray(face).save(tmp_path / name)
    (tmp_path / "expw-dev" / "faces.csv").write_text(
        "file,face_id,x,y,w,h,label_id,label\ne.png,0,0,0,48,48,3,happy\n")
    cropper = FaceCropper(detector=None)
    calls = {
        load_sfew: tmp_path / "sfew-train",
        load_muxspace: tmp_path / "muxspace-faces",
        load_expw: tmp_path / "expw-dev",
    }
    for loader, root in calls.items():
        bunch = loader(root, cropper=cropper, cache=False)
        X, y = loader(root, cropper=cropper, cache=False, return_X_y=True)
        np.testing.assert_array_equal(X, bunch.images)
        np.testing.assert_array_equal(y, bunch.target)
    wild = load_in_the_wild(tmp_path, sources=["sfew", "muxspace"], cropper=cropper, cache=False)
    X, y = load_in_the_wild(tmp_path, sources=["sfew", "muxspace"], cropper=cropper,
                            cache=False, return_X_y=True)
    assert len(y) == 4
    np.testing.assert_array_equal(X, wild.images)
    np.testing.assert_array_equal(y, wild.target)
    with pytest.raises(ValueError, match="return_X_y"):
        load_sfew(tmp_path / "sfew-train", cropper=cropper, cache=False, return_X_y="yes")


def test_load_in_the_wild_says_which_fer2013_faces_a_cropper_missed(monkeypatch, tmp_path):
    """FER-2013's 48x48 faces: taken whole by the bundled cropper (found), but
    searched by another one, which may miss them: face_found says so (it was
    True for every FER-2013 face whatever the cropper)."""
    from sklearn.utils import Bunch

    from fersk.datasets import _wild
    from fersk.face import FaceCropper

    noise = np.random.RandomState(0).randint(0, 256, (4, 48, 48)).astype(np.uint8)
    monkeypatch.setattr(_wild, "load_fer2013", lambda *a, **k: Bunch(
        images=noise, target=np.arange(4), filenames=np.array([f"f{i}.png" for i in range(4)])))
    bundled = load_in_the_wild(tmp_path, sources=["fer2013"], cache=False)
    assert bundled.face_found.all() and len(bundled.target) == 4
    # paths, as the other sources give them (they were relative to fer2013/)
    assert bundled.filenames[0] == str(tmp_path / "fer2013" / "f0.png")
    searched = load_in_the_wild(tmp_path, sources=["fer2013"], cache=False,
                                cropper=FaceCropper(size=(48, 48)))
    assert not searched.face_found.any() and len(searched.target) == 4


def test_source_sample_weight_refuses_an_infinite_weight():
    """{"sfew": inf} gave inf weights (NaN was refused already)."""
    from fersk.datasets import source_sample_weight

    for bad in (float("inf"), np.float32("inf"), float("nan")):
        with pytest.raises(ValueError, match=r"weights\['sfew'\] must be a finite number >= 0"):
            source_sample_weight(["fer2013", "sfew"], {"sfew": bad})
    np.testing.assert_array_equal(source_sample_weight(["fer2013", "sfew"], {"sfew": 0}), [1, 0])


def test_degrade_faces_is_seeded_and_keeps_shape():
    faces = np.random.RandomState(0).randint(0, 256, (10, 48, 48)).astype(np.uint8)
    a = degrade_faces(faces, random_state=3)
    b = degrade_faces(faces, random_state=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == faces.shape and a.dtype == np.uint8
    assert (a != faces).any()


@pytest.mark.parametrize("kind", sorted(DEGRADATIONS))
def test_each_degradation_changes_faces_and_none_changes_nothing(kind):
    face = skdata.camera()[::10, ::10][:48, :48]
    faces = np.stack([face] * 3)
    only = {k: float(k == kind) for k in DEGRADATIONS}
    assert (degrade_faces(faces, probabilities=only, random_state=0) != faces).any()
    off = {k: 0.0 for k in DEGRADATIONS}
    np.testing.assert_array_equal(degrade_faces(faces, probabilities=off, random_state=0), faces)


def test_degrade_faces_colour_and_errors():
    faces = np.zeros((2, 32, 32, 3), dtype=np.uint8) + 100
    out = degrade_faces(faces, probabilities={"jpeg": 1.0, "noise": 1.0}, random_state=0)
    assert out.shape == faces.shape
    with pytest.raises(ValueError, match="uint8"):
        degrade_faces(faces.astype(float))
    with pytest.raises(ValueError, match=r"'probabilities' parameter .* some of 'blur'"):
        degrade_faces(faces, probabilities={"rain": 1.0})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        degrade_faces(faces, probabilities={"blur": 2})


@needs_shared
def test_benchmark_held_out_faces_share_no_clip_person_or_photo_with_training():
    """benchmarks/_common.split_sources: the SFEW frames of a film clip, the
    muxspace photos of a person and the ExpW faces of a photo are never on
    both sides (frames of one clip are near-copies: 83 of the 172 held-out
    SFEW frames had one in training); the training part is unchanged."""
    import csv
    import importlib.util

    from sklearn.model_selection import train_test_split
    from sklearn.utils import Bunch

    spec = importlib.util.spec_from_file_location(
        "bench_common", Path(__file__).resolve().parents[1] / "benchmarks" / "_common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    files, source = [], []
    for name, folder in (("sfew", "sfew-train"), ("muxspace", "muxspace-faces")):
        found = sorted(str(p) for p in (SHARED / folder).glob("*/*.jpg"))
        files += found
        source += [name] * len(found)
    with open(SHARED / "expw-dev" / "faces.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    files += [f"images/{r['file']}" for r in rows]
    source += ["expw"] * len(rows)
    files, source = np.array(files), np.array(source)
    folders = sorted({Path(f).parent.name for f in files[source != "expw"]})
    target = np.array([folders.index(Path(f).parent.name) if s != "expw" else int(r["label_id"])
                       for f, s, r in zip(files, source, [None] * (len(files) - len(rows)) + rows)])
    # Noise for pixels: no two faces alike, so near_copies drops none here.
    images = np.random.default_rng(0).integers(0, 256, (len(files), 8, 8), dtype=np.uint8)
    data = Bunch(filenames=files, source=source, target=target, images=images)
    train, tests = common.split_sources(data, None)
    for s, test in tests.items():
        seen = {common.face_group(s, f) for f in files[train][source[train] == s]}
        assert not {common.face_group(s, f) for f in files[test]} & seen, s
        idx = np.flatnonzero(source == s)
        before = train_test_split(idx, test_size=0.2, stratify=target[idx], random_state=0)
        np.testing.assert_array_equal(np.sort(train[source[train] == s]), np.sort(before[0]))
        assert set(test) <= set(before[1]) and len(test) > 0
    clips = {common.face_group("sfew", f) for f in files[source == "sfew"]}
    assert 500 < len(clips) < 700  # 859 frames in 575 clips: the name parsed as meant
    films = {common.sfew_film(f) for f in files[source == "sfew"]}
    assert len(films) == 47 and {"50_50", "IAmSam", "OceansTwelve", "v"} <= films
    assert all(any(c.startswith(f) for f in films) for c in clips)
    # two clips spelt two ways ('-' or '_' after the film, a doubled '_'): one clip each,
    # the clip of sfew_clip (until 2026-12-06 the name less its frame: two clips each)
    assert clips == {common.sfew_clip(f) for f in files[source == "sfew"]}
    assert len({Path(f).name.rsplit("_", 1)[0] for f in files[source == "sfew"]}) == len(clips) + 2
    # by="group": SFEW by film (SFEW 2.0 Val holds other films), no face lost or doubled
    train, tests = common.split_sources(data, None, by="group")
    for s, test in tests.items():
        group = common.sfew_film if s == "sfew" else (lambda f, s=s: common.face_group(s, f))
        part = train[source[train] == s]
        assert not {group(f) for f in files[test]} & {group(f) for f in files[part]}, s
        assert sorted([*part, *test]) == list(np.flatnonzero(source == s)), s
        assert 0.1 < len(test) / (source == s).sum() < 0.3, s
    with pytest.raises(ValueError, match="by must be"):
        common.split_sources(data, None, by="film")
    # the five folds' test parts: every face of a source once
    parts = [common.split_sources(data, None, by="group", fold=k)[1] for k in range(5)]
    for s in tests:
        held = np.concatenate([part[s] for part in parts])
        assert sorted(held) == list(np.flatnonzero(source == s)), s
    # by="none" (a recipe's refit): every face trains once, nothing is held out
    train, tests = common.split_sources(data, None, by="none")
    assert tests == {} and sorted(train) == list(range(len(files)))
    train, tests = common.split_sources(data, "expw", by="none")
    assert list(tests) == ["expw"] and not set(train) & set(tests["expw"])
    assert len(train) + len(tests["expw"]) == len(files)


def test_bench_web_photos_scores_faces_by_their_boxes():
    """benchmarks/bench_web_photos.py: a labelled face is found by the returned
    box overlapping it (IoU >= 0.4), a face not found is wrong; a photo with
    one label and no box is scored by its largest face."""
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_web_photos.py"
    score = runpy.run_path(str(script), run_name="bench_web_photos")["score"]
    faces = [[((0, 0, 10, 10), 3), ((50, 50, 10, 10), 1)], [(None, 2)], [(None, 4)]]
    found = [[((1, 1, 10, 10), 3), ((200, 200, 9, 9), 1)], [((5, 5, 20, 20), 2), ((0, 0, 5, 5), 4)], []]
    acc, hit, acc_found = score(faces, found)
    assert (acc, hit, acc_found) == (0.5, 0.5, 1.0)


@pytest.mark.parametrize("loader, cls, other", [(load_sfew, "angry", "happy"),
                                                 (load_muxspace, "anger", "happiness")])
def test_class_folder_links_and_loose_images_are_not_silent(tmp_path, loader, cls, other):
    """A class folder linking to another was read twice, its images under
    both labels; an image beside the class folders was dropped without a
    word (load_image_folder and load_fer2013 refuse the one, warn of the
    other)."""
    from PIL import Image

    face = skdata.astronaut()[30:230, 120:320]
    (tmp_path / cls).mkdir()
    for k in range(2):
        Image.fromarray(face).save(tmp_path / cls / f"{k}.png")
    (tmp_path / other).symlink_to(tmp_path / cls)
    cropper = FaceCropper(detector=None)
    with pytest.raises(ValueError, match="are one folder on disk"):
        loader(tmp_path, cropper=cropper, cache=False)
    (tmp_path / other).unlink()
    Image.fromarray(face).save(tmp_path / "loose.png")
    with pytest.warns(UserWarning, match="1 image file.*outside class folders.*loose.png"):
        assert len(loader(tmp_path, cropper=cropper, cache=False).target) == 2


def test_load_muxspace_with_every_photo_excluded_says_so(tmp_path):
    from PIL import Image

    (tmp_path / "contempt").mkdir()
    Image.fromarray(skdata.astronaut()[30:230, 120:320]).save(tmp_path / "contempt" / "0.png")
    with pytest.raises(ValueError, match="no photo .* is left to load: its 1 photo"):
        load_muxspace(tmp_path, cropper=FaceCropper(detector=None), cache=False)


def test_load_expw_refuses_one_face_in_two_rows(tmp_path):
    """A row repeated gave one face twice (two samples), where load_ferplus
    refuses a repeated row."""
    root = _expw_folder(tmp_path / "e", ["p.png,0,10,20,30,40,3,happy", "q.png,0,0,0,50,50,4,sad",
                                         "p.png,0,10,20,30,40,3,happy"])
    with pytest.raises(ValueError, match=r"rows 2 and 4 are both face 0 of 'p.png'"):
        load_expw(root, cropper=FaceCropper(detector=None), cache=False)
    # the same face numbered 00: compared as text it was another face, cut twice
    root = _expw_folder(tmp_path / "f", ["p.png,0,10,20,30,40,3,happy", "p.png,00,10,20,30,40,3,happy"])
    with pytest.raises(ValueError, match=r"rows 2 and 3 are both face 0 of 'p.png'"):
        load_expw(root, cropper=FaceCropper(detector=None), cache=False)


def test_load_expw_names_an_empty_or_foreign_table(tmp_path):
    """An empty faces.csv failed on "I/O operation on closed file", a header
    without rows on NumPy's "need at least one array to stack", a Latin-1
    file with a UnicodeDecodeError naming no file."""
    root = _expw_folder(tmp_path / "e", [])
    with pytest.raises(ValueError, match=r"faces\.csv has a header and no face rows"):
        load_expw(root, cropper=FaceCropper(detector=None), cache=False)
    (root / "faces.csv").write_text("")
    with pytest.raises(ValueError, match=r"faces\.csv: no column \['file'"):
        load_expw(root, cropper=FaceCropper(detector=None), cache=False)
    (root / "faces.csv").write_bytes(
        b"file,face_id,x,y,w,h,label_id,label\nph\xf6to.png,0,1,1,5,5,3,happy\n")
    with pytest.raises(ValueError, match=r"faces\.csv is not UTF-8 text"):
        load_expw(root, cropper=FaceCropper(detector=None), cache=False)


def test_degrade_faces_refuses_faces_without_pixels():
    """Faces of height or width 0 gave empty output with NaN warnings, or,
    when the random JPEG step fired, Pillow's "cannot write empty image"."""
    for shape in ((2, 0, 8), (2, 8, 0), (2, 0, 8, 3)):
        with pytest.raises(ValueError, match="height and width at least 1"):
            degrade_faces(np.zeros(shape, np.uint8), random_state=0)
    assert degrade_faces(np.zeros((0, 8, 8), np.uint8), random_state=0).shape == (0, 8, 8)
