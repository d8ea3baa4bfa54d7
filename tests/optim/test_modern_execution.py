"""Lion, AdEMAMix, LAMB and a cautious chain run the same numbers eagerly, compiled and
as a differentiable step, and their options are refused with clear messages."""

from __future__ import annotations

import pytest
import torch

import descend
from descend.optim import add_decayed_weights, cautious, chain, maximize, scale_by_adam, scale_by_lr

_C_ADAMW = chain(maximize(), cautious(scale_by_adam()), add_decayed_weights(), scale_by_lr())
CASES = {
    "Lion": (descend.Lion.transform, {"lr": 0.01, "weight_decay": 0.1}),
    # Warmups shorter than the run: both schedules pass through their ramp and their end.
    "AdEMAMix": (descend.AdEMAMix.transform, {"lr": 0.01, "alpha_warmup": 4, "beta3_warmup": 5}),
    "LAMB": (descend.LAMB.transform, {"lr": 0.01, "weight_decay": 0.1, "clamp_value": 2.0}),
    "cautious AdamW": (_C_ADAMW, {"lr": 0.01, "weight_decay": 0.1}),
}


def _run(name: str, **flags: bool) -> list[torch.Tensor]:
    transform, hp = CASES[name]
    g = torch.Generator().manual_seed(0)
    start = [torch.randn(8, generator=g), torch.randn(3, 2, generator=g)]
    # A differentiable step updates non-leaf tensors (as torch.optim's): clones of leaves.
    leaves = [t.requires_grad_() for t in start]
    params = [t.clone() for t in leaves] if flags.get("differentiable") else leaves
    opt = descend.Optimizer(params, transform, **flags, **hp)
    for _ in range(8):
        with torch.no_grad():
            for p in params:
                p.grad = 2 * p + 4 * p**3 - 1  # of sum(p^2 + p^4 - p)
        opt.step()
    return [p.detach() for p in params]


# Lion's compiled step is three foreach ops with no per-tensor numbers: left out for time.
@pytest.mark.parametrize("name", ["AdEMAMix", "LAMB", "cautious AdamW"])
def test_compiled_step_gives_the_eager_numbers(name: str) -> None:
    eager, compiled = _run(name), _run(name, compile=True)
    for a, b in zip(eager, compiled, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(CASES))
def test_differentiable_and_capturable_steps_give_the_eager_numbers(name: str) -> None:
    eager = _run(name)
    for flags in ({"differentiable": True}, {"capturable": True}):
        for a, b in zip(eager, _run(name, **flags), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda x: descend.Lion([x], betas=(0.9, 1.0)), "'betas' .* Got \\(0.9, 1.0\\)"),
        (lambda x: descend.Lion([x], lr=-1.0), "'lr' .* Got -1.0"),
        (lambda x: descend.AdEMAMix([x], alpha=-2.0), "'alpha' .* >= 0. Got -2.0"),
        (lambda x: descend.AdEMAMix([x], beta3_warmup=-5), "'beta3_warmup' .* Got -5"),
        (lambda x: descend.LAMB([x], clamp_value=0.0), "'clamp_value' .* > 0. Got 0.0"),
        (lambda x: descend.LAMB([x], weight_decay=-0.1), "'weight_decay' .* Got -0.1"),
    ],
)
def test_bad_hyperparameters_are_refused_by_name(make, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        make(torch.zeros(2, requires_grad=True))


def test_compiled_ademamix_makes_one_graph_through_its_warmups() -> None:
    """The warmed-up alpha and beta3 change every step: they enter the compiled step as
    0-d tensors, so the warmup does not recompile (a Python number would, every step)."""
    graphs = []

    def counting(gm: torch.fx.GraphModule, example_inputs: list) -> object:
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    x = torch.ones(4, requires_grad=True)
    opt = descend.AdEMAMix([x], lr=0.01, alpha_warmup=20, beta3_warmup=20)
    opt._compile = True
    opt.__dict__["_compiled"] = torch.compile(descend.optim.apply.apply_updates, backend=counting)
    for _ in range(10):
        x.grad = 2 * x.detach()
        opt.step()
    assert len(graphs) == 1
