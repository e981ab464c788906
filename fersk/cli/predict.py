"""``fersk predict``: classify the faces in image files, folders and videos.

Imported by :func:`fersk.cli.main` only when this command runs; the
argument parser (in :mod:`fersk.cli`) describes its options.
"""

import contextlib
import csv
import json
import os
import sys
import time
from pathlib import Path

from PIL import Image

from fersk import _image_files
from fersk._image_files import pil_to_uint8
from fersk._progress import Progress

from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    _FileError,
    _first_line,
    _refuse_foreign_file,
    _refuse_input_as_output,
    _replace_output,
    _temp_beside,
    _UsageError,
)
from ._faces import (
    _FACE_COLUMNS,
    _annotate,
    _is_fersk_annotation,
    _label,
    _load_model,
    _predict,
    _record,
)

__all__ = ["run"]

# Image formats that may be animated: read as a video when they are.
_ANIMATABLE = _image_files.ANIMATABLE
#: How every --csv file of fersk predict begins: a file that does not is a
#: user's, never replaced.
_CSV_COLUMNS = ["file", "frame", "time_s", "face"]
CSV_HEADER_START = ",".join(_CSV_COLUMNS)
_VIDEO_HINT = _image_files.VIDEO_HINT


def run(args):
    """Run ``fersk predict``: a row per face found, problems reported per file.

    Each image file (folders are recursed) is read, its face found and
    classified, in batches; each sampled frame of a video (or an animated
    image) gives a row.  Rows are printed as a table, written as CSV
    (``--csv``) or gathered in one JSON document (``--json``); annotated
    copies go to ``--annotate``.  A file that cannot be read, a folder
    without images or an image without a face is reported and the others
    are still classified.

    Parameters
    ----------
    args : argparse.Namespace
        The options of ``fersk predict``, as :func:`fersk.cli.main` parses
        them (``paths``, ``model``, ``json``, ``csv``, ``annotate``,
        ``on_no_face``, ``faces``, ``every``, ``batch_size``, ``verbose``).

    Returns
    -------
    status : int
        0 when every file gave its rows, 1 when some input failed.

    Raises
    ------
    _UsageError
        Conflicting options, an ``--annotate`` path that is not a folder, an
        unknown model or an unwritable ``--csv`` file (:func:`fersk.cli.main`
        reports it and returns 2).

    See Also
    --------
    fersk.cli.main : Parses the command line and calls this function.

    Examples
    --------
    >>> from fersk.cli import main
    >>> main(["predict", "photo.png", "--json", "--csv", "-"])  # both on stdout: usage error
    2

    From the shell::

        fersk predict photos/ --json > emotions.json
        fersk predict clip.mp4 --every 5 --csv clip_emotions.csv
    """
    if args.annotate is not None:
        folder = Path(args.annotate)
        if folder.exists() and not folder.is_dir():
            raise _UsageError(f"--annotate: {args.annotate!r} exists and is not a folder.")
    if args.json and args.csv == "-":
        raise _UsageError("--json and --csv - both write to stdout; give --csv a file name.")
    entries, path_errors, not_read = _collect(args.paths, args.annotate)
    inputs = [path for _, path, _ in entries]
    _refuse_input_as_output("--csv", args.csv, inputs)
    _refuse_foreign_file("--csv", args.csv,
                         lambda path: _first_line(path).startswith(CSV_HEADER_START))
    if args.annotate is not None:
        for name, path, rel in entries:  # its copy is named <name>.png in DIR
            _refuse_input_as_output(
                f"--annotate {args.annotate} (the annotated copy of {name})",
                _Annotator.target(args.annotate, rel), [path],
            )
    policy = _policy(args.on_no_face)
    model = _load_model(args.model, getattr(args, "backend", "auto"))
    width = min(max([len(name) for name, _, _ in entries] + [4]), 60)
    reporter = _Reporter(args, model, width, not_read)
    try:
        return _run(args, entries, path_errors, policy, model, reporter)
    except BaseException:  # Ctrl-C, a failure: FILE untouched, no half table beside it
        reporter.discard()
        raise


def _run(args, entries, path_errors, policy, model, reporter):
    annotator = _Annotator(args.annotate) if args.annotate is not None else None
    for file, message in path_errors:
        reporter.error(file, message)
    start = time.perf_counter()
    # Every batch, not every 10 %: a video or a large batch takes a while.
    progress = Progress("fersk predict", len(entries), args.verbose, text="{done}/{total} files",
                        every=0)

    batch = []  # (name, rel, image)

    def flush():
        if not batch:
            return
        images = [image for _, _, image in batch]
        try:
            results = _predict(model, images, policy, args.faces)
        except ValueError:
            # An image the cropper refuses must not sink its batch: one by one.
            results = []
            for image in images:
                try:
                    results.append(_predict(model, [image], policy, args.faces)[0])
                except ValueError as exc:
                    results.append(exc)
        for (name, rel, image), faces in zip(batch, results):
            if isinstance(faces, ValueError):
                reporter.error(name, f"cannot classify this image ({faces})")
                continue
            if faces[0]["proba"] is None:
                reporter.error(
                    name,
                    "no face found (--on-no-face skip; the default, whole, classifies "
                    "the whole image and marks its row 'none (whole image)')",
                )
            else:
                for face in faces:
                    reporter.record(_record(model, name, face, policy, reporter.all_faces))
            if annotator is not None:
                try:
                    annotator.write(model, rel, image, faces)
                except OSError as exc:
                    reporter.error(name, f"cannot write its annotated copy ({exc})")
        batch.clear()

    for done, (name, path, rel) in enumerate(entries, 1):
        try:
            is_video = path.suffix.lower() in VIDEO_EXTENSIONS
            image = None if is_video else _read_image(path)
            if is_video or (isinstance(image, str) and image == "video"):
                flush()
                _predict_video(model, name, path, args, reporter, progress)
            else:
                batch.append((name, rel, image))
        except _FileError as exc:
            reporter.error(name, str(exc))
        if len(batch) >= args.batch_size:
            flush()
            progress.update(done, f"{len(reporter.errors)} problems")
    flush()
    progress.update(len(entries), f"{len(reporter.errors)} problems")
    if annotator is not None:
        progress.note(f"{annotator.written} annotated images in {args.annotate}")
    n_files = len(entries)  # files found; missing paths are counted as problems only
    return reporter.close(policy, n_files, time.perf_counter() - start)


def _policy(on_no_face):
    """The no-face policy of ``--on-no-face``: 'auto', the former default,
    is the default 'whole' (the bundled pipelines' ``on_no_face``)."""
    return "whole" if on_no_face == "auto" else on_no_face


def _predict_video(model, name, path, args, reporter, progress):
    frames = []  # (index, time, frame)
    n_sampled = 0
    policy = _policy(args.on_no_face)

    def report(index, t, recs):
        for rec in recs:
            reporter.record(_record(model, name, rec, policy, reporter.all_faces, frame=index,
                                    time_s=t))

    def flush():
        batch = list(frames)
        frames.clear()
        if not batch:
            return
        try:
            results = _predict(model, [f for _, _, f in batch], policy, args.faces)
        except ValueError:
            # A frame the cropper refuses must not sink its batch or the
            # file's other frames: one by one, as for still images.
            for index, t, frame in batch:
                try:
                    report(index, t, _predict(model, [frame], policy, args.faces)[0])
                except ValueError as exc:
                    reporter.error(f"{name}#{index}", f"cannot classify this frame ({exc})")
            return
        for (index, t, _), recs in zip(batch, results):
            report(index, t, recs)

    try:
        for index, t, frame in _iter_video(path, args.every):
            frames.append((index, None if t is None else round(t, 3), frame))
            n_sampled += 1
            if len(frames) >= args.batch_size:
                flush()
                progress.note(f"{name}: {n_sampled} frames classified")
    finally:
        flush()  # the frames read before an error are still reported
    progress.note(f"{name}: {n_sampled} frames classified")


def _read_image(path):
    """Read one image file as uint8 grey or RGB; 'video' if it is animated.

    As :func:`fersk.datasets.load_fer2013` does: 16-bit images keep their
    high byte (Pillow's ``convert`` would clip them at 255), floating-point
    images are refused, palette images become RGB, alpha is dropped.
    """
    try:
        with Image.open(path) as im:
            if path.suffix.lower() in _ANIMATABLE and getattr(im, "is_animated", False):
                return "video"
            im = _image_files.open_image(im)
            try:
                return pil_to_uint8(im, where=os.fspath(path))
            except ValueError as exc:
                raise _FileError(str(exc)) from None
    except _FileError:
        raise
    except Exception as exc:  # any decoding failure is this file's problem only
        raise _FileError(
            f"cannot read an image from this file ({type(exc).__name__}: {exc})"
        ) from None


def _video_backends():
    return _image_files._video_backends()


def _iter_video(path, every):
    """Yield ``(frame_index, time_s, frame)`` for every ``every``-th frame
    (:func:`fersk._image_files.iter_video`; its errors are this file's)."""
    try:
        yield from _image_files.iter_video(path, every)
    except _image_files.VideoError as exc:
        raise _FileError(str(exc)) from None


def _printable(name):
    """A file name as text any output takes: bytes that are not UTF-8 (an
    old archive's names) as ``\\xe9`` escapes; they made the CSV writer
    (and the table on stdout) raise, losing the whole run's rows."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _collect(paths, annotate=None):
    """Expand PATH arguments: (display name, Path, annotate name), errors,
    and the files of the folders not read for their extension (named).

    A folder's walk (:func:`fersk._image_files.walk_files`, as the dataset
    loaders walk theirs) skips fersk's own annotated copies (marked) under
    the ``--annotate`` folder ``annotate``: a rerun must not classify them;
    any other photo there is the user's and is read.  Linked folders are
    followed, each folder once (a link loop ends there).
    """
    entries, errors, not_read = [], [], []
    wanted = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            others = []
            unreadable = []
            found = _image_files.walk_files(path, wanted, others=others, hidden=(".",),
                                            unreadable=unreadable)
            found = [f for f in found if not _own_copy(f[1], annotate)]
            for rel, exc in unreadable:  # its files are not classified: a problem, named
                errors.append((_printable(os.path.join(arg, rel)),
                               f"folder that cannot be read ({exc.strerror or exc})"))
            # a photo in another format (.heic, .jfif) is said, not passed over
            not_read += [_printable(os.path.join(arg, rel)) for rel in others]
            if not found and not unreadable:
                errors.append(
                    (_printable(arg), f"folder with no image or video files ({' '.join(wanted)})")
                )
            for rel, file, _, _ in found:
                entries.append((_printable(os.path.join(arg, rel)), Path(file),
                                Path(path.resolve().name) / rel))
        elif path.is_file():
            entries.append((_printable(arg), path, Path(path.name)))
        elif path.exists():
            errors.append((_printable(arg), "not a regular file or folder"))
        else:
            errors.append((_printable(arg), "no such file or folder"))
    return entries, errors, not_read


def _own_copy(file, annotate):
    """Whether ``file`` is under the ``--annotate`` folder and an annotated
    copy fersk wrote there (its mark): a copy, not a photo of the user's."""
    if annotate is None:
        return False
    folder = os.path.realpath(annotate)
    inside = os.path.realpath(file).startswith(folder.rstrip(os.sep) + os.sep)
    return inside and _is_fersk_annotation(file)


class _Reporter:
    """Streams predict's rows (table or CSV) and problems; JSON at the end.

    The table is printed only when the rows go nowhere else (no ``--json``,
    no ``--csv``); with ``--csv FILE`` stdout stays empty and the summary
    line names the file.  Its columns have fixed widths, computed from the
    class names, the face column's values and the box's integer pixels.
    """

    # Pixels of one box value in the table (up to 99999, right-aligned).
    _BOX_DIGITS = 5

    def __init__(self, args, model, width, not_read=()):
        self.model = model
        self.json = args.json
        self.records, self.errors, self.not_read = [], [], list(not_read)
        self.width = max(width, 4)
        self.n_rows = 0
        self.n_whole = 0  # rows of images without a face, classified anyway
        self.csv_file = None
        self.csv = None
        self.csv_path = None if args.csv in (None, "-") else args.csv
        self.table = not args.json and args.csv is None
        self.all_faces = getattr(args, "faces", "largest") == "all"
        if args.csv is not None:
            if args.csv == "-":
                self.csv_file = sys.stdout
            else:
                try:  # rows go to a file beside it, renamed over FILE when complete
                    self.csv_tmp = _temp_beside(args.csv)
                    self.csv_file = open(self.csv_tmp, "w", newline="")
                except OSError as exc:
                    raise _UsageError(f"--csv: cannot write {args.csv!r} ({exc})") from None
            self.csv = csv.writer(self.csv_file)
            self.csv.writerow(
                list(_CSV_COLUMNS)
                + (["face_index"] if self.all_faces else [])
                + ["row", "col", "height", "width", "emotion"]
                + model.class_names
            )
        self.prob_widths = [max(len(name), 5) for name in model.class_names]
        index = len("#99") if self.all_faces else 0
        self.face_width = max(len(v) for v in _FACE_COLUMNS) + index
        self.box_width = max(len("box (row col h w)"), 4 * self._BOX_DIGITS + 3)
        self.emotion_width = max([len("emotion"), *map(len, model.class_names)])

    def _line(self, name, face, box, emotion, cells):
        return (
            f"{name:<{self.width}}  {face:<{self.face_width}}  {box:<{self.box_width}}  "
            f"{emotion:<{self.emotion_width}}  {cells}"
        )

    def _header(self):
        names = zip(self.model.class_names, self.prob_widths)
        probs = "  ".join(f"{name:>{w}}" for name, w in names)
        print(self._line("file", "face", "box (row col h w)", "emotion", probs))

    def _box_cell(self, box):
        """The box as integer pixels, right-aligned: columns line up whatever
        the detector's precision."""
        if not box:
            return "-"
        return " ".join(f"{round(float(v)):>{self._BOX_DIGITS}d}" for v in box)

    def record(self, rec):
        if self.json:
            self.records.append(rec)
        if self.csv is not None:
            box = rec["box"] or [""] * 4
            probs = rec["probabilities"]
            self.csv.writerow(
                [rec["file"], rec.get("frame", ""), _fmt_time(rec.get("time_s")), rec["face"]]
                + ([rec.get("face_index", "")] if self.all_faces else [])
                + [*box, rec["emotion"] or ""]
                + (
                    [f"{p:.4f}" for p in probs.values()]
                    if probs
                    else [""] * len(self.model.class_names)
                )
            )
        if self.table:
            if self.n_rows == 0:
                self._header()
            name = rec["file"]
            if "frame" in rec:
                t = rec.get("time_s")
                name += f"#{rec['frame']}" + (f" ({t:.2f} s)" if t is not None else "")
            probs = rec["probabilities"]
            cells = "  ".join(
                f"{(f'{probs[n]:.3f}' if probs else '-'):>{w}}"
                for n, w in zip(self.model.class_names, self.prob_widths)
            )
            face = rec["face"] + (f"#{rec['face_index']}" if "face_index" in rec else "")
            print(self._line(name, face, self._box_cell(rec["box"]), rec["emotion"] or "-",
                             cells))
        self.n_rows += 1
        if rec["face"].startswith("none (") and rec["probabilities"]:
            self.n_whole += 1

    def error(self, file, message):
        self.errors.append({"file": file, "error": message})
        if not self.json:
            print(f"fersk predict: {file}: {message}", file=sys.stderr)

    def discard(self):
        """Drop the unfinished ``--csv`` table (the command did not finish)."""
        if self.csv_file is not None and self.csv_file is not sys.stdout:
            self.csv_file.close()
            self.csv_file = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.csv_tmp)

    def close(self, policy, n_files, seconds):
        if self.csv_file is not None and self.csv_file is not sys.stdout:
            self.csv_file.close()
            _replace_output(self.csv_tmp, self.csv_path)
        if self.json:
            doc = {
                "model": self.model.name,
                "on_no_face": policy,
                "class_names": self.model.class_names,
                "records": self.records,
                "errors": self.errors,
                "not_read": self.not_read,
                "summary": {
                    "files": n_files,
                    "not_read": len(self.not_read),
                    "rows": self.n_rows,
                    "without_face": self.n_whole,
                    "failed": len(self.errors),
                    "seconds": round(seconds, 2),
                },
            }
            _dump_rows_json(doc)
        else:
            if self.not_read:
                kinds = sorted({os.path.splitext(f)[1].lower() or "(none)" for f in self.not_read})
                print(f"fersk predict: {len(self.not_read)} file(s) in the folders not read, their "
                      f"extensions {kinds[:10]} being neither image nor video extensions: "
                      f"{self.not_read[:5]}", file=sys.stderr)
            where = f" written to {self.csv_path}" if self.csv_path else ""
            whole = (
                f" ({self.n_whole} without a face, classified {_WHOLE_WORDS[policy]})"
                if self.n_whole else ""
            )
            print(
                f"fersk predict: {self.n_rows} rows{where} from {n_files} files{whole}, "
                f"{len(self.errors)} problems, {seconds:.1f} s",
                file=sys.stderr,
            )
        return EXIT_FAILED if self.errors else EXIT_OK


# How the summary says what images without a face were classified on.
_WHOLE_WORDS = {"whole": "whole", "center": "on their centre", "skip": ""}


def _dump_rows_json(doc):
    """Print ``doc`` as indented JSON, each record and error on one line."""
    lines = ["{"]
    items = list(doc.items())
    for k, (key, value) in enumerate(items):
        comma = "," if k < len(items) - 1 else ""
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            rows = ",\n".join(f"  {json.dumps(v)}" for v in value)
            lines.append(f" {json.dumps(key)}: [\n{rows}\n ]{comma}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    print("\n".join(lines))


def _fmt_time(t):
    return "" if t is None else f"{t:.3f}"


class _Annotator:
    """Unique PNG names under DIR; a file there that fersk did not write
    (not marked as its annotated copy) is never replaced."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.used = set()
        self.written = 0

    @staticmethod
    def target(folder, rel):
        return Path(folder) / rel.with_suffix(".png")

    def write(self, model, rel, image, faces):
        target = self.target(self.folder, rel)
        k = 2
        while target in self.used:
            target = self.folder / rel.with_name(f"{rel.stem}_{k}.png")
            k += 1
        self.used.add(target)
        # A dangling link "exists" not, yet the copy would be written where it
        # points (anywhere): not fersk's, left as it is.
        if (target.exists() or target.is_symlink()) and not _is_fersk_annotation(target):
            raise OSError(
                f"{str(target)!r} exists and is not an annotated copy fersk wrote: it is "
                "left as it is (move it, or choose another --annotate folder)"
            )
        _annotate(image, [(f["box"], _label(model, f)) for f in faces], target)
        self.written += 1

