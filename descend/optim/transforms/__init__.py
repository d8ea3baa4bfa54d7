"""The update rules, each written once, as transforms over lists of tensors."""

from descend.optim.transforms.adadelta import scale_by_adadelta
from descend.optim.transforms.adafactor import (
    clip_by_block_rms,
    decay_by_lr,
    scale_by_factored_rms,
    scale_by_relative_step,
)
from descend.optim.transforms.adagrad import scale_by_adagrad
from descend.optim.transforms.adam import scale_by_adam
from descend.optim.transforms.adamax import scale_by_adamax
from descend.optim.transforms.ademamix import scale_by_ademamix
from descend.optim.transforms.asgd import asgd
from descend.optim.transforms.cautious import cautious
from descend.optim.transforms.centralize import centralize_gradient
from descend.optim.transforms.clip import clip_by_global_norm, clip_by_value
from descend.optim.transforms.decay import add_decayed_weights, add_weight_decay
from descend.optim.transforms.ema import ema
from descend.optim.transforms.lion import scale_by_lion
from descend.optim.transforms.lookahead import lookahead
from descend.optim.transforms.momentum import ema_trace, trace
from descend.optim.transforms.nadam import scale_by_nadam
from descend.optim.transforms.optimism import optimism
from descend.optim.transforms.orthogonalize import orthogonalize, scale_by_shape
from descend.optim.transforms.radam import scale_by_radam
from descend.optim.transforms.rms import scale_by_rms
from descend.optim.transforms.rprop import scale_by_rprop
from descend.optim.transforms.scale import maximize, scale_by_lr, sign
from descend.optim.transforms.soap import decay_after_step, scale_by_soap
from descend.optim.transforms.trust_ratio import scale_by_trust_ratio

__all__ = [
    "add_decayed_weights",
    "add_weight_decay",
    "asgd",
    "cautious",
    "centralize_gradient",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "clip_by_value",
    "decay_after_step",
    "decay_by_lr",
    "ema",
    "ema_trace",
    "lookahead",
    "maximize",
    "optimism",
    "orthogonalize",
    "scale_by_adadelta",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_ademamix",
    "scale_by_factored_rms",
    "scale_by_lion",
    "scale_by_lr",
    "scale_by_nadam",
    "scale_by_radam",
    "scale_by_relative_step",
    "scale_by_rms",
    "scale_by_rprop",
    "scale_by_shape",
    "scale_by_soap",
    "scale_by_trust_ratio",
    "sign",
    "trace",
]
