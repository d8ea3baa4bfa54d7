"""Layer ``optim``: update rules as composable transforms, and optimizers built from them.

- transforms over lists of tensors (:mod:`descend.optim.transforms`) and :func:`chain`;
- :class:`Optimizer`, which runs any chain as a real ``torch.optim.Optimizer``;
- the named optimizers (:class:`SGD`, :class:`Adagrad`, :class:`RMSprop`, :class:`Adam`,
  :class:`AdamW`) with torch.optim's signatures and state dicts;
- the registry of names users type (:func:`make_optimizer`).
"""

from descend.optim.named import SGD, Adagrad, RMSprop
from descend.optim.named_adafactor import Adafactor
from descend.optim.named_adam import Adam, AdamW
from descend.optim.named_adam_family import Adamax, NAdam, RAdam
from descend.optim.named_classic import ASGD, Adadelta, Rprop
from descend.optim.named_prodigy import Prodigy
from descend.optim.named_schedulefree import ScheduleFreeAdamW, ScheduleFreeSGD
from descend.optim.named_soap import SOAP
from descend.optim.optimizer import Optimizer
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
    maximize,
    scale_by_adadelta,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_adamax,
    scale_by_lr,
    scale_by_nadam,
    scale_by_radam,
    scale_by_rms,
    scale_by_rprop,
    sign,
    trace,
)

__all__ = [
    "ASGD",
    "OPTIMIZERS",
    "SGD",
    "SOAP",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "Optimizer",
    "OptimizerSpec",
    "Prodigy",
    "RAdam",
    "RMSprop",
    "Rprop",
    "ScheduleFreeAdamW",
    "ScheduleFreeSGD",
    "Transform",
    "add_decayed_weights",
    "add_weight_decay",
    "asgd",
    "chain",
    "clip_by_global_norm",
    "clip_by_value",
    "get_spec",
    "make_optimizer",
    "maximize",
    "optimizer_names",
    "scale_by_adadelta",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_lr",
    "scale_by_nadam",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_rprop",
    "sign",
    "stateless",
    "trace",
    "when",
]
