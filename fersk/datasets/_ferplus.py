"""FER+: the crowd votes of Barsoum et al. (2016) joined to FER-2013's images."""

import csv
import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import validate_params

from fersk._progress import log

from ._common import _MAX_NAMED, LOADER_CONSTRAINTS, _warn
from ._fer2013 import load_fer2013

#: FER+ class names (Barsoum et al. 2016), index = label of :func:`load_ferplus`.
FERPLUS_CLASSES = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"
)
#: Columns of FER+'s votes after ``path``: the 8 emotions, "unknown" and
#: "NF" (not a face).
FERPLUS_VOTE_COLUMNS = FERPLUS_CLASSES + ("unknown", "NF")
#: Why :func:`load_ferplus` drops an image (keys of ``dropped_counts``).
FERPLUS_DROP_REASONS = ("no_majority", "unknown", "not_a_face", "no_votes")

FERPLUS_DESCR = """\
FER+ relabelling of FER-2013
----------------------------

Barsoum, Zhang, Canton Ferrer & Zhang, "Training Deep Networks for Facial
Expression Recognition with Crowd-Sourced Label Distribution", ICMI 2016
(Microsoft's FERPlus, MIT licence).  Ten crowd taggers voted for each
FER-2013 image among neutral, happiness, surprise, sadness, anger,
disgust, fear, contempt, unknown and NF (not a face).  The images are
FER-2013's pixels; the 8 classes and their order are FER+'s, not
FER-2013's (contempt is new).

Majority labels follow FER+'s own code (``src/ferplus.py``, "majority"
mode): a vote count of 1 is an outlier and set to 0; the label is the
column with more than half of the remaining votes; images where no column
has that majority, or where the majority is "unknown" or "NF", are
dropped.  ``distribution`` holds the remaining emotion votes normalised
to sum to 1 (the paper's label distribution, after the same outlier
removal).
"""


def _read_ferplus_votes(path):
    """``{relative path: int votes (10,)}`` from FER+'s votes CSV, checked."""
    with open(path, newline="", encoding="utf-8-sig") as f:  # a spreadsheet's BOM
        reader = csv.reader(f)
        header = next(reader, None)
        expected = ["path", *FERPLUS_VOTE_COLUMNS]
        if header is None or [h.strip() for h in header] != expected:
            raise ValueError(
                f"{str(path)!r} is not a FER+ votes file: its header is {header}, "
                f"expected {expected}."
            )
        votes, bad, lines, spelt = {}, [], {}, {}
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                if len(row) != len(expected):
                    raise ValueError(f"{len(row)} fields instead of {len(expected)}")
                counts = np.array([int(v) for v in row[1:]], dtype=np.int64)
                if np.any(counts < 0):
                    raise ValueError("negative vote count")
            except ValueError as exc:
                bad.append(f"line {line}: {exc}")
                continue
            name = row[0].strip().replace("\\", "/")
            if name in votes:  # which row's votes hold would be silent
                bad.append(f"line {line}: {name!r} again (first on line {lines[name]})")
                continue
            first = spelt.setdefault(_canonical_path(name), name)
            if first != name:  # folders are matched in any case: one image, two rows
                bad.append(f"line {line}: {name!r} is {first!r} (line {lines[first]}) with its "
                           "folders in another case, which load_fer2013 reads as one folder")
                continue
            votes[name], lines[name] = counts, line
    if bad:
        raise ValueError(
            f"{len(bad)} bad row(s) in {str(path)!r}: " + "; ".join(bad[:_MAX_NAMED])
        )
    return votes


def _canonical_path(rel):
    """A relative image path with its folders in lower case (``test/Angry/x.png``
    -> ``test/angry/x.png``), as FER+'s votes file names them."""
    folder, sep, name = str(rel).rpartition("/")
    return folder.lower() + sep + name


@validate_params({"votes": ["array-like"]}, prefer_skip_nested_validation=True)
def ferplus_majority(votes):
    """FER+ majority labels of vote counts, with FER+'s own rule.

    The rule of FER+'s reference code (Microsoft ``FERPlus``,
    ``src/ferplus.py``, ``_process_data`` in "majority" mode): each count
    of 1 is an outlier and set to 0; the label is the column holding
    strictly more than half of the remaining votes; without such a column
    there is no majority.  A majority of "unknown" or "NF" (not a face)
    is no emotion either.

    Parameters
    ----------
    votes : array-like of shape (n_samples, 10)
        Vote counts in the columns of :data:`FERPLUS_VOTE_COLUMNS`
        (neutral, happiness, surprise, sadness, anger, disgust, fear,
        contempt, unknown, NF).

    Returns
    -------
    labels : ndarray of shape (n_samples,), dtype int64
        The majority column, 0-9, or -1 where there is no majority
        (labels 8 and 9 are "unknown" and "NF", not emotions).
    distribution : ndarray of shape (n_samples, 8), dtype float64
        The emotion votes after the outlier removal, normalised to sum to
        1 (rows without any emotion vote left are all zero).

    Examples
    --------
    >>> from fersk.datasets import ferplus_majority
    >>> labels, dist = ferplus_majority([[6, 3, 0, 0, 1, 0, 0, 0, 0, 0],   # neutral
    ...                                  [4, 4, 0, 0, 0, 0, 0, 0, 2, 0],   # no majority
    ...                                  [1, 0, 0, 0, 0, 0, 0, 0, 0, 9]])  # not a face
    >>> labels.tolist()
    [0, -1, 9]
    >>> dist[0].round(3).tolist()
    [0.667, 0.333, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """
    v = np.asarray(votes, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != len(FERPLUS_VOTE_COLUMNS):
        raise ValueError(
            f"votes must have shape (n_samples, {len(FERPLUS_VOTE_COLUMNS)}) in the columns "
            f"{list(FERPLUS_VOTE_COLUMNS)}; got {v.shape}."
        )
    if not np.all(np.isfinite(v)) or (v < 0).any() or (v != np.round(v)).any():
        bad = np.flatnonzero(~(np.isfinite(v) & (v >= 0) & (v == np.round(v))).all(axis=1))
        raise ValueError(
            f"votes must be counts (whole numbers >= 0); rows {bad[:5].tolist()} hold "
            f"{v[bad[0]].tolist()}..."
        )
    v = np.where(v <= 1, 0.0, v)  # FER+'s outlier removal
    top = v.argmax(axis=1)
    total = v.sum(axis=1)
    majority = (total > 0) & (v.max(axis=1) > 0.5 * total)
    labels = np.where(majority, top, -1).astype(np.int64)
    emotions = v[:, : len(FERPLUS_CLASSES)]
    sums = emotions.sum(axis=1, keepdims=True)
    distribution = np.divide(emotions, sums, out=np.zeros_like(emotions), where=sums > 0)
    return labels, distribution


@validate_params(
    {
        **LOADER_CONSTRAINTS,
        "votes": [str, os.PathLike, None],
        "usage": [str, list, tuple, None],  # names checked by load_fer2013
    },
    prefer_skip_nested_validation=True,
)
def load_ferplus(path, *, votes=None, usage=None, cache=True, cache_dir=None, n_jobs=None,
                 verbose=0, return_X_y=False):
    """Load FER+ (FER-2013 images with crowd-sourced labels): 8 classes.

    Joins FER+'s ten votes per image (Barsoum et al., ICMI 2016) to the
    FER-2013 image folders read by :func:`load_fer2013`, and labels each
    image by FER+'s majority rule (:func:`ferplus_majority`): vote counts
    of 1 are outliers set to 0; the label is the column with strictly more
    than half of the remaining votes.  Images are dropped, and reported,
    when there is no such majority ("no_majority"), when the majority is
    "unknown" or "NF" ("unknown", "not_a_face"), or when the votes file has
    no row for them ("no_votes", also a warning).  ``images``, ``target``,
    ``distribution``, ``votes``, ``usage`` and ``filenames`` stay aligned.

    Parameters
    ----------
    path : str or os.PathLike
        Root of the FER-2013 image folders (``train/<class>/Training_*.jpg``,
        ``test/<class>/PublicTest_*.jpg``...).  Kaggle's ``fer2013.csv``
        is not accepted: FER+'s votes are keyed by image path.
    votes : str, os.PathLike or None, default=None
        FER+'s votes CSV: a header ``path,neutral,happiness,surprise,
        sadness,anger,disgust,fear,contempt,unknown,NF`` and one row per
        image, ``path`` relative to ``path`` (e.g.
        ``test/angry/PublicTest_10116449.jpg``); a path with no row as it
        is spelt is looked up with its folders in lower case (the image of
        ``test/Angry/`` has the row of ``test/angry/``).  None reads
        ``<path>/ferplus_votes.csv``.
    usage : str or list of str, default=None
        FER-2013 usage(s) to load ("Training", "PublicTest",
        "PrivateTest"); None loads all.
    cache, cache_dir, n_jobs : see :func:`load_fer2013`
        Passed on to it for the images.
    verbose : int, default=0
        When positive, prints how many images were kept and dropped, and
        why.
    return_X_y : bool, default=False
        Return ``(images, target)`` (the majority labels) instead of the
        Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with, for the kept images:

        images : ndarray of shape (n_samples, 48, 48), dtype uint8
            The kept faces.
        data : ndarray of shape (n_samples, 2304), dtype uint8
            The same pixels as rows.
        target : ndarray of shape (n_samples,), dtype int64
            FER+ majority labels: 0 neutral, 1 happiness, 2 surprise,
            3 sadness, 4 anger, 5 disgust, 6 fear, 7 contempt.  FER+'s
            order, not FER-2013's: save a model trained on them with
            ``pretrained.save(..., class_names=...)`` (the names of its
            ``classes_`` from ``target_names``).  Without it, seven classes
            0-6 (FER+ less contempt) would be given FER-2013's names, 0
            "angry" for FER+'s neutral, and scored by ``fersk evaluate``
            against FER-2013's labels.
        target_names : ndarray of str
            The class names above, index = label.
        distribution : ndarray of shape (n_samples, 8), dtype float64
            Each image's emotion votes after the outlier removal,
            normalised to sum to 1, in the order of ``target_names``: the
            soft targets of ``CNNClassifier.fit(X, y, sample_proba=...)``
            (all 8 columns, also for a subset of images whose majority
            labels miss a class: the fitted ``classes_`` are then 0-7).
        votes : ndarray of shape (n_samples, 10), dtype int64
            The raw votes, columns ``vote_names``.
        vote_names : ndarray of str
            The 8 emotions, "unknown" and "NF".
        usage : ndarray of shape (n_samples,), dtype str
            FER-2013 usage of each image.
        filenames : ndarray of str
            Paths relative to ``path``.
        fer2013_target : ndarray of shape (n_samples,), dtype int64
            The original FER-2013 label (class folder) of each image.
        dropped : list of tuple
            ``(filename, reason)`` for every image not kept.
        dropped_counts : dict
            Number of dropped images per reason (keys
            :data:`FERPLUS_DROP_REASONS`).
        DESCR : str
            Description of FER+ and of the rule.

    (images, target) : tuple
        When ``return_X_y`` is True.

    See Also
    --------
    load_fer2013 : The images with FER-2013's own 7 labels.
    ferplus_majority : The labelling rule on vote counts.

    Notes
    -----
    FER+'s reference code trains its "crossentropy" and "probability"
    modes on a truncated distribution (the top emotions covering 75 % of
    the votes, at most three) and keeps a slightly different set of images
    in those modes; here one set of images (those with a majority emotion)
    carries both the majority label and the full distribution, so that the
    two trainings are compared on the same images.

    On the project's copy of FER-2013 and FER+'s votes this keeps 3,199 of
    the 3,589 PublicTest images (367 without a majority, 13 with a
    majority of "unknown", 10 without a row in the votes file) and 25,055
    of the 28,555 Training images (3,422 without a majority, 76 "unknown",
    2 "NF").

    Examples
    --------
    >>> from fersk.datasets import load_ferplus
    >>> data = load_ferplus("../shared/data/fer2013", usage="PublicTest")  # doctest: +SKIP
    >>> data.images.shape, data.distribution.shape  # doctest: +SKIP
    ((3199, 48, 48), (3199, 8))
    """
    func = "load_ferplus"
    root = Path(path).expanduser().absolute()
    if not root.is_dir():
        raise ValueError(
            f"path {str(root)!r} is not a folder: load_ferplus reads the FER-2013 image "
            "folders (FER+'s votes are keyed by image path), not the Kaggle CSV."
        )
    votes_path = root / "ferplus_votes.csv" if votes is None else Path(votes).expanduser()
    if not votes_path.is_file():
        raise ValueError(
            f"FER+ votes file {str(votes_path)!r} not found; give it as votes=..."
        )
    table = _read_ferplus_votes(votes_path)
    fer = load_fer2013(
        root, usage=usage, errors="raise", cache=cache, cache_dir=cache_dir, n_jobs=n_jobs,
        verbose=max(0, verbose - 1),
    )
    # load_fer2013 reads class (and split) folders in any case (test/Angry),
    # FER+'s votes name them in lower case: where a path has no row as it is
    # spelt, its folders are joined in lower case (the file name as it is).
    canonical = {_canonical_path(k): v for k, v in table.items()}
    rows = [table.get(f, canonical.get(_canonical_path(f))) for f in fer.filenames]
    missing = np.array([r is None for r in rows], dtype=bool)
    raw = np.zeros((len(fer.filenames), len(FERPLUS_VOTE_COLUMNS)), dtype=np.int64)
    for i, r in enumerate(rows):
        if r is not None:
            raw[i] = r
    labels, distribution = ferplus_majority(raw)
    reason = np.full(len(labels), "", dtype=object)
    reason[labels == -1] = "no_majority"
    reason[labels == 8] = "unknown"
    reason[labels == 9] = "not_a_face"
    reason[missing] = "no_votes"
    keep = reason == ""
    dropped = [(str(f), r) for f, r in zip(fer.filenames[~keep], reason[~keep])]
    counts = {r: int(np.sum(reason == r)) for r in FERPLUS_DROP_REASONS}
    if counts["no_votes"]:
        names = fer.filenames[missing][:_MAX_NAMED].tolist()
        _warn(
            f"{func}: {counts['no_votes']} image(s) have no row in {str(votes_path)!r} and "
            f"are dropped, e.g. {names}."
        )
    if verbose > 0:
        log(func, f"kept {int(keep.sum())} of {len(keep)} images; dropped "
                  + ", ".join(f"{n} {r}" for r, n in counts.items()))
    if missing.all():
        # Not the votes' fault: the two sides name the images differently.
        raise ValueError(
            f"{func}: none of the {len(missing)} image paths under {str(root)!r} has a row "
            f"in {str(votes_path)!r}: the images are named like {str(fer.filenames[0])!r}, the "
            f"votes like {next(iter(table), '(no rows)')!r} (FER+ keys paths by split "
            "folder: <split>/<class>/<file>, relative to the folder given)."
        )
    if not keep.any():
        raise ValueError(f"No FER+ image with a majority emotion in {str(root)!r}.")
    images = fer.images[keep]
    target = labels[keep]
    if return_X_y:
        return images, target
    return Bunch(
        images=images,
        data=images.reshape(len(images), -1),
        target=target,
        target_names=np.array(FERPLUS_CLASSES),
        distribution=distribution[keep],
        votes=raw[keep],
        vote_names=np.array(FERPLUS_VOTE_COLUMNS),
        usage=fer.usage[keep],
        filenames=fer.filenames[keep],
        fer2013_target=fer.target[keep],
        dropped=dropped,
        dropped_counts=counts,
        DESCR=FERPLUS_DESCR,
    )
