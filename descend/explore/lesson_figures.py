"""The lessons' own figures, computed by descend and returned as Plotly figure data.

Every number comes from descend's code: ``minimize`` for the learning-rate sweep, the
registry's momentum optimizer (one param group per cell) for the phase diagram,
``fit`` with its ``batch_size`` and schedules for the linear-regression lessons,
``gradient_report`` on the deep tasks for vanishing gradients.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch

from descend._validation import OneOf
from descend.diagnose.health import gradient_report
from descend.explore.linreg2d import BATCH_SIZES, loss_grid, path_of
from descend.explore.runs import BadRequest, Request, RunSpec, run_one
from descend.optim.registry import make_optimizer
from descend.schedules.names import from_name
from descend.tasks.deep import deep_residual, deep_sigmoid
from descend.terrains import get_terrain

Figure = dict[str, Any]
_AXIS_LOG = {"type": "log"}


@functools.lru_cache(maxsize=1)
def lr_sweep(steps: int = 50, points: int = 22) -> Figure:
    """f − f* after ``steps`` gradient-descent steps on the quadratic, against the rate."""
    terrain = get_terrain("quadratic")
    lam_max = 10.0  # the quadratic's largest Hessian eigenvalue (condition=10)
    lrs = np.linspace(0.02, 0.23, points)
    gaps = []
    for lr in lrs:
        request = Request("quadratic", terrain.start, steps, 0.0, ())
        run = run_one(request, RunSpec("gd", (("lr", float(lr)),)))
        gaps.append(run["gap"][-1] if run["kind"] != "diverged" else None)
    edge = 2.0 / lam_max
    return {
        "data": [{"x": lrs.tolist(), "y": gaps, "mode": "lines+markers", "name": "f − f*"}],
        "layout": {
            "title": {"text": f"f − f* after {steps} steps of gradient descent (gaps: diverged)"},
            "xaxis": {"title": {"text": "learning rate η"}},
            "yaxis": {"title": {"text": "f − f*"}, **_AXIS_LOG},
            "shapes": [
                {
                    "type": "line",
                    "x0": edge,
                    "x1": edge,
                    "yref": "paper",
                    "y0": 0,
                    "y1": 1,
                    "line": {"dash": "dash", "color": "crimson"},
                }
            ],
            "annotations": [
                {"x": edge, "yref": "paper", "y": 1, "text": "2/λmax", "showarrow": False}
            ],
        },
    }


@functools.lru_cache(maxsize=1)
def phase(steps: int = 40, n_lr: int = 24, n_beta: int = 20) -> Figure:
    """Convergence rate of heavy-ball momentum on the quadratic over (step size, momentum).

    Each cell is one param group of the registry's ``momentum`` optimizer holding its own
    copy of the start point; the rate is :math:`(f_T / f_0)^{1/T}` over ``steps`` steps.
    """
    terrain = get_terrain("quadratic")
    lrs = np.linspace(0.01, 0.4, n_lr)
    betas = np.linspace(0.0, 0.96, n_beta)
    start = terrain.tensor(terrain.start)
    params = [start.clone().requires_grad_(True) for _ in range(n_lr * n_beta)]
    groups = [
        {"params": [params[i * n_lr + j]], "lr": float(lr), "momentum": float(beta)}
        for i, beta in enumerate(betas)
        for j, lr in enumerate(lrs)
    ]
    opt = make_optimizer("momentum", groups)
    f0 = float(terrain(start))
    for _ in range(steps):
        opt.zero_grad()
        with torch.no_grad():  # a cell that blew up stays put; its rate is shown as diverged
            for p in params:
                p.nan_to_num_(nan=1e30, posinf=1e30, neginf=-1e30).clamp_(-1e30, 1e30)
        terrain(torch.stack(params)).sum().backward()
        opt.step()
    with torch.no_grad():
        f = terrain(torch.stack(params)).reshape(n_beta, n_lr).numpy()
    rate = np.where(np.isfinite(f) & (f < f0), (np.maximum(f, 1e-300) / f0) ** (1 / steps), np.nan)
    kappa = 10.0
    beta_star = ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2
    return {
        "data": [
            {
                "type": "heatmap",
                "x": lrs.tolist(),
                "y": betas.tolist(),
                "z": [[None if math.isnan(v) else v for v in row] for row in rate.tolist()],
                "colorscale": "Viridis",
                "colorbar": {"title": {"text": "rate per step"}},
            }
        ],
        "layout": {
            "title": {"text": "Heavy-ball momentum on the bowl (κ = 10): convergence rate"},
            "xaxis": {"title": {"text": "step size η"}},
            "yaxis": {"title": {"text": "momentum β"}},
            "shapes": [
                {
                    "type": "line",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "y0": beta_star,
                    "y1": beta_star,
                    "line": {"dash": "dot", "color": "white"},
                }
            ],
        },
    }


def _surface_trace() -> dict[str, Any]:
    w, b, z = loss_grid()
    return {
        "type": "contour",
        "x": w,
        "y": b,
        "z": z,
        "colorscale": "Greys",
        "showscale": False,
        "contours": {"coloring": "lines"},
        "name": "loss",
    }


def _path_trace(path: np.ndarray, name: str) -> dict[str, Any]:
    return {"x": path[:, 0].tolist(), "y": path[:, 1].tolist(), "mode": "lines", "name": name}


def _linreg_layout(title: str) -> dict[str, Any]:
    return {
        "title": {"text": title},
        "xaxis": {"title": {"text": "slope w"}},
        "yaxis": {"title": {"text": "intercept b"}},
    }


@functools.lru_cache(maxsize=16)
def batch(batch_size: int = 8) -> Figure:
    """Batch, stochastic and the chosen mini-batch size on linear regression's loss surface."""
    if not OneOf(BATCH_SIZES).contains(batch_size):
        raise BadRequest("batch_size", "one of " + ", ".join(map(str, BATCH_SIZES)), batch_size)
    runs = [("batch (all samples)", None), ("stochastic (1 sample)", 1)]
    if batch_size not in (1, BATCH_SIZES[-1]):
        runs.append((f"mini-batch ({batch_size})", batch_size))
    data = [_surface_trace()]
    data += [_path_trace(path_of(lr=0.1, batch_size=k), name) for name, k in runs]
    return {"data": data, "layout": _linreg_layout("100 steps of SGD at η = 0.1")}


@functools.lru_cache(maxsize=1)
def schedules(steps: int = 150, lr: float = 0.3) -> Figure:
    """Constant, step, cosine and warmup-cosine schedules: paths and the rate per step."""
    data = [_surface_trace()]
    for i, name in enumerate(("constant", "step", "cosine", "warmup_cosine")):
        schedule = from_name(name, lr=lr, total_steps=steps)
        trace = _path_trace(path_of(lr=lr, batch_size=4, schedule=schedule, steps=steps), name)
        data.append({**trace, "legendgroup": name, "line": {"color": _COLORS[i]}})
        data.append(
            {
                "x": list(range(steps)),
                "y": [schedule(t) for t in range(steps)],
                "mode": "lines",
                "name": name,
                "legendgroup": name,
                "showlegend": False,
                "line": {"color": _COLORS[i]},
                "xaxis": "x2",
                "yaxis": "y2",
            }
        )
    layout = _linreg_layout(f"mini-batch (4) SGD, η0 = {lr}: paths (left) and η per step (right)")
    layout.update(
        {
            "xaxis": {"title": {"text": "slope w"}, "domain": [0, 0.58]},
            "xaxis2": {"title": {"text": "step"}, "domain": [0.68, 1], "anchor": "y2"},
            "yaxis2": {"title": {"text": "η"}, "anchor": "x2"},
        }
    )
    return {"data": data, "layout": layout}


_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


@functools.lru_cache(maxsize=1)
def vanishing() -> Figure:
    """Gradient norm of each weight matrix at initialisation: deep sigmoid vs residual + BN."""
    data = []
    for task in (deep_sigmoid(), deep_residual()):
        torch.manual_seed(0)
        model = task.make_model()
        x, y = task.make_data(0).train
        record = gradient_report(model, task.loss_fn, (x[:256], y[:256]))
        # The weight matrices, input to output (BatchNorm's scales are vectors, left out).
        names = [n for n, p in model.named_parameters() if p.dim() == 2]
        norms = [record.grad_norms[n] for n in names]
        data.append(
            {
                "x": list(range(1, len(norms) + 1)),
                "y": norms,
                "mode": "lines+markers",
                "name": task.name,
                "text": names,
            }
        )
    return {
        "data": data,
        "layout": {
            "title": {"text": "Gradient norm per layer at initialisation (input layer = 1)"},
            "xaxis": {"title": {"text": "layer"}},
            "yaxis": {"title": {"text": "‖∇W‖"}, **_AXIS_LOG},
        },
    }


FIGURES = {
    "lr_sweep": lr_sweep,
    "phase": phase,
    "batch": batch,
    "schedules": schedules,
    "vanishing": vanishing,
}
