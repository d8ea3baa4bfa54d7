"""The update rules, each written once, as transforms over lists of tensors."""

from descend.optim.transforms.adadelta import scale_by_adadelta
from descend.optim.transforms.adagrad import scale_by_adagrad
from descend.optim.transforms.adam import scale_by_adam
from descend.optim.transforms.adamax import scale_by_adamax
from descend.optim.transforms.asgd import asgd
from descend.optim.transforms.clip import clip_by_global_norm, clip_by_value
from descend.optim.transforms.decay import add_decayed_weights, add_weight_decay
from descend.optim.transforms.momentum import ema_trace, trace
from descend.optim.transforms.nadam import scale_by_nadam
from descend.optim.transforms.orthogonalize import orthogonalize, scale_by_shape
from descend.optim.transforms.radam import scale_by_radam
from descend.optim.transforms.rms import scale_by_rms
from descend.optim.transforms.rprop import scale_by_rprop
from descend.optim.transforms.scale import maximize, scale_by_lr, sign

__all__ = [
    "add_decayed_weights",
    "add_weight_decay",
    "asgd",
    "clip_by_global_norm",
    "clip_by_value",
    "ema_trace",
    "maximize",
    "orthogonalize",
    "scale_by_adadelta",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_lr",
    "scale_by_nadam",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_rprop",
    "scale_by_shape",
    "sign",
    "trace",
]
