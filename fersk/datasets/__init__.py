"""Load FER-2013 and labelled image folders as scikit-learn ``Bunch`` objects.

* :func:`load_fer2013` reads either of the two forms FER-2013 is found in:
  Kaggle's ``fer2013.csv`` (columns ``emotion,pixels,Usage``) or the
  image-folder release (``train/<class>/Training_<id>.jpg``,
  ``test/<class>/PublicTest_<id>.jpg``...), into 48x48 uint8 images, FER
  labels and each sample's usage.  Folder loads are cached (decoded arrays
  keyed on the folder's file names, sizes, modification and change times), so the
  second load of the 32k-image folder takes a fraction of a second.
* :func:`fer2013_predefined_split` turns the usages into the Kaggle protocol
  as a :class:`~sklearn.model_selection.PredefinedSplit`: fit on Training,
  validate on PublicTest, e.g. in :class:`~sklearn.model_selection.GridSearchCV`.
* :func:`load_image_folder` reads any ``<root>/<class>/<file>`` folder of
  images of any size, grey or colour.
* :func:`load_ferplus` joins FER+'s crowd votes (Barsoum et al. 2016) to
  the FER-2013 image folders: 8 classes, FER+'s majority rule
  (:func:`ferplus_majority`, dropped images reported) and each image's
  vote distribution, the soft targets of ``fit(X, y, sample_proba=...)``.

Nothing is dropped silently: a bad CSV row, an unreadable, corrupt or
wrongly sized image raises a ValueError naming it, unless ``errors="skip"``,
which drops it with a :class:`SkippedImagesWarning` giving the count and
records the names and reasons in the Bunch's ``skipped``.
* :func:`load_sfew`, :func:`load_expw`, :func:`load_muxspace` and
  :func:`load_in_the_wild` cut the faces of other sources with the
  bundled pipelines' :func:`bundled_cropper`, each face tagged with its
  ``source`` (:func:`source_sample_weight` weighs the sources).

One module per job; everything is imported from ``fersk.datasets``, the
submodules are private:

- ``_common``: the FER-2013 constants, :class:`SkippedImagesWarning`, the
  ``errors=`` policy and the argument checks all loaders share;
- ``_decoding``: listing image files and decoding them in threads;
- ``_cache``: decoded data kept on disk (atomic, keyed, rebuilt if damaged);
- ``_fer2013``: :func:`load_fer2013` (CSV and folders) and
  :func:`fer2013_predefined_split`;
- ``_ferplus``: :func:`load_ferplus` and :func:`ferplus_majority`;
- ``_image_folder``: :func:`load_image_folder`;
- ``_wild``: the faces in the wild (SFEW, ExpW, muxspace, all together).
"""

# The constants are public too (documented where they are defined).
from ._common import (  # noqa: F401
    FER2013_CLASSES,
    FER2013_SHAPE,
    FER2013_USAGES,
    IMAGE_EXTENSIONS,
    SkippedImagesWarning,
)
from ._fer2013 import FER2013_DESCR, fer2013_predefined_split, load_fer2013  # noqa: F401
from ._ferplus import (  # noqa: F401
    FERPLUS_CLASSES,
    FERPLUS_DESCR,
    FERPLUS_DROP_REASONS,
    FERPLUS_VOTE_COLUMNS,
    ferplus_majority,
    load_ferplus,
)
from ._image_folder import load_image_folder
from ._wild import (
    bundled_cropper,
    load_expw,
    load_in_the_wild,
    load_muxspace,
    load_sfew,
)
from fersk._source_weights import source_sample_weight

__all__ = [
    "load_fer2013",
    "fer2013_predefined_split",
    "load_image_folder",
    "load_ferplus",
    "ferplus_majority",
    "SkippedImagesWarning",
    "load_sfew",
    "load_expw",
    "load_muxspace",
    "load_in_the_wild",
    "bundled_cropper",
    "source_sample_weight",
]

# The public names keep the module users know (repr, pickles, Sphinx),
# wherever they are defined.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
