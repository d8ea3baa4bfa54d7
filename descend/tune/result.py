"""What a study found: :class:`TuneResult`, read back from the study's storage by :func:`collect`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from descend.tune.spaces import optimizer_options
from descend.tune.storage import optuna_module, redact, study_settings
from descend.tune.trials import trial_records


@dataclass
class TuneResult:
    """What a study found.

    Attributes:
        study: the study's name; ``storage``: where it lives (password hidden).
        settings: the study's settings (task, optimizer, space, metric, direction,
            epochs, batch size, schedule, seed, trials, pruner).
        trials: one plain dict per trial (see :func:`descend.tune.trials.trial_records`).
        best: the best finished trial's record, ``None`` when no trial completed.
        importances: hyperparameter -> importance (Optuna's fANOVA), empty when
            fewer than two trials completed.
    """

    study: str
    storage: str
    settings: dict[str, Any]
    trials: list[dict[str, Any]]
    best: dict[str, Any] | None
    importances: dict[str, float] = field(default_factory=dict)

    @property
    def best_params(self) -> dict[str, float]:
        """The best trial's hyperparameters (``{}`` when none completed)."""
        return dict(self.best["params"]) if self.best else {}

    @property
    def best_value(self) -> float | None:
        return None if self.best is None else self.best["value"]

    def counted(self) -> list[dict[str, Any]]:
        """The trials of the budget: all but lost ones (each lost trial was run again)."""
        return [t for t in self.trials if not t["lost"]]

    def best_config(self) -> dict[str, Any]:
        """The best trial as the settings of ``descend train --config`` (``best.yaml``)."""
        if self.best is None:
            raise ValueError(f"study {self.study!r} has no completed trial, so no best settings")
        s, params = self.settings, self.best["params"]
        options = {
            k: list(v) if isinstance(v, tuple) else v for k, v in optimizer_options(params).items()
        }
        return {
            "task": s["task"],
            "optimizer": s["optimizer"],
            "lr": params["lr"],
            "optimizer_options": options,
            "seed": self.best["seed"],
            "epochs": s["epochs"],
            "batch_size": s["batch_size"],
            "schedule": s["schedule"],
        }


def collect(storage: Any, name: str, where: str) -> TuneResult:
    """The :class:`TuneResult` of study ``name`` as its storage holds it now."""
    optuna = optuna_module()
    the_study = optuna.load_study(study_name=name, storage=storage)
    settings = study_settings(the_study)
    records = trial_records(the_study)
    done = [t for t in records if t["state"] == "COMPLETE"]
    best = None
    if done:
        pick = max if settings["direction"] == "maximize" else min
        best = pick(done, key=lambda t: t["value"])
    return TuneResult(
        study=name,
        storage=redact(where),
        settings=settings,
        trials=records,
        best=best,
        importances=importances(the_study, settings["seed"]),
    )


def importances(study: Any, seed: int) -> dict[str, float]:
    """Optuna's fANOVA importances over completed trials; ``{}`` when they cannot be computed."""
    optuna = optuna_module()
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
        found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError):
        return {}  # e.g. every completed trial has the same values
    return {k: float(v) for k, v in found.items()}
