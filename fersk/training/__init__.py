"""Training recipes on FER-2013: the library behind ``fersk train`` and the bundled models.

The command line (``fersk train``) and ``benchmarks/train_pretrained.py``
call these functions; so can a user, from Python:

* :func:`train_fer2013` trains a network (optionally behind a
  representation, or fine-tuning a saved model) on the Training split with
  PublicTest as validation data, and returns the end-to-end pipeline and
  the metrics of its model card;
* :func:`ensemble_fer2013` joins trained models into Levi & Hassner's
  soft-voting ensemble without retraining them;
* :func:`fer2013_splits`, :func:`publictest_metrics`,
  :func:`ablate_test_time_views`, :func:`representation_steps`,
  :func:`ensemble_member`, :func:`describe` and
  :func:`machine_description` are their parts.

The modules, by job: :mod:`~fersk.training.recipes` (splits,
representations, the training itself), :mod:`~fersk.training.model_card`
(metrics and description), :mod:`~fersk.training.ensembling`,
:mod:`~fersk.training.distillation`, :mod:`~fersk.training.machine` (the
hardware line) and :mod:`~fersk.training.params` (``--param``'s type).
Every name is importable from ``fersk.training`` itself.

PrivateTest is never read: models are selected on PublicTest, as the
Kaggle protocol says.
"""

from fersk.training.distillation import distillation_targets
from fersk.training.ensembling import ensemble_fer2013, ensemble_member
from fersk.training.machine import machine_description
from fersk.training.model_card import ablate_test_time_views, describe, publictest_metrics
from fersk.training.params import REPRESENTATIONS, parse_param
from fersk.training.recipes import (
    PREDICTION_PARAMS,
    discard_training_state,
    fer2013_splits,
    representation_steps,
    train_fer2013,
)

__all__ = [
    "REPRESENTATIONS", "PREDICTION_PARAMS", "machine_description", "representation_steps",
    "fer2013_splits", "publictest_metrics", "ablate_test_time_views", "train_fer2013",
    "distillation_targets", "ensemble_fer2013", "ensemble_member", "describe", "parse_param",
    "discard_training_state",
]
