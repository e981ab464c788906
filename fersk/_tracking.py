"""Faces followed from frame to frame by the overlap of their boxes.

:class:`fersk.stream.FaceStream` gives each face a track id that stays the
same while the face moves: a detection takes over the track whose last box
it overlaps most (intersection over union, greedy, best pairs first), the
others start new tracks.  A track not found by a detection is kept a few
detections (``max_missed``) so that a face the detector misses once keeps
its id and its smoothed probabilities.  No motion model: at video frame
rates a face moves little between detections, and IoU matching is what the
seed projects' live demos do.
"""

from dataclasses import dataclass, field

import numpy as np

__all__ = []


def iou(a, b):
    """Intersection over union of two ``(row, col, height, width)`` boxes."""
    r0, c0 = max(a[0], b[0]), max(a[1], b[1])
    r1, c1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, r1 - r0) * max(0.0, c1 - c0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def greedy_match(old, new, threshold):
    """Pairs ``(i, j)`` of ``old[i]`` and ``new[j]`` boxes, best overlap first,
    each box in at most one pair, overlaps below ``threshold`` left out."""
    pairs = sorted(
        ((iou(a, b), i, j) for i, a in enumerate(old) for j, b in enumerate(new)),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    used_old, used_new, matched = set(), set(), []
    for overlap, i, j in pairs:
        if overlap < threshold:
            break
        if i in used_old or j in used_new:
            continue
        used_old.add(i)
        used_new.add(j)
        matched.append((i, j))
    return matched


@dataclass
class Track:
    """One followed face: its id, last box and eyes, smoothed probabilities."""

    id: int
    box: tuple
    eyes: object = None
    missed: int = 0  # detections in a row that did not find it
    proba: np.ndarray = field(default=None, repr=False)  # smoothed (EMA)

    def smooth(self, proba, alpha):
        """Fold this frame's probabilities into the moving average."""
        if self.proba is None or alpha >= 1.0:
            self.proba = np.array(proba, dtype=np.float64)
        else:
            self.proba = alpha * np.asarray(proba, dtype=np.float64) + (1.0 - alpha) * self.proba
        return self.proba


class Tracker:
    """Track ids for the boxes of successive detections (IoU matching)."""

    def __init__(self, iou_threshold=0.3, max_missed=5):
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.tracks = []
        self._next_id = 0

    def update(self, faces):
        """Match one detection's ``faces`` (dicts with ``"box"`` and
        ``"eyes"``) to the tracks; return the track of each face, in order."""
        matched = dict(
            (j, i) for i, j in greedy_match(
                [t.box for t in self.tracks], [f["box"] for f in faces], self.iou_threshold
            )
        )
        seen, out = set(), []
        for j, face in enumerate(faces):
            if j in matched:
                track = self.tracks[matched[j]]
                track.box, track.eyes, track.missed = face["box"], face.get("eyes"), 0
            else:
                track = Track(self._next_id, face["box"], face.get("eyes"))
                self._next_id += 1
                self.tracks.append(track)
            seen.add(track.id)
            out.append(track)
        for track in self.tracks:
            if track.id not in seen:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return out

    def active(self):
        """The tracks the last detection found (reused between detections)."""
        return [t for t in self.tracks if t.missed == 0]

    def reset(self):
        self.tracks = []
        self._next_id = 0
