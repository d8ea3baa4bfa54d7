"""The task registry: names to factories, ``get_task(name, **options)`` and ``TASKS``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from descend._validation import reject_unknown, unknown_choice
from descend.tasks.charlm import charlm
from descend.tasks.deep import deep_residual, deep_sigmoid
from descend.tasks.digits import digits
from descend.tasks.gan import gan
from descend.tasks.linreg import linreg
from descend.tasks.logreg import logreg
from descend.tasks.mnist1d_task import mnist1d
from descend.tasks.recommender import recommender
from descend.tasks.speech import speech
from descend.tasks.task import Task
from descend.tasks.transformer import transformer
from descend.tasks.vae import vae

# Order is the order `descend tasks` prints: simplest first.
_FACTORIES: dict[str, Callable[..., Task]] = {
    "linreg": linreg,
    "logreg": logreg,
    "digits": digits,
    "mnist1d": mnist1d,
    "deep_sigmoid": deep_sigmoid,
    "deep_residual": deep_residual,
    "recommender": recommender,
    "charlm": charlm,
    "vae": vae,
    "transformer": transformer,
    "gan": gan,
    "speech": speech,
}


def task_names() -> list[str]:
    """The names of the built-in tasks, in display order."""
    return list(_FACTORIES)


def get_task(name: str, **options: Any) -> Task:
    """The task called ``name``, built with its ``options``.

    Options are task-specific keyword arguments, e.g.
    ``get_task("deep_sigmoid", init="he")`` or
    ``get_task("recommender", ratings_path="ml-100k/u.data")``.

    Raises:
        InvalidParameterError: for an unknown name or an option the task does not have.
    """
    if name not in _FACTORIES:
        raise unknown_choice("task", name, _FACTORIES)
    factory = _FACTORIES[name]
    reject_unknown(f"task {name!r}", options, task_options(name))
    return factory(**options)


def task_options(name: str) -> dict[str, Any]:
    """The options task ``name`` accepts, with their defaults."""
    if name not in _FACTORIES:
        raise unknown_choice("task", name, _FACTORIES)
    params = inspect.signature(_FACTORIES[name]).parameters.values()
    return {p.name: p.default for p in params}


# Building a Task is cheap (data and models are made on demand), so the
# defaults are built once at import for code that only reads descriptions.
TASKS: Mapping[str, Task] = MappingProxyType({name: f() for name, f in _FACTORIES.items()})
