"""fersk.datasets on real FER-2013 files: small copies in tmp_path, Kaggle CSVs
written from the same images, and one full load of the shared folder."""

import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from skimage.transform import downscale_local_mean, resize
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, PredefinedSplit

from fersk.datasets import (
    FER2013_CLASSES,
    SkippedImagesWarning,
    fer2013_predefined_split,
    load_fer2013,
    load_image_folder,
)

PER_CLASS = {"train": 5, "test": 2}  # 49 real images in the small copy


def _pick(root, split, n, seed):
    rng = np.random.RandomState(seed)
    out = []
    for cls in FER2013_CLASSES:
        files = sorted((root / split / cls).glob("*.jpg"))
        out += [files[i] for i in sorted(rng.choice(len(files), n, replace=False))]
    return out


@pytest.fixture(scope="module")
def fer_sources(fer2013_root):
    """Real FER files for the small copies: {relative path: source path}."""
    files = {}
    for split, n in PER_CLASS.items():
        for f in _pick(fer2013_root, split, n, seed=1):
            files[f"{split}/{f.parent.name}/{f.name}"] = f
    return files


def _expected(sources):
    """Independent reading: relative path -> (pixels, label, usage)."""
    out = {}
    for rel, src in sources.items():
        with Image.open(src) as im:
            pixels = np.asarray(im.convert("L"))
        cls = rel.split("/")[1]
        out[rel] = (pixels, FER2013_CLASSES.index(cls), rel.split("/")[2].split("_")[0])
    return out


@pytest.fixture
def fer_copy(tmp_path, fer_sources):
    """A small FER-2013 image-folder copy (real JPEGs) in tmp_path."""
    root = tmp_path / "fer"
    for rel, src in fer_sources.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, root / rel)
    return root


def _write_csv(path, rows, header="emotion,pixels,Usage"):
    with open(path, "w", newline="") as f:
        f.write(header + "\n")
        for row in rows:
            f.write(row + "\n")
    return path


def _row(pixels, label, usage):
    return f"{label},{' '.join(map(str, np.ravel(pixels)))},{usage}"


def _load(path, **kw):
    kw.setdefault("cache", False)
    return load_fer2013(path, **kw)


# ---------------------------------------------------------------- folder & CSV


def test_a_file_that_could_not_be_read_is_read_again_not_cached(fer_copy, tmp_path,
                                                                 monkeypatch):
    """A permission or I/O error is the file's state, not its content: the
    cache kept it as skipped, and fixing permissions (which leaves the
    modification time, the key) never brought the face back."""
    from fersk.datasets import _decoding

    cache_dir = tmp_path / "cache"
    blocked = sorted(fer_copy.rglob("*.jpg"))[0]
    real_open = open

    def no_permission(path, *args, **kwargs):
        if Path(path) == blocked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(_decoding, "open", no_permission, raising=False)
    with pytest.warns(SkippedImagesWarning):
        first = load_fer2013(fer_copy, cache_dir=cache_dir, errors="skip")
    assert "cannot read the file (PermissionError" in first.skipped[0][1]
    monkeypatch.undo()  # permissions fixed: same size, same mtime
    again = load_fer2013(fer_copy, cache_dir=cache_dir)
    assert len(again.target) == len(first.target) + 1 and not again.skipped


def test_folder_matches_independent_reading(fer_copy, fer_sources):
    data = _load(fer_copy)
    expected = _expected(fer_sources)
    assert set(data) >= {"images", "data", "target", "target_names", "usage", "filenames",
                         "row_ids", "skipped", "DESCR"}
    assert data.images.shape == (49, 48, 48) and data.images.dtype == np.uint8
    assert data.target.dtype == np.int64
    assert data.data.shape == (49, 2304) and np.shares_memory(data.data, data.images)
    assert data.target_names.tolist() == list(FER2013_CLASSES)
    assert sorted(data.filenames) == sorted(expected)
    for image, label, usage, name in zip(data.images, data.target, data.usage,
                                         data.filenames):
        np.testing.assert_array_equal(image, expected[name][0])
        assert (label, usage) == expected[name][1:]
    assert np.unique(data.usage, return_counts=True)[1].tolist() == [14, 35]
    assert data.row_ids is None and data.skipped == []
    assert "FER-2013" in data.DESCR
    X, y = _load(fer_copy, return_X_y=True)
    np.testing.assert_array_equal(X, data.images)
    np.testing.assert_array_equal(y, data.target)


def test_csv_and_folder_give_identical_samples(fer_copy, fer_sources, tmp_path):
    expected = _expected(fer_sources)
    names = sorted(expected)
    order = np.random.RandomState(0).permutation(len(names))  # CSV in its own order
    csv = _write_csv(tmp_path / "fer2013.csv",
                     [_row(*expected[names[i]]) for i in order])
    from_csv = _load(csv)
    from_folder = _load(fer_copy)
    assert from_csv.filenames is None
    np.testing.assert_array_equal(from_csv.row_ids, np.arange(len(names)))
    # row r of the CSV is file names[order[r]]
    position = {name: i for i, name in enumerate(from_folder.filenames)}
    index = [position[names[i]] for i in order]
    np.testing.assert_array_equal(from_csv.images, from_folder.images[index])
    np.testing.assert_array_equal(from_csv.target, from_folder.target[index])
    np.testing.assert_array_equal(from_csv.usage, from_folder.usage[index])
    assert from_csv.images.dtype == np.uint8 and from_csv.target.dtype == np.int64


def test_capitalised_class_folders_and_single_split_root(fer_copy):
    reference = _load(fer_copy)
    for d in list((fer_copy / "train").iterdir()):
        d.rename(d.with_name(d.name.capitalize()))
    data = _load(fer_copy)
    np.testing.assert_array_equal(data.images, reference.images)
    np.testing.assert_array_equal(data.target, reference.target)
    # a single split (class folders directly under the root)
    test_only = _load(fer_copy / "test")
    assert test_only.filenames[0].startswith("angry/PublicTest_")
    np.testing.assert_array_equal(
        test_only.images, reference.images[reference.usage == "PublicTest"]
    )


def test_files_that_are_not_samples_are_ignored_or_reported(fer_copy, fer_sources):
    (fer_copy / "README.txt").write_text("not an image")
    (fer_copy / "train" / "angry" / ".DS_Store").write_bytes(b"\0\1")
    assert len(_load(fer_copy).target) == 49
    shutil.copyfile(next(iter(fer_sources.values())), fer_copy / "Training_1.jpg")
    with pytest.warns(UserWarning, match=r"outside class folders.*Training_1\.jpg"):
        assert len(_load(fer_copy).target) == 49


# ---------------------------------------------------------------- usage


def test_usage_selection(fer_copy, tmp_path, fer_sources):
    everything = _load(fer_copy)
    public = _load(fer_copy, usage="PublicTest")
    assert set(public.usage) == {"PublicTest"} and len(public.target) == 14
    np.testing.assert_array_equal(
        public.images, everything.images[everything.usage == "PublicTest"]
    )
    both = _load(fer_copy, usage=["training", "PUBLICTEST"])  # any case
    np.testing.assert_array_equal(both.images, everything.images)
    with pytest.raises(ValueError, match="Unknown FER-2013 usage 'Validation'"):
        _load(fer_copy, usage=["Training", "Validation"])
    with pytest.raises(ValueError, match=r"No FER-2013 sample of usage \['PrivateTest'\]"):
        _load(fer_copy, usage="PrivateTest")
    with pytest.warns(UserWarning, match=r"no sample of usage \['PrivateTest'\]"):
        assert len(_load(fer_copy, usage=["PublicTest", "PrivateTest"]).target) == 14

    expected = _expected(fer_sources)
    rows = [_row(*v) for v in expected.values()]
    rows.append(_row(expected[next(iter(expected))][0], 2, "PrivateTest"))
    csv = _write_csv(tmp_path / "fer2013.csv", rows)
    private = _load(csv, usage="PrivateTest")
    assert private.row_ids.tolist() == [49] and private.target.tolist() == [2]
    assert len(_load(csv, usage=["Training"]).target) == 35


def test_file_without_usage_prefix_is_reported(fer_copy, fer_sources):
    src = next(iter(fer_sources.values()))
    shutil.copyfile(src, fer_copy / "train" / "happy" / "im42.jpg")
    with pytest.raises(ValueError, match=r"train/happy/im42\.jpg: file name does not start"):
        _load(fer_copy)
    with pytest.raises(ValueError, match=r"im42\.jpg"):  # even when not selected
        _load(fer_copy, usage="PublicTest")


# ---------------------------------------------------------------- bad files


def _truncated(src):
    return Path(src).read_bytes()[: Path(src).stat().st_size // 2]


@pytest.mark.parametrize(
    "content,reason",
    [
        (lambda src: b"not a JPEG at all", "not a readable image"),
        (lambda src: b"", "empty file"),
        (_truncated, "truncated"),
        (lambda src: "64x64", r"image is 64x64 \(height x width\) pixels, not 48x48"),
        (lambda src: "48x60", r"image is 48x60 \(height x width\) pixels, not 48x48"),
    ],
    ids=["garbage", "empty", "truncated", "64x64", "48x60"],
)
def test_bad_image_raises_naming_it_or_is_skipped(fer_copy, fer_sources, content, reason):
    clean = _load(fer_copy)
    src = fer_sources["train/fear/" + sorted(
        n.split("/")[-1] for n in fer_sources if n.startswith("train/fear/"))[0]]
    bad = fer_copy / "train" / "fear" / "Training_0000bad.jpg"
    made = content(src)
    if isinstance(made, bytes):
        bad.write_bytes(made)
    else:  # a real face resized to a wrong size
        h, w = map(int, made.split("x"))
        with Image.open(src) as im:
            im.resize((w, h)).save(bad, quality=95)
    with pytest.raises(ValueError, match=rf"1 FER-2013 image file\(s\) could not be "
                                         rf"loaded: train/fear/Training_0000bad\.jpg: "
                                         rf".*{reason}"):
        _load(fer_copy)
    with pytest.warns(SkippedImagesWarning, match=r"skipped 1 FER-2013 image file"):
        data = _load(fer_copy, errors="skip")
    assert [name for name, _ in data.skipped] == ["train/fear/Training_0000bad.jpg"]
    assert re.search(reason, data.skipped[0][1])
    # the rest stays aligned and identical to the clean load
    for key in ("images", "target", "usage", "filenames"):
        np.testing.assert_array_equal(data[key], clean[key])


def test_unknown_class_folder_is_an_error(fer_copy):
    (fer_copy / "train" / "contempt").mkdir()
    with pytest.raises(ValueError, match=r"Unknown class folder\(s\) \['contempt'\]"):
        _load(fer_copy)


def test_mixed_and_missing_layouts_are_errors(fer_copy, tmp_path):
    (fer_copy / "angry").mkdir()
    with pytest.raises(ValueError, match="mixes class folders"):
        _load(fer_copy)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="has no sub-folders"):
        _load(tmp_path / "empty")
    with pytest.raises(ValueError, match="does not exist"):
        _load(tmp_path / "nowhere.csv")


# ---------------------------------------------------------------- bad CSV rows


@pytest.fixture
def good_rows(fer_sources):
    expected = _expected(fer_sources)
    return [_row(*expected[name]) for name in sorted(expected)[:6]]


@pytest.mark.parametrize(
    "bad_row,reason",
    [
        ("3," + " ".join(["1"] * 2303) + ",Training", "2303 pixel values, expected 2304"),
        ("3," + " ".join(["1"] * 2303) + " x,Training", "not space-separated integers"),
        ("3," + " ".join(["1"] * 2303) + " 2.5,Training", "not space-separated integers"),
        ("3," + " ".join(["1"] * 2303) + " 256,Training", r"outside 0\.\.255"),
        ("7," + " ".join(["1"] * 2304) + ",Training", "emotion '7' is not a label"),
        ("-1," + " ".join(["1"] * 2304) + ",Training", "emotion '-1' is not a label"),
        ("happy," + " ".join(["1"] * 2304) + ",Training", "emotion 'happy'"),
        ("3," + " ".join(["1"] * 2304) + ",Validation", "unknown Usage 'Validation'"),
        ("3," + " ".join(["1"] * 2304), "2 fields, expected 3"),
        # int32 wrapped it round to 128, a pixel in range
        ("3," + " ".join(["1"] * 2303) + " 4294967424,Training", r"outside 0\.\.255"),
        ("\u00b2," + " ".join(["1"] * 2304) + ",Training", "emotion '\u00b2' is not a label"),
        # a stray quote joined the next rows into this one: lost, uncounted
        ('3,"' + " ".join(["1"] * 2304) + ",Training", "not space-separated integers"),
    ],
    ids=["short", "text", "float", "256", "label7", "label-1", "labelname",
         "usage", "fields", "int32_wrap", "unicode_digit", "stray_quote"],
)
def test_bad_csv_row_raises_naming_it_or_is_skipped(tmp_path, good_rows, bad_row, reason):
    clean = _load(_write_csv(tmp_path / "clean.csv", good_rows))
    rows = good_rows[:3] + [bad_row] + good_rows[3:]
    csv = _write_csv(tmp_path / "fer2013.csv", rows)
    # data row 3 is line 5 (after the header)
    with pytest.raises(ValueError, match=rf"1 row\(s\) of fer2013\.csv could not be "
                                         rf"loaded: row 3: line 5: .*{reason}"):
        _load(csv)
    with pytest.warns(SkippedImagesWarning, match="skipped 1 row"):
        data = _load(csv, errors="skip")
    assert [r for r, _ in data.skipped] == [3]
    assert re.search(reason, data.skipped[0][1])
    assert data.row_ids.tolist() == [0, 1, 2, 4, 5, 6]
    for key in ("images", "target", "usage"):
        np.testing.assert_array_equal(data[key], clean[key])


def test_csv_header_and_empty_file(tmp_path, good_rows):
    with pytest.raises(ValueError, match=r"no column\(s\) \['Usage'\]"):
        _load(_write_csv(tmp_path / "a.csv", [r.rsplit(",", 1)[0] for r in good_rows],
                         header="emotion,pixels"))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty CSV"):
        _load(tmp_path / "empty.csv")
    # quoted fields (a spreadsheet's CSV) read as the plain ones
    quoted = [",".join(f'"{v}"' for v in r.split(",")) for r in good_rows]
    np.testing.assert_array_equal(_load(_write_csv(tmp_path / "q.csv", quoted)).images,
                                  _load(_write_csv(tmp_path / "p.csv", good_rows)).images)
    # columns in another order, extra column and a blank line are fine
    rows = [",".join([r.split(",")[2], "x", r.split(",")[0], r.split(",")[1]])
            for r in good_rows]
    data = _load(_write_csv(tmp_path / "b.csv", rows[:2] + [""] + rows[2:],
                            header="Usage,extra,emotion,pixels"))
    reference = _load(_write_csv(tmp_path / "c.csv", good_rows))
    np.testing.assert_array_equal(data.images, reference.images)
    np.testing.assert_array_equal(data.row_ids, np.arange(6))


def test_csv_header_with_a_column_twice_is_refused(tmp_path):
    """emotion,pixels,Usage,Usage: the last Usage was read, without a word
    (the first may be the one meant); an extra column twice is fine."""
    pixels = " ".join(["7"] * 2304)
    path = _write_csv(tmp_path / "dup.csv", [f"3,{pixels},Training,PublicTest"],
                      header="emotion,pixels,Usage,usage ")
    with pytest.raises(ValueError, match=r"column\(s\) \['Usage', 'usage '\] more than once"):
        _load(path)
    path = _write_csv(tmp_path / "extra.csv", [f"3,{pixels},Training,x,y"],
                      header="emotion,pixels,Usage,extra,extra")
    assert _load(path).usage.tolist() == ["Training"]


# ---------------------------------------------------------------- cache


def test_cache_is_reused_and_invalidated_by_changes(fer_copy, fer_sources, tmp_path,
                                                    capsys):
    cache_dir = tmp_path / "cache"
    first = load_fer2013(fer_copy, cache_dir=cache_dir, verbose=1)
    assert "wrote cache" in capsys.readouterr().out
    files = list(cache_dir.glob("*.npz"))
    assert len(files) == 1

    again = load_fer2013(fer_copy, cache_dir=cache_dir, verbose=1)
    assert "read from cache" in capsys.readouterr().out
    for key in ("images", "target", "usage", "filenames"):
        np.testing.assert_array_equal(again[key], first[key])

    # replace one image by another real face: the cache must not serve the old one
    name = first.filenames[0]
    other = fer_sources[first.filenames[-1]]
    shutil.copyfile(other, fer_copy / name)
    os.utime(fer_copy / name, ns=(time.time_ns(), time.time_ns() + 10**9))
    changed = load_fer2013(fer_copy, cache_dir=cache_dir, verbose=1)
    assert "read from cache" not in capsys.readouterr().out
    np.testing.assert_array_equal(changed.images[0], first.images[-1])
    assert len(list(cache_dir.glob("*.npz"))) == 1  # the stale entry is gone

    # a removed file too
    (fer_copy / first.filenames[1]).unlink()
    assert len(load_fer2013(fer_copy, cache_dir=cache_dir).target) == 48

    # bad files are remembered by the cache and still follow `errors`
    (fer_copy / "train" / "sad" / "Training_bad.jpg").write_bytes(b"garbage")
    for _ in range(2):
        with pytest.raises(ValueError, match="Training_bad.jpg"):
            load_fer2013(fer_copy, cache_dir=cache_dir)
    with pytest.warns(SkippedImagesWarning):
        assert len(load_fer2013(fer_copy, cache_dir=cache_dir, errors="skip").target) == 48
    (fer_copy / "train" / "sad" / "Training_bad.jpg").unlink()

    # a selection has its own entry; cache=False reads and writes nothing
    load_fer2013(fer_copy, usage="PublicTest", cache_dir=cache_dir)
    n_entries = len(list(cache_dir.glob("*.npz")))
    assert n_entries == 2
    load_fer2013(fer_copy, cache=False, cache_dir=tmp_path / "unused", verbose=1)
    out = capsys.readouterr().out
    assert "read from cache" not in out and "wrote cache" not in out
    assert not (tmp_path / "unused").exists()


def test_cache_sees_an_edit_that_puts_size_and_time_back(tmp_path):
    """An image rewritten with the same size whose old modification time is
    put back (``cp -p``, ``touch -r``, a tar extracted over the folder) was
    served from the cache: the key held size and mtime only.  The change
    time (ctime), which no tool sets back, is in the key now."""
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (3, 48, 48), dtype=np.uint8)
    root = tmp_path / "fer"
    for i, cls in enumerate(["happy", "sad", "happy"]):
        (root / "train" / cls).mkdir(parents=True, exist_ok=True)
        # BMP: the same size whatever the pixels
        Image.fromarray(faces[i]).save(root / "train" / cls / f"Training_{i}.bmp")
    first = load_fer2013(root, cache_dir=tmp_path / "cache")
    edited = root / "train" / first.filenames[0].split("/", 1)[1]
    st = edited.stat()
    Image.fromarray(255 - first.images[0]).save(edited)
    os.utime(edited, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (edited.stat().st_size, edited.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    again = load_fer2013(root, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again.images[0], 255 - first.images[0])
    np.testing.assert_array_equal(again.images[1:], first.images[1:])


def test_csv_cache_follows_the_file(tmp_path, good_rows):
    csv = _write_csv(tmp_path / "fer2013.csv", good_rows)
    cache_dir = tmp_path / "cache"
    first = load_fer2013(csv, cache_dir=cache_dir)
    np.testing.assert_array_equal(load_fer2013(csv, cache_dir=cache_dir).images,
                                  first.images)
    _write_csv(csv, good_rows[:4])
    os.utime(csv, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert len(load_fer2013(csv, cache_dir=cache_dir).target) == 4


def test_damaged_cache_is_rebuilt(fer_copy, tmp_path):
    cache_dir = tmp_path / "cache"
    first = load_fer2013(fer_copy, cache_dir=cache_dir)
    (entry,) = cache_dir.glob("*.npz")
    entry.write_bytes(b"damaged")
    with pytest.warns(UserWarning, match="unreadable cache file"):
        again = load_fer2013(fer_copy, cache_dir=cache_dir)
    np.testing.assert_array_equal(again.images, first.images)


# ---------------------------------------------------------------- parameters


def test_threads_and_verbose(fer_copy, capsys):
    one = _load(fer_copy, n_jobs=1)
    two = _load(fer_copy, n_jobs=2, verbose=2)
    out = capsys.readouterr().out
    assert "[load_fer2013] found 49 image files" in out
    assert "decoded 49/49 images" in out
    np.testing.assert_array_equal(one.images, two.images)
    np.testing.assert_array_equal(one.filenames, two.filenames)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"errors": "ignore"}, "'errors' parameter"),
        ({"usage": 3}, "'usage' parameter"),
        ({"n_jobs": 0}, "n_jobs=0"),
        ({"cache": "yes"}, "'cache' parameter"),
    ],
)
def test_bad_parameters(fer_copy, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_fer2013(fer_copy, **kwargs)


# ---------------------------------------------------------------- predefined split


def test_predefined_split_with_gridsearch(fer_copy):
    data = _load(fer_copy, usage=["Training", "PublicTest"])
    cv = fer2013_predefined_split(data.usage)
    assert isinstance(cv, PredefinedSplit) and cv.get_n_splits() == 1
    ((train, test),) = list(cv.split())
    np.testing.assert_array_equal(train, np.flatnonzero(data.usage == "Training"))
    np.testing.assert_array_equal(test, np.flatnonzero(data.usage == "PublicTest"))

    # 12x12 block means keep the tiny logistic regression fast
    X = downscale_local_mean(data.images / 255.0, (1, 4, 4)).reshape(len(data.images), -1)
    grid = {"C": [0.01, 1.0]}
    search = GridSearchCV(LogisticRegression(max_iter=1000), grid, cv=cv, refit=False)
    search.fit(X, data.target)
    for C, score in zip(grid["C"], search.cv_results_["mean_test_score"]):
        model = LogisticRegression(C=C, max_iter=1000).fit(X[train], data.target[train])
        assert score == pytest.approx(model.score(X[test], data.target[test]))


def test_predefined_split_other_usages_and_options():
    usage = np.array(["Training", "PublicTest", "PrivateTest", "Training"])
    with pytest.raises(ValueError, match=r"PrivateTest \(1 samples\).*neither in train"):
        fer2013_predefined_split(usage)
    cv = fer2013_predefined_split(usage, test=["PublicTest", "PrivateTest"])
    np.testing.assert_array_equal(cv.test_fold, [-1, 0, 0, -1])
    cv = fer2013_predefined_split(usage, train=("Training", "PublicTest"),
                                  test="privatetest")
    np.testing.assert_array_equal(cv.test_fold, [-1, -1, 0, -1])
    with pytest.raises(ValueError, match="in both train and test"):
        fer2013_predefined_split(usage, train=["Training", "PublicTest"],
                                 test=["PublicTest", "PrivateTest"])
    with pytest.raises(ValueError, match="Unknown FER-2013 usage 'Valid' in test"):
        fer2013_predefined_split(usage, test="Valid")
    with pytest.raises(ValueError, match=r"No sample of test usage \['PublicTest'\]"):
        fer2013_predefined_split(["Training", "Training"])
    with pytest.raises(ValueError, match=r"No sample of train usage"):
        fer2013_predefined_split(["PublicTest"])
    with pytest.raises(ValueError, match="usage is empty"):
        fer2013_predefined_split([])
    with pytest.raises(ValueError, match="1-D"):
        fer2013_predefined_split([["Training"]])


# ---------------------------------------------------------------- full folder


@pytest.fixture(scope="module")
def full_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("fersk-cache")


def test_full_folder_counts_and_cache(fer2013_root, full_cache, fer_small):
    start = time.perf_counter()
    data = load_fer2013(fer2013_root, cache_dir=full_cache)
    cold = time.perf_counter() - start
    counts = {
        (split, cls): len([f for f in os.listdir(fer2013_root / split / cls)
                           if f.endswith(".jpg")])
        for split in ("train", "test") for cls in FER2013_CLASSES
    }
    n_train = sum(v for (s, _), v in counts.items() if s == "train")
    n_test = sum(v for (s, _), v in counts.items() if s == "test")
    assert (n_train, n_test) == (28555, 3589)
    assert data.images.shape == (n_train + n_test, 48, 48)
    assert (data.usage == "Training").sum() == n_train
    assert (data.usage == "PublicTest").sum() == n_test
    for label, cls in enumerate(FER2013_CLASSES):
        assert (data.target == label).sum() == counts["train", cls] + counts["test", cls]
    assert data.skipped == []
    # the conftest fixture read some of these files on its own
    images, labels, names = fer_small
    position = {name: i for i, name in enumerate(data.filenames)}
    index = [position[n] for n in names]
    np.testing.assert_array_equal(data.images[index], images)
    np.testing.assert_array_equal(data.target[index], labels)

    start = time.perf_counter()
    warm = load_fer2013(fer2013_root, cache_dir=full_cache)
    warm_time = time.perf_counter() - start
    np.testing.assert_array_equal(warm.images, data.images)
    np.testing.assert_array_equal(warm.filenames, data.filenames)
    assert warm_time < 3 and warm_time < cold


# ---------------------------------------------------------------- image folders


@pytest.fixture
def photo_folder(tmp_path):
    """Classes of real photographs of mixed sizes and modes, as PNG/JPEG."""
    root = tmp_path / "photos"
    photos = {
        "people/astronaut.png": skdata.astronaut(),            # 512x512 RGB
        "people/nested/coffee.jpg": skdata.coffee(),           # 400x600 RGB
        "things/camera.png": skdata.camera(),                  # 512x512 grey
        "things/rocket.png": np.dstack([skdata.rocket(),       # 427x640 RGBA
                                        np.full(skdata.rocket().shape[:2], 255,
                                                np.uint8)]),
    }
    for rel, image in photos.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / rel, **({"quality": 95}
                                                   if rel.endswith(".jpg") else {}))
    return root


def _pil(path, mode):
    with Image.open(path) as im:
        return np.asarray(im.convert(mode))


def test_image_folder_mixed_sizes_colour_and_grey(photo_folder):
    data = load_image_folder(photo_folder, color=True)
    assert data.target_names.tolist() == ["people", "things"]
    assert data.filenames.tolist() == ["people/astronaut.png", "people/nested/coffee.jpg",
                                       "things/camera.png", "things/rocket.png"]
    assert data.target.tolist() == [0, 0, 1, 1]
    assert data.images.dtype == object and data.images.shape == (4,)
    assert [im.shape for im in data.images] == [(512, 512, 3), (400, 600, 3),
                                                (512, 512, 3), (427, 640, 3)]
    np.testing.assert_array_equal(data.images[0], skdata.astronaut())
    np.testing.assert_array_equal(data.images[2], np.dstack([skdata.camera()] * 3))
    np.testing.assert_array_equal(data.images[3], skdata.rocket())
    assert all(im.dtype == np.uint8 for im in data.images)
    assert data.images[data.target == 1].shape == (2,)

    grey = load_image_folder(photo_folder)
    assert [im.shape for im in grey.images] == [(512, 512), (400, 600), (512, 512),
                                                (427, 640)]
    np.testing.assert_array_equal(grey.images[2], skdata.camera())
    # colour read grey by FaceCropper's luma (scikit-image's rgb2gray), not Pillow's
    from skimage.color import rgb2gray

    rgb = _pil(photo_folder / "people/nested/coffee.jpg", "RGB").astype(np.float64)
    np.testing.assert_array_equal(grey.images[1], np.rint(rgb2gray(rgb)).astype(np.uint8))


def test_image_folder_resize(photo_folder):
    data = load_image_folder(photo_folder, size=(32, 40), color=True, n_jobs=2)
    assert data.images.shape == (4, 32, 40, 3) and data.images.dtype == np.uint8
    coffee = _pil(photo_folder / "people/nested/coffee.jpg", "RGB")
    expected = resize(coffee, (32, 40, 3), preserve_range=True,
                      anti_aliasing=True)
    np.testing.assert_array_equal(data.images[1], np.rint(expected).astype(np.uint8))
    square = load_image_folder(photo_folder, size=24)
    assert square.images.shape == (4, 24, 24)
    # same-size images are stacked without resizing
    (photo_folder / "people/nested/coffee.jpg").unlink()
    (photo_folder / "things/rocket.png").unlink()
    same = load_image_folder(photo_folder)
    assert same.images.shape == (2, 512, 512) and same.images.dtype == np.uint8
    X, y = load_image_folder(photo_folder, return_X_y=True)
    np.testing.assert_array_equal(X, same.images)
    assert y.tolist() == [0, 1]


def test_image_folder_bad_files(photo_folder):
    camera = (photo_folder / "things" / "camera.png").read_bytes()
    (photo_folder / "things" / "broken.png").write_bytes(camera[: len(camera) // 2])
    with pytest.raises(ValueError, match=r"things/broken\.png: unreadable image "
                                         r"\(OSError: .*truncated"):
        load_image_folder(photo_folder)
    with pytest.warns(SkippedImagesWarning, match="skipped 1 image file") as caught:
        data = load_image_folder(photo_folder, size=16, errors="skip")
    assert caught[0].filename == __file__  # points at the caller
    assert [n for n, _ in data.skipped] == ["things/broken.png"]
    assert data.filenames.tolist() == ["people/astronaut.png", "people/nested/coffee.jpg",
                                       "things/camera.png", "things/rocket.png"]
    assert data.target.tolist() == [0, 0, 1, 1] and len(data.images) == 4
    # a non-image extension is not a sample, unless extensions=None
    (photo_folder / "things" / "notes.txt").write_text("hello")
    (photo_folder / "things" / "broken.png").unlink()
    assert len(load_image_folder(photo_folder).target) == 4
    with pytest.raises(ValueError, match=r"things/notes\.txt: not a readable image"):
        load_image_folder(photo_folder, extensions=None)
    assert load_image_folder(photo_folder, extensions=["PNG"]).filenames.tolist() == [
        "people/astronaut.png", "things/camera.png", "things/rocket.png"]


def test_image_folder_names_broken_links_and_refuses_nothing_left(photo_folder):
    """A broken symlink was left out without a word (not a file to scandir);
    errors='skip' on a folder of unreadable files returned an empty set."""
    import os

    link = photo_folder / "things" / "gone.png"
    os.symlink(photo_folder / "things" / "no-such.png", link)
    with pytest.raises(ValueError, match=r"things/gone\.png"):
        load_image_folder(photo_folder)
    with pytest.warns(SkippedImagesWarning):
        data = load_image_folder(photo_folder, errors="skip")
    assert [n for n, _ in data.skipped] == ["things/gone.png"] and len(data.target) == 4
    link.unlink()
    bad = photo_folder.parent / "all_bad"
    (bad / "a").mkdir(parents=True)
    (bad / "a" / "x.png").write_bytes(b"not an image")
    with pytest.warns(SkippedImagesWarning), pytest.raises(ValueError, match="none of the 1"):
        load_image_folder(bad, errors="skip")


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="POSIX links")
def test_folder_links_are_walked_once_and_loops_left(photo_folder, tmp_path):
    """A link to a folder above (``loop -> ..``) listed the other classes'
    images under this class, then failed with "Too many levels of symbolic
    links"; a second link to one folder listed its images twice.  A link to
    another folder is still followed."""
    os.symlink("..", photo_folder / "people" / "loop")
    os.symlink("nested", photo_folder / "people" / "twice")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    Image.fromarray(skdata.camera()[:64, :64]).save(outside / "moon.png")
    os.symlink(outside, photo_folder / "things" / "linked")
    data = load_image_folder(photo_folder)
    assert data.filenames.tolist() == ["people/astronaut.png", "people/nested/coffee.jpg",
                                       "things/camera.png", "things/linked/moon.png",
                                       "things/rocket.png"]
    assert data.target.tolist() == [0, 0, 1, 1, 1]
    # FER-2013's folders: the same walk
    fer = tmp_path / "fer"
    for rel in ("train/angry/Training_1.png", "train/happy/Training_2.png"):
        (fer / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(skdata.camera()[:48, :48]).save(fer / rel)
    os.symlink("..", fer / "train" / "angry" / "loop")
    got = _load(fer)
    assert got.filenames.tolist() == ["train/angry/Training_1.png", "train/happy/Training_2.png"]
    assert got.target.tolist() == [0, 3]


def test_image_folder_decompression_bomb_names_the_file(photo_folder, monkeypatch):
    from PIL import Image

    # Pillow's limit lowered so that these photos stand for a huge image.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ValueError, match=r"people/astronaut\.png: too many pixels to decode"):
        load_image_folder(photo_folder)


def test_image_folder_empty_and_layout_errors(tmp_path, photo_folder):
    with pytest.raises(ValueError, match="has no class sub-folders"):
        load_image_folder(tmp_path / "photos" / "people" / "nested")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="No image files in the class folders"):
        load_image_folder(tmp_path / "empty")
    with pytest.raises(ValueError, match="is not a folder"):
        load_image_folder(tmp_path / "missing")
    (photo_folder / "zebra").mkdir()
    with pytest.warns(UserWarning, match=r"\['zebra'\] hold no image file"):
        data = load_image_folder(photo_folder, size=8)
    assert data.target_names.tolist() == ["people", "things", "zebra"]
    (photo_folder / "zebra").rmdir()
    shutil.copyfile(photo_folder / "things/camera.png", photo_folder / "loose.png")
    with pytest.warns(UserWarning, match=r"not loaded \(no class folder\).*loose\.png"):
        load_image_folder(photo_folder, size=8)
    with pytest.raises(ValueError, match="size"):
        load_image_folder(photo_folder, size=(0, 3))
    with pytest.raises(ValueError, match="size"):
        load_image_folder(photo_folder, size=(8, 8, 3))


def test_image_folder_reads_fer_faces(fer_copy, fer_sources, capsys):
    data = load_image_folder(fer_copy / "train", verbose=1)
    assert "decoded 35/35 images" in capsys.readouterr().out
    assert data.images.shape == (35, 48, 48)
    assert data.target_names.tolist() == sorted(FER2013_CLASSES)
    fer = _load(fer_copy, usage="Training")
    # same pixels; labels differ only by naming order (sorted vs FER order)
    position = {name: i for i, name in enumerate(data.filenames)}
    index = [position[n.split("/", 1)[1]] for n in fer.filenames]
    np.testing.assert_array_equal(data.images[index], fer.images)
    np.testing.assert_array_equal(data.target_names[data.target[index]],
                                  np.array(FER2013_CLASSES)[fer.target])


def test_image_folder_16_bit_and_float_images(tmp_path):
    camera16 = skdata.camera().astype(np.uint16) * 256 + 100  # up to 65380
    (tmp_path / "deep").mkdir()
    Image.fromarray(camera16).save(tmp_path / "deep" / "camera16.png")
    data = load_image_folder(tmp_path)
    np.testing.assert_array_equal(data.images[0], camera16 >> 8)  # not clipped at 255
    rgb = load_image_folder(tmp_path, color=True).images[0]
    np.testing.assert_array_equal(rgb, np.dstack([camera16 >> 8] * 3))
    Image.fromarray(skdata.camera().astype(np.float32)).save(tmp_path / "deep" / "f.tif")
    with pytest.raises(ValueError, match=r"deep/f\.tif: floating-point image"):
        load_image_folder(tmp_path)


def test_one_list_of_image_extensions_and_exif_orientation_everywhere(tmp_path):
    """The CLI reads the same files as the loaders (.pgm & co.), and the
    loaders apply EXIF orientation as FaceCropper and the CLI do."""
    from PIL import Image

    from fersk import FaceCropper, cli, datasets
    from fersk._image_files import IMAGE_EXTENSIONS

    assert cli.IMAGE_EXTENSIONS == datasets.IMAGE_EXTENSIONS == IMAGE_EXTENSIONS
    assert ".pgm" in cli.IMAGE_EXTENSIONS
    tall = np.zeros((6, 4), np.uint8)
    tall[0, 0] = 255
    im = Image.fromarray(tall)
    exif = im.getexif()
    exif[0x0112] = 6  # stored rotated: turn 90 degrees clockwise to show
    (tmp_path / "happy").mkdir()
    im.save(tmp_path / "happy" / "a.jpg", exif=exif, quality=100)
    loaded = datasets.load_image_folder(tmp_path).images[0]
    via_cropper = FaceCropper(detector=None, size=(4, 6)).transform([tmp_path / "happy" / "a.jpg"])[0]
    assert loaded.shape == (4, 6)
    np.testing.assert_array_equal(loaded, via_cropper)


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
@pytest.mark.parametrize("color", [False, True])
def test_an_uncompressed_tiff_turned_by_its_tag_is_read_as_its_png(tmp_path, orientation, color):
    """Pillow 13.0.0 read an uncompressed grey TIFF file tagged orientation
    5-8 scrambled (rows mapped at the turned size): every reader of fersk
    gave another image than the same pixels and tag in a PNG."""
    from PIL import Image

    from fersk import FaceCropper
    from fersk._image_files import read_image_file
    from fersk.datasets import load_image_folder

    stored = (np.arange(12 * 20).reshape(12, 20) % 251).astype(np.uint8)
    if color:
        stored = np.stack([stored, stored[::-1], 255 - stored], axis=-1)
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = orientation
    tiff = tmp_path / "folder" / "happy" / "face.tif"
    tiff.parent.mkdir(parents=True)
    im.save(tiff, exif=exif)  # uncompressed
    im.save(tmp_path / "face.png", exif=exif)
    shown = read_image_file(tmp_path / "face.png")
    assert shown.shape == (20, 12, 3)[: 3 if color else 2]
    np.testing.assert_array_equal(read_image_file(tiff), shown)
    np.testing.assert_array_equal(load_image_folder(tmp_path / "folder", color=color).images[0], shown)
    cropped = FaceCropper(detector=None, size=(20, 12), color=color)
    np.testing.assert_array_equal(cropped.transform([tiff])[0],
                                  cropped.transform([tmp_path / "face.png"])[0])


def test_colour_files_loaded_grey_are_the_pipelines_pixels(tmp_path):
    """load_image_folder(color=False) reads a colour photo as FaceCropper
    reads the same file at prediction (rgb2gray's luma), pixel for pixel:
    Pillow's convert("L") (another luma) put up to 14 grey levels between
    the faces a model was trained on and the ones it was asked about."""
    from fersk import FaceCropper
    from fersk.datasets import load_image_folder

    (tmp_path / "happy").mkdir()
    photo = skdata.astronaut()[::8, ::8]  # 64x64, colour
    Image.fromarray(photo).save(tmp_path / "happy" / "colour.png")
    Image.fromarray(photo).convert("L").save(tmp_path / "happy" / "grey.png")
    loaded = load_image_folder(tmp_path, color=False)
    order = list(loaded.filenames)
    at_prediction = FaceCropper(detector=None, size=(64, 64)).fit_transform(
        [str(tmp_path / "happy" / "colour.png")]).reshape(64, 64)
    np.testing.assert_array_equal(loaded.images[order.index("happy/colour.png")], at_prediction)
    # a grey file keeps its own pixels
    np.testing.assert_array_equal(loaded.images[order.index("happy/grey.png")],
                                  np.array(Image.open(tmp_path / "happy" / "grey.png")))


def test_files_of_other_extensions_in_class_folders_are_named(tmp_path):
    """A photo in a format not listed (an iPhone's .heic) in a class folder
    is a sample: it was left out without a word; now a warning counts and
    names such files, and listing the extension reads it."""
    from fersk.datasets import load_image_folder

    (tmp_path / "happy").mkdir()
    photo = skdata.astronaut()[::8, ::8]
    Image.fromarray(photo).save(tmp_path / "happy" / "a.png")
    Image.fromarray(photo).save(tmp_path / "happy" / "b.png")
    os.rename(tmp_path / "happy" / "b.png", tmp_path / "happy" / "b.heic")
    (tmp_path / "happy" / ".DS_Store").write_bytes(b"")  # hidden: not a sample, not said
    with pytest.warns(UserWarning, match=r"1 file\(s\) in the class folders are not loaded.*"
                                         r"\['\.heic'\].*happy/b\.heic"):
        assert len(load_image_folder(tmp_path).target) == 1
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_image_folder(tmp_path, extensions=[".png", ".heic"]).target) == 2


def test_a_link_to_another_class_folder_does_not_relabel_its_images(tmp_path):
    """happy/more -> ../sad listed sad's image under happy too: one face
    with two labels.  A class folder's images now carry its label alone; a
    link to a folder outside the classes is still followed."""
    from fersk.datasets import load_image_folder

    photo = skdata.astronaut()[::8, ::8]
    for cls in ("happy", "sad"):
        (tmp_path / cls).mkdir()
        Image.fromarray(photo).save(tmp_path / cls / f"{cls}.png")
    os.symlink(tmp_path / "sad", tmp_path / "happy" / "more")
    (tmp_path.parent / f"{tmp_path.name}_extra").mkdir()
    Image.fromarray(photo).save(tmp_path.parent / f"{tmp_path.name}_extra" / "x.png")
    os.symlink(tmp_path.parent / f"{tmp_path.name}_extra", tmp_path / "happy" / "extra")
    loaded = load_image_folder(tmp_path)
    assert loaded.filenames.tolist() == ["happy/extra/x.png", "happy/happy.png", "sad/sad.png"]
    assert loaded.target.tolist() == [0, 0, 1]


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="POSIX links")
def test_links_below_class_folders_never_give_an_image_two_labels(tmp_path):
    """happy/more -> ../sad/old listed sad/old's image as happy and as sad,
    and one outside folder linked from happy/ and sad/ listed its image once
    with each label (the walks of the class folders did not share what they
    had seen).  A link into another class is left out, as a link to the class
    itself is; one folder reached from two classes is an error."""
    from fersk.datasets import load_image_folder

    photo = skdata.astronaut()[::8, ::8]
    (tmp_path / "happy").mkdir()
    (tmp_path / "sad" / "old").mkdir(parents=True)
    Image.fromarray(photo).save(tmp_path / "happy" / "h.png")
    Image.fromarray(photo).save(tmp_path / "sad" / "old" / "s.png")
    os.symlink("../sad/old", tmp_path / "happy" / "more")
    os.symlink("../sad/old/s.png", tmp_path / "happy" / "s_link.png")
    loaded = load_image_folder(tmp_path)
    assert loaded.filenames.tolist() == ["happy/h.png", "sad/old/s.png"]
    assert loaded.target.tolist() == [0, 1]
    outside = tmp_path.parent / f"{tmp_path.name}_x"
    outside.mkdir()
    Image.fromarray(photo).save(outside / "x.png")
    os.symlink(outside, tmp_path / "happy" / "extra")
    os.symlink(outside, tmp_path / "sad" / "extra")
    with pytest.raises(ValueError, match=r"happy/extra' and 'sad/extra' are one folder on disk"):
        load_image_folder(tmp_path)


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="POSIX links")
def test_a_class_folder_that_is_a_broken_link_is_an_error(tmp_path):
    """angry -> /mnt/not-mounted/angry vanished without a word: target_names
    lost a class and every later class's code shifted down by one."""
    from fersk.datasets import load_image_folder

    for cls in ("happy", "sad"):
        (tmp_path / cls).mkdir()
        Image.fromarray(skdata.camera()[:48, :48]).save(tmp_path / cls / "x.png")
    os.symlink(tmp_path / "not-mounted" / "angry", tmp_path / "angry")
    with pytest.raises(FileNotFoundError, match=r"broken link.*angry ->.*not-mounted"):
        load_image_folder(tmp_path)
    fer = tmp_path / "fer" / "train"
    (fer / "happy").mkdir(parents=True)
    Image.fromarray(skdata.camera()[:48, :48]).save(fer / "happy" / "Training_1.png")
    os.symlink(tmp_path / "not-mounted" / "angry", fer / "angry")
    with pytest.raises(FileNotFoundError, match="broken link"):
        _load(tmp_path / "fer")


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="POSIX links")
def test_a_class_folder_that_links_to_another_is_an_error(tmp_path):
    """joy -> happy beside happy loaded each image twice, once labelled
    happy and once joy (and FER-2013's test/happy -> ../train/happy, or
    a split folder linked twice, read every face twice): a clear error names
    both folders."""
    from fersk.datasets import load_image_folder

    photo = skdata.astronaut()[::8, ::8]
    for cls in ("happy", "sad"):
        (tmp_path / "photos" / cls).mkdir(parents=True)
        Image.fromarray(photo).save(tmp_path / "photos" / cls / f"{cls}.png")
    os.symlink("happy", tmp_path / "photos" / "joy")
    with pytest.raises(ValueError, match=r"happy' and .*joy' are one folder on disk"):
        load_image_folder(tmp_path / "photos")
    fer = tmp_path / "fer"
    for rel in ("train/angry/Training_1.png", "train/happy/Training_2.png",
                "test/happy/PublicTest_3.png"):
        (fer / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(skdata.camera()[:48, :48]).save(fer / rel)
    os.symlink("../train/angry", fer / "test" / "angry")
    with pytest.raises(ValueError, match="one folder on disk"):
        _load(fer)
    os.unlink(fer / "test" / "angry")
    os.symlink("train", fer / "train_again")
    with pytest.raises(ValueError, match="one folder on disk"):
        _load(fer)
    os.unlink(fer / "train_again")
    os.symlink("../../test/happy", fer / "train" / "angry" / "more")  # inside a class: not walked
    got = _load(fer)
    assert got.filenames.tolist() == ["test/happy/PublicTest_3.png",
                                      "train/angry/Training_1.png", "train/happy/Training_2.png"]


@pytest.mark.skipif(os.name == "nt", reason="symbolic links: POSIX")
def test_a_link_loop_is_named_as_a_broken_link(tmp_path):
    """A link to itself (ELOOP) where a class folder could be, or in a class
    folder, raised OSError "Too many levels of symbolic links" from inside
    the walk; as a class folder it is a broken link now (its class would
    vanish), in a class folder a file that cannot be read."""
    from fersk import FaceCropper
    from fersk.datasets import load_sfew

    for root, load in ((tmp_path / "folder", load_image_folder),
                       (tmp_path / "sfew", lambda r: load_sfew(
                           r, cropper=FaceCropper(detector=None), cache=False))):
        (root / "sad").mkdir(parents=True)
        Image.fromarray(np.zeros((48, 48), np.uint8)).save(root / "sad" / "a.png")
        os.symlink("happy", root / "happy")
        with pytest.raises(FileNotFoundError, match=r"broken link\(s\) or link loop\(s\) "
                                                    r"\['happy -> happy'\]"):
            load(root)
        (root / "happy").unlink()
    os.symlink("b.png", tmp_path / "folder" / "sad" / "b.png")
    with pytest.raises(ValueError, match="b.png"):
        load_image_folder(tmp_path / "folder")
