"""How a step runs does not change its numbers: cache-sized runs of tensors against whole
lists, a prepared clipping factor against one computed inside the update, a folded
quotient (``addcdiv_``) against the materialized update."""

from __future__ import annotations

import contextlib
import dataclasses
from unittest import mock

import pytest
import torch

import descend
from descend.optim import (
    add_decayed_weights,
    chain,
    clip_by_global_norm,
    layout,
    scale_by_adam,
    scale_by_lr,
)
from descend.optim.layout import cache_sized
from tests.optim.problems import run


def test_cache_sized_runs_cover_every_tensor_once_in_order() -> None:
    params = [torch.zeros(n) for n in (5, 3, 9, 1, 1, 20)]
    parts = cache_sized(params)
    assert [i for part in parts for i in part] == list(range(6))
    assert all(sum(params[i].numel() for i in part) <= layout.CACHE_ELEMENTS for part in parts)


@pytest.mark.parametrize(
    "make",
    [
        lambda g: descend.Optimizer(
            g,
            chain(clip_by_global_norm(), scale_by_adam(), add_decayed_weights(), scale_by_lr()),
            lr=0.01,
            max_norm=0.5,
            weight_decay=0.01,
        ),
        lambda g: descend.RMSprop(g, lr=0.01, momentum=0.9, centered=True),
        lambda g: descend.Adam(g, lr=0.01, foreach=True, amsgrad=True),
    ],
    ids=["clip-adamw-chain", "rmsprop", "adam-eager"],
)
def test_runs_of_tensors_give_the_numbers_of_whole_lists(make, monkeypatch) -> None:
    whole, _ = run(make, torch.float64, steps=30)
    monkeypatch.setattr(layout, "CACHE_ELEMENTS", 8)  # the problem's tensors: 12, 1, 0, 5, 24
    assert len(cache_sized(whole)) >= 3
    pieces, _ = run(make, torch.float64, steps=30)
    for a, b in zip(whole, pieces, strict=True):
        assert torch.equal(a, b)


def test_a_prepared_clipping_factor_is_the_one_the_update_computes() -> None:
    clip = clip_by_global_norm()
    grads = [torch.randn(4, 3, dtype=torch.float64), torch.randn(7, dtype=torch.float64)]
    hp = {"max_norm": 0.1}
    inside = clip.update(grads, {}, grads, hp)
    prepared = clip.update(grads, {}, grads, {**hp, **clip.prepare(grads, hp)})
    expected = 0.1 / (torch.cat([g.flatten() for g in grads]).norm() + 1e-6)
    for a, b, g in zip(inside, prepared, grads, strict=True):
        assert torch.equal(a, b)
        torch.testing.assert_close(a, g * expected, rtol=1e-12, atol=0)


FOLDING = {
    "adam": lambda g: descend.Adam(g, lr=0.01, foreach=True),
    "adamw": lambda g: descend.AdamW(g, lr=0.01, weight_decay=0.1, foreach=True),
    "amsgrad-coupled": lambda g: descend.Adam(
        g, lr=0.01, weight_decay=0.1, amsgrad=True, foreach=True
    ),
    "adagrad-lr-decay": lambda g: descend.Adagrad(g, lr=0.05, lr_decay=0.01, foreach=True),
    "rmsprop-centered": lambda g: descend.RMSprop(g, lr=0.01, centered=True),
    "adamax": lambda g: descend.Adamax(g, lr=0.01, weight_decay=0.1),
    "ademamix": lambda g: descend.AdEMAMix(g, lr=0.01, weight_decay=0.1, alpha_warmup=20),
    "lion": lambda g: descend.Lion(g, lr=0.001, weight_decay=0.1),
    "clip-adamw-chain": lambda g: descend.Optimizer(
        g,
        chain(clip_by_global_norm(), scale_by_adam(), add_decayed_weights(), scale_by_lr()),
        lr=0.01,
        max_norm=0.5,
        weight_decay=0.1,
    ),
}


def _unfolded(make):
    def build(groups):
        opt = make(groups)
        opt.transform = dataclasses.replace(opt.transform, apply=None)
        return opt

    return build


@pytest.mark.parametrize("name", list(FOLDING))
def test_a_folded_quotient_gives_the_numbers_of_the_materialized_update(name) -> None:
    make = FOLDING[name]
    # A folded step ends in addcdiv_ (a quotient) or, for a plain direction (Lion), decays
    # theta in place instead of materializing u + lambda theta (_foreach_add).
    calls = mock.MagicMock(wraps=torch._foreach_addcdiv_)
    decayed = mock.MagicMock(wraps=torch._foreach_add)
    with (
        mock.patch.object(torch, "_foreach_addcdiv_", calls),
        mock.patch.object(torch, "_foreach_add", decayed),
    ):
        folded, _ = run(make, torch.float64, steps=40)
    if name == "lion":
        assert decayed.call_count == 0, "the chain should fold: u + lambda theta was computed"
    else:
        assert calls.call_count > 0, "the chain should fold: addcdiv_ was never called"
    plain, _ = run(_unfolded(make), torch.float64, steps=40)
    # Folding moves the decoupled decay from the update into theta * (1 - lr * lambda) and
    # adds lr * n / d in one rounding instead of two: a few 2^-53 roundings per step, 40
    # steps of a contracting iteration, stay far below 1e-12 relative.
    for a, b in zip(folded, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "make",
    [
        lambda g: descend.RMSprop(g, lr=0.01, momentum=0.9, foreach=True),
        lambda g: descend.NAdam(g, lr=0.01),
    ],
    ids=["rmsprop-momentum", "nadam"],
)
def test_chains_that_cannot_fold_do_not(make) -> None:
    calls = mock.MagicMock(wraps=torch._foreach_addcdiv_)
    with mock.patch.object(torch, "_foreach_addcdiv_", calls):
        run(make, torch.float64, steps=3)
    assert calls.call_count == 0


def test_a_wrapper_that_replaces_the_update_does_not_inherit_its_shortcuts() -> None:
    # dataclasses.replace(t, update=...) keeps t's quotient; folding through it would skip
    # the wrapper's own work (here: doubling the update).
    adam = scale_by_adam()

    def doubled(grads, state, params, hp):
        return torch._foreach_mul(adam.update(grads, state, params, hp), 2.0)

    wrapped = dataclasses.replace(adam, update=doubled)
    assert wrapped.shortcut("quotient") is None and adam.shortcut("quotient") is not None
    calls = mock.MagicMock(wraps=torch._foreach_addcdiv_)
    with mock.patch.object(torch, "_foreach_addcdiv_", calls):
        ours, _ = run(
            lambda g: descend.Optimizer(g, chain(wrapped, scale_by_lr()), lr=0.01),
            torch.float64,
            steps=20,
        )
    assert calls.call_count == 0
    twice, _ = run(
        lambda g: descend.Optimizer(g, chain(scale_by_adam(), scale_by_lr()), lr=0.02),
        torch.float64,
        steps=20,
    )
    for a, b in zip(ours, twice, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_ademamix_lands_its_two_moments_without_a_tensor_for_their_sum() -> None:
    # m1 + alpha m2 stays a Sum: two addcdiv_ into theta, no _foreach_add/_foreach_mul
    # making a new tensor (the FOLDING test above checks the numbers).
    made = {
        name: mock.MagicMock(wraps=getattr(torch, name))
        for name in ("_foreach_add", "_foreach_mul")
    }
    landed = mock.MagicMock(wraps=torch._foreach_addcdiv_)
    with contextlib.ExitStack() as stack:
        for name, fake in made.items():
            stack.enter_context(mock.patch.object(torch, name, fake))
        stack.enter_context(mock.patch.object(torch, "_foreach_addcdiv_", landed))
        run(lambda g: descend.AdEMAMix(g, lr=0.01), torch.float64, steps=3)
    assert [f.call_count for f in made.values()] == [0, 0]
    assert landed.call_count > 0 and landed.call_count % 2 == 0
