"""Layer ``optim``: update rules as composable transforms, and optimizers built from them.

- transforms over lists of tensors (:mod:`descend.optim.transforms`) and :func:`chain`;
- :class:`Optimizer`, which runs any chain as a real ``torch.optim.Optimizer``;
- the named optimizers (:class:`SGD`, :class:`Adagrad`, :class:`RMSprop`, :class:`Adam`,
  :class:`AdamW`) with torch.optim's signatures and state dicts;
- the registry of names users type (:func:`make_optimizer`).
"""

from descend.optim.muon_routing import MuonAdamW, muon_defaults
from descend.optim.named import SGD, Adagrad, RMSprop
from descend.optim.named_adam import Adam, AdamW
from descend.optim.named_adam_family import Adamax, NAdam, RAdam
from descend.optim.named_classic import ASGD, Adadelta, Rprop
from descend.optim.named_muon import FlatMuon, Muon
from descend.optim.optimizer import Optimizer
from descend.optim.partition import Partitioned, Route, describe, partition
from descend.optim.registry import (
    OPTIMIZERS,
    OptimizerSpec,
    get_spec,
    make_optimizer,
    optimizer_names,
)
from descend.optim.transform import Transform, chain, stateless, when
from descend.optim.transforms import (
    add_decayed_weights,
    add_weight_decay,
    asgd,
    clip_by_global_norm,
    clip_by_value,
    ema_trace,
    maximize,
    orthogonalize,
    scale_by_adadelta,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_adamax,
    scale_by_lr,
    scale_by_nadam,
    scale_by_radam,
    scale_by_rms,
    scale_by_rprop,
    scale_by_shape,
    sign,
    trace,
)

__all__ = [
    "ASGD",
    "OPTIMIZERS",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "FlatMuon",
    "Muon",
    "MuonAdamW",
    "NAdam",
    "Optimizer",
    "OptimizerSpec",
    "Partitioned",
    "RAdam",
    "RMSprop",
    "Route",
    "Rprop",
    "Transform",
    "add_decayed_weights",
    "add_weight_decay",
    "asgd",
    "chain",
    "clip_by_global_norm",
    "clip_by_value",
    "describe",
    "ema_trace",
    "get_spec",
    "make_optimizer",
    "maximize",
    "muon_defaults",
    "optimizer_names",
    "orthogonalize",
    "partition",
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
    "stateless",
    "trace",
    "when",
]
