"""fit: reaches known optima, follows schedules, ends when told, refuses bad input."""

from __future__ import annotations

import math

import pytest
import torch
from train_problems import mlp, regression

from descend._validation import InvalidParameterError
from descend.stopping import AnyOf, FunctionTolerance, GradientTolerance, MaxIter
from descend.train import accuracy, fit


@pytest.mark.parametrize("sgd", ["torch", "descend"])
def test_full_batch_gd_reaches_the_least_squares_optimum(sgd):
    from descend.optim import SGD

    x, y = regression(n=50, d=4, dtype=torch.float64)
    model = torch.nn.Linear(4, 1, dtype=torch.float64)
    opt = (torch.optim.SGD if sgd == "torch" else SGD)(model.parameters(), lr=0.5)
    h = fit(model, (x, y), torch.nn.MSELoss(), opt, epochs=200, progress=False, eval_train=False)
    design = torch.cat([x, torch.ones(50, 1, dtype=torch.float64)], dim=1)
    exact = torch.linalg.lstsq(design, y).solution.squeeze(1)
    got = torch.cat([model.weight.detach().squeeze(0), model.bias.detach()])
    assert torch.allclose(got, exact, atol=1e-6, rtol=0)
    assert len(h.steps) == 200 and h.stop_reason == "Reached epochs=200." and h.stop_success


def test_named_optimizer_and_descend_optimizer_work():
    x, y = regression()
    model = mlp()
    h = fit(
        model,
        (x, y),
        torch.nn.MSELoss(),
        "adam",
        optimizer_options={"lr": 0.01},
        epochs=30,
        batch_size=8,
        progress=False,
    )
    assert type(h.steps[0]["lr"]) is float and h.steps[0]["lr"] == 0.01
    assert h.epochs[-1]["train_loss"] < h.epochs[0]["train_loss"]


def test_schedule_sets_the_lr_before_each_update():
    x, y = regression()
    model = mlp()
    h = fit(
        model,
        (x, y),
        torch.nn.MSELoss(),
        torch.optim.SGD(model.parameters(), lr=1.0),
        max_steps=5,
        schedule=lambda t: 0.1 / (t + 1),
        progress=False,
    )
    assert [r["lr"] for r in h.steps] == [0.1 / (t + 1) for t in range(5)]


def test_torch_lr_scheduler_is_stepped_after_each_update():
    x, y = regression()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    h = fit(model, (x, y), torch.nn.MSELoss(), opt, max_steps=5, schedule=sched, progress=False)
    assert [r["lr"] for r in h.steps] == [0.1, 0.1, 0.05, 0.05, 0.025]


def test_metrics_and_validation_rows():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 2, generator=g)
    y = (x[:, 0] > 0).long()
    model = torch.nn.Linear(2, 2)
    h = fit(
        model,
        (x[:40], y[:40]),
        torch.nn.CrossEntropyLoss(),
        torch.optim.SGD(model.parameters(), lr=0.5),
        epochs=20,
        batch_size=10,
        val_data=(x[40:], y[40:]),
        metrics={"accuracy": accuracy},
        progress=False,
    )
    row = h.epochs[-1]
    assert set(row) == {
        "epoch",
        "step",
        "time",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
    }
    assert row["val_accuracy"] >= 0.85
    with torch.no_grad():
        out = model(x[40:])
    assert row["val_loss"] == pytest.approx(torch.nn.functional.cross_entropy(out, y[40:]).item())
    assert row["val_accuracy"] == pytest.approx((out.argmax(1) == y[40:]).float().mean().item())
    assert model.training


def test_stopping_criteria_end_the_run_with_their_message():
    x, y = regression()
    model = torch.nn.Linear(3, 1)
    h = fit(
        model,
        (x, y),
        torch.nn.MSELoss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        stop=AnyOf(GradientTolerance(1e-3), MaxIter(10_000)),
        progress=False,
    )
    assert h.stop_reason.startswith("Converged by gtol") and h.stop_success
    assert h.steps[-1]["grad_norm"] <= 1e-3 < h.steps[-2]["grad_norm"]

    h = fit(
        model,
        (x, y),
        torch.nn.MSELoss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        stop=MaxIter(7),
        epochs=100,
        progress=False,
    )
    assert len(h.steps) == 7 and "max_iter" in h.stop_reason and not h.stop_success

    h = fit(
        model,
        (x, y),
        torch.nn.MSELoss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        stop=FunctionTolerance(atol=1e-12, rtol=0.0),
        max_steps=10_000,
        progress=False,
    )
    assert "ftol" in h.stop_reason and len(h.steps) < 10_000


def test_max_steps_stops_mid_epoch_without_a_partial_epoch_row():
    x, y = regression(n=10)
    model = mlp()
    h = fit(
        model,
        (x, y),
        torch.nn.MSELoss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        max_steps=7,
        epochs=5,
        batch_size=3,
        progress=False,
    )
    assert len(h.steps) == 7 and len(h.epochs) == 1
    assert h.stop_reason == "Reached max_steps=7."


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"epochs": 0}, "'epochs' parameter of fit"),
        ({"epochs": 1, "batch_size": -2}, "'batch_size' parameter of fit"),
        ({"epochs": 1, "on_nonfinite": "ignore"}, "'on_nonfinite' parameter of fit"),
        ({"epochs": 1, "clip_grad_norm": 0.0}, "'clip_grad_norm' parameter of fit"),
        ({}, "needs an end"),
        ({"epochs": 1, "resume": True}, "need checkpoint_dir"),
        ({"epochs": 1, "schedule": 3}, "'schedule' parameter of fit"),
        ({"epochs": 1, "callbacks": [object()]}, "'callbacks' parameter of fit"),
        ({"epochs": 1, "metrics": {"acc": 3}}, "'metrics' parameter of fit"),
        ({"epochs": 1, "optimizer_options": {"lr": 1}}, "already built"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(kwargs, fragment):
    x, y = regression()
    model = mlp()
    with pytest.raises(InvalidParameterError, match=fragment):
        fit(
            model,
            (x, y),
            torch.nn.MSELoss(),
            torch.optim.SGD(model.parameters(), lr=0.1),
            progress=False,
            **kwargs,
        )


def test_mismatched_data_is_refused():
    x, y = regression()
    model = mlp()
    with pytest.raises(InvalidParameterError, match="as many targets as inputs"):
        fit(
            model,
            (x, y[:-1]),
            torch.nn.MSELoss(),
            torch.optim.SGD(model.parameters(), lr=0.1),
            epochs=1,
            progress=False,
        )


def test_descend_schedule_and_descend_optimizer():
    from descend.optim import Adam
    from descend.schedules import warmup_cosine

    x, y = regression()
    model = mlp()
    schedule = warmup_cosine(0.01, warmup_steps=3, total_steps=10)
    h = fit(
        model,
        (x, y),
        torch.nn.MSELoss(),
        Adam(model.parameters(), lr=1.0),
        max_steps=10,
        batch_size=10,
        schedule=schedule,
        progress=False,
    )
    assert [r["lr"] for r in h.steps] == [schedule(t) for t in range(10)]
    assert all(math.isfinite(r["loss"]) for r in h.steps)


def test_without_grad_norm_tracking_the_run_is_the_same_and_a_nan_loss_still_stops_it() -> None:
    from descend.train import NonFiniteError

    def run(track: bool) -> tuple[torch.nn.Module, list[dict]]:
        torch.manual_seed(0)
        x, y = torch.randn(64, 3), torch.randn(64, 1)
        model = torch.nn.Linear(3, 1)
        h = fit(
            model,
            (x, y),
            torch.nn.MSELoss(),
            torch.optim.SGD(model.parameters(), lr=0.1),
            epochs=3,
            batch_size=16,
            progress=False,
            track_grad_norm=track,
        )
        return model, h.steps

    tracked, rows = run(True)
    untracked, bare_rows = run(False)
    assert all(torch.equal(a, b) for a, b in zip(tracked.parameters(), untracked.parameters()))
    assert all(math.isfinite(r["grad_norm"]) for r in rows)
    assert all(math.isnan(r["grad_norm"]) for r in bare_rows)
    assert [r["loss"] for r in rows] == [r["loss"] for r in bare_rows]

    model = torch.nn.Linear(3, 1)
    with pytest.raises(NonFiniteError, match="loss"):
        fit(
            model,
            (torch.randn(8, 3), torch.full((8, 1), float("nan"))),
            torch.nn.MSELoss(),
            torch.optim.SGD(model.parameters(), lr=0.1),
            epochs=1,
            progress=False,
            track_grad_norm=False,
        )
