"""``fit`` with optimizers that have train and eval modes (Schedule-Free): when it switches
them, that evaluation and checkpoints see the average x, and ``recompute_bn``."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import descend
from descend.train import fit, recompute_bn
from descend.train.checkpoint import load_checkpoint

N, D = 64, 5


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, D, generator=g)
    return x, x @ torch.randn(D, 1, generator=g) + 0.1 * torch.randn(N, 1, generator=g)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(D, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


class Spy(descend.ScheduleFreeAdamW):
    """Records the order of train(), eval() and step() calls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events: list[str] = []

    def train(self) -> None:
        self.events.append("train")
        super().train()

    def eval(self) -> None:
        self.events.append("eval")
        super().eval()

    def step(self, closure: Any = None) -> Any:
        self.events.append("step")
        return super().step(closure)


def _squash(events: list[str]) -> list[str]:
    """Repeated ``train`` before each step collapses: only the switches matter."""
    out: list[str] = []
    for e in events:
        if not out or out[-1] != e or e == "step":
            out.append(e)
    return out


def test_fit_trains_at_y_and_evaluates_checkpoints_and_ends_at_x(tmp_path: Any) -> None:
    model = _model()
    opt = Spy(model.parameters(), lr=0.05)
    fit(
        model,
        _data(),
        torch.nn.MSELoss(),
        opt,
        epochs=2,
        batch_size=32,
        progress=False,
        val_data=_data(1),
        checkpoint_dir=tmp_path,
    )
    # 2 steps per epoch; every step after a train(); each epoch's evaluation after an
    # eval(); the checkpoint and the end in eval mode.
    assert _squash(opt.events) == [
        "train",
        "step",
        "train",
        "step",
        "eval",
        "train",
        "step",
        "train",
        "step",
        "eval",
    ]
    assert not opt.param_groups[0]["train_mode"]
    saved = load_checkpoint(tmp_path / "last.pt")["model"]
    for name, value in model.state_dict().items():
        assert torch.equal(saved[name], value)  # the checkpoint holds x


def test_the_recorded_validation_loss_is_the_loss_at_x_not_at_y() -> None:
    model = _model()
    opt = descend.ScheduleFreeAdamW(model.parameters(), lr=0.05)
    val = _data(1)
    history = fit(
        model,
        _data(),
        torch.nn.MSELoss(),
        opt,
        epochs=5,
        batch_size=16,
        progress=False,
        val_data=val,
    )
    with torch.no_grad():
        at_x = torch.nn.functional.mse_loss(model(val[0]), val[1]).item()
        opt.train()
        at_y = torch.nn.functional.mse_loss(model(val[0]), val[1]).item()
    assert history.epochs[-1]["val_loss"] == pytest.approx(at_x, rel=1e-6)
    assert abs(at_x - at_y) > 1e-4 * at_x  # y and x differ: the test can tell them apart


def test_the_reference_packages_optimizer_starts_in_eval_mode_and_fit_trains_it() -> None:
    schedulefree = pytest.importorskip("schedulefree")
    model = _model()
    opt = schedulefree.AdamWScheduleFree(model.parameters(), lr=0.05)
    history = fit(model, _data(), torch.nn.MSELoss(), opt, epochs=3, batch_size=16, progress=False)
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]
    assert not opt.param_groups[0]["train_mode"]


def test_resume_continues_bit_identically(tmp_path: Any) -> None:
    def run(epochs: int, folder: Any, resume: bool = False) -> torch.nn.Module:
        model = _model()
        opt = descend.ScheduleFreeSGD(model.parameters(), lr=0.05, warmup_steps=3)
        fit(
            model,
            _data(),
            torch.nn.MSELoss(),
            opt,
            epochs=epochs,
            batch_size=16,
            progress=False,
            checkpoint_dir=folder,
            resume=resume,
        )
        return model

    whole = run(4, tmp_path / "a")
    run(2, tmp_path / "b")
    resumed = run(4, tmp_path / "b", resume=True)
    for a, b in zip(whole.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_recompute_bn_takes_statistics_at_x() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(D, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1)
    )
    opt = descend.ScheduleFreeAdamW(model.parameters(), lr=0.1)
    x, y = _data()
    for _ in range(20):  # running statistics collected at y
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    batches = [(x[:32], y[:32]), (x[32:], y[32:])]
    recompute_bn(model, batches, opt)
    assert not opt.param_groups[0]["train_mode"]  # statistics at x
    with torch.no_grad():
        hidden = model[0](x)  # at x now
    bn = model[1]
    torch.testing.assert_close(bn.running_mean, hidden.mean(0))
    # Cumulative average of the two batches' unbiased variances (torch's running_var).
    expected_var = (hidden[:32].var(0) + hidden[32:].var(0)) / 2
    torch.testing.assert_close(bn.running_var, expected_var)
    assert bn.momentum == 0.1 and model.training


def test_recompute_bn_refuses_a_bad_batch_count() -> None:
    with pytest.raises(ValueError, match="max_batches"):
        recompute_bn(torch.nn.Linear(2, 2), [], max_batches=0)
