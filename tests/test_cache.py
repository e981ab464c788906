"""fersk's cache folder: where it is, what is fersk's there, clearing only that."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fersk import onnx
from fersk.cache import cache_contents, cache_home, clear_cache
from fersk.cli import main
from fersk.datasets import load_fer2013


def _fer_csv(path, n=4):
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        f.write("emotion,pixels,Usage\n")
        for i in range(n):
            pixels = " ".join(map(str, rng.integers(0, 256, 48 * 48)))
            f.write(f"{i % 7},{pixels},Training\n")
    return path


def test_cache_home_order(monkeypatch, tmp_path):
    monkeypatch.delenv("FERSK_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_home() == cache_home(None) and cache_home().name == "fersk"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_home() == tmp_path / "xdg" / "fersk"
    # the ONNX exports follow the same folder (they used to ignore XDG_CACHE_HOME)
    assert onnx.cache_dir() == tmp_path / "xdg" / "fersk" / "onnx"
    monkeypatch.setenv("FERSK_CACHE", str(tmp_path / "mine"))
    assert cache_home() == tmp_path / "mine"
    assert onnx.cache_dir() == tmp_path / "mine" / "onnx"
    assert cache_home(tmp_path / "given") == tmp_path / "given"


def test_dataset_loaders_write_where_cache_home_says(monkeypatch, tmp_path):
    monkeypatch.setenv("FERSK_CACHE", str(tmp_path / "cache"))
    load_fer2013(_fer_csv(tmp_path / "fer.csv"))
    (entry,) = cache_contents()
    assert entry["kind"] == "dataset" and entry["path"].parent == tmp_path / "cache"


def test_clear_cache_removes_only_what_fersk_wrote(tmp_path):
    root = tmp_path / "cache"
    load_fer2013(_fer_csv(tmp_path / "fer.csv"), cache_dir=root)
    (ours,) = root.glob("*.npz")
    (root / "onnx").mkdir()
    graph = root / "onnx" / "wild_vgg_fast.network-0123456789abcdef.onnx"
    mtcnn = root / "onnx" / "mtcnn-462439cbdcbdfac1-pnet.onnx"
    for f in (graph, mtcnn):
        f.write_bytes(b"graph\x12\x0bfersk_graph")  # fersk's metadata key inside
    old_tmp, young_tmp = root / ".tmp-fersk-abc_1234.npz", root / "onnx" / (
        ".mtcnn-462439cbdcbdfac1-pnet.onnx.xyz_1234.tmp")
    old_onnx_tmp = root / "onnx" / ".wild_vgg_fast.network-0123456789abcdef.onnx.k2j4_9z8.tmp"
    for f in (old_tmp, young_tmp, old_onnx_tmp):
        f.write_bytes(b"half")
    hour_ago = time.time() - 7200
    # What fersk did not write: other names, a look-alike name whose key is
    # not fersk's, a user's own graphs (one named like fersk's), another
    # program's old temporary files, a folder.
    foreign = [root / "notes.txt", root / "my_arrays.npz", root / "onnx" / "my_model.onnx",
               root / ("fer2013-folder-000000000000-Training-" + "0" * 24 + ".npz"),
               root / "onnx" / "detector-3f9c2a7b1e4d8c06.onnx", root / ".tmp-abc123.npz",
               root / "onnx" / ".m.onnx.xyz.tmp", root / "onnx" / "mtcnn-0a-onet.onnx"]
    foreign[0].write_text("mine")
    np.savez(foreign[1], a=np.arange(3))
    foreign[2].write_bytes(b"mine")
    np.savez(foreign[3], key=np.array("f" * 64))
    for f in foreign[4:7]:
        f.write_bytes(b"mine")
    foreign[7].write_bytes(b"")
    for f in (old_tmp, old_onnx_tmp, *foreign[5:7]):
        os.utime(f, (hour_ago, hour_ago))
    (root / "keep_me").mkdir()

    kinds = {e["path"]: e["kind"] for e in cache_contents(root)}
    assert kinds[ours] == "dataset" and kinds[graph] == kinds[mtcnn] == "onnx"
    assert kinds[old_tmp] == kinds[old_onnx_tmp] == "unfinished" and kinds[young_tmp] is None
    assert all(kinds[f] is None for f in foreign)

    removed = {e["path"] for e in clear_cache(root)}
    assert removed == {ours, graph, mtcnn, old_tmp, old_onnx_tmp}
    assert not any(p.exists() for p in removed)
    assert all(f.exists() for f in foreign) and young_tmp.exists()
    assert (root / "keep_me").is_dir()
    assert clear_cache(root) == []
    # a cleared dataset is simply decoded again
    assert len(load_fer2013(tmp_path / "fer.csv", cache_dir=root).target) == 4


def test_written_files_get_the_mode_a_user_expects(tmp_path):
    # mkstemp makes private (0o600) files: renamed into place, a user's
    # readable CSV turned private and caches could not be shared.
    import stat

    from fersk._fsync import _umask
    from fersk.cli._common import _write_beside

    def mode(path):
        return stat.S_IMODE(os.stat(path).st_mode)

    expected = 0o666 & ~_umask()
    old = tmp_path / "results.csv"
    old.write_text("old")
    os.chmod(old, 0o640)
    _write_beside(old, lambda tmp: Path(tmp).write_text("new"))
    assert old.read_text() == "new" and mode(old) == 0o640
    new = tmp_path / "new.csv"
    _write_beside(new, lambda tmp: Path(tmp).write_text("new"))
    assert mode(new) == expected
    load_fer2013(_fer_csv(tmp_path / "fer.csv"), cache_dir=tmp_path / "cache")
    (entry,) = (tmp_path / "cache").glob("*.npz")
    assert mode(entry) == expected


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="POSIX links")
def test_an_atomic_write_through_a_link_keeps_the_link(tmp_path):
    """latest.onnx -> runs/model.onnx became a plain file with the new bytes
    and the link's target kept the old model (export_network, quantize)."""
    from fersk._fsync import written_atomically
    from fersk.onnx._common import _atomic_write

    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "model.onnx").write_text("old")
    os.symlink("runs/model.onnx", tmp_path / "latest.onnx")
    with written_atomically(tmp_path / "latest.onnx") as tmp:
        Path(tmp).write_text("new")
    assert os.path.islink(tmp_path / "latest.onnx")
    assert (tmp_path / "runs" / "model.onnx").read_text() == "new"
    _atomic_write(tmp_path / "latest.onnx", b"newer")
    assert os.path.islink(tmp_path / "latest.onnx")
    assert (tmp_path / "runs" / "model.onnx").read_bytes() == b"newer"
    assert sorted(os.listdir(tmp_path / "runs")) == ["model.onnx"]


def test_a_failed_flush_keeps_the_old_file(tmp_path, monkeypatch):
    """fsync's EIO on the new file was passed over and the unflushed file
    renamed over the good one; a folder's flush that fails is still passed
    over (it only orders the rename), as is a file system that cannot flush."""
    import errno

    from fersk import _fsync

    target = tmp_path / "model.npz"
    target.write_text("old, good")
    real = os.fsync
    answer = {"errno": errno.EIO}

    def fsync(fd):
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".model.npz."):
            raise OSError(answer["errno"], os.strerror(answer["errno"]))
        return real(fd)

    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to tell the files apart")
    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="Input/output error"):
        with _fsync.written_atomically(target) as tmp:
            Path(tmp).write_text("new")
    assert target.read_text() == "old, good" and os.listdir(tmp_path) == ["model.npz"]
    answer["errno"] = errno.EINVAL  # this file system does not flush
    with _fsync.written_atomically(target) as tmp:
        Path(tmp).write_text("new")
    assert target.read_text() == "new"
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.EIO, "x"))
                        if os.path.isdir(os.readlink(f"/proc/self/fd/{fd}")) else real(fd))
    _fsync.fsync_path(tmp_path)  # a folder: passed over


def test_listing_skips_a_file_renamed_away_meanwhile(tmp_path, monkeypatch):
    """Another process's write renames its temporary file between the
    listing and the stat: that file is skipped (FileNotFoundError escaped)."""
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "gone.txt").write_text("x")
    real_is_file = Path.is_file

    def is_file_then_gone(path):
        found = real_is_file(path)
        if path.name == "gone.txt":
            path.unlink()  # renamed away by another process, just now
        return found

    monkeypatch.setattr(Path, "is_file", is_file_then_gone)
    assert [e["path"].name for e in cache_contents(tmp_path)] == ["notes.txt"]


def test_a_cache_folder_named_onnx_lists_its_datasets_as_fersks(tmp_path):
    """A cache folder named onnx (``fersk cache --dir .../onnx``): its
    dataset files were listed "not fersk's" and kept by clear_cache, the
    kind being read from the parent folder's name."""
    root = tmp_path / "onnx"
    load_fer2013(_fer_csv(tmp_path / "fer.csv"), cache_dir=root)
    (ours,) = root.glob("*.npz")
    assert {e["path"]: e["kind"] for e in cache_contents(root)}[ours] == "dataset"
    assert [e["path"] for e in clear_cache(root)] == [ours]


def test_clear_cache_of_a_missing_folder(tmp_path):
    assert cache_contents(tmp_path / "none") == [] == clear_cache(tmp_path / "none")


def test_fersk_cache_command_lists_and_clears(capsys, tmp_path):
    root = tmp_path / "cache"
    load_fer2013(_fer_csv(tmp_path / "fer.csv"), cache_dir=root)
    (root / "notes.txt").write_text("mine")
    assert main(["cache", "--dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "dataset" in out and "not fersk's" in out and "notes.txt" in out
    assert "1 files of fersk's" in out
    assert main(["cache", "--dir", str(root), "--clear"]) == 0
    out = capsys.readouterr().out
    assert "removed 1 files" in out and "kept" in out and "notes.txt" in out
    assert [p.name for p in root.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("argv", [["cache"], ["cache", "--clear"]])
def test_fersk_cache_imports_no_tensorflow(tmp_path, argv):
    code = (
        "import sys\n"
        "from fersk.cli import main\n"
        f"status = main({argv!r})\n"
        "assert not {'tensorflow', 'keras'} & set(sys.modules), sorted(sys.modules)\n"
        "sys.exit(status)\n"
    )
    env = {**os.environ, "FERSK_CACHE": str(tmp_path)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=env)
    assert res.returncode == 0, res.stderr


def test_replacing_an_entry_never_takes_a_users_look_alike_file(tmp_path):
    # A new key replaces fersk's older file of the same source; a user's file
    # in the cache_dir they chose, named alike, stays.
    root = tmp_path / "cache"
    csv = _fer_csv(tmp_path / "fer.csv")
    load_fer2013(csv, cache_dir=root)
    (ours,) = root.glob("*.npz")
    prefix = ours.name[: -len("-" + "0" * 24 + ".npz")]
    mine = root / f"{prefix}-my-own-arrays.npz"
    np.savez(mine, a=np.arange(3))
    _fer_csv(csv, n=5)  # changed data: a new key
    assert len(load_fer2013(csv, cache_dir=root).target) == 5
    assert not ours.exists() and mine.exists()
    assert len([e for e in cache_contents(root) if e["kind"] == "dataset"]) == 1


def test_relative_cache_folder_is_taken_from_where_it_was_named(monkeypatch, tmp_path):
    """A relative FERSK_CACHE is made absolute: a model loaded on ONNX keeps
    its graph's path, and still predicts after the working directory changes."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    from sklearn.pipeline import make_pipeline

    from fersk import CNNClassifier, FaceCropper, pretrained

    (tmp_path / "here").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    here = Path(os.getcwd())
    monkeypatch.setenv("FERSK_CACHE", "relcache")
    assert cache_home() == here / "relcache" and onnx.cache_dir() == here / "relcache" / "onnx"
    assert cache_home("given") == here / "given"
    monkeypatch.setenv("FERSK_CACHE", "~/fersk-cache")
    assert cache_home() == Path.home() / "fersk-cache"
    monkeypatch.setenv("FERSK_CACHE", "relcache")
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (20, 16, 16), dtype=np.uint8), np.arange(20) % 2
    pipe = make_pipeline(FaceCropper(detector=None, size=(16, 16)), CNNClassifier(
        "mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1, random_state=0)).fit(X, y)
    model = pretrained.load(pretrained.save(pipe, "model"), backend="onnx")
    expected = model.predict_proba(X[:3])
    monkeypatch.chdir(tmp_path / "elsewhere")
    np.testing.assert_allclose(model.predict_proba(X[:3]), expected)
    assert not (tmp_path / "elsewhere" / "relcache").exists()


def test_long_model_folder_names_fit_the_cached_graphs_file_name(monkeypatch, tmp_path):
    """A model folder of a 230-character name loads on ONNX: its graph's
    cache file takes the first 64 bytes of the name (not the whole name,
    over the 255 bytes a file name may have), and is fersk's to clear."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    from sklearn.pipeline import make_pipeline

    from fersk import CNNClassifier, FaceCropper, pretrained

    monkeypatch.setenv("FERSK_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (20, 16, 16), dtype=np.uint8), np.arange(20) % 2
    pipe = make_pipeline(FaceCropper(detector=None, size=(16, 16)), CNNClassifier(
        "mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1, random_state=0)).fit(X, y)
    for name in ("m" * 230, "é" * 120):
        model = pretrained.load(pretrained.save(pipe, tmp_path / name), backend="onnx")
        np.testing.assert_allclose(model.predict_proba(X), pipe.predict_proba(X), atol=1e-5)
        graph = Path(model[-1].path)
        assert graph.name.startswith(name[:32]) and len(graph.name.encode()) < 160
    assert [e["kind"] for e in cache_contents()] == ["onnx", "onnx"]
