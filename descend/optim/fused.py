"""torch's fused kernels for the named optimizers whose algorithm they compute exactly.

``torch.optim``'s fused implementations of SGD, Adagrad, Adam and AdamW read and write each
parameter's tensors once per step (one pass at memory bandwidth). A named descend optimizer
runs them through torch's functional API (``torch.optim.adam.adam`` and its siblings, the
calls ``torch.optim`` makes itself) when ``fused=True``, and by default (``fused=None``,
``foreach=None``) whenever torch has a kernel for the group's configuration and devices.
Every other case, and every composed chain, runs the transforms: the update rule the
kernel is tested against (``tests/optim/test_parity.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim.adagrad import adagrad as _adagrad
from torch.optim.adam import adam as _adam
from torch.optim.sgd import sgd as _sgd

Runner = Callable[[dict[str, Any], list[Tensor], list[Tensor], list[dict[str, Any]]], None]
# Where torch builds fused kernels (``fused=True`` elsewhere is refused, in torch's words).
FUSED_DEVICES = ("cpu", "cuda", "mps", "xpu", "hpu", "mtia")
# Where descend takes them by default: the devices this project measures them on.
DEFAULT_DEVICES = ("cpu", "cuda")


def check_devices(params: list[Tensor], devices: tuple[str, ...]) -> None:
    """torch's refusal of ``fused=True`` for a parameter no fused kernel can update."""
    for p in params:
        if p.device.type not in devices or not torch.is_floating_point(p):
            raise RuntimeError(
                "`fused=True` requires all the params to be floating point Tensors of "
                f"supported devices: {list(devices)} but {p.dtype} and {p.device.type}"
            )


def eligible(params: list[Tensor], devices: tuple[str, ...]) -> bool:
    """Whether a fused kernel computes this step by default: dense float32 or float64
    tensors, on a device it supports. Not tensor subclasses: DTensor has no sharding rule
    for some fused kernels (SGD's), and its shards step fine on the transforms. Not half
    precision: the kernels' bfloat16 paths are not the ones tested against the transforms
    here (``fused=True`` still runs them)."""
    # Once per step over every parameter: each attribute read once (a Python loop, not
    # all() over a generator, which costs a frame per element).
    for p in params:
        grad = p.grad
        if type(p) not in _PLAIN or type(grad) is not Tensor or grad.is_sparse:
            return False
        dtype = p.dtype
        if dtype not in _FLOATS or grad.dtype != dtype or p.device.type not in devices:
            return False
    return True


_PLAIN = (Tensor, torch.nn.Parameter)
_FLOATS = (torch.float32, torch.float64)


def runs(
    kernel: Any,
    devices: tuple[str, ...],
    group: dict[str, Any],
    params: list[Tensor],
    compiled: bool,
) -> bool:
    """Whether torch's fused ``kernel`` (``None``: none) computes this group's step."""
    if kernel is None or group.get("fused") is False:
        return False
    if group.get("fused"):
        check_devices(params, devices)
        return True
    if group.get("foreach") is not None or group.get("differentiable") or compiled:
        return False
    default = tuple(d for d in DEFAULT_DEVICES if d in devices)
    return not torch.compiler.is_compiling() and eligible(params, default)


def fused_step_dtype(state: dict[str, Any], p: Tensor) -> None:
    """torch's fused kernels count steps in float32 on the parameter's device; a state dict
    from a for-loop run may hold them otherwise."""
    step = state["step"]
    if step.dtype != torch.float32 or step.device != p.device:
        state["step"] = step.to(dtype=torch.float32, device=p.device)


def _scaler(opt: Any) -> dict[str, Any]:
    # torch.amp.GradScaler hands fused optimizers its scale and inf flag as attributes.
    return {
        "grad_scale": getattr(opt, "grad_scale", None),
        "found_inf": getattr(opt, "found_inf", None),
    }


def sgd(
    opt: Any,
    group: dict[str, Any],
    params: list[Tensor],
    grads: list[Tensor],
    states: list[dict[str, Any]],
) -> None:
    momentum = group["momentum"] != 0
    buffers = [st.get("momentum_buffer") for st in states] if momentum else []
    # torch's kernel takes one first-step flag for all its tensors: a parameter whose first
    # gradient arrives after the others' (a layer unfrozen, a branch unused) goes alone.
    new = [i for i, b in enumerate(buffers) if b is None]
    parts = (
        [new, [i for i in range(len(params)) if i not in set(new)]] if new else [range(len(params))]
    )
    for part in parts:
        if not part:
            continue
        picked = [buffers[i] for i in part] if momentum else []
        _sgd(
            [params[i] for i in part],
            [grads[i] for i in part],
            picked,
            fused=True,
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            lr=group["lr"],
            dampening=group["dampening"],
            nesterov=group["nesterov"],
            maximize=group["maximize"],
            **_scaler(opt),
        )
        for i, buf in zip(part, picked, strict=False):
            states[i]["momentum_buffer"] = buf


def adagrad(
    opt: Any,
    group: dict[str, Any],
    params: list[Tensor],
    grads: list[Tensor],
    states: list[dict[str, Any]],
) -> None:
    for st, p in zip(states, params, strict=True):
        fused_step_dtype(st, p)
    _adagrad(
        params,
        grads,
        [st["sum"] for st in states],
        [st["step"] for st in states],
        fused=True,
        lr=group["lr"],
        weight_decay=group["weight_decay"],
        lr_decay=group["lr_decay"],
        eps=group["eps"],
        maximize=group["maximize"],
        **_scaler(opt),
    )


def adam(
    opt: Any,
    group: dict[str, Any],
    params: list[Tensor],
    grads: list[Tensor],
    states: list[dict[str, Any]],
) -> None:
    for st, p in zip(states, params, strict=True):
        fused_step_dtype(st, p)
    beta1, beta2 = group["betas"]
    _adam(
        params,
        grads,
        [st["exp_avg"] for st in states],
        [st["exp_avg_sq"] for st in states],
        [st["max_exp_avg_sq"] for st in states] if group["amsgrad"] else [],
        [st["step"] for st in states],
        fused=True,
        decoupled_weight_decay=group["decoupled_weight_decay"],
        amsgrad=group["amsgrad"],
        beta1=beta1,
        beta2=beta2,
        lr=group["lr"],
        weight_decay=group["weight_decay"],
        eps=group["eps"],
        maximize=group["maximize"],
        **_scaler(opt),
    )
