"""Loop overhead: ``descend.fit`` against a hand-written PyTorch loop, same model, data and
optimizer, timed in interleaved rounds.

The hand-written loop is the minimum a mini-batch loop does per epoch::

    perm = randperm(N)
    for each batch B of perm:  loss = CE(model(x[B]), y[B]); zero_grad; backward; step

``fit`` does the same work plus what it offers (history, stopping checks, callbacks);
the ratio of the two median epoch times is its overhead.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from descend.bench.step import round_orders


def digits_data() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled 8x8 digits (1797 x 64, 10 classes), features scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y, dtype=torch.long)


def mlp(seed: int = 0, hidden: int = 128) -> nn.Module:
    """64 -> hidden -> hidden -> 10 with ReLU, initialised from ``seed``."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(64, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )


def hand_loop(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int, seed: int
) -> None:
    """The reference: a plain PyTorch mini-batch loop with ``torch.optim.Adam``."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(seed)
    n = len(x)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def fit_loop(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    batch_size: int,
    seed: int,
    track_grad_norm: bool = True,
) -> None:
    """The same training through ``descend.fit`` (same optimizer, no validation)."""
    from descend.train.fit import fit

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    fit(
        model,
        (x, y),
        nn.CrossEntropyLoss(),
        opt,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        progress=False,
        eval_train=False,
        track_grad_norm=track_grad_norm,
    )


def fit_loop_no_norm(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int, seed: int
) -> None:
    fit_loop(model, x, y, epochs, batch_size, seed, track_grad_norm=False)


def bench_loop(
    *,
    rounds: int = 7,
    epochs: int = 2,
    batch_size: int = 32,
    hidden: int = 128,
    echo: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Median seconds per epoch of the hand-written loop and of ``fit``, and their ratios.

    ``fit`` runs twice: as it is by default, recording the global gradient norm every step
    (a pass over the gradients that the hand-written loop does not make), and with
    ``track_grad_norm=False``, which leaves only the loop's own bookkeeping.
    """
    x, y = digits_data()
    base = mlp(0, hidden)
    runs: dict[str, Callable[..., None]] = {
        "hand": hand_loop,
        "fit": fit_loop,
        "fit_no_norm": fit_loop_no_norm,
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    for name, fn in runs.items():  # warm-up: first calls pay for imports and allocations
        fn(copy.deepcopy(base), x, y, 1, batch_size, 0)
    for r, order in enumerate(round_orders(list(runs), rounds, seed=0)):
        for name in order:
            model = copy.deepcopy(base)
            start = time.perf_counter()
            runs[name](model, x, y, epochs, batch_size, r)
            times[name].append((time.perf_counter() - start) / epochs)
        echo(
            f"  round {r + 1}: hand {times['hand'][-1] * 1e3:.1f} ms/epoch, "
            f"fit {times['fit'][-1] * 1e3:.1f} ms/epoch, "
            f"fit without grad norm {times['fit_no_norm'][-1] * 1e3:.1f} ms/epoch"
        )
    hand, fitted = statistics.median(times["hand"]), statistics.median(times["fit"])
    bare = statistics.median(times["fit_no_norm"])
    steps = -(-len(x) // batch_size)
    return {
        "data": f"digits {tuple(x.shape)}",
        "model": f"MLP 64-{hidden}-{hidden}-10",
        "batch_size": batch_size,
        "steps_per_epoch": steps,
        "epochs_per_round": epochs,
        "rounds": rounds,
        "hand_ms_per_epoch": hand * 1e3,
        "fit_ms_per_epoch": fitted * 1e3,
        "hand_spread_ms": [min(times["hand"]) * 1e3, max(times["hand"]) * 1e3],
        "fit_spread_ms": [min(times["fit"]) * 1e3, max(times["fit"]) * 1e3],
        "fit_no_norm_ms_per_epoch": bare * 1e3,
        "fit_no_norm_spread_ms": [min(times["fit_no_norm"]) * 1e3, max(times["fit_no_norm"]) * 1e3],
        "overhead_ratio": fitted / hand,
        "fit_overhead_us_per_step": (fitted - hand) / steps * 1e6,
        "overhead_ratio_no_norm": bare / hand,
        "fit_no_norm_overhead_us_per_step": (bare - hand) / steps * 1e6,
    }
