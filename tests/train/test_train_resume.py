"""A run stopped and resumed from its checkpoint ends bit for bit where an uninterrupted one does."""

from __future__ import annotations

import os
import re
import signal

import pytest
import torch
from train_problems import mlp, regression

from descend._validation import InvalidParameterError
from descend.train import (
    Callback,
    EarlyStopping,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TrainState,
    fit,
)
from descend.train.checkpoint import load_checkpoint

X, Y = regression(n=10)
VAL = regression(n=6, seed=1)


class CrashAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, state: TrainState) -> None:
        if state.step == self.step:
            raise RuntimeError("simulated crash")


class SignalAt(Callback):
    def __init__(self, step: int, signum: int) -> None:
        self.step, self.signum = step, signum

    def on_step_end(self, state: TrainState) -> None:
        if state.step == self.step:
            os.kill(os.getpid(), self.signum)


def run(kind: str, directory=None, *, init_seed: int = 0, extra=(), **kwargs):
    """Mini-batches of 4 from 10 samples, shuffled, with dropout: every source of state."""
    model = mlp(dropout=0.3, seed=init_seed)
    if kind == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        schedule, callbacks = (lambda t: 0.01 / (1 + t)), [EarlyStopping(patience=50)]
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        schedule = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
        callbacks = [ReduceLROnPlateau(patience=0, factor=0.5)]
    options = {"batch_size": 4, "seed": 3, "data": (X, Y), **kwargs}
    history = fit(
        model,
        options.pop("data"),
        torch.nn.MSELoss(),
        opt,
        schedule=schedule,
        val_data=VAL,
        callbacks=[*callbacks, *extra],
        checkpoint_dir=directory,
        progress=False,
        **options,
    )
    return model, opt, history


def assert_identical(a, b) -> None:
    (ma, oa, ha), (mb, ob, hb) = a, b
    for (name, pa), (_, pb) in zip(ma.state_dict().items(), mb.state_dict().items()):
        assert torch.equal(pa, pb), name
    sa, sb = oa.state_dict(), ob.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for key in sa["state"]:
        for field, value in sa["state"][key].items():
            other = sb["state"][key][field]
            assert torch.equal(value, other) if torch.is_tensor(value) else value == other
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]
    assert strip(ha.steps) == strip(hb.steps)
    assert strip(ha.epochs) == strip(hb.epochs)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"batch_size": 5}, "batch_size=4; this call has batch_size=5"),
        ({"batch_size": None}, "batch_size=4; this call has batch_size=10"),
        ({"seed": 4}, "seed=3; this call has seed=4"),
        ({"shuffle": False}, "shuffle=True; this call has shuffle=False"),
        ({"data": (X[:8], Y[:8])}, "samples=10; this call has samples=8"),
    ],
)
def test_a_resume_that_would_not_continue_the_same_run_is_refused(tmp_path, change, message):
    run("adam", tmp_path, max_steps=7)
    with pytest.raises(InvalidParameterError, match=re.escape(message)) as error:
        run("adam", tmp_path, init_seed=99, max_steps=10, resume=True, **change)
    assert "step 7, with 1 of epoch 3's batches done" in str(error.value) and str(
        tmp_path / "last.pt"
    ) in str(error.value)
    # Nothing was loaded: a model made as the refused call made it keeps its weights.
    refused, fresh = mlp(dropout=0.3, seed=99), mlp(dropout=0.3, seed=99)
    with pytest.raises(InvalidParameterError):
        fit(
            refused,
            (X, Y),
            torch.nn.MSELoss(),
            torch.optim.Adam(refused.parameters()),
            batch_size=5,
            seed=3,
            max_steps=10,
            checkpoint_dir=tmp_path,
            resume=True,
            progress=False,
        )
    for a, b in zip(refused.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(a, b)
    # With the same settings, and more steps, it goes on.
    assert len(run("adam", tmp_path, max_steps=10, resume=True)[2].steps) == 10


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_stop_then_resume_equals_uninterrupted(tmp_path, kind):
    straight = run(kind, max_steps=10)
    run(kind, tmp_path, max_steps=7)
    assert load_checkpoint(tmp_path / "last.pt")["loop"]["step"] == 7
    resumed = run(kind, tmp_path, init_seed=99, max_steps=10, resume=True)
    assert_identical(straight, resumed)
    assert len(resumed[2].steps) == 10


def test_crash_then_resume_from_periodic_checkpoint_equals_uninterrupted(tmp_path):
    straight = run("adam", max_steps=10)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run("adam", tmp_path, max_steps=10, checkpoint_every=3, extra=[CrashAt(8)])
    assert load_checkpoint(tmp_path / "last.pt")["loop"]["step"] == 6
    assert load_checkpoint(tmp_path / "last.prev.pt")["loop"]["step"] == 3
    resumed = run("adam", tmp_path, init_seed=99, max_steps=10, resume=True, checkpoint_every=3)
    assert_identical(straight, resumed)


def test_a_finished_run_resumed_ends_as_it_was(tmp_path):
    """What a restart after the last step does (torchrun restarts a job whose rank died
    at exit): nothing more is trained, and the model, optimizer and history are the
    finished run's."""
    finished = run("adam", tmp_path, max_steps=10, checkpoint_every=3)
    again = run("adam", tmp_path, init_seed=99, max_steps=10, checkpoint_every=3, resume=True)
    assert_identical(finished, again)
    assert len(again[2].steps) == 10 and again[2].stop_reason == finished[2].stop_reason


def test_resume_falls_back_to_the_previous_checkpoint_when_the_last_is_corrupt(tmp_path):
    straight = run("sgd", max_steps=10)
    with pytest.raises(RuntimeError):
        run("sgd", tmp_path, max_steps=10, checkpoint_every=3, extra=[CrashAt(8)])
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(data[:100])
    resumed = run("sgd", tmp_path, init_seed=99, max_steps=10, resume=True)
    assert_identical(straight, resumed)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_finishes_the_step_saves_and_says_how_to_resume(tmp_path, signum):
    before = signal.getsignal(signum)
    straight = run("adam", max_steps=10)
    _, _, history = run("adam", tmp_path, max_steps=10, extra=[SignalAt(5, signum)])
    assert signal.getsignal(signum) is before
    assert len(history.steps) == 5 and not history.stop_success
    assert signal.Signals(signum).name in history.stop_reason
    assert "resume=True" in history.stop_reason
    assert load_checkpoint(tmp_path / "last.pt")["loop"]["step"] == 5
    resumed = run("adam", tmp_path, init_seed=99, max_steps=10, resume=True)
    assert_identical(straight, resumed)


def test_resume_with_no_checkpoint_starts_fresh(tmp_path):
    straight = run("adam", max_steps=4)
    fresh = run("adam", tmp_path / "none", max_steps=4, resume=True)
    assert_identical(straight, fresh)


def test_resume_from_a_model_checkpoint_file_taken_at_an_epoch_end(tmp_path):
    straight = run("sgd", epochs=5)
    run("sgd", epochs=3, extra=[ModelCheckpoint(tmp_path / "ckpt", save_top_k=0)])
    resumed = run("sgd", tmp_path / "ckpt", init_seed=99, epochs=5, resume=True)
    assert_identical(straight, resumed)
    assert [r["epoch"] for r in resumed[2].epochs] == [1, 2, 3, 4, 5]
