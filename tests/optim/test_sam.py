"""SAM: against the authors' algorithm (davda54/sam) in float64 and pytorch-optimizer's SAM in
float32, around torch and descend optimizers; the training loop it documents; input."""

from __future__ import annotations

import copy

import pytest
import torch

import descend
from descend._validation import InvalidParameterError
from tests.optim.problems import loss_fn, make_params

pytorch_optimizer = pytest.importorskip("pytorch_optimizer")


class DavdaSAM(torch.optim.Optimizer):
    """davda54/sam's SAM (sam.py at 3c3afdb), the authors' recommended implementation,
    written out here (it is not a package); ``p.data = old`` becomes ``p.copy_(old)``."""

    def __init__(self, params, base_optimizer, rho=0.05, adaptive=False, **kwargs):
        super().__init__(params, dict(rho=rho, adaptive=adaptive, **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups

    @torch.no_grad()
    def step(self, closure):
        norm = torch.norm(
            torch.stack(
                [
                    ((torch.abs(p) if g["adaptive"] else 1.0) * p.grad).norm(p=2)
                    for g in self.param_groups
                    for p in g["params"]
                    if p.grad is not None
                ]
            ),
            p=2,
        )
        for g in self.param_groups:
            scale = g["rho"] / (norm + 1e-12)
            for p in g["params"]:
                if p.grad is None:
                    continue
                self.state[p]["old_p"] = p.clone()
                p.add_((torch.pow(p, 2) if g["adaptive"] else 1.0) * p.grad * scale.to(p))
        self.zero_grad()
        with torch.enable_grad():
            closure()
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    p.copy_(self.state[p]["old_p"])
        self.base_optimizer.step()


def _train(make, dtype: torch.dtype, steps: int) -> list[torch.Tensor]:
    params = make_params(dtype)
    opt = make([{"params": params[:3]}, {"params": params[3:], "lr": 0.005}])

    def closure():
        opt.zero_grad()
        loss = loss_fn(params)
        loss.backward()
        return loss

    for _ in range(steps):
        closure()
        opt.step(closure)
    return params


# The base SAM wraps, and the reference's: davda54's SAM passes its group keys (rho,
# adaptive) to the base, which descend's optimizers refuse as unknown, so it wraps torch's
# AdamW, whose for-loop descend.AdamW matches to ~1e-15 (tests/optim/test_parity.py).
SGD = (torch.optim.SGD, {"lr": 0.01, "momentum": 0.9, "foreach": False})
BASES = {
    "torch-SGD": (SGD, SGD),
    "descend-AdamW": (
        (descend.AdamW, {"lr": 0.01}),
        (torch.optim.AdamW, {"lr": 0.01, "foreach": False}),
    ),
}


@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("base", sorted(BASES))
def test_matches_the_authors_sam_float64(base: str, adaptive: bool) -> None:
    (cls, options), (ref_cls, ref_options) = BASES[base]
    rho = 0.5 if adaptive else 0.05
    ref = _train(
        lambda g: DavdaSAM(g, ref_cls, rho=rho, adaptive=adaptive, **ref_options),
        torch.float64,
        100,
    )
    got = _train(
        lambda g: descend.SAM(g, cls, rho=rho, adaptive=adaptive, **options), torch.float64, 100
    )
    plain = _train(lambda g: DavdaSAM(g, ref_cls, rho=0.0, **ref_options), torch.float64, 100)
    assert max(float((p - q).detach().abs().max()) for p, q in zip(got, plain) if p.numel()) > 1e-4
    # The same operations but the norm: per-tensor norms by _foreach_norm here, by
    # Tensor.norm there (reduction orders may differ by an ulp): 1e-10 leaves room for that.
    for p, q in zip(got, ref, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("adaptive", [False, True])
def test_matches_pytorch_optimizer_sam_float32(adaptive: bool) -> None:
    """pytorch-optimizer computes the norm in float32 from squared norms; about 10 roundings
    per coordinate per step in another order, 2**-24 each, over 30 steps."""
    cls, options = SGD
    rho = 0.5 if adaptive else 0.05
    ref = _train(
        lambda g: pytorch_optimizer.SAM(g, cls, rho=rho, adaptive=adaptive, **options),
        torch.float32,
        30,
    )
    got = _train(
        lambda g: descend.SAM(g, cls, rho=rho, adaptive=adaptive, **options), torch.float32, 30
    )
    tol = 30 * 10 * torch.finfo(torch.float32).eps / 2
    for p, q in zip(got, ref, strict=True):
        torch.testing.assert_close(p, q, rtol=tol, atol=tol)


def test_a_registry_name_state_dict_and_scheduler() -> None:
    params = make_params(torch.float64)
    opt = descend.SAM(params, "momentum", rho=0.05, lr=0.02)
    assert isinstance(opt.base_optimizer, descend.SGD) and opt.defaults["momentum"] == 0.9
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    def closure():
        opt.zero_grad()
        loss = loss_fn(params)
        loss.backward()
        return loss

    assert opt.step(closure) is not None  # no gradient yet: the first pass is the closure's
    scheduler.step()
    assert opt.base_optimizer.param_groups[0]["lr"] == 0.01
    closure()
    assert opt.step(closure) is None
    state = opt.state_dict()
    assert state == opt.base_optimizer.state_dict() and "momentum_buffer" in state["state"][0]
    copies = [p.detach().clone().requires_grad_() for p in params]
    resumed = descend.SAM(copies, "momentum", rho=0.05, lr=0.02)
    resumed.load_state_dict(copy.deepcopy(state))
    assert resumed.state is resumed.base_optimizer.state
    for ps, o in ((params, opt), (copies, resumed)):

        def again(ps=ps, o=o):
            o.zero_grad()
            loss = loss_fn(ps)
            loss.backward()
            return loss

        o.step(again)
    for p, q in zip(params, copies):
        assert torch.equal(p, q)


def test_a_training_loop_as_documented() -> None:
    """fit calls step() without a closure, so SAM trains in the loop its docstring shows."""
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    model = torch.nn.Linear(3, 1)
    opt = descend.SAM(model.parameters(), descend.SGD, rho=0.05, lr=0.1, momentum=0.9)
    first = None
    for _ in range(100):

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            return loss

        loss = closure()
        first = first if first is not None else loss.item()
        opt.step(closure)
    assert torch.nn.functional.mse_loss(model(x), y).item() < 1e-3 * first


def test_bad_input_is_named() -> None:
    params = make_params(torch.float64)
    with pytest.raises(
        InvalidParameterError, match=r"'rho' parameter of SAM must be a float >= 0\. Got -1"
    ):
        descend.SAM(params, descend.SGD, rho=-1, lr=0.1)
    with pytest.raises(TypeError, match="optimizer class, a function returning one, or a registry"):
        descend.SAM(params, descend.SGD(params, lr=0.1))
    with pytest.raises(InvalidParameterError, match="optimizer"):
        descend.SAM(params, "no-such-optimizer")
    opt = descend.SAM(params, descend.SGD, lr=0.1)
    with pytest.raises(RuntimeError, match="SAM.step needs a closure"):
        opt.step()
    with pytest.raises(RuntimeError, match="no parameter with a gradient"):
        opt.first_step()
