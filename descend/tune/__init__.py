"""Layer ``tune``: Optuna studies over each optimizer's search space; the objective runs a task.

- :func:`tune` and its :class:`TuneResult`: one optimizer on one task, ``trials``
  trials, in one process or several (``workers``), on a journal file or any Optuna
  database (PostgreSQL for several machines);
- :data:`SPACES`, :class:`Param`, :func:`search_space`, :func:`parse_space`: the
  tunable hyperparameters of every registry optimizer, with their priors, and
  ``--space`` overrides;
- :func:`fail_lost_trials`: the heartbeat check that retries a dead worker's trial.

Needs Optuna (``pip install 'descend[tune]'``); importing this package does not.
"""

from descend.tune.overrides import parse_space
from descend.tune.result import TuneResult
from descend.tune.search import tune
from descend.tune.spaces import SPACES, TUNE_CHOICES, Param, optimizer_options, search_space
from descend.tune.study import PRUNERS, StudyRef, open_study
from descend.tune.workers import fail_lost_trials

__all__ = [
    "PRUNERS",
    "SPACES",
    "TUNE_CHOICES",
    "Param",
    "StudyRef",
    "TuneResult",
    "fail_lost_trials",
    "open_study",
    "optimizer_options",
    "parse_space",
    "search_space",
    "tune",
]
