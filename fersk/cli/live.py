"""``fersk live``: the faces of a camera or a video, classified frame by frame.

Imported by :func:`fersk.cli.main` only when this command runs; the
argument parser (in :mod:`fersk.cli`) describes its options.  The work is
:class:`fersk.live.FaceStream`'s; this module reads the frames, shows them
in an OpenCV window when there is a display, and writes what was asked:
an annotated video, JSON lines, a plot of each track's emotions.
"""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from fersk import _image_files

from ._common import (
    EXIT_OK,
    _Failure,
    _first_line,
    _EXIF_SOFTWARE,
    _file_holds,
    _has_mark,
    _refuse_foreign_file,
    _refuse_input_as_output,
    _same_file,
    _replace_output,
    _temp_beside,
    _UsageError,
)
from ._faces import _draw_box, _load_model

__all__ = ["run"]

_LIVE_HINT = "pip install 'fersk[live]' (opencv-python-headless<5; for a window, opencv-python<5)"
# Colours (RGB) of FER-2013's emotions in annotated frames; others cycle.
_COLOURS = {
    "angry": (229, 57, 53), "disgust": (142, 36, 170), "fear": (94, 53, 177),
    "happy": (253, 216, 53), "sad": (30, 136, 229), "surprise": (251, 140, 0),
    "neutral": (158, 158, 158),
}
_WINDOW = "fersk live (q or Esc to quit)"


def _colour(name, names):
    if name in _COLOURS:
        return _COLOURS[name]
    palette = list(_COLOURS.values())
    return palette[names.index(name) % len(palette)] if name in names else palette[0]


def _has_display():
    if sys.platform.startswith(("win", "darwin")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _annotated(frame, records, names):
    """An RGB uint8 copy of ``frame`` with each face's box, track and emotion."""
    from PIL import Image, ImageDraw, ImageFont

    rgb = np.asarray(frame)
    if rgb.ndim == 2:
        rgb = np.stack([rgb] * 3, axis=-1)
    rgb = _image_files.array_to_uint8(rgb[..., :3], "frame")
    rgb = rgb.copy()
    h, w = rgb.shape[:2]
    thickness = max(2, round(min(h, w) / 200))
    for rec in records:
        _draw_box(rgb, rec["box"], thickness, _colour(rec["name"], names))
    if not records:
        return rgb
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    size = max(12, round(min(h, w) / 28))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        font = ImageFont.load_default()
    for rec in records:
        r, c = rec["box"][:2]
        k = rec["proba"].argmax()
        text = f"#{rec['track']} {rec['name']} {rec['proba'][k]:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        y = r - (bottom - top) - 6 if r >= (bottom - top) + 6 else r + thickness
        x = max(0, c)
        draw.rectangle((x, y, x + right - left + 6, y + bottom - top + 6),
                       fill=_colour(rec["name"], names))
        draw.text((x + 3 - left, y + 3 - top), text, fill=(0, 0, 0), font=font)
    return np.asarray(image)


class _VideoWriter:
    """An annotated mp4 written to a temporary file, renamed when complete.

    Each frame is stamped with its source time (a video's own frame times,
    a camera's clock), so the copy plays as the source did, variable frame
    rates and GIF durations included; with ``fps`` (``--fps``), or for
    frames without a time, at that rate."""

    def __init__(self, path, fps=None):
        try:
            import av
        except ImportError:
            raise _Failure(
                "--out: writing a video needs PyAV (av): pip install 'fersk[video]'"
            ) from None
        self.av, self.path, self.fps = av, Path(path), fps
        self.tmp = _temp_beside(self.path)
        try:
            self.container = av.open(self.tmp, "w")
        except Exception as exc:
            os.unlink(self.tmp)
            raise _Failure(
                f"--out: cannot write the video {str(path)!r} ({type(exc).__name__}: {exc}); "
                f"{_image_files.VIDEO_HINT}"
            ) from None
        self.container.metadata["comment"] = VIDEO_MARK  # a rerun may replace it
        self.stream = None
        self.n, self.first, self.last = 0, None, -1

    def write(self, rgb, t=None):
        from fractions import Fraction

        # libx264's yuv420p needs even sides: repeat the last row/column.
        pad = ((0, rgb.shape[0] % 2), (0, rgb.shape[1] % 2), (0, 0))
        rgb = np.ascontiguousarray(np.pad(rgb, pad, mode="edge") if any(p[1] for p in pad) else rgb)
        if self.stream is None:
            try:
                self.stream = self.container.add_stream("libx264", rate=round(self.fps or 30))
            except Exception as exc:
                raise _Failure(
                    f"--out: cannot write the video {str(self.path)!r} ({type(exc).__name__}: "
                    f"{exc}); {_image_files.VIDEO_HINT}"
                ) from None
            self.stream.width, self.stream.height = rgb.shape[1], rgb.shape[0]
            self.stream.pix_fmt = "yuv420p"
            self.stream.codec_context.time_base = Fraction(1, 1000)  # milliseconds
        if self.fps is None and t is not None:
            self.first = t if self.first is None else self.first
            pts = round((t - self.first) * 1000)
        else:
            pts = round(self.n * 1000 / (self.fps or 15.0))
        pts = max(pts, self.last + 1)  # strictly increasing, whatever the clock said
        frame = self.av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts, frame.time_base = pts, Fraction(1, 1000)
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.n, self.last = self.n + 1, pts

    def close(self, keep=True):
        try:
            try:
                if self.stream is not None:
                    for packet in self.stream.encode():  # the frames the encoder holds
                        self.container.mux(packet)
            finally:
                self.container.close()
        except BaseException:  # a video not finished is not left beside the output
            os.unlink(self.tmp)
            raise
        if keep and self.n:
            _replace_output(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


class _JsonLines:
    """One JSON record per face per frame: stdout, or a file renamed when complete."""

    def __init__(self, target, names):
        self.names = names
        self.path = None if target == "-" else Path(target)
        if self.path is None:
            self.file = sys.stdout
        else:
            self.tmp = _temp_beside(self.path)
            self.file = open(self.tmp, "w", encoding="utf-8")

    def write_frame(self, records):
        """A frame's records in one write (Ctrl-C cannot split a frame's lines)."""
        if records:
            self.file.write("".join(self._line(rec) for rec in records))
            if self.path is None:
                self.file.flush()  # a camera's records as they come

    def _line(self, rec):
        row = {
            "frame": rec["frame"],
            "time_s": None if rec["time"] is None else round(rec["time"], 3),
            "track": rec["track"],
            "box": [round(v, 1) for v in rec["box"]],
            "emotion": rec["name"],
            "probabilities": {n: round(float(p), 4) for n, p in zip(self.names, rec["proba"])},
            "detected": rec["detected"],
            "kind": rec["kind"],  # 'precropped': a small frame taken whole as a face
        }
        return json.dumps(row) + "\n"

    def close(self, keep=True):
        """Rename the file over its target, or (a failed run) remove it: the target untouched."""
        if self.path is not None:
            self.file.close()
            if keep:
                _replace_output(self.tmp, self.path)
            else:
                os.unlink(self.tmp)


#: What fersk live writes into its --out video (container comment) and its
#: --plot (Software or Creator): a rerun replaces such a file, never another.
VIDEO_MARK = "fersk live --out"
PLOT_MARK = "fersk live --plot"
_PIL_PLOTS = ("jpg", "jpeg", "tif", "tiff", "webp")
_TEXT_PLOTS = ("pdf", "svg", "ps", "eps")


def _plot_mark(kind):
    """savefig's arguments that mark a --plot of format ``kind`` as fersk's."""
    if kind == "png":
        return {"metadata": {"Software": PLOT_MARK}}
    if kind in _TEXT_PLOTS:
        return {"metadata": {"Creator": PLOT_MARK}}
    if kind in _PIL_PLOTS:
        from PIL import Image

        exif = Image.Exif()
        exif[_EXIF_SOFTWARE] = PLOT_MARK
        return {"pil_kwargs": {"exif": exif}}
    return {}  # pgf, raw, rgba, svgz: no mark (an existing file is not replaced)


def _plot_is_ours(path):
    kind = path.suffix.lower().lstrip(".")
    if kind == "png" or kind in _PIL_PLOTS:
        return _has_mark(path, PLOT_MARK)
    return kind in _TEXT_PLOTS and _file_holds(path, PLOT_MARK)


def _video_is_ours(path):
    try:
        import av

        with av.open(str(path)) as container:
            return container.metadata.get("comment") == VIDEO_MARK
    except Exception:  # no PyAV, or not a video it reads: not known to be fersk's
        return False


def _json_lines_are_ours(path):
    try:
        record = json.loads(_first_line(path))
    except ValueError:
        return False
    return isinstance(record, dict) and {"frame", "track", "box", "emotion",
                                         "probabilities"} <= set(record)


_OURS = {"--out": _video_is_ours, "--json": _json_lines_are_ours, "--plot": _plot_is_ours}


def _check_plot_suffix(path):
    """Usage error for a --plot file matplotlib cannot write (by its suffix)."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise _Failure("--plot needs matplotlib: pip install 'fersk[plots]'") from None
    kinds = FigureCanvasBase.get_supported_filetypes()
    if Path(path).suffix.lower().lstrip(".") not in kinds:
        raise _UsageError(f"--plot: write one of {', '.join('.' + k for k in sorted(kinds))}; "
                          f"got {str(path)!r}.")


#: Panels in a --plot: more would be unreadable.
_MAX_PANELS = 8


def _shown_tracks(history):
    """The :data:`_MAX_PANELS` longest tracks, in track order: a face lost
    and found again gets a new track, so the first ids alone left the rest
    of a long video out without a word."""
    longest = sorted(history, key=lambda t: (-len(history[t]), t))[:_MAX_PANELS]
    return sorted(longest)


def _plot_tracks(history, names, path, xlabel="time (s)"):
    """Each track's smoothed probabilities over time, one panel per track:
    the :data:`_MAX_PANELS` longest tracks (in track order) when there are
    more, the figure's title saying how many are shown.  Returns the number
    of tracks shown and the number of tracks (0, 0: no track, no plot)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise _Failure("--plot needs matplotlib: pip install 'fersk[plots]'") from None
    tracks = sorted(history)
    if not tracks:
        return 0, 0
    shown = _shown_tracks(history)
    fig = Figure(figsize=(9, 2.2 * len(shown) + 0.6 + 0.4 * (len(shown) < len(tracks))), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(shown), 1, sharex=True, squeeze=False)[:, 0]
    for ax, track in zip(axes, shown):
        xs = np.array([x for x, _ in history[track]])
        ps = np.array([p for _, p in history[track]])
        for k, name in enumerate(names):
            colour = np.array(_colour(name, names)) / 255
            ax.plot(xs, ps[:, k], label=name, color=colour, lw=1.5)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"track {track}")
        ax.grid(alpha=0.3)
    axes[0].legend(ncol=min(len(names), 7), fontsize=8, loc="upper center",
                   bbox_to_anchor=(0.5, 1.45), frameon=False)
    axes[-1].set_xlabel(xlabel)
    if len(shown) < len(tracks):
        fig.suptitle(f"the {len(shown)} longest of {len(tracks)} tracks", fontsize=10)
    fig.tight_layout()
    tmp = _temp_beside(path)
    try:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png",
                    **_plot_mark(Path(path).suffix.lower().lstrip(".") or "png"))
        _replace_output(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return len(shown), len(tracks)


def _open_window():
    """cv2 when it can show a window here, else None."""
    if not _has_display():
        return None
    try:
        import cv2

        cv2.namedWindow(_WINDOW, cv2.WINDOW_NORMAL)
    except Exception:  # no OpenCV, or a headless build (no GUI functions)
        return None
    return cv2


def run(args):
    """Run ``fersk live``: classify a camera's or a video's faces, frame by frame.

    Frames come from ``--camera N`` (OpenCV) or ``--video PATH`` (imageio
    and PyAV); every face is followed across frames and classified
    (:class:`fersk.live.FaceStream`).  With a display and an OpenCV that
    has its GUI, the annotated frames are shown in a window (q or Esc
    quits); ``--out`` writes them as an mp4, ``--json`` writes a JSON line
    per face per frame, ``--plot`` draws each track's emotions over time.
    Without a window and without ``--out``/``--json``, JSON lines go to
    stdout.  A failed run leaves ``--out`` and ``--json`` as they were;
    Ctrl-C ends the run as q does, its outputs holding every frame read.

    Parameters
    ----------
    args : argparse.Namespace
        The options of ``fersk live`` as :func:`fersk.cli.main` parses them
        (``camera``, ``video``, ``model``, ``detect_every``, ``detect_scale``, ``views``, ``alpha``,
        ``out``, ``json``, ``plot``, ``window``, ``max_frames``, ``fps``).

    Returns
    -------
    status : int
        0 when the frames were read to the end (or the window was closed).

    Raises
    ------
    _UsageError
        Neither or both of ``--camera`` and ``--video``, a ``--video`` that is
        missing or a folder (only :func:`fersk.stream` reads folders), an
        unknown model.
    _Failure
        No OpenCV for a camera (saying what to install), an unreadable
        video, an output that cannot be written.

    See Also
    --------
    fersk.live.stream : The same from Python.

    Examples
    --------
    >>> from fersk.cli import main
    >>> main(["live"])  # neither --camera nor --video: a usage error
    2

    From the shell::

        fersk live --camera 0 --detect-every 3
        fersk live --video clip.mp4 --out annotated.mp4 --json faces.jsonl --plot tracks.png
    """
    from fersk.live import FaceStream, read_frames

    if args.out is not None and Path(args.out).suffix.lower() not in (".mp4", ".mkv", ".mov"):
        raise _UsageError(f"--out: write an .mp4 (or .mkv, .mov) video; got {args.out!r}.")
    if args.camera is not None:
        try:
            import cv2  # noqa: F401
        except ImportError:
            raise _Failure(
                f"--camera needs OpenCV, which is not installed: {_LIVE_HINT}. A video file "
                "needs only PyAV: fersk live --video PATH."
            ) from None
        source, what = args.camera, f"camera {args.camera}"
    else:
        if Path(args.video).is_dir():
            raise _UsageError(
                f"--video: {args.video!r} is a folder; --video takes a video file (or an "
                "animated GIF). To classify a folder or glob of images as a sequence, use the "
                "Python API: fersk.stream(model, 'FOLDER') (or fersk predict FOLDER for one "
                "row per image)."
            )
        if not Path(args.video).is_file():
            if any(c in args.video for c in "*?["):
                raise _UsageError(
                    f"--video: no such file: {args.video!r}. --video takes one video file; a "
                    "glob of images is read as a sequence by the Python API: "
                    "fersk.stream(model, 'PATTERN')."
                )
            raise _UsageError(f"--video: no such file: {args.video!r}.")
        source, what = args.video, args.video
    outputs = [(o, getattr(args, o[2:])) for o in ("--out", "--json", "--plot")]
    outputs = [(o, v) for o, v in outputs if v not in (None, "-")]
    for k, (option, value) in enumerate(outputs):
        _refuse_input_as_output(option, value, [args.video])
        _refuse_foreign_file(option, value, _OURS[option])
        for other, earlier in outputs[:k]:
            if _same_file(value, earlier):
                raise _UsageError(f"{other} and {option} name one file, {value!r}: give each "
                                  "its own.")
    if args.plot is not None:  # before the work, not after it
        _check_plot_suffix(args.plot)
    model = _load_model(args.model, args.backend)
    names = model.class_names
    faces = FaceStream(model.pipeline, detect_every=args.detect_every, alpha=args.alpha,
                       detect_scale=args.detect_scale, views=args.views, class_names=names)
    frames = read_frames(source, max_frames=args.max_frames)

    cv2 = _open_window() if args.window != "no" else None
    if args.window == "yes" and cv2 is None:
        raise _Failure(
            "--window yes: no window can be shown here (no display, or OpenCV without its "
            "GUI: pip install 'opencv-python<5')."
        )
    json_target = args.json
    if cv2 is None and args.out is None and json_target is None:
        json_target = "-"  # nothing shown: the records are the output
    jsonl = _JsonLines(json_target, names) if json_target is not None else None
    writer = None
    history = {}  # track -> [(time or frame, smoothed proba)]
    xlabel = "time (s)"
    n_frames = n_records = 0
    start = time.perf_counter()
    complete = stopped = False
    try:
        try:
            for index, t, frame in frames:
                records = faces.update(frame, index, t)
                n_frames += 1
                n_records += len(records)
                for rec in records:
                    x = rec["time"] if rec["time"] is not None else rec["frame"]
                    history.setdefault(rec["track"], []).append((x, rec["proba"]))
                    if rec["time"] is None:
                        xlabel = "frame"
                if jsonl is not None:
                    jsonl.write_frame(records)
                if args.out is not None or cv2 is not None:
                    rgb = _annotated(frame, records, names)
                    if args.out is not None:
                        if writer is None:
                            writer = _VideoWriter(args.out, args.fps)
                        writer.write(rgb, t)
                    if cv2 is not None:
                        cv2.imshow(_WINDOW, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                            break
        except KeyboardInterrupt:
            # Ctrl-C ends a camera's run (as q does in the window): the
            # outputs keep every frame read until then, and say so below.
            stopped = True
        except ValueError as exc:
            raise _Failure(str(exc)) from None
        if not n_frames and not stopped and args.camera is not None:
            # Opened, then no frame (another program holds it, no
            # permission): a failure, and --json/--out stay as they were.
            raise _Failure(f"camera {args.camera} opened but gave no frame (in use by another "
                           "program, or no permission?); nothing was written.")
        complete = True
    finally:
        # A failed run (an unreadable frame, an error) leaves --out and
        # --json as they were: their temporary files are removed.
        if writer is not None:
            writer.close(keep=complete)
        if jsonl is not None:
            jsonl.close(keep=complete)
        if cv2 is not None:
            cv2.destroyAllWindows()
    seconds = time.perf_counter() - start
    n_tracks = len(history)
    print(
        f"fersk live: {what}: {'stopped by Ctrl-C after ' if stopped else ''}"
        f"{n_frames} frames, {n_records} face records, {n_tracks} tracks, "
        f"{n_frames / seconds if seconds else 0:.1f} frames/s, {faces.n_detections_} detections",
        file=sys.stderr,
    )
    if args.out is not None and writer is not None:
        print(f"fersk live: annotated video: {args.out}", file=sys.stderr)
    if args.plot is not None:
        shown, n_tracks = _plot_tracks(history, names, args.plot, xlabel)
        if shown:
            which = "" if shown == n_tracks else f" (the {shown} longest of {n_tracks} tracks)"
            print(f"fersk live: emotions over time: {args.plot}{which}", file=sys.stderr)
        else:
            print("fersk live: no face was found: no plot written", file=sys.stderr)
    return EXIT_OK
