"""A NaN or infinite loss or gradient: raise naming it, skip the update, or roll back."""

from __future__ import annotations

import math

import pytest
import torch
from train_problems import mlp, regression

from descend.stopping import Divergence
from descend.train import Callback, NonFiniteError, TrainState, fit

X, Y = regression(n=8)


class Snapshots(Callback):
    """The parameters after every step."""

    def __init__(self) -> None:
        self.params: list[list[torch.Tensor]] = []

    def on_step_end(self, state: TrainState) -> None:
        self.params.append([p.detach().clone() for p in state.model.parameters()])


def poisoned(at_steps: set[int]) -> torch.nn.Module:
    """An MLP whose last bias gets a NaN gradient at the given (1-based) steps only."""
    model = mlp()
    calls = {"n": 0}

    def hook(grad: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return grad * math.nan if calls["n"] in at_steps else grad

    model[3].bias.register_hook(hook)
    return model


def run(model, policy, *, steps=5, schedule=None, callbacks=(), stop=None):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return fit(
        model,
        (X, Y),
        torch.nn.MSELoss(),
        opt,
        max_steps=steps,
        on_nonfinite=policy,
        schedule=schedule,
        stop=stop,
        callbacks=list(callbacks),
        progress=False,
        eval_train=False,
    )


def test_raise_names_the_first_parameter_with_a_bad_gradient_and_the_step():
    with pytest.raises(NonFiniteError, match="At step 3, the gradient of parameter '3.bias'") as e:
        run(poisoned({3}), "raise")
    assert e.value.step == 3 and e.value.where == "3.bias"


def test_raise_names_the_loss():
    model = mlp()
    y = Y.clone()
    y[0, 0] = math.inf
    with pytest.raises(NonFiniteError, match="At step 1, the loss is inf"):
        fit(
            model,
            (X, y),
            torch.nn.MSELoss(),
            torch.optim.SGD(model.parameters(), lr=0.1),
            epochs=1,
            progress=False,
        )


def test_skip_leaves_the_parameters_untouched_and_counts():
    snaps = Snapshots()
    h = run(poisoned({3}), "skip", callbacks=[snaps])
    assert [r["skipped"] for r in h.steps] == [0, 0, 1, 1, 1]
    for a, b in zip(snaps.params[1], snaps.params[2]):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(snaps.params[2], snaps.params[3]))
    assert math.isnan(h.steps[2]["grad_norm"])
    assert all(math.isfinite(r["grad_norm"]) for i, r in enumerate(h.steps) if i != 2)


def test_rollback_restores_the_state_before_the_last_update_and_halves_the_lr():
    snaps = Snapshots()
    h = run(poisoned({3}), "rollback", schedule=lambda t: 0.1, callbacks=[snaps])
    for a, b in zip(snaps.params[0], snaps.params[2]):
        assert torch.equal(a, b)
    assert [r["lr"] for r in h.steps] == [0.1, 0.1, 0.1, 0.05, 0.05]
    assert [r["skipped"] for r in h.steps] == [0, 0, 1, 1, 1]
    assert all(torch.isfinite(p).all() for p in snaps.params[-1])


def test_rollback_without_schedule_halves_the_group_lr_each_time():
    h = run(poisoned({2, 4}), "rollback", steps=6)
    assert [r["lr"] for r in h.steps] == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]


def test_a_divergence_criterion_ends_the_run_with_its_message_instead_of_raising():
    h = run(poisoned({3}), "raise", steps=10, stop=Divergence())
    assert len(h.steps) == 3 and not h.stop_success
    assert h.stop_reason.startswith("Diverged at iteration 3")
