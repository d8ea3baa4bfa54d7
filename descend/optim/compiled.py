"""compile=True: each optimizer's own compiled copy of the step, and ``lr`` as a 0-d
tensor so that a schedule is a graph input rather than a constant to recompile for.

Both are caches kept in the optimizer's ``__dict__`` and left out of its pickled state
(a compiled function belongs to one process).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from descend.optim.apply import apply_updates


def compiled_step(cache: dict[str, Any]) -> Callable[..., None]:
    """``apply_updates`` under ``torch.compile``, built on first use."""
    compiled = cache.get("_compiled")
    if compiled is None:
        # Its own copy of the function: dynamo keeps compiled graphs, and counts recompiles
        # against its limit, per code object; optimizers sharing one would exhaust it (8)
        # after a few, and run eagerly from then on.
        code = apply_updates.__code__.replace(co_name=f"apply_updates_{id(cache):x}")
        own = types.FunctionType(code, apply_updates.__globals__, code.co_name)
        compiled = cache["_compiled"] = torch.compile(own)
    return compiled


def lr_tensor(cache: dict[str, Any], group: dict[str, Any]) -> Tensor:
    """The group's ``lr`` in a 0-d tensor of its own, refilled each step."""
    lrs = cache.setdefault("_lr_tensors", {})
    t = lrs.get(id(group))
    if t is None:  # in the parameters' dtype, so that kernels compute in theirs
        t = lrs[id(group)] = torch.tensor(0.0, dtype=group["params"][0].dtype.to_real())
    t.fill_(float(group["lr"]))
    return t
