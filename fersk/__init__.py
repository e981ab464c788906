"""fersk: facial expression recognition that speaks scikit-learn.

Transformers turn face images into representations (:class:`LBPCodeTransformer`,
:class:`LBPHistogram`, :class:`MDSMappedLBP`, :class:`FaceCropper`); estimators
classify them (:class:`LBCNNClassifier`, :class:`CNNClassifier`,
:class:`CNNEnsembleClassifier`) or regress arousal and valence
(:class:`CNNRegressor`, scored by :mod:`fersk.metrics`); :class:`NetworkFeatures`
gives a trained network's last hidden layer to any scikit-learn estimator (a new
last layer for one's own faces); :mod:`fersk.datasets`
loads FER-2013, FER+ and image folders; :mod:`fersk.pretrained` holds ready-to-use pipelines;
:func:`stream` classifies the faces of cameras and videos live (:mod:`fersk.live`).  Keras-based names are imported lazily, so ``import fersk``
stays fast and TensorFlow is loaded only when one of them is first imported
(or MTCNN used).
"""

import importlib

from fersk import _quiet

_quiet.install()  # TensorFlow's native start-up lines, off stderr (FERSK_TF_LOGS=1 shows them)

__version__ = "0.1.0.dev0"

# public name -> module that defines it
_LAZY = {
    "LBPCodeTransformer": "fersk.lbp",
    "LBPHistogram": "fersk.lbp",
    "local_binary_pattern_batch": "fersk.lbp",
    "MDSMappedLBP": "fersk.mapped_lbp",
    "lbp_code_distances": "fersk.mapped_lbp",
    "FaceCropper": "fersk.face",
    "NoFaceWarning": "fersk.face",
    "predict_faces": "fersk.face",
    "stream": "fersk.live",
    "FaceStream": "fersk.live",
    "CNNClassifier": "fersk.classifiers",
    "LBCNNClassifier": "fersk.classifiers",
    "CNNEnsembleClassifier": "fersk.ensemble",
    "CNNRegressor": "fersk.regressors",
    "NetworkFeatures": "fersk.network_features",
    "concordance_correlation_coefficient": "fersk.metrics",
    "metrics": "fersk.metrics",
    "datasets": "fersk.datasets",
    "pretrained": "fersk.pretrained",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        return module if _LAZY[name].endswith(name) else getattr(module, name)
    raise AttributeError(f"module 'fersk' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
