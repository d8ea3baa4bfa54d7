r"""Search spaces: the tunable hyperparameters of each registry optimizer, with their priors.

A :class:`Param` is one axis of a search: a range and a prior over it. ``log=True`` is
log-uniform, the prior for scales that span decades (a learning rate of 1e-4 and one
of 1e-1 are equally plausible a priori):

.. math::
    \log x \sim \mathcal{U}(\log a, \log b), \qquad p(x) = \frac{1}{x \,(\log b - \log a)}

``log=False`` is uniform on :math:`[a, b]`, the prior for a bounded fraction (momentum,
:math:`\beta_1`) or a quantity whose zero is meaningful (weight decay: a log range can
never reach "no decay").

The ranges (the defaults of ``descend tune``):

=====================  =======================  ============================================
hyperparameter         optimizers               prior
=====================  =======================  ============================================
``lr``                 gd sgd momentum          log-uniform [1e-4, 1]
                       nesterov adagrad
``lr``                 rmsprop adam adamw       log-uniform [1e-5, 1e-1]
``momentum``           momentum nesterov        uniform [0.5, 0.99]
``alpha``              rmsprop                  uniform [0.9, 0.999] (squared-gradient decay)
``beta1``, ``beta2``   adam adamw               uniform [0.8, 0.99], [0.9, 0.9999]
``eps``                adagrad rmsprop adam     log-uniform [1e-10, 1e-6]
                       adamw
``weight_decay``       all but adamw            uniform [0, 1e-3] (coupled: added to the
                                                gradient, so it is scaled by lr)
``weight_decay``       adamw                    uniform [0, 0.1] (decoupled)
``lr``                 adamax nadam radam       log-uniform [1e-5, 1e-1] (with the betas,
                                                eps and decay of adam)
``lr``, ``rho``        adadelta                 log-uniform [1e-2, 1] (torch's default is
                                                1.0), uniform [0.8, 0.99]
``lr``                 asgd; rprop              log-uniform [1e-4, 1]; [1e-4, 1e-1]
``lr``                 schedulefree_adamw       log-uniform [1e-4, 1e-1] (the authors: 1-10x
                                                a scheduled AdamW's), with adamw's betas,
                                                eps and decoupled decay
``lr``, ``momentum``   schedulefree_sgd         log-uniform [1e-3, 1] (the authors: 10-50x
                                                SGD with momentum's), uniform [0.5, 0.98]
``lr``                 prodigy                  log-uniform [0.1, 1] (a multiplier of the
                                                estimated step; 1 is the authors' advice),
                                                ``d_coef`` log-uniform [0.1, 10] (the
                                                authors' preferred knob), decoupled decay
``lr``                 lion                     log-uniform [1e-5, 1e-2] (3-10x below adam's)
``beta1``, ``beta2``   lion                     uniform [0.8, 0.99], [0.9, 0.999]
``weight_decay``       lion                     uniform [0, 0.3] (decoupled; 3-10x adamw's)
``lr``                 ademamix                 log-uniform [1e-5, 1e-1] (with adam's betas
                                                and eps, and adamw's decay)
``beta3``, ``alpha``   ademamix                 uniform [0.999, 0.99999], [1, 10]
``lr``                 lamb                     log-uniform [1e-4, 1e-1] (a fraction of each
                                                tensor's norm per step; with adam's betas
                                                and eps, and adamw's decay)
``lr``                 adafactor                log-uniform [1e-3, 1e-1] (the cap of the
                                                relative step; torch's default 1e-2)
``beta2_decay``        adafactor                uniform [-1, -0.5] (the paper's -0.8)
``weight_decay``       adafactor; soap          uniform [0, 0.1] (decoupled)
``lr``                 soap                     log-uniform [1e-5, 1e-1] (as adam; with its
                                                betas; precondition_frequency, an integer,
                                                stays at the authors' 10)
``lr``, ``momentum``   muon                     log-uniform [1e-5, 1e-1] (AdamW-matched scale:
                                                adamw's range), uniform [0.8, 0.99]
``weight_decay``       muon                     uniform [0, 0.1] (decoupled, as adamw)
=====================  =======================  ============================================

``gd`` tunes ``lr`` only: it is the baseline the others are measured against.
``beta1``/``beta2`` are searched separately and passed as ``betas=(beta1, beta2)``, or
``(beta1, beta2, beta3)`` where ``beta3`` is searched too (:func:`optimizer_options`).

These tables belong on the optimizer registry entries (``descend.optim.registry``);
they live here, keyed by registry name, until the registry grows a field for them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    """One tunable hyperparameter: ``low <= x <= high`` under a uniform or log-uniform prior.

    Attributes:
        name: the hyperparameter's name (torch's, except ``beta1``/``beta2``).
        low, high: the range searched.
        log: log-uniform prior (``low`` must be > 0) instead of uniform.
        bounds: the values the optimizer accepts at all, ``(lowest, highest, highest
            is included)``; an override outside them is refused before any trial runs.
    """

    name: str
    low: float
    high: float
    log: bool = False
    bounds: tuple[float, float, bool] = (0.0, math.inf, False)

    def describe(self) -> str:
        """``"lr in [1e-05, 0.1] (log)"``."""
        return f"{self.name} in [{self.low:g}, {self.high:g}]" + (" (log)" if self.log else "")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a study's attributes (the bounds are the table's, not the search's)."""
        return {"name": self.name, "low": self.low, "high": self.high, "log": self.log}


_FRACTION = (0.0, 1.0, False)  # [0, 1): a decay rate of 1 never forgets


def _lr(low: float, high: float) -> Param:
    return Param("lr", low, high, log=True)


def _decay(high: float) -> Param:
    return Param("weight_decay", 0.0, high)


_EPS = Param("eps", 1e-10, 1e-6, log=True)
_MOMENTUM = Param("momentum", 0.5, 0.99, bounds=_FRACTION)
_BETAS = (
    Param("beta1", 0.8, 0.99, bounds=_FRACTION),
    Param("beta2", 0.9, 0.9999, bounds=_FRACTION),
)

SPACES: Mapping[str, tuple[Param, ...]] = {
    "gd": (_lr(1e-4, 1.0),),
    "sgd": (_lr(1e-4, 1.0), _decay(1e-3)),
    "momentum": (_lr(1e-4, 1.0), _MOMENTUM, _decay(1e-3)),
    "nesterov": (_lr(1e-4, 1.0), _MOMENTUM, _decay(1e-3)),
    "adagrad": (_lr(1e-4, 1.0), _EPS, _decay(1e-3)),
    "rmsprop": (
        _lr(1e-5, 1e-1),
        Param("alpha", 0.9, 0.999, bounds=_FRACTION),
        _EPS,
        _decay(1e-3),
    ),
    "adam": (_lr(1e-5, 1e-1), *_BETAS, _EPS, _decay(1e-3)),
    "adamw": (_lr(1e-5, 1e-1), *_BETAS, _EPS, _decay(0.1)),
    "adamax": (_lr(1e-5, 1e-1), *_BETAS, _EPS, _decay(1e-3)),
    "nadam": (_lr(1e-5, 1e-1), *_BETAS, _EPS, _decay(1e-3)),
    "radam": (_lr(1e-5, 1e-1), *_BETAS, _EPS, _decay(1e-3)),
    "adadelta": (_lr(1e-2, 1.0), Param("rho", 0.8, 0.99, bounds=_FRACTION), _decay(1e-3)),
    "asgd": (_lr(1e-4, 1.0), _decay(1e-3)),
    "rprop": (_lr(1e-4, 1e-1),),
    "schedulefree_adamw": (_lr(1e-4, 1e-1), *_BETAS, _EPS, _decay(0.1)),
    "schedulefree_sgd": (
        _lr(1e-3, 1.0),
        Param("momentum", 0.5, 0.98, bounds=_FRACTION),
        _decay(1e-3),
    ),
    "prodigy": (_lr(0.1, 1.0), Param("d_coef", 0.1, 10.0, log=True), *_BETAS, _decay(0.1)),
    "lion": (
        _lr(1e-5, 1e-2),
        Param("beta1", 0.8, 0.99, bounds=_FRACTION),
        Param("beta2", 0.9, 0.999, bounds=_FRACTION),
        _decay(0.3),
    ),
    "ademamix": (
        _lr(1e-5, 1e-1),
        *_BETAS,
        Param("beta3", 0.999, 0.99999, bounds=_FRACTION),
        Param("alpha", 1.0, 10.0),
        _EPS,
        _decay(0.1),
    ),
    "lamb": (_lr(1e-4, 1e-1), *_BETAS, _EPS, _decay(0.1)),
    "adafactor": (
        _lr(1e-3, 1e-1),
        Param("beta2_decay", -1.0, -0.5, bounds=(-math.inf, 0.0, True)),
        _decay(0.1),
    ),
    "soap": (
        _lr(1e-5, 1e-1),
        *_BETAS,
        _decay(0.1),
    ),
    # One lr for Muon and AdamW (MuonAdamW: Muon's update at AdamW's RMS). Keller Jordan's
    # README: momentum 0.95 "usually fine"; only lr and weight decay need tuning.
    "muon": (_lr(1e-5, 1e-1), Param("momentum", 0.8, 0.99, bounds=_FRACTION), _decay(0.1)),
}
"""Every tunable hyperparameter of each registry optimizer, ``lr`` first."""

TUNE_CHOICES = ("lr", "all")


def search_space(
    optimizer: str, tune: str = "lr", overrides: Sequence[Param] = ()
) -> tuple[Param, ...]:
    """The parameters a study of ``optimizer`` searches.

    Args:
        optimizer: a registry name (a key of :data:`SPACES`).
        tune: ``"lr"`` searches the learning rate only (the rest at the registry's
            defaults); ``"all"`` every hyperparameter in :data:`SPACES`.
        overrides: ranges that replace the table's (from :func:`parse_space`); an
            override of a parameter ``tune`` leaves out adds it to the search.

    Returns:
        The parameters, in the table's order.

    Example:
        >>> [p.describe() for p in search_space("momentum", "lr")]
        ['lr in [0.0001, 1] (log)']
        >>> [p.name for p in search_space("adam", "all")]
        ['lr', 'beta1', 'beta2', 'eps', 'weight_decay']
    """
    from descend._validation import unknown_choice

    if optimizer not in SPACES:
        raise unknown_choice("optimizer", optimizer, SPACES)
    if tune not in TUNE_CHOICES:
        raise unknown_choice("--tune value", tune, TUNE_CHOICES)
    table = SPACES[optimizer]
    chosen = {p.name: p for p in (table[:1] if tune == "lr" else table)}
    chosen.update({p.name: p for p in overrides})
    return tuple(chosen[p.name] for p in table if p.name in chosen)


def optimizer_options(params: Mapping[str, float]) -> dict[str, Any]:
    """A trial's values as the optimizer's keyword arguments, ``lr`` left out.

    Example:
        >>> optimizer_options({"lr": 0.01, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8})
        {'eps': 1e-08, 'betas': (0.9, 0.99)}
    """
    options = {k: v for k, v in params.items() if k not in ("lr", "beta1", "beta2", "beta3")}
    if "beta1" in params or "beta2" in params:
        options["betas"] = (params.get("beta1", 0.9), params.get("beta2", 0.999))
    if "beta3" in params:  # AdEMAMix's slow average
        options["betas"] = (params.get("beta1", 0.9), params.get("beta2", 0.999), params["beta3"])
    return options


def space_to_dicts(space: Iterable[Param]) -> list[dict[str, Any]]:
    """A space as plain data (stored with a study, compared when a command joins it)."""
    return [p.to_dict() for p in space]


def space_from_dicts(rows: Iterable[Mapping[str, Any]]) -> tuple[Param, ...]:
    """The inverse of :func:`space_to_dicts`."""
    return tuple(Param(**{k: row[k] for k in ("name", "low", "high", "log")}) for row in rows)


def describe_space(space: Iterable[Param]) -> str:
    """``"lr in [1e-05, 0.1] (log), eps in ..."``, for messages."""
    return ", ".join(p.describe() for p in space)
