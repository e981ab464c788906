"""Training batches degraded anew every epoch (the ``degrade`` parameter).

Keras's own augmentation layers run inside the network; JPEG re-encoding
and gamma changes cannot, so :func:`fersk.degrade.degrade_faces` runs here,
on the CPU, batch by batch, as Keras asks for them.  Each batch's
randomness is seeded by (seed, epoch, batch), so that a fit gives the same
numbers whatever order Keras fetches batches in, and a fit resumed from a
checkpoint degrades its remaining epochs as an uninterrupted fit would.
:class:`ShuffledBatches`, the same order without degradation, feeds every
other fit: Keras's own shuffling draws from TensorFlow's generator, which
starts over in a resumed process, so a resumed fit saw other batches than
an uninterrupted one.
"""

import keras
import numpy as np

from fersk.degrade import degrade_faces


class ShuffledBatches(keras.utils.PyDataset):
    """Batches of ``(x, y, sample_weight)`` in a seeded order per epoch.

    Parameters
    ----------
    x : ndarray of shape (n, ...)
        Training images.
    y : ndarray
        Targets (labels or one-hot/soft rows).
    sample_weight : ndarray of shape (n,) or None
        Weight of each image in the loss; None weighs every image 1.
    batch_size : int
        Images per batch.
    seed : int
        Seeds the order of each epoch (``RandomState([seed, e])``, ``e``
        counting calls of :meth:`on_epoch_end`: Keras 3 makes one as each
        fit starts, so the first epoch draws ``e = initial_epoch + 1``; a
        resumed fit gets the same extra call, and matches an uninterrupted
        one).
    initial_epoch : int, default=0
        The epoch the fit starts at (a resumed fit).

    Examples
    --------
    >>> import numpy as np
    >>> from fersk._batches import ShuffledBatches
    >>> batches = ShuffledBatches(np.zeros((5, 4, 4, 1)), np.arange(5), None, 2, seed=0)
    >>> len(batches), batches[0][0].shape
    (3, (2, 4, 4, 1))
    """

    def __init__(self, x, y, sample_weight, batch_size, seed, initial_epoch=0):
        super().__init__()
        self.x = np.asarray(x)
        self.y = y
        self.w = (np.ones(len(self.x), np.float32) if sample_weight is None
                  else np.asarray(sample_weight, np.float32))
        self.batch_size = batch_size
        self.seed = int(seed)
        self.epoch = int(initial_epoch)
        self._order()

    def _order(self):
        self.order = np.random.RandomState([self.seed, self.epoch]).permutation(len(self.x))

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def _images(self, x, index):
        return x

    def __getitem__(self, index):
        idx = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        return self._images(self.x[idx], index), self.y[idx], self.w[idx]

    def on_epoch_end(self):
        self.epoch += 1
        self._order()


class DegradedBatches(ShuffledBatches):
    """Shuffled batches of ``(x, y, sample_weight)``, ``x`` degraded.

    Parameters
    ----------
    x, y, sample_weight, batch_size, seed, initial_epoch
        As :class:`ShuffledBatches`; ``x`` holds values 0..255 (kept as
        uint8 here), and ``seed`` seeds the degradations too.
    probabilities : dict
        :func:`degrade_faces`'s ``probabilities``.

    Examples
    --------
    >>> import numpy as np
    >>> from fersk._batches import DegradedBatches
    >>> faces = np.full((4, 8, 8, 1), 128, np.uint8)
    >>> x, y, w = DegradedBatches(faces, np.arange(4), None, 4, None, seed=0)[0]
    >>> x.shape, x.dtype.name, w.tolist()
    ((4, 8, 8, 1), 'float32', [1.0, 1.0, 1.0, 1.0])
    """

    def __init__(self, x, y, sample_weight, batch_size, probabilities, seed, initial_epoch=0):
        # Rounded: pixels on 0-255 given as floats (254.9) were floored.
        x = np.asarray(x)
        if x.dtype != np.uint8:
            x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        super().__init__(x, y, sample_weight, batch_size, seed, initial_epoch)
        self.probabilities = probabilities

    def _images(self, x, index):
        squeeze = x.ndim == 4 and x.shape[-1] == 1  # grey with a channel axis
        faces = x[..., 0] if squeeze else x
        faces = degrade_faces(faces, probabilities=self.probabilities,
                              random_state=np.random.RandomState([self.seed, self.epoch, index]))
        x = faces[..., np.newaxis] if squeeze else faces
        return x.astype(np.float32)
