"""Crop faces from photographs or image files with FaceCropper.

Given image files or folders, crops the largest face of every image to a
grey ``--size`` square (FER-2013's 48x48 by default), reports which images
had no face (kept whole, never dropped), saves a contact sheet of the
crops and, with ``--out-dir``, one PNG per crop named after its source.

Without arguments it runs offline on scikit-image's astronaut photo, the same
photo tilted by 20 degrees, a face-free brick texture and, when the FER-2013
folder is beside the project, a few of its (already cropped) faces.

Usage::

    python examples/crop_faces.py [FILE_OR_FOLDER ...] [--size 48] [--margin 0]
        [--detector mtcnn|skimage|opencv] [--align] [--n-jobs 1]
        [--sheet faces.png] [--out-dir DIR]
"""

import argparse
import os
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from fersk.face import FaceCropper, NoFaceWarning  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FER = Path(os.environ.get("FERSK_FER2013", ROOT.parent / "shared/data/fer2013"))
SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def demo_images():
    """Offline inputs: (names, images or paths)."""
    from skimage import data
    from skimage.transform import rotate

    astronaut = data.astronaut()
    tilted = rotate(astronaut, 20, center=(225, 115), preserve_range=True).astype(np.uint8)
    names = ["astronaut", "astronaut tilted 20 deg", "brick (no face)"]
    images = [astronaut, tilted, data.brick()]
    for cls in ("happy", "surprise"):
        files = sorted((FER / "test" / cls).glob("*.jpg"))[:2]
        names += [f"FER {cls} {f.name}" for f in files]
        images += [str(f) for f in files]
    return names, images


def collect(paths):
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in SUFFIXES)
        else:
            files.append(p)
    return [f.name for f in files], [str(f) for f in files]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", help="image files or folders")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--margin", type=float, default=0.0)
    parser.add_argument("--detector", default="mtcnn", choices=["mtcnn", "skimage", "opencv"],
                        help="face detector (default: mtcnn, FaceCropper's default)")
    parser.add_argument("--align", action="store_true", help="level the eyes (mtcnn, opencv)")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--sheet", default="faces.png", help="contact sheet to write")
    parser.add_argument("--out-dir", default=None, help="also write one PNG per crop here")
    args = parser.parse_args()

    names, X = collect(args.inputs) if args.inputs else demo_images()
    if not X:
        parser.error("no image files found")
    cropper = FaceCropper(
        args.detector,
        size=(args.size, args.size),
        margin=args.margin,
        align=args.align,
        n_jobs=args.n_jobs,
        verbose=1,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoFaceWarning)
        faces, info = cropper.fit(X).crop(X)
    for w in caught:
        print(f"warning: {w.message}")

    for i, name in enumerate(names):
        if info.n_faces[i] == 0:
            what = "no face: kept whole"
        else:
            r, c, h, w = info.boxes[i]
            what = f"{info.n_faces[i]} face(s); largest at row {r:.0f}, col {c:.0f}, {h:.0f}x{w:.0f}"
            if not np.isnan(info.angles[i]):
                what += f", rotated {info.angles[i]:+.1f} deg"
        print(f"{i:3d} {name}: {what}")

    n_cols = min(len(faces), 8)
    n_rows = -(-len(faces) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.8 * n_cols, 2.0 * n_rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (ax, face) in enumerate(zip(axes.ravel(), faces)):
        ax.imshow(face, cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{i}" + ("" if info.n_faces[i] else " (no face)"), fontsize=8)
    fig.tight_layout()
    fig.savefig(args.sheet, dpi=100)
    print(f"wrote {args.sheet}")

    if args.out_dir:
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for i, (name, face) in enumerate(zip(names, faces)):
            Image.fromarray(face).save(out / f"{i:05d}_{Path(name).stem.replace(' ', '_')}.png")
        print(f"wrote {len(faces)} crops to {out}")


if __name__ == "__main__":
    main()
