"""The callbacks behave as their docstrings (and Keras/Lightning) say."""

from __future__ import annotations

import math

import pytest
import torch
from train_problems import mlp, regression

from descend._validation import InvalidParameterError
from descend.train import (
    Callback,
    EarlyStopping,
    GradientClipping,
    History,
    LearningRateMonitor,
    ModelCheckpoint,
    ProgressBar,
    ReduceLROnPlateau,
    TrainState,
    fit,
    load_checkpoint,
)

X, Y = regression(n=8)


class Feed(Callback):
    """Writes a crafted value into each epoch row, and records the weights of every epoch."""

    def __init__(self, values: list[float], key: str = "score") -> None:
        self.values, self.key, self.weights = values, key, []

    def on_epoch_end(self, state: TrainState) -> None:
        state.history.epochs[-1][self.key] = self.values[state.epoch - 1]
        self.weights.append(state.model[0].weight.detach().clone())


def train(callbacks, *, epochs=10, lr=0.05, **kwargs):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    history = fit(
        model,
        (X, Y),
        torch.nn.MSELoss(),
        opt,
        epochs=epochs,
        callbacks=callbacks,
        progress=False,
        eval_train=False,
        **kwargs,
    )
    return model, opt, history


def test_early_stopping_stops_at_the_right_epoch():
    feed = Feed([5.0, 4.0, 3.0, 3.5, 3.0, 2.999, 4.0, 1.0, 1.0, 1.0])
    stopper = EarlyStopping(monitor="score", min_delta=0.01, patience=3)
    _, _, h = train([feed, stopper])
    # best 3.0 at epoch 3; epochs 4, 5, 6 do not beat it by more than 0.01
    assert len(h.epochs) == 6 and stopper.stopped_epoch == 6
    assert stopper.best == 3.0 and stopper.best_epoch == 3
    assert h.stop_reason.startswith("Early stopping at epoch 6: score") and h.stop_success


def test_early_stopping_max_mode_and_patience_zero():
    feed = Feed([0.1, 0.2, 0.2, 0.9], key="acc")
    _, _, h = train([feed, EarlyStopping(monitor="acc", mode="max", patience=0)])
    assert len(h.epochs) == 3


def test_restore_best_weights_whatever_ended_the_run():
    feed = Feed([3.0, 1.0, 2.0, 2.5, 2.7])
    model, _, h = train(
        [feed, EarlyStopping(monitor="score", patience=10, restore_best_weights=True)], epochs=5
    )
    assert h.stop_reason == "Reached epochs=5."
    assert torch.equal(model[0].weight, feed.weights[1])
    assert not torch.equal(feed.weights[1], feed.weights[4])


def test_a_missing_monitor_is_named():
    with pytest.raises(KeyError, match="'val_loss'.*val_data"):
        train([EarlyStopping()])


def test_reduce_lr_on_plateau_lowers_the_lr_after_patience():
    feed = Feed([1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    plateau = ReduceLROnPlateau(monitor="score", factor=0.5, patience=2, min_lr=0.01)
    _, opt, h = train([feed, plateau], epochs=8, lr=0.04)
    lrs = [r["lr"] for r in h.steps]
    # epochs 3, 4 are bad (patience 2); the 3rd bad one (epoch 5) halves the lr for epoch 6
    assert lrs == [0.04] * 5 + [0.02] * 3
    assert opt.param_groups[0]["lr"] == 0.01  # 8th epoch: halved again, floored at min_lr


def test_reduce_lr_on_plateau_refuses_a_schedule():
    with pytest.raises(InvalidParameterError, match="cannot be combined"):
        train([ReduceLROnPlateau()], schedule=lambda t: 0.1)


def test_model_checkpoint_keeps_the_top_k_and_last(tmp_path):
    feed = Feed([3.0, 1.0, 2.0, 0.5, 4.0])
    saver = ModelCheckpoint(tmp_path, monitor="score", save_top_k=2)
    model, _, _ = train([saver, feed], epochs=5)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["epoch=2-score=1.pt", "epoch=4-score=0.5.pt", "last.prev.pt", "last.pt"]
    assert saver.best_model_path.endswith("epoch=4-score=0.5.pt")
    assert saver.best_model_score == 0.5
    best = torch.load(saver.best_model_path, weights_only=True)["payload"]
    assert torch.equal(best["model"]["0.weight"], feed.weights[3])
    last = load_checkpoint(tmp_path / "last.pt")
    assert torch.equal(last["model"]["0.weight"], model[0].weight)
    # Checkpoint callbacks run last, so the file holds the epoch's monitored value.
    assert last["history"]["epochs"][-1]["score"] == 4.0


def test_model_checkpoint_without_monitor_keeps_the_latest(tmp_path):
    train([ModelCheckpoint(tmp_path, save_top_k=2, save_last=False, every_n_epochs=2)], epochs=7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch=4.pt", "epoch=6.pt"]


def test_learning_rate_monitor_records_every_group():
    model = mlp()
    opt = torch.optim.SGD(
        [
            {"params": model[0].parameters(), "lr": 0.1},
            {"params": model[3].parameters(), "lr": 0.01},
        ]
    )
    h = fit(
        model,
        (X, Y),
        torch.nn.MSELoss(),
        opt,
        max_steps=3,
        schedule=torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5),
        callbacks=[LearningRateMonitor()],
        progress=False,
    )
    assert [r["lr_group0"] for r in h.steps] == [0.1, 0.05, 0.025]
    assert [r["lr_group1"] for r in h.steps] == [0.01, 0.005, 0.0025]
    assert [r["lr"] for r in h.steps] == [0.1, 0.05, 0.025]


class GradNorms(Callback):
    def __init__(self) -> None:
        self.after: list[float] = []

    def on_step_end(self, state: TrainState) -> None:
        grads = [p.grad for p in state.model.parameters()]
        self.after.append(math.sqrt(sum(float(g.pow(2).sum()) for g in grads)))


@pytest.mark.parametrize("how", ["argument", "callback"])
def test_gradient_clipping_bounds_the_norm_and_records_it_before(how):
    probe = GradNorms()
    kwargs = {"clip_grad_norm": 0.05} if how == "argument" else {}
    extra = [GradientClipping(0.05)] if how == "callback" else []
    _, _, h = train([*extra, probe], epochs=3, lr=0.0, **kwargs)
    before = [r["grad_norm"] for r in h.steps]
    assert all(b > 0.05 for b in before)
    assert probe.after == pytest.approx([0.05] * 3, rel=1e-4)


def test_progress_bar_shows_epoch_loss_and_lr(capsys):
    train([ProgressBar(disable=False, refresh_interval=0.0)], epochs=3)
    err = capsys.readouterr().err
    assert "3/3" in err and "epoch 3" in err and "loss" in err and "lr 0.05" in err


def test_progress_bar_is_off_when_stderr_is_not_a_terminal(capsys):
    model = mlp()
    fit(
        model,
        (X, Y),
        torch.nn.MSELoss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        epochs=2,
        progress=None,
    )
    assert capsys.readouterr().err == ""


def test_history_round_trip_and_best():
    h = History(
        steps=[{"step": 1, "loss": 0.5}],
        epochs=[
            {"epoch": 1, "acc": 0.7},
            {"epoch": 2, "acc": float("nan")},
            {"epoch": 3, "acc": 0.9},
            {"epoch": 4, "acc": 0.9},
        ],
        stop_reason="done",
        stop_success=False,
    )
    again = History.from_dict(h.to_dict())
    assert again.steps == h.steps and again.stop_reason == "done" and not again.stop_success
    assert h.best("acc")["epoch"] == 3
    assert h.best("acc", mode="min")["epoch"] == 1
    with pytest.raises(KeyError, match="'loss'.*acc, epoch"):
        h.best("loss")
    with pytest.raises(InvalidParameterError, match="'mode' parameter of History.best"):
        h.best("acc", mode="best")


def test_tensorboard_event_files_are_written(tmp_path):
    # tensorboard is a dev dependency (pyproject [dev]), so this runs in CI.
    train([], epochs=2, log_dir=tmp_path / "tb")
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "tb").iterdir())


@pytest.mark.parametrize(
    "build, fragment",
    [
        (lambda: EarlyStopping(patience=-1), "'patience' parameter of EarlyStopping"),
        (lambda: EarlyStopping(mode="up"), "'mode' parameter of EarlyStopping"),
        (lambda: ModelCheckpoint("x", save_top_k=-2), "'save_top_k' parameter of ModelCheckpoint"),
        (lambda: ReduceLROnPlateau(factor=1.5), "'factor' parameter of ReduceOnPlateau"),
        (lambda: GradientClipping(0), "'max_norm' parameter of GradientClipping"),
    ],
)
def test_callback_settings_are_validated(build, fragment):
    with pytest.raises(InvalidParameterError, match=fragment):
        build()
