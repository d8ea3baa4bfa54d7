"""One trial: sample the hyperparameters, train the task, report each epoch, record the outcome.

The objective is the task's validation metric at the end of training (its target's
metric when that is a validation one, ``val_loss`` otherwise), measured on the
task's validation split with the trial's seed: the same seed for every trial of a
study, so trials differ by their hyperparameters only (common random numbers),
and any trial is rerun exactly by ``descend train --config`` with its values.

After every epoch the metric is reported to Optuna and the pruner asked whether
the trial is worth finishing; a pruned trial stops at the end of that epoch. A
trial whose loss or gradients become NaN or infinite is recorded as FAIL with the
reason (``fail_reason``), never raised into the study.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from descend.tasks import get_task, run_task
from descend.train import Callback, NonFiniteError, TrainState
from descend.tune.spaces import Param, optimizer_options, space_from_dicts
from descend.tune.storage import optuna_module
from descend.tune.workers import signalled


class TrialInterrupted(KeyboardInterrupt):
    """A trial stopped by a signal (its argument: ``"SIGINT"``, ``"SIGTERM"``); it is queued again."""


def objective_metric(task: Any) -> tuple[str, str]:
    """``(metric, direction)``: the task's target metric if measured on validation data."""
    target = task.target
    if target.metric.startswith("val_"):
        return target.metric, "maximize" if target.mode == "max" else "minimize"
    return "val_loss", "minimize"


def suggest(trial: Any, space: tuple[Param, ...]) -> dict[str, float]:
    """The trial's values for ``space``, drawn by the study's sampler."""
    return {p.name: trial.suggest_float(p.name, p.low, p.high, log=p.log) for p in space}


class ReportToTrial(Callback):
    """Report the metric after each epoch; stop the run when the pruner says so."""

    def __init__(self, trial: Any, metric: str) -> None:
        self.trial, self.metric = trial, metric
        self.pruned_at: int | None = None

    def on_fit_start(self, state: TrainState) -> None:
        if signalled():  # a worker signalled while the trial was being set up: stop now
            state.stop(f"interrupted by {signalled()} before training", success=False)

    def on_epoch_end(self, state: TrainState) -> None:
        row = state.history.epochs[-1]
        value = float(row[self.metric])
        epoch = len(state.history.epochs)
        if not math.isfinite(value):
            state.stop(f"{self.metric} is {value} after epoch {epoch}", success=False)
            return
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            state.stop(f"pruned after epoch {epoch}", success=False)


def run_trial(trial: Any, settings: Mapping[str, Any]) -> None:
    """Run one trial of a study with ``settings`` (the study's attributes) and tell Optuna."""
    optuna = optuna_module()
    TrialState = optuna.trial.TrialState
    study = trial.study
    params = suggest(trial, space_from_dicts(settings["space"]))
    seed = int(trial.user_attrs.get("seed", settings["seed"]))
    task = get_task(settings["task"], **settings.get("task_options", {}))
    report = ReportToTrial(trial, settings["metric"])
    try:
        result = run_task(
            task,
            settings["optimizer"],
            lr=params["lr"],
            optimizer_options=optimizer_options(params),
            seed=seed,
            epochs=settings["epochs"],
            batch_size=settings["batch_size"],
            schedule=settings["schedule"],
            callbacks=[report],
            device=settings.get("device", "cpu"),
            precision=settings.get("precision", "fp32"),
            eval_train=False,  # only the validation metric matters here; saves a pass per epoch
        )
    except NonFiniteError as exc:
        trial.set_user_attr("fail_reason", f"diverged: {exc}")
        study.tell(trial, state=TrialState.FAIL)
        return
    interrupted = result.history.interrupted_by or signalled()
    if interrupted:
        # Stopped by Ctrl-C or SIGTERM, not by the trial's merits: the worker gives it back.
        raise TrialInterrupted(interrupted)
    epochs = result.history.epochs
    trial.set_user_attr("epochs_run", len(epochs))
    if report.pruned_at is not None:
        study.tell(trial, state=TrialState.PRUNED)
        return
    value = float(epochs[-1][settings["metric"]]) if epochs else math.nan
    if not math.isfinite(value):
        # ReportToTrial stopped the run and said why ("val_loss is inf after epoch 4").
        why = result.history.stop_reason or f"{settings['metric']} is {value}"
        trial.set_user_attr("fail_reason", f"diverged: {why}")
        study.tell(trial, state=TrialState.FAIL)
        return
    study.tell(trial, value)
