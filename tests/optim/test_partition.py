"""Parameter routing: descend.partition, muon_defaults, MuonAdamW (the registry's muon),
describe; one optimizer whose groups run their route's rule, one state dict."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

import descend
from descend.optim import make_optimizer


class _Net(nn.Module):
    """Embedding, two hidden linear layers, a norm, a conv filter and an output head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(12, 8)
        self.conv = nn.Conv1d(8, 8, 3, padding=1)
        self.body = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.LayerNorm(16), nn.Linear(16, 16))
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(self.embed(x).transpose(1, 2)).transpose(1, 2)
        return self.head(self.body(h)).mean(1)


def _routes(opt: torch.optim.Optimizer) -> dict[str, list[str]]:
    return {g["route"]: g["param_names"] for g in opt.param_groups}


def test_muon_defaults_sends_hidden_matrices_to_muon_and_the_rest_to_adamw() -> None:
    opt = descend.muon_defaults(_Net())
    assert _routes(opt) == {
        "muon": ["conv.weight", "body.0.weight", "body.3.weight"],  # the filter flattened
        "adamw": [
            "embed.weight",  # an embedding
            "conv.bias",
            "body.0.bias",
            "body.2.weight",  # norm gain and shift
            "body.2.bias",
            "body.3.bias",
            "head.weight",  # the output head
            "head.bias",
        ],
    }
    muon, adamw = opt.param_groups
    assert (muon["lr"], muon["weight_decay"], muon["momentum"], muon["nesterov"]) == (
        0.02,
        0.01,
        0.95,
        True,
    )
    assert (adamw["lr"], adamw["betas"], adamw["eps"], adamw["decoupled_weight_decay"]) == (
        3e-4,
        (0.9, 0.95),
        1e-10,
        True,
    )
    assert "betas" not in muon and "momentum" not in adamw


def test_rules_by_name_module_type_and_shape_first_match_wins() -> None:
    net = _Net()
    opt = descend.partition(
        net,
        [("*.bias", "sgd"), (nn.LayerNorm, "adamw"), (lambda n, p: p.ndim == 2, "muon")],
        {"muon": descend.Muon, "adamw": descend.AdamW, "sgd": descend.Route(descend.SGD, lr=0.1)},
        default="adamw",
    )
    routes = _routes(opt)
    assert routes["sgd"] == ["conv.bias", "body.0.bias", "body.2.bias", "body.3.bias", "head.bias"]
    assert routes["muon"] == ["embed.weight", "body.0.weight", "body.3.weight", "head.weight"]
    assert routes["adamw"] == ["conv.weight", "body.2.weight"]
    assert [g["route"] for g in opt.param_groups] == ["muon", "adamw", "sgd"]  # routes' order
    assert opt.param_groups[2]["lr"] == 0.1 and opt.param_groups[0]["lr"] == 1e-3


def test_each_route_steps_as_its_own_optimizer_would() -> None:
    """A partition's step is torch's Muon on its group and torch's AdamW on the other
    (float64: the same operations up to the order of the final sums, 1e-10)."""
    torch.manual_seed(0)
    net = _Net().double()
    ref = copy.deepcopy(net)
    opt = descend.partition(
        net,
        [(nn.Embedding, "adamw"), ("head.*", "adamw"), (lambda n, p: p.ndim == 2, "muon")],
        {
            "muon": descend.Route(descend.Muon, lr=0.02, weight_decay=0.01),
            "adamw": descend.Route(
                descend.AdamW, lr=3e-4, betas=(0.9, 0.95), eps=1e-10, weight_decay=0.01
            ),
        },
        default="adamw",
    )
    names = dict(ref.named_parameters())
    muon = torch.optim.Muon([names[n] for n in _routes(opt)["muon"]], lr=0.02, weight_decay=0.01)
    adamw = torch.optim.AdamW(
        [names[n] for n in _routes(opt)["adamw"]],
        lr=3e-4,
        betas=(0.9, 0.95),
        eps=1e-10,
        weight_decay=0.01,
        foreach=False,
    )
    x = torch.randint(0, 12, (4, 6))
    for _ in range(100):
        for model, opts in ((net, [opt]), (ref, [muon, adamw])):
            for o in opts:
                o.zero_grad()
            model(x).pow(2).sum().backward()
            for o in opts:
                o.step()
    for (name, p), q in zip(net.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12, msg=name)


def test_state_dict_is_one_dict_and_resumes_bit_identically() -> None:
    torch.manual_seed(0)
    x = torch.randint(0, 12, (4, 6))

    def train(model: nn.Module, opt: torch.optim.Optimizer, n: int) -> None:
        for _ in range(n):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()

    net = _Net()
    opt = descend.muon_defaults(net)
    train(net, opt, 3)
    saved = pickle.loads(pickle.dumps((net.state_dict(), opt.state_dict())))
    train(net, opt, 3)

    again = _Net()
    again.load_state_dict(saved[0])
    opt2 = descend.muon_defaults(again)
    opt2.load_state_dict(saved[1])
    assert [g["route"] for g in opt2.state_dict()["param_groups"]] == ["muon", "adamw"]
    assert set(opt2.state_dict()["state"][0]) == {"momentum_buffer"}
    assert set(opt2.state_dict()["state"][3]) == {"step", "exp_avg", "exp_avg_sq"}
    train(again, opt2, 3)
    for p, q in zip(net.parameters(), again.parameters(), strict=True):
        assert torch.equal(p, q)
    # A copy (pickling, deepcopy) keeps its routes.
    assert copy.deepcopy(opt2).routes.keys() == {"muon", "adamw"}


def test_unknown_route_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"Unknown route 'soap'\. Available: adamw, muon\."):
        descend.partition(_Net(), [("*", "soap")], {"muon": descend.Muon, "adamw": descend.AdamW})
    w = torch.zeros(2, 2, requires_grad=True)
    opt = descend.Partitioned([{"params": [w], "route": "muon"}], {"muon": descend.Muon})
    with pytest.raises(
        ValueError,
        match=r"Unknown route \(param group 1 of Partitioned\) 'adam'\. Available: muon\.",
    ):
        opt.add_param_group({"params": [torch.zeros(3, requires_grad=True)], "route": "adam"})


def test_unrouted_parameters_and_bad_routes_are_errors() -> None:
    with pytest.raises(ValueError, match=r"No rule routes the parameters embed.weight \(12, 8\)"):
        descend.partition(_Net(), [("body.*", "muon")], {"muon": descend.Muon})
    # A non-matrix routed to Muon: named, with its shape and group.
    with pytest.raises(
        ValueError,
        match=r"Muon only supports 2D.*'conv.weight' of shape \(8, 8, 3\) in param group 0",
    ):
        descend.partition(_Net(), [], {"muon": descend.Muon}, default="muon")
    pairs = list(_Net().named_parameters())
    with pytest.raises(ValueError, match="A module-type rule \\(Embedding\\) needs the model"):
        descend.partition(pairs, [(nn.Embedding, "adamw")], {"adamw": descend.AdamW})
    with pytest.raises(ValueError, match="Muon has no parameter 'betas'"):
        descend.Route(descend.Muon, betas=(0.9, 0.99))
    opt = descend.muon_defaults(_Net())
    other = descend.partition(
        _Net(), [], {"adamw": descend.AdamW, "muon": descend.Muon}, default="adamw"
    )
    with pytest.raises(ValueError, match=r"ran the routes \['muon', 'adamw'\]"):
        other.load_state_dict(opt.state_dict())


def test_describe_prints_where_each_parameter_went() -> None:
    text = descend.describe(descend.muon_defaults(_Net()))
    lines = text.splitlines()
    assert lines[0] == "Partitioned: 2 param groups, 11 tensors, 829 elements"
    assert lines[1] == "  group 0: muon (FlatMuon), 3 tensors, 576 elements"
    assert "    body.3.weight  (16, 16)" in lines
    assert "  group 1: adamw (AdamW), 8 tensors, 253 elements" in lines


def test_registry_muon_routes_bare_parameters_by_shape() -> None:
    """``make_optimizer("muon", model.parameters())``: matrices and filters to Muon at AdamW's RMS,
    the rest to AdamW; one lr and weight decay. On a lone vector it is AdamW."""
    net = _Net()
    opt = make_optimizer("muon", net.parameters(), lr=0.01)
    routes = {g["route"]: [p.ndim for p in g["params"]] for g in opt.param_groups}
    assert routes == {"muon": [2, 3, 2, 2, 2], "adamw": [1, 1, 1, 1, 1, 1]}
    assert all(g["lr"] == 0.01 and g["weight_decay"] == 0.01 for g in opt.param_groups)
    assert opt.param_groups[0]["adjust_lr_fn"] == "match_rms_adamw"
    assert opt.defaults == {"lr": 0.01, "weight_decay": 0.01}
    x = torch.zeros(1, requires_grad=True)
    lone = make_optimizer("muon", [x], lr=0.1)
    assert [g["route"] for g in lone.param_groups] == ["adamw"]
    x.grad = torch.ones(1)
    lone.step()
    torch.testing.assert_close(x.detach(), torch.tensor([-0.1]))  # Adam's first step: -lr
    with pytest.raises(ValueError, match="MuonAdamW has no parameter 'betas1'"):
        make_optimizer("muon", [x], betas1=0.9)


def test_an_lr_scheduler_drives_every_route() -> None:
    opt = descend.muon_defaults(_Net())
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == [0.01, 1.5e-4]
