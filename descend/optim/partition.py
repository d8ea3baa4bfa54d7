r"""Parameter routing: each parameter to the rule that suits it, in one optimizer.

Muon is for hidden weight matrices; embeddings, the output head, biases and norms want
AdamW. :func:`partition` routes parameters by rules (a name pattern, a module type, or
any test of the name and tensor, e.g. its shape) into one ``torch.optim.Optimizer``
whose param groups each carry a ``route`` key naming the rule they run. Its state dict is
one dict (each parameter's state keyed by torch's names for its own rule), learning-rate
schedulers see every group, and :func:`describe` prints which parameter went where.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from descend._validation import InvalidParameterError, reject_unknown, unknown_choice, validate
from descend.optim._constraints import TORCH_WORDS
from descend.optim.flags import EXECUTION_DEFAULTS, refuse_empty
from descend.optim.lr import GroupSchedules
from descend.optim.optimizer import Optimizer
from descend.optim.transform import Transform

Matcher = str | type[nn.Module] | Callable[[str, Tensor], bool]


@dataclass(frozen=True)
class Route:
    """What a route runs: a named optimizer class (its rule and its defaults), or a
    transform (its declared defaults), with hyperparameters that override them.

    Example:
        >>> import descend
        >>> descend.Route(descend.AdamW, lr=3e-4).defaults["lr"]
        0.0003
    """

    optimizer: type[Optimizer] | Transform
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    def __init__(self, optimizer: type[Optimizer] | Transform, **hyperparameters: Any) -> None:
        if not isinstance(optimizer, Transform) and not (
            isinstance(optimizer, type)
            and isinstance(getattr(optimizer, "transform", None), Transform)
        ):
            raise InvalidParameterError(
                "A route runs a descend optimizer class (descend.Muon, descend.AdamW, ...) or "
                f"a transform (a chain). Got {optimizer!r} instead."
            )
        object.__setattr__(self, "optimizer", optimizer)
        object.__setattr__(self, "hyperparameters", dict(hyperparameters))
        reject_unknown(self.name, hyperparameters, set(self._own) | set(EXECUTION_DEFAULTS))
        # Checked here too: a route no parameter takes (MuonAdamW on a model without
        # matrices) makes no group, and a group is where the optimizer checks its values.
        validate(self.name, hyperparameters, self.transform.constraints, TORCH_WORDS)

    @property
    def transform(self) -> Transform:
        opt = self.optimizer
        return opt if isinstance(opt, Transform) else opt.transform

    @property
    def name(self) -> str:
        opt = self.optimizer
        return opt.name if isinstance(opt, Transform) else opt.__name__

    @property
    def _own(self) -> dict[str, Any]:
        """The rule's own defaults: a class's group keys and values as it sets them
        (AdamW's ``decoupled_weight_decay=True`` is in no signature), else the transform's."""
        opt = self.optimizer
        if isinstance(opt, Transform):
            return dict(opt.defaults)
        return dict(_class_defaults(opt))

    @property
    def defaults(self) -> dict[str, Any]:
        return {**self._own, **self.hyperparameters}

    def check(self, owner: str, group: dict[str, Any], index: int) -> None:
        check = getattr(self.optimizer, "check_group", None)
        if check is not None:
            check(owner, group, index)


@functools.cache
def _class_defaults(cls: type[Optimizer]) -> dict[str, Any]:
    # Built once on a 2x2 matrix (every rule takes one, Muon only a matrix).
    return dict(cls([torch.zeros(2, 2, requires_grad=True)]).defaults)


def _as_route(value: Route | type[Optimizer] | Transform) -> Route:
    return value if isinstance(value, Route) else Route(value)


class Partitioned(Optimizer):
    """One optimizer whose param groups run different rules, each named by its ``route``.

    Built by :func:`partition` (or by hand: param groups with a ``"route"`` key, and the
    routes by name). Every group takes its route's defaults and hyperparameter names; the
    step, state, schedules and state dict are :class:`descend.Optimizer`'s.

    Args:
        params: param-group dicts, each with a ``"route"`` key.
        routes: ``{name: Route | optimizer class | transform}``.
        compile: compile each route's step with ``torch.compile``.
        **shared: hyperparameters every route reads, set on every group (``defaults``).
    """

    _torch_layout = True

    def __init__(
        self,
        params: Iterable[dict[str, Any]],
        routes: Mapping[str, Route | type[Optimizer] | Transform],
        *,
        compile: bool = False,
        **shared: Any,
    ) -> None:
        if not routes:
            raise InvalidParameterError("A partition needs at least one route. Got none.")
        self._routes = {name: _as_route(r) for name, r in routes.items()}
        refuse_empty(self._owner, params)
        self._schedules = GroupSchedules(self._owner)
        self._compile = bool(compile)
        torch.optim.Optimizer.__init__(self, params, shared)

    @property
    def routes(self) -> dict[str, Route]:
        """The routes by name (a copy)."""
        return dict(self._routes)

    def _route(self, group: Mapping[str, Any]) -> Route:
        name = group.get("route")
        if name not in self._routes:
            index = len(self.param_groups)
            raise unknown_choice(
                f"route (param group {index} of {self._owner})", name, self._routes
            )
        return self._routes[name]

    def _transform_for(self, group: dict[str, Any]) -> Transform:
        return self._route(group).transform

    def _defaults_for(self, group: dict[str, Any]) -> dict[str, Any]:
        return {**self._route(group).defaults, **self.defaults}

    def _check_params(self, group: dict[str, Any]) -> None:
        self._route(group).check(self._owner, group, len(self.param_groups) - 1)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group; its ``route`` key (required) says which rule runs it."""
        if isinstance(param_group, dict):
            for key, value in self._defaults_for(param_group).items():
                param_group.setdefault(key, value)
        super().add_param_group(param_group)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's, refusing a state dict whose groups ran other routes (their state would
        be read by the wrong rule)."""
        saved = [g.get("route") for g in state_dict["param_groups"]]
        mine = [g["route"] for g in self.param_groups]
        if saved != mine:
            raise ValueError(
                f"This state dict's param groups ran the routes {saved}; this optimizer's run "
                f"{mine}. Rebuild the optimizer with the same partition to load it."
            )
        super().load_state_dict(state_dict)


def _owners(model: nn.Module) -> dict[int, type[nn.Module]]:
    """The type of the module that directly holds each parameter (first holder wins, as
    ``named_parameters`` keeps the first name of a tied parameter)."""
    owners: dict[int, type[nn.Module]] = {}
    for module in model.modules():
        for p in module.parameters(recurse=False):
            owners.setdefault(id(p), type(module))
    return owners


def _matches(matcher: Matcher, name: str, p: Tensor, owner: type[nn.Module] | None) -> bool:
    if isinstance(matcher, str):
        return fnmatch.fnmatchcase(name, matcher)
    if isinstance(matcher, type) and issubclass(matcher, nn.Module):
        if owner is None:
            raise InvalidParameterError(
                f"A module-type rule ({matcher.__name__}) needs the model: pass the nn.Module "
                "to descend.partition, not its parameters."
            )
        return issubclass(owner, matcher)
    return bool(matcher(name, p))


def assign(
    model: nn.Module | Iterable[tuple[str, Tensor]],
    rules: Sequence[tuple[Matcher, str]],
    *,
    default: str | None = None,
) -> dict[str, list[tuple[str, Tensor]]]:
    """Each trainable parameter's route by the first rule that matches it (else
    ``default``), as ``{route: [(name, parameter), ...]}`` in rule order."""
    if isinstance(model, nn.Module):
        owners, named = _owners(model), list(model.named_parameters())
    else:
        owners, named = {}, list(model)
    routed: dict[str, list[tuple[str, Tensor]]] = {}
    unmatched = []
    for name, p in named:
        if not p.requires_grad:
            continue
        owner = owners.get(id(p)) if owners else None
        route = next((r for m, r in rules if _matches(m, name, p, owner)), default)
        if route is None:
            unmatched.append(f"{name} {tuple(p.shape)}")
        else:
            routed.setdefault(route, []).append((name, p))
    if unmatched:
        raise InvalidParameterError(
            f"No rule routes the parameters {', '.join(unmatched)}, and no default route was "
            "given. Add a rule for them or pass default='<route>'."
        )
    return routed


def partition(
    model: nn.Module | Iterable[tuple[str, Tensor]],
    rules: Sequence[tuple[Matcher, str]],
    routes: Mapping[str, Route | type[Optimizer] | Transform],
    *,
    default: str | None = None,
    compile: bool = False,
) -> Partitioned:
    """Route each parameter of ``model`` by the first matching rule into one optimizer.

    A rule is ``(matcher, route)``; the matcher is a glob on the parameter's qualified
    name (``"head.*"``, ``"*.bias"``), an ``nn.Module`` subclass (parameters held directly
    by such a module), or a function ``(name, parameter) -> bool`` (``lambda n, p: p.ndim
    == 2``). Parameters no rule matches go to ``default``. One param group per route that
    got parameters, in the order of ``routes``, its parameters named (``param_names``).

    Args:
        model: an ``nn.Module``, or ``(name, parameter)`` pairs (then no module-type rules).
        rules: ``[(matcher, route name), ...]``, tried in order.
        routes: ``{route name: descend.Route(descend.Muon, lr=0.02) | descend.AdamW | chain}``.
        default: the route for parameters no rule matches (``None``: they are an error).
        compile: compile each route's step with ``torch.compile``.

    Example:
        >>> import torch, descend
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Embedding(10, 8), nn.Linear(8, 8), nn.LayerNorm(8),
        ...                       nn.Linear(8, 10))
        >>> opt = descend.partition(
        ...     model,
        ...     rules=[(nn.Embedding, "adamw"),                    # module type
        ...            ("3.*", "adamw"),                           # name: the output head
        ...            (lambda name, p: p.ndim == 2, "muon")],     # shape: hidden matrices
        ...     routes={"muon": descend.Route(descend.Muon, lr=0.02),
        ...             "adamw": descend.Route(descend.AdamW, lr=3e-4)},
        ...     default="adamw")
        >>> [(g["route"], g["param_names"]) for g in opt.param_groups][0]
        ('muon', ['1.weight'])
    """
    table = {name: _as_route(r) for name, r in routes.items()}
    for route in [r for _, r in rules] + ([default] if default is not None else []):
        if route not in table:
            raise unknown_choice("route", route, table)
    routed = assign(model, rules, default=default)
    groups = [{"params": routed[r], "route": r} for r in table if r in routed]
    if not groups:
        raise InvalidParameterError("descend.partition got no trainable parameters.")
    return Partitioned(groups, table, compile=compile)


def describe(opt: torch.optim.Optimizer) -> str:
    """Which parameter went where: per param group its route (or rule), counts and names.

    Example:
        >>> import torch, descend
        >>> w = torch.zeros(3, 2, requires_grad=True)
        >>> print(descend.describe(descend.Muon([w])))
        Muon: 1 param group, 1 tensor, 6 elements
          group 0: Muon, 1 tensor, 6 elements
            parameter 0  (3, 2)
    """
    groups = opt.param_groups
    total = sum(p.numel() for g in groups for p in g["params"])
    tensors = sum(len(g["params"]) for g in groups)
    head = f"{type(opt).__name__}: {len(groups)} param group{'s' * (len(groups) != 1)}, "
    lines = [head + f"{tensors} tensor{'s' * (tensors != 1)}, {total:,} elements"]
    for i, g in enumerate(groups):
        routes = getattr(opt, "_routes", {})
        rule = f"{g['route']} ({routes[g['route']].name})" if "route" in g else type(opt).__name__
        n = len(g["params"])
        count = sum(p.numel() for p in g["params"])
        lines.append(f"  group {i}: {rule}, {n} tensor{'s' * (n != 1)}, {count:,} elements")
        names = g.get("param_names") or [f"parameter {j}" for j in range(n)]
        lines += [
            f"    {name}  {tuple(p.shape)}" for name, p in zip(names, g["params"], strict=True)
        ]
    return "\n".join(lines)
