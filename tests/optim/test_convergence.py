"""Every named optimizer reaches the known minimizer of an ill-conditioned quadratic and of
Rosenbrock (float64; learning rates, budgets and tolerances stated per optimizer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from descend.optim import make_optimizer, optimizer_names
from descend.schedules import cosine, linear_warmup

A = torch.logspace(0, 2, 10, dtype=torch.float64)  # eigenvalues 1 … 100: condition number 100


def quadratic(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (A * x * x).sum()  # minimizer 0


def rosenbrock(x: torch.Tensor) -> torch.Tensor:
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2  # minimizer (1, 1)


# name -> (options, steps, tolerance on max |x - x*|)
QUADRATIC: dict[str, tuple[dict[str, Any], int, float]] = {
    "gd": ({"lr": 0.015}, 1000, 1e-5),  # lr < 2/λmax = 0.02
    "sgd": ({"lr": 0.015}, 1000, 1e-5),
    "momentum": ({"lr": 0.01}, 1000, 1e-8),
    "nesterov": ({"lr": 0.01}, 1000, 1e-8),
    "adagrad": ({"lr": 0.5}, 1000, 1e-8),
    # Constant-lr RMSprop hovers at an amplitude ~lr around the minimum: decay the lr.
    "rmsprop": ({"lr": cosine(1e-2, 1000), "momentum": 0.9}, 1000, 1e-6),
    "adam": ({"lr": 0.05}, 1000, 1e-6),
    "adamw": ({"lr": 0.05, "weight_decay": 0.0}, 1000, 1e-6),  # decay would move the minimizer
    "adamax": ({"lr": 0.1}, 1000, 1e-8),
    "nadam": ({"lr": 0.05}, 1000, 1e-8),
    "radam": ({"lr": 0.05}, 1000, 1e-8),
    # Constant-lr Adadelta settles where its ratio of RMS makes the stiff coordinates
    # unstable (~2e-2 from 0): a decaying rate takes it in.
    "adadelta": ({"lr": cosine(1.0, 2000)}, 2000, 1e-8),
}
ROSENBROCK: dict[str, tuple[dict[str, Any], int, float]] = {
    "gd": ({"lr": 1.9e-3}, 12000, 1e-3),  # the curved valley makes plain GD crawl
    "sgd": ({"lr": 1.9e-3}, 12000, 1e-3),
    "momentum": ({"lr": 1e-3}, 3000, 1e-4),
    "nesterov": ({"lr": 1e-3}, 3000, 1e-4),
    "adagrad": ({"lr": 0.5}, 8000, 1e-2),  # its effective step keeps shrinking
    "rmsprop": ({"lr": cosine(1e-3, 6000), "momentum": 0.9}, 6000, 1e-4),
    "adam": ({"lr": 0.02}, 4000, 1e-4),
    "adamw": ({"lr": 0.02, "weight_decay": 0.0}, 4000, 1e-4),
    "adamax": ({"lr": 0.1}, 4000, 1e-6),
    # Constant-lr NAdam (torch's too) circles the minimum ~1e-2 away for 10k steps: decay it.
    "nadam": ({"lr": cosine(0.02, 8000)}, 8000, 1e-5),
    # RAdam's first 5 steps are momentum SGD: at lr=0.05 the gradient of ~200 at (-1.2, 1)
    # throws it out (torch's too); a short warm-up of the rate keeps it in the valley.
    "radam": ({"lr": linear_warmup(0.0, 0.05, 50)}, 5000, 1e-6),
    "adadelta": ({"lr": cosine(1.0, 12000)}, 12000, 1e-3),  # crawls along the valley, as gd
}


def _descend(
    name: str,
    fun: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    options: dict[str, Any],
    steps: int,
) -> torch.Tensor:
    x = x0.clone().requires_grad_()
    opt = make_optimizer(name, [x], **options)
    for _ in range(steps):
        opt.zero_grad()
        fun(x).backward()
        opt.step()
    return x.detach()


def test_every_registry_name_is_covered() -> None:
    assert set(QUADRATIC) == set(ROSENBROCK) == set(optimizer_names())


@pytest.mark.parametrize("name", list(QUADRATIC))
def test_reaches_minimizer_of_ill_conditioned_quadratic(name: str) -> None:
    options, steps, tol = QUADRATIC[name]
    x = _descend(name, quadratic, torch.ones(10, dtype=torch.float64), options, steps)
    assert x.abs().max().item() < tol


@pytest.mark.parametrize("name", list(ROSENBROCK))
def test_reaches_minimizer_of_rosenbrock(name: str) -> None:
    options, steps, tol = ROSENBROCK[name]
    x = _descend(name, rosenbrock, torch.tensor([-1.2, 1.0], dtype=torch.float64), options, steps)
    assert (x - 1).abs().max().item() < tol
