"""Layer ``optim``: update rules as composable transforms, and optimizers built from them.

- transforms over lists of tensors (:mod:`descend.optim.transforms`) and :func:`chain`;
- :class:`Optimizer`, which runs any chain as a real ``torch.optim.Optimizer``;
- the named optimizers (:class:`SGD`, :class:`Adagrad`, :class:`RMSprop`, :class:`Adam`,
  :class:`AdamW`) with torch.optim's signatures and state dicts, and those torch does not
  have (:class:`Lion`, :class:`AdEMAMix`, :class:`LAMB`) with their references';
- the registry of names users type (:func:`make_optimizer`);
- wrappers: :func:`lookahead` and :func:`ema` around any chain (with
  :func:`averaged_weights` to evaluate with the kept weights), and :class:`SAM` around
  any optimizer.
"""

from descend.optim.averaged import averaged_weights
from descend.optim.compose import chain
from descend.optim.conditional import when
from descend.optim.muon_routing import MuonAdamW, muon_defaults
from descend.optim.named import SGD, Adagrad, RMSprop
from descend.optim.named_adafactor import Adafactor
from descend.optim.named_adam import Adam, AdamW
from descend.optim.named_adam_family import Adamax, NAdam, RAdam
from descend.optim.named_classic import ASGD, Adadelta, Rprop
from descend.optim.named_modern import LAMB, AdEMAMix, Lion
from descend.optim.named_muon import FlatMuon, Muon
from descend.optim.named_prodigy import Prodigy
from descend.optim.named_schedulefree import ScheduleFreeAdamW, ScheduleFreeSGD
from descend.optim.named_soap import SOAP
from descend.optim.optimizer import Optimizer
from descend.optim.partition import Partitioned, Route, describe, partition
from descend.optim.registry import (
    OPTIMIZERS,
    OptimizerSpec,
    get_spec,
    make_optimizer,
    optimizer_names,
)
from descend.optim.sam import SAM
from descend.optim.transform import Transform, stateless
from descend.optim.transforms import (
    add_decayed_weights,
    add_weight_decay,
    asgd,
    cautious,
    centralize_gradient,
    clip_by_global_norm,
    clip_by_value,
    ema,
    ema_trace,
    lookahead,
    maximize,
    optimism,
    orthogonalize,
    scale_by_adadelta,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_adamax,
    scale_by_ademamix,
    scale_by_lion,
    scale_by_lr,
    scale_by_nadam,
    scale_by_radam,
    scale_by_rms,
    scale_by_rprop,
    scale_by_shape,
    scale_by_trust_ratio,
    sign,
    trace,
)

__all__ = [
    "ASGD",
    "LAMB",
    "OPTIMIZERS",
    "SAM",
    "SGD",
    "SOAP",
    "AdEMAMix",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "FlatMuon",
    "Lion",
    "Muon",
    "MuonAdamW",
    "NAdam",
    "Optimizer",
    "OptimizerSpec",
    "Partitioned",
    "Prodigy",
    "RAdam",
    "RMSprop",
    "Route",
    "Rprop",
    "ScheduleFreeAdamW",
    "ScheduleFreeSGD",
    "Transform",
    "add_decayed_weights",
    "add_weight_decay",
    "asgd",
    "averaged_weights",
    "cautious",
    "centralize_gradient",
    "chain",
    "clip_by_global_norm",
    "clip_by_value",
    "describe",
    "ema",
    "ema_trace",
    "get_spec",
    "lookahead",
    "make_optimizer",
    "maximize",
    "muon_defaults",
    "optimism",
    "optimizer_names",
    "orthogonalize",
    "partition",
    "scale_by_adadelta",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_ademamix",
    "scale_by_lion",
    "scale_by_lr",
    "scale_by_nadam",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_rprop",
    "scale_by_shape",
    "scale_by_trust_ratio",
    "sign",
    "stateless",
    "trace",
    "when",
]
