"""descend's named optimizers stand wherever torch.optim's do: one test per gap that
issue 17 measured on the old core (each failed there)."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
from torch import nn

import descend

# The rest of torch.optim, added to the checks below that every named optimizer passes.
CATALOGUE = ["Adamax", "NAdam", "RAdam", "Adadelta", "ASGD", "Rprop"]


def _model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))


def _train(model: nn.Module, opt: torch.optim.Optimizer, steps: int = 5, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(16, 4, generator=g)
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()


def _same(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_param_groups_given_as_generators_keep_their_parameters(name: str) -> None:
    # torch.optim's documented per-parameter example, and unfreezing with add_param_group.
    model = _model()
    opt = getattr(descend, name)(
        [
            {"params": model[0].parameters()},
            {
                "params": model[2].weight.parameters() if False else iter([model[2].weight]),
                "lr": 1e-3,
            },
        ],
        lr=0.01,
    )
    assert [len(g["params"]) for g in opt.param_groups] == [2, 1]
    opt.add_param_group({"params": (p for p in [model[2].bias])})
    assert [len(g["params"]) for g in opt.param_groups] == [2, 1, 1]
    before = [p.detach().clone() for p in model.parameters()]
    _train(model, opt, steps=1)
    assert all(not torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
@pytest.mark.parametrize("how", ["deepcopy", "pickle", "torch.save"])
def test_a_copied_optimizer_continues_as_the_original(name: str, how: str) -> None:
    kwargs = {"lr": 0.01, "momentum": 0.9} if name != "Adam" else {"lr": 0.01}
    a = _model()
    opt_a = getattr(descend, name)(a.parameters(), **kwargs)
    _train(a, opt_a)
    # Copy model and optimizer together, so that the copy's state keys its own parameters.
    if how == "deepcopy":
        b, opt_b = copy.deepcopy((a, opt_a))
    elif how == "pickle":
        b, opt_b = pickle.loads(pickle.dumps((a, opt_a)))
    else:
        buf = io.BytesIO()
        torch.save((a, opt_a), buf)
        buf.seek(0)
        b, opt_b = torch.load(buf, weights_only=False)
    _train(a, opt_a, seed=2)
    _train(b, opt_b, seed=2)
    assert _same(a, b)


def test_a_composed_chain_pickles() -> None:
    from descend.optim import chain, clip_by_global_norm, scale_by_adam, scale_by_lr

    model = _model()
    opt = descend.Optimizer(
        model.parameters(), chain(clip_by_global_norm(), scale_by_adam(), scale_by_lr()), lr=0.01
    )
    _train(model, opt)
    twin, opt_twin = pickle.loads(pickle.dumps((model, opt)))
    assert opt_twin.transform.name == opt.transform.name
    _train(model, opt, seed=3)
    _train(twin, opt_twin, seed=3)
    assert _same(model, twin)


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", *CATALOGUE])
def test_a_tensor_lr_steps_as_the_same_float(name: str) -> None:
    a, b = _model(), _model()
    opt_a = getattr(descend, name)(a.parameters(), lr=0.01)
    opt_b = getattr(descend, name)(b.parameters(), lr=torch.tensor(0.01))
    _train(a, opt_a)
    _train(b, opt_b)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    assert isinstance(opt_b.param_groups[0]["lr"], torch.Tensor)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1}),
        ("Adagrad", {"lr": 0.1}),
        ("RMSprop", {"lr": 0.01, "centered": True}),
        ("Adam", {"lr": 0.01, "amsgrad": True}),
        ("AdamW", {"lr": 0.01}),
        ("Adamax", {"lr": 0.01, "weight_decay": 0.1}),
        ("NAdam", {"lr": 0.01, "weight_decay": 0.1}),
        ("RAdam", {"lr": 0.01}),  # unrectified: rho_t <= 2 on any 2nd step
        ("Adadelta", {"lr": 1.0, "eps": 1e-4, "weight_decay": 0.1}),
        ("ASGD", {"lr": 0.05, "t0": 1, "lambd": 0.1}),
        ("Rprop", {"lr": 0.05}),
    ],
)
def test_differentiable_steps_give_torchs_gradients(name: str, kwargs: dict) -> None:
    """With differentiable=True the update is part of the graph: the parameter after two
    steps, as a function of its starting value (gradients computed from it, so the
    derivative runs through the moments too), has the derivative finite differences give,
    and torch's."""
    scale = torch.arange(1.0, 6.0, dtype=torch.float64)

    def two_steps(cls: type, x0: torch.Tensor, steps: int = 2) -> torch.Tensor:
        w = x0.clone()  # a non-leaf: the optimizer updates it in place, autograd records it
        opt = cls([w], differentiable=True, **kwargs)
        for _ in range(steps):
            w.grad = 2 * w * scale + 0.3  # not detached: the state depends on x0
            opt.step()
        return w

    torch.manual_seed(0)
    x0 = torch.randn(5, dtype=torch.float64, requires_grad=True)
    ours = getattr(descend, name)
    if name != "SGD":  # torch's SGD starts its momentum buffer from a detached gradient
        assert torch.autograd.gradcheck(lambda x: two_steps(ours, x), (x0,))
    # torch's own differentiable rules take one step at a time (their state changes in
    # place under the graph of the step before): compared on one.
    (g_ours,) = torch.autograd.grad(two_steps(ours, x0, 1).pow(2).sum(), x0)
    (g_torch,) = torch.autograd.grad(two_steps(getattr(torch.optim, name), x0, 1).pow(2).sum(), x0)
    # torch's differentiable Adam computes its bias corrections from a float32 step count
    # (relative error ~1e-7 in 1 - beta**t, amplified by 1/(1 - beta2) at t = 1); the other
    # rules round alike.
    # NAdam's momentum schedule likewise (0.96 ** (t * psi) from a float32 t).
    rtol = 1e-4 if name.startswith("Adam") or name in ("NAdam", "RAdam") else 1e-10
    torch.testing.assert_close(g_ours, g_torch, rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("name", ["SGD", "Adagrad"])
def test_sparse_embedding_gradients_match_torch(name: str) -> None:
    def run(module: type) -> torch.Tensor:
        torch.manual_seed(0)
        emb = nn.Embedding(10, 3, sparse=True)
        opt = getattr(module, name)(emb.parameters(), lr=0.1)
        g = torch.Generator().manual_seed(1)
        for _ in range(5):
            idx = torch.randint(0, 10, (6,), generator=g)  # repeated rows: uncoalesced grads
            opt.zero_grad()
            emb(idx).pow(2).sum().backward()
            assert emb.weight.grad.is_sparse
            opt.step()
        return emb.weight.detach()

    torch.testing.assert_close(run(descend), run(torch.optim), rtol=1e-6, atol=1e-7)


def test_sparse_gradients_are_refused_by_rules_that_cannot_take_them() -> None:
    emb = nn.Embedding(4, 2, sparse=True)
    opt = descend.Adam(emb.parameters())
    emb(torch.tensor([1])).sum().backward()
    with pytest.raises(RuntimeError, match="Adam does not support sparse gradients"):
        opt.step()


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", *CATALOGUE])
def test_older_state_dicts_load_and_step_as_torchs(name: str) -> None:
    """A state dict from an older torch: no maximize/foreach/differentiable/capturable/fused
    keys, steps as Python floats."""
    kwargs = {"lr": 0.01, "momentum": 0.9} if name in ("SGD", "RMSprop") else {"lr": 0.01}
    src = _model()
    src_opt = getattr(torch.optim, name)(src.parameters(), **kwargs)
    _train(src, src_opt)
    old = copy.deepcopy(src_opt.state_dict())
    for group in old["param_groups"]:
        for key in (
            "maximize",
            "foreach",
            "differentiable",
            "capturable",
            "fused",
            "decoupled_weight_decay",
        ):
            group.pop(key, None)
    for st in old["state"].values():
        if "step" in st:
            st["step"] = float(st["step"])
    results = []
    for module in (torch.optim, descend):
        model = copy.deepcopy(src)
        opt = getattr(module, name)(model.parameters(), **kwargs)
        opt.load_state_dict(copy.deepcopy(old))
        _train(model, opt, seed=4)
        results.append(model)
    for p, q in zip(results[0].parameters(), results[1].parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


class _GraphCounter:
    """A torch.compile backend that counts the graphs it is given (each compile or
    recompile of the step makes one) and runs them as they are."""

    def __init__(self) -> None:
        self.graphs = 0

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: list) -> object:
        self.graphs += 1
        return gm.forward


def test_compiling_step_compiles_once_and_once_more_when_lr_changes() -> None:
    torch._dynamo.reset()
    model = _model()
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    opt = descend.Adam(model.parameters(), lr=0.01, foreach=True)
    counter = _GraphCounter()
    step = torch.compile(opt.step, backend=counter)
    for _ in range(6):
        step()
    steady = counter.graphs
    for lr in (0.02, 0.03, 0.04):
        opt.param_groups[0]["lr"] = lr
        step()
    changed = counter.graphs
    for lr in (0.05, 0.06, 0.07):
        opt.param_groups[0]["lr"] = lr
        step()
    # One graph for the first step (it creates the state) and one for every step after;
    # one more when lr first changes, after which dynamo treats it as dynamic (torch.optim:
    # 1, then 2, on the same counter). The old core recompiled on every step.
    assert steady <= 2, steady
    assert changed <= steady + 1 and counter.graphs == changed, (steady, changed, counter.graphs)
    assert float(opt.state[model[0].weight]["step"]) == 12


def test_compile_true_makes_one_graph_under_a_schedule() -> None:
    from descend.optim import chain, clip_by_global_norm, scale_by_adam, scale_by_lr
    from descend.schedules import cosine

    torch._dynamo.reset()
    model = _model()
    opt = descend.Optimizer(
        model.parameters(),
        chain(clip_by_global_norm(), scale_by_adam(), scale_by_lr()),
        compile=True,
        lr=cosine(0.01, total_steps=10),
    )
    counter = _GraphCounter()
    opt.__dict__["_compiled"] = torch.compile(
        descend.optim.transform.apply_updates, backend=counter
    )
    _train(model, opt, steps=8)
    assert counter.graphs == 1


def test_rprop_keeps_and_ignores_a_weight_decay_group_key_as_torch_does() -> None:
    """torch.optim.Rprop has no weight decay; a param group's ``weight_decay`` (PyTorch's
    own tests pass one) is kept in the group and ignored, with a warning from descend."""
    w = torch.zeros(2, requires_grad=True)
    with pytest.warns(UserWarning, match="Rprop has no weight_decay"):
        opt = descend.Rprop([{"params": [w], "weight_decay": 0.1}])
    assert opt.param_groups[0]["weight_decay"] == 0.1
    with pytest.raises(ValueError, match="Rprop has no parameter 'momentum'"):
        descend.Rprop([{"params": [torch.zeros(1, requires_grad=True)], "momentum": 0.9}])
