"""The names users type (``descend train --optimizer momentum``) mapped to optimizers.

Each entry is a named optimizer class with documented default hyperparameters; options
given by the caller override them.

=========  =========================================  =============================
name       optimizer                                  defaults
=========  =========================================  =============================
gd         plain gradient descent (``SGD``)           lr=0.01
sgd        stochastic gradient descent (``SGD``)      lr=0.01
momentum   heavy-ball momentum (``SGD``)              lr=0.01, momentum=0.9
nesterov   Nesterov momentum (``SGD``)                lr=0.01, momentum=0.9, nesterov=True
adagrad    ``Adagrad``                                lr=0.01
rmsprop    ``RMSprop``                                lr=0.001
adam       ``Adam``                                   lr=0.001
adamw      ``AdamW``                                  lr=0.001, weight_decay=0.01
adamax     ``Adamax``                                 lr=0.002
nadam      ``NAdam``                                  lr=0.002, momentum_decay=0.004
radam      ``RAdam``                                  lr=0.001
adadelta   ``Adadelta``                               lr=1.0, rho=0.9, eps=1e-6
asgd       ``ASGD``                                   lr=0.01, lambd=1e-4, alpha=0.75, t0=1e6
rprop      ``Rprop``                                  lr=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 50)
muon       ``MuonAdamW``: Muon on matrices, AdamW     lr=0.001, weight_decay=0.01
=========  =========================================  =============================

``gd`` and ``sgd`` are the same update rule: whether descent is batch, stochastic or
mini-batch is the training loop's ``batch_size``, not the optimizer.

``muon`` must run on any model's ``parameters()`` (biases and norms included; a task is
often vectors only), so it is :class:`~descend.optim.muon_routing.MuonAdamW`: every 2-D
parameter to ``Muon``, every other to ``AdamW``, with one ``lr`` and ``weight_decay`` for
both (Moonshot's ``adjust_lr_fn="match_rms_adamw"`` makes AdamW's values carry over,
Liu et al. 2025, https://arxiv.org/abs/2502.16982), defaults as ``adamw``'s. On a model
with no matrix it is AdamW. ``descend.Muon`` itself is torch's (matrices only);
``descend.muon_defaults(model)`` is Keller Jordan's split (head and embeddings to AdamW).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from descend._validation import reject_unknown_keywords, unknown_choice
from descend.optim.muon_routing import MuonAdamW
from descend.optim.named import SGD, Adagrad, RMSprop
from descend.optim.named_adam import Adam, AdamW
from descend.optim.named_adam_family import Adamax, NAdam, RAdam
from descend.optim.named_classic import ASGD, Adadelta, Rprop


@dataclass(frozen=True)
class OptimizerSpec:
    """A registry entry: the class, its default hyperparameters and a one-line summary."""

    name: str
    cls: type[torch.optim.Optimizer]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""


OPTIMIZERS: dict[str, OptimizerSpec] = {
    s.name: s
    for s in [
        OptimizerSpec("gd", SGD, {"lr": 0.01}, "plain gradient descent: θ ← θ − η∇L"),
        OptimizerSpec(
            "sgd", SGD, {"lr": 0.01}, "stochastic gradient descent (the same rule, on samples)"
        ),
        OptimizerSpec("momentum", SGD, {"lr": 0.01, "momentum": 0.9}, "heavy-ball momentum"),
        OptimizerSpec(
            "nesterov",
            SGD,
            {"lr": 0.01, "momentum": 0.9, "nesterov": True},
            "Nesterov accelerated gradient",
        ),
        OptimizerSpec("adagrad", Adagrad, {"lr": 0.01}, "AdaGrad: sum of squared gradients"),
        OptimizerSpec("rmsprop", RMSprop, {"lr": 0.001}, "RMSprop: moving RMS of gradients"),
        OptimizerSpec("adam", Adam, {"lr": 0.001}, "Adam: bias-corrected moments"),
        OptimizerSpec(
            "adamw",
            AdamW,
            {"lr": 0.001, "weight_decay": 0.01},
            "AdamW: Adam with decoupled weight decay",
        ),
        OptimizerSpec("adamax", Adamax, {"lr": 0.002}, "Adamax: Adam over an infinity norm"),
        OptimizerSpec(
            "nadam",
            NAdam,
            {"lr": 0.002, "momentum_decay": 0.004},
            "NAdam: Adam with Nesterov momentum",
        ),
        OptimizerSpec("radam", RAdam, {"lr": 0.001}, "RAdam: Adam with a rectified warmup"),
        OptimizerSpec(
            "adadelta",
            Adadelta,
            {"lr": 1.0, "rho": 0.9, "eps": 1e-6},
            "Adadelta: RMS of updates over RMS of gradients",
        ),
        OptimizerSpec(
            "asgd",
            ASGD,
            {"lr": 0.01, "lambd": 1e-4, "alpha": 0.75, "t0": 1e6},
            "ASGD: SGD with iterate averaging",
        ),
        OptimizerSpec(
            "rprop",
            Rprop,
            {"lr": 0.01, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50)},
            "Rprop: sign-based steps, full batch",
        ),
        OptimizerSpec(
            "muon",
            MuonAdamW,
            {"lr": 0.001, "weight_decay": 0.01},
            "Muon (orthogonalized momentum) on 2-D weights, AdamW on the rest",
        ),
    ]
}


def optimizer_names() -> list[str]:
    """The registry's names, in the documented order."""
    return list(OPTIMIZERS)


def get_spec(name: str) -> OptimizerSpec:
    """The entry for ``name`` (case-insensitive); an unknown name lists the available ones."""
    key = name.strip().lower()
    if key not in OPTIMIZERS:
        raise unknown_choice("optimizer", name, OPTIMIZERS)
    return OPTIMIZERS[key]


def make_optimizer(
    optimizer: str | type[torch.optim.Optimizer],
    params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """Build an optimizer from a registry name or any ``torch.optim.Optimizer`` class.

    Args:
        optimizer: a name from :data:`OPTIMIZERS` (``"adam"``, ``"momentum"``, ...) or a class.
        params: the parameters or param groups.
        **kwargs: hyperparameters; they override the registry's defaults.

    Example:
        >>> import torch
        >>> from descend.optim import make_optimizer
        >>> opt = make_optimizer("nesterov", [torch.zeros(2, requires_grad=True)], lr=0.05)
        >>> type(opt).__name__, opt.defaults["momentum"], opt.defaults["lr"]
        ('SGD', 0.9, 0.05)
    """
    if isinstance(optimizer, str):
        spec = get_spec(optimizer)
        reject_unknown_keywords(spec.cls.__name__, spec.cls, kwargs)
        return spec.cls(params, **{**spec.defaults, **kwargs})
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        reject_unknown_keywords(optimizer.__name__, optimizer, kwargs)
        return optimizer(params, **kwargs)
    raise unknown_choice("optimizer", repr(optimizer), OPTIMIZERS)
