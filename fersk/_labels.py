"""The names of FER-2013's seven labels, index = label.

Below both the loaders (:mod:`fersk.datasets`, whose ``target`` holds these
indices) and the model folders (:mod:`fersk.pretrained`, which name the
bundled models' classes with them), so that neither imports the other for
them.
"""

#: FER-2013 class names, index = label.
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
