r"""The usual Muon split, two ways: :func:`muon_defaults` for a model (names and module
types known), and :class:`MuonAdamW` for bare parameters (the registry's ``muon``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from torch import Tensor, nn

from descend._validation import InvalidParameterError
from descend.optim.flags import refuse_empty
from descend.optim.named_adam import AdamW
from descend.optim.named_muon import FlatMuon
from descend.optim.partition import Partitioned, Route, partition


def _head(model: nn.Module) -> list[str]:
    """The output head: the last module (in registration order) that holds a parameter of
    two or more dimensions, as a name pattern (``[]`` when there is none)."""
    last = None
    for name, module in model.named_modules():
        if any(p.ndim >= 2 for p in module.parameters(recurse=False)):
            last = name
    if last is None:
        return []
    return ["*"] if last == "" else [f"{last}.*"]


def muon_defaults(
    model: nn.Module,
    *,
    lr: float = 0.02,
    weight_decay: float = 0.01,
    momentum: float = 0.95,
    adamw_lr: float = 3e-4,
    adamw_betas: tuple[float, float] = (0.9, 0.95),
    adamw_eps: float = 1e-10,
    adamw_weight_decay: float = 0.01,
    head: str | Sequence[str] | None = None,
) -> Partitioned:
    r"""Muon for the hidden weight matrices of ``model``, AdamW for everything else.

    The rule, first match wins:

    1. parameters of ``nn.Embedding`` modules → ``adamw`` (an embedding row is a lookup,
       not a linear map: Muon's orthogonalization does not suit it);
    2. the output head → ``adamw``: ``head`` (name patterns), by default the parameters
       of the last module, in registration order, that holds a parameter of ≥ 2
       dimensions (the final ``nn.Linear`` of a classifier; a tied embedding/head weight
       is the embedding's, as ``named_parameters`` names it);
    3. other parameters of ≥ 2 dimensions → ``muon`` (hidden ``nn.Linear`` weights,
       attention projections, the first layer of an MLP, conv filters), run by
       :class:`~descend.optim.named_muon.FlatMuon`: a filter ``(out, in, kh, kw)`` is
       orthogonalized as the matrix ``(out, in·kh·kw)``, as in Keller Jordan's reference
       (``torch.optim.Muon`` and ``descend.Muon`` take matrices only);
    4. everything else → ``adamw``: biases, norm gains and shifts, scalars.

    Keller Jordan's CIFAR-10 recipe also gives the first conv layer to AdamW; pass
    ``head=["conv1.*", ...]``-style patterns (or build a :func:`descend.partition`) for that.

    Defaults are Keller Jordan's README (``MuonWithAuxAdam``): Muon ``lr=0.02``,
    ``momentum=0.95``, Nesterov, 5 Newton–Schulz steps, ``weight_decay=0.01``; AdamW
    ``lr=3e-4``, ``betas=(0.9, 0.95)``, ``eps=1e-10``, ``weight_decay=0.01``. The Muon
    learning rate is in his units (``adjust_lr_fn="original"``: spectral norm per step).

    Example:
        >>> import torch, descend
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
        ...                       nn.Linear(16, 3))
        >>> opt = descend.muon_defaults(model)
        >>> {g["route"]: g["param_names"] for g in opt.param_groups}["muon"]  # not the head
        ['0.weight', '2.weight']

    References:
        Keller Jordan, Muon README, https://github.com/KellerJordan/Muon (usage and
        hyperparameters). Liu et al., "Muon is Scalable for LLM Training", 2025,
        https://arxiv.org/abs/2502.16982 (learning-rate matching, ``MuonAdamW``).
    """
    heads = _head(model) if head is None else [head] if isinstance(head, str) else list(head)
    return partition(
        model,
        rules=[
            (nn.Embedding, "adamw"),
            *[(pattern, "adamw") for pattern in heads],
            (lambda name, p: p.ndim >= 2, "muon"),
        ],
        routes={
            "muon": Route(FlatMuon, lr=lr, weight_decay=weight_decay, momentum=momentum),
            "adamw": Route(
                AdamW,
                lr=adamw_lr,
                betas=adamw_betas,
                eps=adamw_eps,
                weight_decay=adamw_weight_decay,
            ),
        },
        default="adamw",
    )


class MuonAdamW(Partitioned):
    r"""Muon on every parameter of ≥ 2 dimensions (conv filters flattened, as in Keller
    Jordan's reference: :class:`~descend.optim.named_muon.FlatMuon`), AdamW on the rest,
    with one learning rate and one weight decay: Moonshot's recipe, the registry's ``muon``.

    Muon's update is rescaled to AdamW's RMS (``adjust_lr_fn="match_rms_adamw"``,
    :math:`0.2\sqrt{\max(A, B)}`), so one ``lr`` and ``weight_decay`` serve both routes
    (Liu et al. 2025 reuse AdamW's). The routing is by shape alone (bare parameters carry
    no names): output-layer weights are matrices and go to Muon too; for the README's split
    (head and embeddings to AdamW) use :func:`muon_defaults` on the model.

    Args:
        params: tensors, or ``(name, tensor)`` pairs (then the groups are named).
        lr, weight_decay: for both routes (defaults: the registry's ``adamw``).
        momentum, nesterov, ns_steps, adjust_lr_fn: Muon's (torch's defaults, but the
            AdamW-matched scale).
        betas, eps: AdamW's (torch's defaults).

    Example:
        >>> import torch, descend
        >>> w, b = torch.zeros(3, 2, requires_grad=True), torch.zeros(3, requires_grad=True)
        >>> opt = descend.MuonAdamW([w, b])
        >>> [(g["route"], len(g["params"])) for g in opt.param_groups]
        [('muon', 1), ('adamw', 1)]
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[tuple[str, Tensor]],
        lr: Any = 1e-3,
        weight_decay: float = 0.01,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = "match_rms_adamw",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        items = list(params)
        refuse_empty(type(self).__name__, items)
        if any(isinstance(p, dict) for p in items):
            raise InvalidParameterError(
                "MuonAdamW routes bare parameters by shape. Got param-group dicts; build the "
                "groups with descend.partition instead."
            )
        tensor = [p[1] if isinstance(p, tuple) else p for p in items]
        groups = [
            {"params": [p for p, t in zip(items, tensor, strict=True) if cond(t)], "route": r}
            for r, cond in (("muon", lambda t: t.ndim >= 2), ("adamw", lambda t: t.ndim < 2))
        ]
        routes = {
            "muon": Route(
                FlatMuon,
                momentum=momentum,
                nesterov=nesterov,
                ns_steps=ns_steps,
                adjust_lr_fn=adjust_lr_fn,
            ),
            "adamw": Route(AdamW, betas=betas, eps=eps),
        }
        groups = [g for g in groups if g["params"]]
        super().__init__(groups, routes, lr=lr, weight_decay=weight_decay)
