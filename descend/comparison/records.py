"""A task and a finished run as the plain dicts the report layer and the run folder hold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from descend.optim import make_optimizer
from descend.tasks import LR_FROM_CALLER, RunResult, Task, summarize

# Settings of torch's optimizer classes that choose an implementation, not the update rule.
_NOT_HYPERPARAMETERS = ("foreach", "fused", "differentiable", "capturable", "maximize")
# Schedule-Free's and Prodigy's running values, kept in the param group as their reference
# packages keep them: state, not settings.
_NOT_HYPERPARAMETERS += ("k", "train_mode", "weight_sum", "lr_max", "scheduled_lr")
_NOT_HYPERPARAMETERS += ("d", "d_max", "d_numerator", "d_denom", "d_hat", "fsdp_in_use")
FROM_DEFAULT = "optimizer default"
FROM_TASK = "task table"
FROM_COMMAND_LINE = "command line"
FROM_TUNING = "tuned"


def task_info(task: Task) -> dict[str, Any]:
    """The task as the report layer reads it: name, strings and the target as a dict."""
    target = task.target
    return {
        "name": task.name,
        "summary": task.summary,
        "data_source": task.data_source,
        "model_summary": task.model_summary,
        "target": {"metric": target.metric, "value": target.value, "mode": target.mode},
    }


def hyperparameters(
    optimizer: str,
    lr: float,
    lr_source: str,
    options: Mapping[str, Any] | None = None,
    options_source: str = FROM_COMMAND_LINE,
) -> dict[str, dict[str, Any]]:
    """Every hyperparameter ``optimizer`` runs with, ``{name: {"value", "source"}}``.

    The learning rate comes from the task's table, the caller or tuning (``lr_source``);
    ``options`` (the run's ``optimizer_options``: ``{"momentum": 0.95}``) from
    ``options_source``; every other value is the optimizer's own default (the
    registry's, e.g. ``momentum=0.9``, else torch's).
    """
    import torch

    options = dict(options or {})
    built = make_optimizer(optimizer, [torch.zeros(1, requires_grad=True)], lr=lr, **options)
    found: dict[str, dict[str, Any]] = {}
    for name, value in built.defaults.items():
        if name in _NOT_HYPERPARAMETERS:
            continue
        if isinstance(value, tuple):
            value = list(value)
        source = options_source if name in options else FROM_DEFAULT
        if name == "lr":
            source = {LR_FROM_CALLER: FROM_COMMAND_LINE, FROM_TUNING: FROM_TUNING}.get(
                lr_source, FROM_TASK
            )
        found[name] = {"value": value, "source": source}
    return found


def run_record(
    result: RunResult,
    task: Task,
    health: list[dict[str, Any]] | None = None,
    *,
    lr_source: str | None = None,
) -> dict[str, Any]:
    """One finished :class:`~descend.tasks.RunResult` as the plain dict the report layer takes.

    ``health`` (the run's gradient-health records as dicts) is kept with it, so the
    diagnostics of a comparison can be rebuilt from the run folder alone. ``lr_source``
    overrides where the learning rate came from (``"tuned"``).
    """
    config = dict(result.config)
    source = lr_source or result.lr_source
    config["lr_source"] = source
    config["hyperparameters"] = hyperparameters(
        result.optimizer,
        config["lr"],
        source,
        config.get("optimizer_options"),
        FROM_TUNING if source == FROM_TUNING else FROM_COMMAND_LINE,
    )
    record = {
        "optimizer": result.optimizer,
        "seed": result.seed,
        "lr": config.get("lr"),
        "lr_source": source,
        "config": config,
        "history": result.history.to_dict(),
        "summary": {**summarize(result, task), "lr_source": source},
    }
    if health is not None:
        record["health"] = health
    return record
