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
lion       ``Lion``                                   lr=3e-4, betas=(0.9, 0.99), weight_decay=0.03
ademamix   ``AdEMAMix``                               lr=1e-3, betas=(0.9, 0.999, 0.9999), alpha=2
lamb       ``LAMB``                                   lr=0.01, betas=(0.9, 0.999), eps=1e-6
adafactor  ``Adafactor``                              lr=0.01 (torch's: the cap of the
                                                      relative step), beta2_decay=-0.8,
                                                      eps=(None, 1e-3), d=1.0
soap       ``SOAP``                                   lr=3e-3, betas=(0.95, 0.95),
                                                      weight_decay=0.01,
                                                      precondition_frequency=10,
                                                      max_precond_dim=10000 (the
                                                      authors' soap.py defaults)
muon       ``MuonAdamW``: Muon on matrices, AdamW     lr=0.001, weight_decay=0.01
=========  =========================================  =============================

==================  =====================  ==================================================
name                optimizer              defaults (all the reference package's own)
==================  =====================  ==================================================
schedulefree_adamw  ``ScheduleFreeAdamW``  lr=0.0025, betas=(0.9, 0.999), eps=1e-8,
                                           warmup_steps=0, r=0, weight_lr_power=2
                                           (``schedulefree`` 1.4 ``AdamWScheduleFree``)
schedulefree_sgd    ``ScheduleFreeSGD``    lr=1.0, momentum=0.9, warmup_steps=0, r=0,
                                           weight_lr_power=2 (``SGDScheduleFree``; its
                                           README: 10-50x the lr of SGD with momentum)
prodigy             ``Prodigy``            lr=1.0, betas=(0.9, 0.999), d0=1e-6, d_coef=1,
                                           growth_rate=inf, decouple=True,
                                           use_bias_correction=False (``prodigyopt`` 1.1)
==================  =====================  ==================================================

Where the defaults of the newer optimizers come from: ``lion`` takes the paper's betas
and its rule of thumb (Chen et al. 2023, section 5: an lr 3-10x smaller and a decay 3-10x
larger than AdamW's), applied to ``adamw``'s lr=1e-3 and weight_decay=0.01 at the 3x end,
so that the decay's strength lr * weight_decay stays AdamW's. ``ademamix`` takes the
authors' code's defaults (apple/ml-ademamix: alpha=2, no warmups; the paper's long runs
use alpha in [4, 10] with warmups as long as the run, which a registry default cannot
know). ``lamb`` takes pytorch-optimizer's betas and eps, but lr=0.01: LAMB's lr is the
fraction of each tensor's norm that one step moves, and pytorch-optimizer's 1e-3 leaves
``digits`` at 82% validation accuracy after its 5-epoch recipe, where 0.01 reaches 97%.

``gd`` and ``sgd`` are the same update rule: whether descent is batch, stochastic or
mini-batch is the training loop's ``batch_size``, not the optimizer.

On a built-in task the learning rate comes from the task's table, which is tuned for
the eight classic names; every other entry says how its rate relates to one of those
(``lr_relative_to``, ``lr_factor``: Adam's relatives take Adam's, Lion a third of
AdamW's, Schedule-Free SGD ten times momentum's) or keeps its own scale-free default.

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
from descend.optim.named_adafactor import Adafactor
from descend.optim.named_adam import Adam, AdamW
from descend.optim.named_adam_family import Adamax, NAdam, RAdam
from descend.optim.named_classic import ASGD, Adadelta, Rprop
from descend.optim.named_modern import LAMB, AdEMAMix, Lion
from descend.optim.named_prodigy import Prodigy
from descend.optim.named_schedulefree import ScheduleFreeAdamW, ScheduleFreeSGD
from descend.optim.named_soap import SOAP


@dataclass(frozen=True)
class OptimizerSpec:
    """A registry entry: the class, its default hyperparameters and a one-line summary."""

    name: str
    cls: type[torch.optim.Optimizer]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    # On a task, this optimizer's lr is ``lr_factor`` times the task's lr for
    # ``lr_relative_to`` (a rule from its paper or reference: Lion takes a third of AdamW's);
    # ``None``: its own default lr, which is then scale-free (Prodigy's multiplier of its
    # estimate, Adadelta's, LAMB's fraction of each tensor's norm).
    lr_relative_to: str | None = None
    lr_factor: float = 1.0


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
        OptimizerSpec(
            "adamax",
            Adamax,
            {"lr": 0.002},
            "Adamax: Adam over an infinity norm",
            lr_relative_to="adam",
        ),
        OptimizerSpec(
            "nadam",
            NAdam,
            {"lr": 0.002, "momentum_decay": 0.004},
            "NAdam: Adam with Nesterov momentum",
            lr_relative_to="adam",
        ),
        OptimizerSpec(
            "radam",
            RAdam,
            {"lr": 0.001},
            "RAdam: Adam with a rectified warmup",
            lr_relative_to="adam",
        ),
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
            lr_relative_to="sgd",
        ),
        OptimizerSpec(
            "rprop",
            Rprop,
            {"lr": 0.01, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50)},
            "Rprop: sign-based steps, full batch",
        ),
        OptimizerSpec(
            "schedulefree_adamw",
            ScheduleFreeAdamW,
            {"lr": 0.0025},
            "Schedule-Free AdamW: averaged iterates instead of a schedule (train/eval modes)",
            lr_relative_to="adamw",
        ),
        OptimizerSpec(
            "schedulefree_sgd",
            ScheduleFreeSGD,
            {"lr": 1.0, "momentum": 0.9},
            "Schedule-Free SGD: averaged iterates instead of momentum and a schedule",
            lr_relative_to="momentum",
            lr_factor=10.0,
        ),
        OptimizerSpec("prodigy", Prodigy, {"lr": 1.0}, "Prodigy: Adam with an estimated step size"),
        OptimizerSpec(
            "lion",
            Lion,
            {"lr": 3e-4, "betas": (0.9, 0.99), "weight_decay": 0.03},
            "Lion: the sign of interpolated momentum",
            lr_relative_to="adamw",
            lr_factor=1 / 3,
        ),
        OptimizerSpec(
            "ademamix",
            AdEMAMix,
            {"lr": 1e-3, "betas": (0.9, 0.999, 0.9999), "alpha": 2.0},
            "AdEMAMix: Adam plus a slow gradient average",
            lr_relative_to="adam",
        ),
        OptimizerSpec(
            "lamb",
            LAMB,
            {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-6},
            "LAMB: Adam with a per-layer trust ratio",
        ),
        # torch.optim.Adafactor's defaults (its lr=1e-2 is the paper's cap of 0.01 on the
        # relative step; Shazeer & Stern 2018, section 8). Not a step size but a cap on
        # min(lr, 1/sqrt(t)) times each parameter's RMS: the same on every task.
        OptimizerSpec(
            "adafactor",
            Adafactor,
            {"lr": 0.01},
            "Adafactor: factored second moment, relative steps",
        ),
        # The authors' defaults (github.com/nikhilvyas/SOAP, soap.py; Vyas et al. 2024).
        # Adam in a rotated basis: on a task, Adam's step size carries over.
        OptimizerSpec(
            "soap",
            SOAP,
            {"lr": 3e-3, "weight_decay": 0.01},
            "SOAP: Adam in Shampoo's eigenbasis",
            lr_relative_to="adam",
        ),
        OptimizerSpec(
            "muon",
            MuonAdamW,
            {"lr": 0.001, "weight_decay": 0.01},
            "Muon (orthogonalized momentum) on 2-D weights, AdamW on the rest",
            lr_relative_to="adamw",
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
