"""Training batches degraded anew every epoch (the ``degrade`` parameter).

Keras's own augmentation layers run inside the network; JPEG re-encoding
and gamma changes cannot, so :func:`fersk.degrade.degrade_faces` runs here,
on the CPU, batch by batch, as Keras asks for them.  Each batch's
randomness is seeded by (seed, epoch, batch), so that a fit gives the same
numbers whatever order Keras fetches batches in, and a fit resumed from a
checkpoint degrades its remaining epochs as an uninterrupted fit would.
"""

import keras
import numpy as np

from fersk.degrade import degrade_faces


class DegradedBatches(keras.utils.PyDataset):
    """Shuffled batches of ``(x, y, sample_weight)``, ``x`` degraded.

    Parameters
    ----------
    x : ndarray of shape (n, h, w, c)
        Training images with values 0..255 (held as uint8 here).
    y : ndarray
        Targets (labels or one-hot/soft rows).
    sample_weight : ndarray of shape (n,) or None
        Weight of each image in the loss; None weighs every image 1.
    batch_size : int
        Images per batch.
    probabilities : dict
        :func:`degrade_faces`'s ``probabilities``.
    seed : int
        Seeds the order of each epoch and the degradations.
    initial_epoch : int, default=0
        The epoch the fit starts at (a resumed fit).
    """

    def __init__(self, x, y, sample_weight, batch_size, probabilities, seed, initial_epoch=0):
        super().__init__()
        self.x = np.asarray(x).astype(np.uint8)
        self.y = y
        self.w = np.ones(len(self.x), np.float32) if sample_weight is None else sample_weight
        self.batch_size = batch_size
        self.probabilities = probabilities
        self.seed = int(seed)
        self.epoch = int(initial_epoch)
        self._order()

    def _order(self):
        self.order = np.random.RandomState([self.seed, self.epoch]).permutation(len(self.x))

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        idx = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        x = self.x[idx]
        squeeze = x.ndim == 4 and x.shape[-1] == 1  # grey with a channel axis
        faces = x[..., 0] if squeeze else x
        faces = degrade_faces(faces, probabilities=self.probabilities,
                              random_state=np.random.RandomState([self.seed, self.epoch, index]))
        x = faces[..., np.newaxis] if squeeze else faces
        return x.astype(np.float32), self.y[idx], self.w[idx]

    def on_epoch_end(self):
        self.epoch += 1
        self._order()
