"""Gradient health and the verdicts: each kind is produced by the trouble it names, and only by it."""

from __future__ import annotations

import math

import pytest
import torch
from diag_problems import quadratic
from torch import nn

from descend.diagnose import (
    GradientHealth,
    HealthRecord,
    Verdict,
    diagnose_history,
    gradient_report,
    verdicts_for_runs,
)
from descend.tasks import get_task
from descend.train import NonFiniteError, fit


def _kinds(verdicts: list[Verdict]) -> list[str]:
    return [v.kind for v in verdicts]


@pytest.mark.parametrize(("name", "vanishing"), [("deep_sigmoid", True), ("deep_residual", False)])
def test_deep_sigmoid_vanishes_and_residual_twin_does_not(name, vanishing):
    task = get_task(name)
    x, y = task.data(0).train
    record = gradient_report(task.model(0), task.loss, (x[:256], y[:256]))
    kinds = _kinds(diagnose_history(None, [record]))
    assert ("vanishing" in kinds) is vanishing
    # The same verdict from a few steps of training, recorded by the callback.
    health = GradientHealth(every_n_steps=2)
    history = fit(
        task.model(0),
        (x[:512], y[:512]),
        task.loss,
        "adam",
        optimizer_options={"lr": 1e-3},
        batch_size=64,
        max_steps=6,
        callbacks=[health],
        progress=False,
        eval_train=False,
    )
    verdicts = diagnose_history(history, health.records)
    assert ("vanishing" in _kinds(verdicts)) is vanishing
    if vanishing:
        v = next(v for v in verdicts if v.kind == "vanishing")
        assert v.evidence["first_layer"] == "0.weight"
        assert v.evidence["ratio_first_to_last"] < 1e-2


def test_lr_ten_times_the_stable_limit_is_caught_before_any_nan():
    model, data, lam = quadratic()
    lr = 10 * 2 / lam
    state = {k: v.clone() for k, v in model.state_dict().items()}
    # Unwatched, this learning rate overflows to a non-finite loss.
    with pytest.raises(NonFiniteError):
        fit(
            model,
            data,
            nn.MSELoss(),
            "gd",
            optimizer_options={"lr": lr},
            max_steps=200,
            progress=False,
        )
    model.load_state_dict(state)
    health = GradientHealth(every_n_steps=1, stop_on=("lr_too_large", "exploding"))
    history = fit(
        model,
        data,
        nn.MSELoss(),
        "gd",
        optimizer_options={"lr": lr},
        max_steps=200,
        callbacks=[health],
        progress=False,
    )
    assert health.verdict is not None and health.verdict.kind == "lr_too_large"
    assert "lr_too_large" in history.stop_reason and not history.stop_success
    losses = [row["loss"] for row in history.steps]
    assert len(losses) < 10 and all(math.isfinite(v) for v in losses)
    assert health.verdict.evidence["rise"] > 4


def test_a_stable_rate_on_the_same_quadratic_is_healthy():
    model, data, lam = quadratic()
    health = GradientHealth(every_n_steps=1)
    history = fit(
        model,
        data,
        nn.MSELoss(),
        "gd",
        optimizer_options={"lr": 1.0 / lam},
        max_steps=40,
        callbacks=[health],
        progress=False,
    )
    assert _kinds(health.verdicts()) == ["healthy"]
    assert _kinds(diagnose_history(history, [r.to_dict() for r in health.records])) == ["healthy"]


def _mlp(seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(seed)
    X = torch.randn(128, 8)
    y = torch.sin(X[:, :1]) + X[:, 1:2]
    model = nn.Sequential(
        nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1)
    )
    return model, (X, y)


def test_tiny_updates_with_a_crawling_loss_are_lr_too_small():
    model, data = _mlp()
    health = GradientHealth(every_n_steps=2)
    history = fit(
        model,
        data,
        nn.MSELoss(),
        "sgd",
        optimizer_options={"lr": 1e-6},
        max_steps=20,
        callbacks=[health],
        progress=False,
    )
    verdicts = diagnose_history(history, health.records)
    assert _kinds(verdicts) == ["lr_too_small"]
    assert verdicts[0].evidence["median_update_ratio"] < 1e-4
    # A working rate on the same model is not flagged.
    model, data = _mlp()
    health = GradientHealth(every_n_steps=2)
    history = fit(
        model,
        data,
        nn.MSELoss(),
        "sgd",
        optimizer_options={"lr": 0.1},
        max_steps=20,
        callbacks=[health],
        progress=False,
    )
    assert "lr_too_small" not in _kinds(diagnose_history(history, health.records))


class _Saturated(nn.Module):
    """sigmoid(p) with p far in the tail: the loss is high and its gradient ~ e^-p."""

    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(12.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.p).expand(x.shape[0])


def test_a_flat_loss_with_a_small_gradient_is_a_plateau():
    model = _Saturated()
    history = fit(
        model,
        (torch.zeros(4, 1), torch.zeros(4)),
        lambda out, y: out.mean(),
        "gd",
        optimizer_options={"lr": 0.1},
        max_steps=30,
        progress=False,
    )
    verdicts = diagnose_history(history)
    assert _kinds(verdicts) == ["plateau"]
    assert verdicts[0].evidence["grad_norm_now"] < 1e-3


def test_nonfinite_values_are_exploding_and_name_the_parameter():
    model, data, lam = quadratic()
    health = GradientHealth(every_n_steps=50)
    history = fit(
        model,
        data,
        nn.MSELoss(),
        "gd",
        optimizer_options={"lr": 1e3 / lam},
        max_steps=60,
        callbacks=[health],
        on_nonfinite="skip",
        progress=False,
    )
    verdicts = diagnose_history(history, health.records)
    assert _kinds(verdicts)[0] == "exploding"
    assert verdicts[0].evidence["first_nonfinite_in"] in {"weight", "loss"}
    bad = next(r for r in health.records if r.nonfinite)
    assert bad.step == verdicts[0].evidence["step"]
    # With on_nonfinite="raise" the callback still records where it happened.
    model, data, lam = quadratic()
    health = GradientHealth(every_n_steps=50)
    with pytest.raises(NonFiniteError):
        fit(
            model,
            data,
            nn.MSELoss(),
            "gd",
            optimizer_options={"lr": 1e3 / lam},
            max_steps=60,
            callbacks=[health],
            progress=False,
        )
    assert any(r.nonfinite for r in health.records)


def test_dead_relu_units_are_counted_and_flagged():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    with torch.no_grad():
        model[0].bias.fill_(-100.0)  # every pre-activation negative: all units dead
    record = gradient_report(model, nn.MSELoss(), (torch.randn(16, 4), torch.randn(16, 1)))
    assert record.dead_fraction == {"1": 1.0}
    assert _kinds(diagnose_history(None, [record])) == ["dead_relu"]
    with torch.no_grad():
        model[0].bias.fill_(100.0)
    record = gradient_report(model, nn.MSELoss(), (torch.randn(16, 4), torch.randn(16, 1)))
    assert record.dead_fraction == {"1": 0.0}


def test_update_ratio_is_the_relative_change_of_each_parameter():
    model = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0, 2.0]]))  # norm 3
    X, y = torch.eye(3), torch.zeros(3, 1)
    health = GradientHealth(every_n_steps=1)
    fit(
        model,
        (X, y),
        nn.MSELoss(),
        "gd",
        optimizer_options={"lr": 0.3},
        max_steps=1,
        callbacks=[health],
        progress=False,
    )
    # L = mean((w_i)^2)/... : grad = 2/3 w, so the step is 0.3 * 2/3 * w = 0.2 w: ratio 0.2.
    assert health.records[0].update_ratios["weight"] == pytest.approx(0.2, rel=1e-6)
    assert health.records[0].grad_norms["weight"] == pytest.approx(2.0, rel=1e-6)


def test_records_round_trip_through_state_dict():
    model, data = _mlp()
    health = GradientHealth(every_n_steps=3)
    fit(
        model,
        data,
        nn.MSELoss(),
        "sgd",
        optimizer_options={"lr": 0.1},
        max_steps=7,
        callbacks=[health],
        progress=False,
    )
    assert [r.step for r in health.records] == [1, 3, 6]
    other = GradientHealth()
    other.load_state_dict(health.state_dict())
    assert [r.to_dict() for r in other.records] == [r.to_dict() for r in health.records]
    assert HealthRecord.from_dict(health.records[0].to_dict()) == health.records[0]


def test_verdicts_for_runs_feeds_the_report():
    rising = {
        "steps": [{"step": i + 1, "loss": 3.0**i, "grad_norm": 1.0, "lr": 1.0} for i in range(6)]
    }
    model, data, lam = quadratic()
    health = GradientHealth(every_n_steps=1)
    history = fit(
        model,
        data,
        nn.MSELoss(),
        "gd",
        optimizer_options={"lr": 1.0 / lam},
        max_steps=30,
        callbacks=[health],
        progress=False,
    )
    runs = [
        {"optimizer": "sgd", "seed": 0, "history": rising},
        {"optimizer": "gd", "seed": 1, "history": history},
    ]
    out = verdicts_for_runs(runs, [None, health])
    assert [(d["optimizer"], d["seed"], d["verdict"]) for d in out] == [
        ("sgd", 0, "lr_too_large"),
        ("gd", 1, "healthy"),
    ]
    assert out[0]["evidence"]["finding"].startswith("The loss is rising")
    assert [
        d["verdict"] for d in verdicts_for_runs(runs, [None, health], include_healthy=False)
    ] == ["lr_too_large"]
    with pytest.raises(ValueError, match="one entry per run"):
        verdicts_for_runs(runs, [None])


def test_bad_settings_are_refused():
    from descend._validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="every_n_steps"):
        GradientHealth(every_n_steps=0)
    with pytest.raises(InvalidParameterError, match="stop_on"):
        GradientHealth(stop_on=("too_fast",))
    with pytest.raises(ValueError, match="kind"):
        Verdict("unknown", "x")


def _history(losses: list[float], lr: float = 0.1) -> dict:
    return {
        "steps": [
            {"step": i + 1, "loss": v, "grad_norm": 1.0, "lr": lr} for i, v in enumerate(losses)
        ]
    }


def test_a_loss_bouncing_without_progress_is_lr_too_large_and_noise_is_not():
    bouncing = [1.0 + 2.0 * (i % 2) for i in range(30)]  # 1, 3, 1, 3, ...
    verdicts = diagnose_history(_history(bouncing))
    assert _kinds(verdicts) == ["lr_too_large"]
    assert verdicts[0].evidence["alternation"] == 1.0
    # Mini-batch noise around a falling loss changes direction about 2/3 of the time.
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        noisy = (torch.linspace(2.0, 0.5, 60) * (1 + 0.3 * torch.rand(60, generator=g))).tolist()
        assert "lr_too_large" not in _kinds(diagnose_history(_history(noisy)))


def test_docstring_examples_run():
    import doctest
    import importlib

    # By module path: the package re-exports functions under the same names.
    for name in ("descend.diagnose.health", "descend.diagnose.runs"):
        failures, tried = doctest.testmod(importlib.import_module(name))
        assert tried > 0 and failures == 0, name


def test_report_shows_the_verdicts(tmp_path):
    from descend.report import write_run

    rising = _history([3.0**i for i in range(6)], lr=2.0)
    runs = [{"optimizer": "sgd", "seed": 0, "lr": 2.0, "history": rising}]
    task = {"name": "quadratic", "target": {"metric": "val_loss", "value": 0.1, "mode": "min"}}
    written = write_run(
        tmp_path,
        task=task,
        runs=runs,
        config={},
        diagnostics=verdicts_for_runs(runs),
        tensorboard=False,
    )
    page = written["report"].read_text()
    assert "Diagnostics" in page and "lr_too_large" in page and "The loss is rising" in page
