"""Quick start: find a face, compute its LBP and mapped-LBP images, save pictures.

Runs offline on the astronaut photo that ships with scikit-image (and, when
the FER-2013 folder is beside the project, on one of its faces too):

1. ``FaceCropper`` finds the face with MTCNN (its default detector) and crops it;
2. ``LBPCodeTransformer`` computes the LBP code maps (default and uniform);
3. ``MDSMappedLBP`` maps every code to a point of a 3-D metric space, giving
   the colour image Levi & Hassner feed to CNNs;
4. ``LBPHistogram`` turns the face into the classic LBP descriptor.

It prints what it found and writes ``lbp_representations.png`` (one row per
face: face, LBP codes, uniform LBP codes, mapped LBP).

Usage::

    python examples/quickstart.py [--out lbp_representations.png]
"""

import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from skimage import data  # noqa: E402

from fersk import FaceCropper, LBPCodeTransformer, LBPHistogram, MDSMappedLBP  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FER = Path(os.environ.get("FERSK_FER2013", ROOT.parent / "shared/data/fer2013"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="lbp_representations.png")
    args = parser.parse_args()

    photo = data.astronaut()
    cropper = FaceCropper(size=(96, 96), margin=0.1)
    faces, info = cropper.crop([photo])
    r, c, h, w = info.boxes[0]
    print(f"astronaut photo {photo.shape}: face at row {r:.0f}, col {c:.0f}, "
          f"{h:.0f}x{w:.0f} px -> crop {faces.shape[1:]}")

    rows = [("astronaut (skimage.data)", faces[0])]
    fer_file = next(iter(sorted((FER / "test" / "happy").glob("*.jpg"))), None)
    if fer_file is not None:
        from PIL import Image

        rows.append((f"FER-2013 {fer_file.name}", np.asarray(Image.open(fer_file).convert("L"))))

    # Each face at its own size (a batch per face): 96x96 crop, 48x48 FER face.
    panels = []
    for name, face in rows:
        X = face[np.newaxis]
        codes = LBPCodeTransformer(P=8, R=1).fit_transform(X)[0]
        uniform = LBPCodeTransformer(P=8, R=1, method="uniform").fit_transform(X)[0]
        mapper = MDSMappedLBP(random_state=0).fit(X)
        mapped = mapper.transform(X)[0]
        hist = LBPHistogram().fit(X)
        print(f"{name}: LBP codes {codes.shape}, mapped LBP {mapped.shape} "
              f"(embedding keeps code distances: r = {mapper.distance_correlation_:.3f}), "
              f"LBP histogram descriptor of {hist.n_features_out_} features")
        panels.append([(face, "gray"), (codes, "gray"), (uniform, "viridis"), (mapped, None)])

    fig, axes = plt.subplots(len(rows), 4, figsize=(10, 2.7 * len(rows)), squeeze=False)
    titles = ["face", "LBP codes (P=8, R=1)", "uniform LBP", "mapped LBP (MDS, EMD)"]
    for i, (name, _) in enumerate(rows):
        for ax, (img, cmap), title in zip(axes[i], panels[i], titles):
            ax.imshow(img, cmap=cmap, interpolation="nearest")
            ax.set_title(f"{title}\n{name}" if ax is axes[i, 0] else title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
