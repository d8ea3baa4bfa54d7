"""ema: equal to torch.optim.swa_utils.AveragedModel with get_ema_multi_avg_fn updated every
step; averaged_weights swaps in and out exactly; state dicts; the tensor path; input."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

import descend
from descend._validation import InvalidParameterError
from descend.optim import (
    AdamW,
    averaged_weights,
    chain,
    ema,
    lookahead,
    maximize,
    scale_by_adam,
    scale_by_lr,
)
from tests.optim.problems import loss_fn, make_params


def _model(dtype: torch.dtype) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(12, 2)
    ).to(dtype)


def _batch(dtype: torch.dtype, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(t)
    return torch.randn(8, 2, 4, 4, generator=g, dtype=dtype), torch.randn(
        8, 2, generator=g, dtype=dtype
    )


# AdamW's chain lands its quotient in place (Transform.land), the average taken after it;
# with an identity after it, it adds the whole update: both ways of stepping are averaged.
RULES = {"split": AdamW.transform, "whole": chain(AdamW.transform, maximize())}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("decay", "rule"), [(0.9, "split"), (0.999, "split"), (0.9, "whole")])
def test_equals_averaged_model_bit_for_bit(decay: float, rule: str, dtype: torch.dtype) -> None:
    """The same operations as AveragedModel.update_parameters after each step (a copy at the
    first, then lerp with weight 1 - decay), on the same weights: equal, not close."""
    model = _model(dtype)
    groups = [
        {"params": [model[0].weight, model[0].bias]},
        {"params": [model[3].weight, model[3].bias], "lr": 5e-3},
    ]
    opt = descend.Optimizer(
        groups,
        ema(RULES[rule], decay=decay),
        lr=1e-2,
        weight_decay=1e-2,
        decoupled_weight_decay=True,
    )
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))
    for t in range(100):
        x, y = _batch(dtype, t)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        averaged.update_parameters(model)
    theirs = list(averaged.module.parameters())
    ours = [opt.state[p]["ema"] for p in model.parameters()]
    for a, b, p in zip(ours, theirs, model.parameters(), strict=True):
        assert torch.equal(a, b.detach())
        assert not torch.equal(a, p.detach())  # an average, not the weights


def test_the_descent_is_the_inner_rules() -> None:
    rule = chain(scale_by_adam(), scale_by_lr())
    a, b = make_params(torch.float64), make_params(torch.float64)
    plain, averaged = descend.Optimizer(a, rule, lr=0.05), descend.Optimizer(b, ema(rule), lr=0.05)
    for _ in range(20):
        for ps, o in ((a, plain), (b, averaged)):
            o.zero_grad()
            loss_fn(ps).backward()
            o.step()
    for p, q in zip(a, b):
        # Both land the quotient with addcdiv_ (descend.optim.apply); the average is taken
        # of the weights that makes, after it (Transform.after): the same descent, bit for bit.
        assert torch.equal(p, q)


def test_averaged_weights_swaps_in_and_back_exactly() -> None:
    model = _model(torch.float64)
    opt = descend.Optimizer(model.parameters(), ema(chain(scale_by_adam(), scale_by_lr())), lr=0.1)
    x, y = _batch(torch.float64, 0)
    with averaged_weights(opt):  # before any step: nothing kept, nothing swapped
        before = model(x)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    weights = [p.detach().clone() for p in model.parameters()]
    kept = [opt.state[p]["ema"].clone() for p in model.parameters()]
    storage = [p.data_ptr() for p in model.parameters()]
    with averaged_weights(opt):
        for p, a in zip(model.parameters(), kept):
            assert torch.equal(p.detach(), a)
        evaluated = model(x)
    with pytest.raises(ZeroDivisionError), averaged_weights(opt):
        raise ZeroDivisionError  # an error inside the block still swaps back
    for p, w, a, ptr in zip(model.parameters(), weights, kept, storage):
        assert torch.equal(p.detach(), w) and torch.equal(opt.state[p]["ema"], a)
        assert p.data_ptr() == ptr  # the user's storage is kept
    assert not torch.equal(evaluated, model(x)) and not torch.equal(before, model(x))


def test_tensor_path_matches_eager() -> None:
    """capturable=True runs the 0-d-tensor path a compiled step runs."""
    rule = ema(chain(scale_by_adam(), scale_by_lr()), decay=0.8)
    a, b = make_params(torch.float64), make_params(torch.float64)
    eager, tensors = (
        descend.Optimizer(a, rule, lr=0.05),
        descend.Optimizer(b, rule, lr=0.05, capturable=True),
    )
    for _ in range(10):
        for ps, o in ((a, eager), (b, tensors)):
            o.zero_grad()
            loss_fn(ps).backward()
            o.step()
    for p, q in zip(a, b):
        torch.testing.assert_close(
            eager.state[p]["ema"], tensors.state[q]["ema"], rtol=1e-13, atol=1e-15
        )


def test_state_dict_round_trips_bit_identically() -> None:
    rule = ema(chain(scale_by_adam(), scale_by_lr()), decay=0.9)
    params = make_params(torch.float64)
    opt = descend.Optimizer(params, rule, lr=0.05)

    def steps(ps, o, n):
        for _ in range(n):
            o.zero_grad()
            loss_fn(ps).backward()
            o.step()

    steps(params, opt, 5)
    copies = [p.detach().clone().requires_grad_() for p in params]
    resumed = descend.Optimizer(copies, copy.deepcopy(rule), lr=0.05)
    resumed.load_state_dict(copy.deepcopy(opt.state_dict()))
    steps(params, opt, 5)
    steps(copies, resumed, 5)
    for p, q in zip(params, copies):
        assert torch.equal(p, q) and torch.equal(opt.state[p]["ema"], resumed.state[q]["ema"])


def test_bad_input_is_named() -> None:
    params = make_params(torch.float64)
    with pytest.raises(
        InvalidParameterError, match=r"'ema_decay' .* in the range \[0, 1\)\. Got 1\.0"
    ):
        descend.Optimizer(params, ema(scale_by_lr(), decay=1.0), lr=0.1)
    opt = descend.Optimizer(params, chain(scale_by_adam(), scale_by_lr()), lr=0.1)
    loss_fn(params).backward()
    opt.step()
    with (
        pytest.raises(
            InvalidParameterError, match=r"one of \['exp_avg', 'exp_avg_sq', 'step'\]\. Got 'ema'"
        ),
        averaged_weights(opt),
    ):
        pass


def test_compiled_step_gives_the_eager_numbers() -> None:
    """compile=True runs both wrappers' tensor paths (lookahead's every-3rd-step pull and
    the first-step copy of the average) inside the compiled step."""
    rule = ema(lookahead(chain(scale_by_adam(), scale_by_lr()), k=3), decay=0.8)

    def run(compile: bool) -> tuple[list[torch.Tensor], descend.Optimizer]:
        g = torch.Generator().manual_seed(0)
        params = [torch.randn(3, 2, generator=g).requires_grad_()]  # one tensor: a short compile
        opt = descend.Optimizer(params, rule, compile=compile, lr=0.05)
        for _ in range(4):
            opt.zero_grad()
            sum((p**2).sum() for p in params).backward()
            opt.step()
        return params, opt

    (eager, e_opt), (compiled, c_opt) = run(False), run(True)
    # float32, ~15 roundings per coordinate per step in possibly another order (fused).
    tol = 4 * 15 * torch.finfo(torch.float32).eps
    for a, b in zip(eager, compiled, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
        for key in ("ema", "slow_params"):
            torch.testing.assert_close(e_opt.state[a][key], c_opt.state[b][key], rtol=tol, atol=tol)
