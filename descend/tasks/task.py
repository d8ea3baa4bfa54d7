"""What a task is: data, a model, a loss, metrics, a target and a default recipe.

A :class:`Task` is a frozen description that the CLI, the report and the
diagnostics read. Its behaviour (building data, building the model, the loss)
comes from three callables, so each task is one small factory function in its
own file instead of a subclass that repeats the same boilerplate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from descend._validation import OneOf, validate

Metric = Callable[[Any, Tensor], float]
"""A metric maps (model output, target) to a float computed over the whole batch given."""

OPTIMIZER_NAMES = ("gd", "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
# muon: Muon on the matrices at AdamW's update RMS, so it takes the adaptive methods' rate.
OPTIMIZER_NAMES += ("muon",)


@dataclass(frozen=True)
class Target:
    """The level of a logged metric that counts as "solved", e.g. ``Target("val_accuracy", 0.95, "max")``.

    ``metric`` names a column of ``History.epochs`` (``val_loss``, ``val_<metric>``);
    ``mode`` says whether larger (``"max"``) or smaller (``"min"``) is better.
    """

    metric: str
    value: float
    mode: str

    def __post_init__(self) -> None:
        validate("Target", {"mode": self.mode}, {"mode": OneOf(("max", "min"))})

    def reached(self, value: float | None) -> bool:
        """Whether ``value`` meets the target (NaN and ``None`` never do)."""
        if value is None or math.isnan(value):
            return False
        return value >= self.value if self.mode == "max" else value <= self.value

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b`` in this target's direction."""
        return a > b if self.mode == "max" else a < b

    def describe(self) -> str:
        """``"val_accuracy >= 0.95"``."""
        return f"{self.metric} {'>=' if self.mode == 'max' else '<='} {self.value:g}"


@dataclass(frozen=True)
class TaskData:
    """Train and validation ``(inputs, targets)`` tensors, plus task-specific facts in ``meta``."""

    train: tuple[Tensor, Tensor]
    val: tuple[Tensor, Tensor]
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Task:
    """A built-in workload and its default recipe.

    Args:
        name: registry name (``"digits"``).
        summary: one line saying what is learned.
        data_source: where the data comes from, and its license where relevant.
        model_summary: the architecture in a few words.
        target: the metric level the default recipe reaches.
        epochs, batch_size: the default recipe (``batch_size=None`` is full-batch).
        lrs: default learning rate per optimizer registry name.
        default_optimizer: the optimizer the default recipe uses.
        metrics: per-task metrics, each ``(output, target) -> float``.
        make_data: ``seed -> TaskData``, deterministic given the seed.
        make_model: builds a freshly initialised model from the global torch RNG;
            :meth:`model` seeds and isolates that RNG.
        loss_fn: ``(output, target) -> scalar tensor``.
        options: the task options chosen (``{"init": "xavier"}``), for the run config.
    """

    name: str
    summary: str
    data_source: str
    model_summary: str
    target: Target
    epochs: int
    batch_size: int | None
    lrs: Mapping[str, float]
    default_optimizer: str
    metrics: Mapping[str, Metric] = field(default_factory=dict)
    make_data: Callable[[int], TaskData] = field(repr=False, compare=False)
    make_model: Callable[[], nn.Module] = field(repr=False, compare=False)
    loss_fn: Callable[[Any, Tensor], Tensor] = field(repr=False, compare=False)
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [n for n in OPTIMIZER_NAMES if n not in self.lrs]
        if missing:
            raise ValueError(f"Task {self.name!r} has no default learning rate for {missing}.")
        validate(
            f"task {self.name!r}",
            {"default_optimizer": self.default_optimizer},
            {"default_optimizer": OneOf(OPTIMIZER_NAMES)},
        )

    def data(self, seed: int = 0) -> TaskData:
        """Train/validation tensors; the same seed always gives the same tensors."""
        return self.make_data(seed)

    def model(self, seed: int = 0) -> nn.Module:
        """A freshly initialised model; the same seed gives the same weights.

        The global torch RNG is forked, so building a model leaves the caller's
        random stream untouched.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.make_model()

    def loss(self, output: Any, target: Tensor) -> Tensor:
        """The training objective for one batch (a scalar tensor)."""
        return self.loss_fn(output, target)

    def describe(self) -> dict[str, Any]:
        """The description as plain data (for configs, tables and reports)."""
        return {
            "name": self.name,
            "summary": self.summary,
            "data_source": self.data_source,
            "model": self.model_summary,
            "target": self.target.describe(),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "default_optimizer": self.default_optimizer,
            "lr": self.lrs[self.default_optimizer],
            "metrics": sorted(self.metrics),
            "options": dict(self.options),
        }
