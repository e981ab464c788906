"""Domain-robust degradations of face crops: what web photos and video do to faces.

FER-2013's faces are clean 48 x 48 crops; faces cut from web photos, films
and webcams are blurred, JPEG-compressed, noisy, badly exposed, off-centre
and partly hidden.  :func:`degrade_faces` applies such changes at random, so
that a network trained on FER-2013 plus copies degraded this way meets
those faces in training (the estimators' ``degrade`` parameter, e.g.
``CNNClassifier(degrade={"blur": 0.3})``, degrades each batch this way).
"""

import io
from numbers import Real

import numpy as np
from scipy import ndimage
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from fersk._constraints import KeywordDict

__all__ = ["degrade_faces", "DEGRADATIONS", "PROBABILITIES"]

#: Default probability of each degradation, and its strength.
DEGRADATIONS = {
    "blur": 0.3,  # Gaussian blur, sigma up to 1.2 pixels of a 48-pixel face
    "jpeg": 0.3,  # JPEG re-encoding at quality 15-60
    "noise": 0.3,  # sensor noise, sigma up to 12 grey levels
    "gamma": 0.3,  # gamma 0.6-1.6 and contrast 0.6-1.2
    "jitter": 0.3,  # scale 0.9-1.1 and shift up to 6 %: MTCNN's boxes about labelled ones
    # (benchmarks/box_spread.py: the middle half within +-4 % and 0.93-1.09 on ExpW)
    "occlusion": 0.15,  # a grey rectangle over 10-25 % of the face
}

#: What ``probabilities`` (and the estimators' ``degrade``) may be: some of
#: :data:`DEGRADATIONS`'s keys, each with a probability in [0, 1].
PROBABILITIES = KeywordDict(dict.fromkeys(DEGRADATIONS, Interval(Real, 0, 1, closed="both")))


def _jpeg(face, quality):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(face).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert(Image.fromarray(face).mode))


def _jitter(face, rng):
    h, w = face.shape[:2]
    zoom = rng.uniform(0.9, 1.1)
    shift = rng.uniform(-0.06, 0.06, size=2) * (h, w)
    centre = np.array([h, w]) / 2
    matrix = np.eye(2) / zoom
    offset = centre - matrix @ (centre + shift)
    if face.ndim == 2:
        return ndimage.affine_transform(face.astype(float), matrix, offset, order=1,
                                        mode="nearest")
    return np.stack([ndimage.affine_transform(face[..., c].astype(float), matrix, offset,
                                              order=1, mode="nearest")
                     for c in range(face.shape[-1])], axis=-1)


@validate_params(
    {
        "images": ["array-like"],
        "probabilities": [PROBABILITIES, None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def degrade_faces(images, *, probabilities=None, random_state=None):
    """Randomly blur, compress, add noise, re-expose, shift and occlude faces.

    Each degradation is applied to each face independently with its
    probability, in the order blur, jitter, gamma/contrast, noise,
    occlusion, JPEG (the camera's order: optics, exposure, sensor, then
    compression).

    Parameters
    ----------
    images : array-like of shape (n_samples, height, width[, 3]), uint8
        Face crops.
    probabilities : dict or None, default=None
        Probability of each of ``"blur"``, ``"jpeg"``, ``"noise"``,
        ``"gamma"``, ``"jitter"``, ``"occlusion"`` (missing keys keep
        :data:`DEGRADATIONS`'s; 0 switches one off).
    random_state : int, RandomState instance or None, default=None
        Seeds the choices: the same seed gives the same faces.

    Returns
    -------
    degraded : ndarray of the shape of ``images``, uint8
        New faces; ``images`` is not modified.

    Examples
    --------
    >>> import numpy as np
    >>> from fersk.degrade import degrade_faces
    >>> faces = np.full((4, 48, 48), 128, dtype=np.uint8)
    >>> out = degrade_faces(faces, probabilities={"noise": 1.0}, random_state=0)
    >>> out.shape, out.dtype, bool((out != 128).any())
    ((4, 48, 48), dtype('uint8'), True)
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or (
        images.ndim == 4 and images.shape[-1] != 3
    ) or 0 in images.shape[1:3]:  # no pixels: Pillow's JPEG step failed on them, at random
        raise ValueError(
            "images must be uint8 faces of shape (n, height, width) or (n, height, width, 3), "
            f"height and width at least 1; got {images.dtype} of shape {images.shape}."
        )
    probs = {key: float(p) for key, p in {**DEGRADATIONS, **(probabilities or {})}.items()}
    rng = check_random_state(random_state)
    out = np.empty_like(images)
    for i, face in enumerate(images):
        draws = {k: rng.uniform() < p for k, p in probs.items()}
        f = face.astype(np.float64)
        if draws["blur"]:
            sigma = rng.uniform(0.4, 1.2) * face.shape[0] / 48
            axes = (sigma, sigma) + ((0,) if face.ndim == 3 else ())
            f = ndimage.gaussian_filter(f, axes)
        if draws["jitter"]:
            f = _jitter(f, rng)
        if draws["gamma"]:
            g = rng.uniform(0.6, 1.6)
            f = 255.0 * (np.clip(f, 0, 255) / 255.0) ** g
            c = rng.uniform(0.6, 1.2)
            f = (f - f.mean()) * c + f.mean()
        if draws["noise"]:
            f = f + rng.normal(0, rng.uniform(3, 12), size=f.shape)
        if draws["occlusion"]:
            h, w = face.shape[:2]
            area = rng.uniform(0.10, 0.25) * h * w
            ratio = rng.uniform(0.5, 2.0)
            oh = int(min(h, max(1, round(np.sqrt(area * ratio)))))
            ow = int(min(w, max(1, round(np.sqrt(area / ratio)))))
            top, left = rng.randint(0, h - oh + 1), rng.randint(0, w - ow + 1)
            f[top:top + oh, left:left + ow] = rng.uniform(0, 255)
        f = np.clip(np.rint(f), 0, 255).astype(np.uint8)
        if draws["jpeg"]:
            f = _jpeg(f, rng.randint(15, 61))
        out[i] = f
    return out
