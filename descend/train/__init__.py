"""Layer ``train``: the training loop ``fit``, its history, callbacks and checkpoints.

- :func:`fit`: batch, stochastic and mini-batch gradient descent as one setting,
  with schedules, stopping criteria, callbacks, checkpoints and exact resume;
- :class:`History`: what a run recorded; :class:`TrainState`: what callbacks see;
- callbacks with the names users know from Keras and Lightning;
- checkpoint files: atomic, checksummed, loaded with ``weights_only=True`` only.
"""

from descend.train.callback import Callback
from descend.train.checkpoint import (
    CheckpointError,
    latest_good_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from descend.train.clipping import GradientClipping
from descend.train.early_stopping import EarlyStopping
from descend.train.evaluate import accuracy
from descend.train.fit import fit
from descend.train.history import History
from descend.train.lr_monitor import LearningRateMonitor
from descend.train.model_checkpoint import ModelCheckpoint
from descend.train.modes import recompute_bn
from descend.train.nonfinite import NonFiniteError
from descend.train.plateau import ReduceLROnPlateau
from descend.train.progress import ProgressBar
from descend.train.state import TrainState
from descend.train.tensorboard import TensorBoardLogger

__all__ = [
    "Callback",
    "CheckpointError",
    "EarlyStopping",
    "GradientClipping",
    "History",
    "LearningRateMonitor",
    "ModelCheckpoint",
    "NonFiniteError",
    "ProgressBar",
    "ReduceLROnPlateau",
    "TensorBoardLogger",
    "TrainState",
    "accuracy",
    "fit",
    "latest_good_checkpoint",
    "load_checkpoint",
    "recompute_bn",
    "save_checkpoint",
]
