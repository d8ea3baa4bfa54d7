"""The compiled update of the fast path: one fused loop over 1-d buffers of any length.

:func:`apply` (``params += update(grads)``) runs under ``torch.compile(dynamic=True)``
with the backend :func:`descend.optim.backend.hoisted_inductor`, over one-element lists
holding the flat tensors of :class:`descend.optim.flat.FlatGroup`: one call per piece
(a large parameter) and one for the tail.

After the first step, :class:`CompiledStep` calls the compiled graph directly, without
dynamo's frame evaluation and guards (about 0.3 ms per step after the loop has streamed
the caches out), keyed on everything dynamo would have guarded for this function; the
0-d prologue (bias corrections) runs once per step for all pieces. Steady steps then run
on a plan prepared from that graph (:mod:`descend.optim.plan`).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from descend.optim.backend import Hoisted, as_list, hoisted_inductor

logger = logging.getLogger("descend")

# The key under which a chain that reads the gradients' joint norm finds it
# (:attr:`descend.optim.Transform.grad_norm`).
GRAD_NORM = "grad_norm"

# The torch.compile backend of the fast path, ``"inductor"`` meaning :func:`hoisted_inductor`
# (tests swap in a compile-counting backend).
BACKEND: Any = "inductor"


# Hyperparameters that torch's schedulers change during training (every scheduler sets
# ``lr``; OneCycleLR and CyclicLR also cycle Adam's beta1 and SGD's/RMSprop's momentum).
# Inductor bakes Python floats used as scalars into the kernel, so these are passed as
# 0-d float64 tensors: graph inputs, never a reason to recompile. Other hyperparameters
# are constants of the compiled step; changing one recompiles once.
def dynamic_entries(hp: dict[str, Any]) -> list[tuple[str, int | None]]:
    """The scheduled hyperparameters of ``hp`` as ``(key, index)``: ``hp[key]``, or
    ``hp[key][index]``, is passed to the compiled step as a 0-d tensor."""
    out: list[tuple[str, int | None]] = []
    if isinstance(hp.get("lr"), int | float):
        out.append(("lr", None))
    betas = hp.get("betas")
    if isinstance(betas, tuple | list) and len(betas) == 2:
        out.append(("betas", 0))
    # momentum 0 stays a Python 0 so that ``trace`` keeps no buffer (a different algorithm).
    if isinstance(hp.get("momentum"), int | float) and hp["momentum"] != 0:
        out.append(("momentum", None))
    # The gradients' joint norm, new every step, for a chain that clips by it
    # (Transform.grad_norm): the optimizer computes it over all of a step's calls.
    if isinstance(hp.get(GRAD_NORM), float):
        out.append((GRAD_NORM, None))
    return out


def dynamic_hyper(
    hp: dict[str, Any], scalar: Callable[[float], Tensor] | None = None
) -> dict[str, Any]:
    """``hp`` with the scheduled hyperparameters as 0-d float64 tensors (made by
    ``scalar`` from each value when given)."""
    if scalar is None:
        scalar = functools.partial(torch.tensor, dtype=torch.float64)
    out = dict(hp)
    for key, index in dynamic_entries(hp):
        if index is None:
            out[key] = scalar(float(out[key]))
        else:
            values = list(out[key])
            values[index] = scalar(float(values[index]))
            out[key] = tuple(values)
    return out


def apply(
    update: Callable[..., list[Tensor]],
    grads: list[Tensor],
    state: dict[str, list[Any]],
    params: list[Tensor],
    hp: dict[str, Any],
) -> None:
    # One function for both execution modes (the eager path calls it directly), so eager
    # and compiled steps run the same source: params += update(grads).
    torch._foreach_add_(params, update(grads, state, params, hp))


# -- calling the compiled graph -------------------------------------------------------------
# How to fetch one graph input from ``apply``'s arguments: the argument's name, the keys and
# indices below it, the dimension when the input is a size, and whether it is a Python
# number dynamo passes as a 0-d tensor.
Path = tuple[str, tuple[Any, ...], int | None, bool]
# One call's arguments: one-element lists of flat gradient, state and parameter tensors.
Piece = tuple[list[Tensor], dict[str, list[Tensor]], list[Tensor]]


def _input_paths(gm: torch.fx.GraphModule) -> list[Path] | None:
    """Where each graph input comes from, read off dynamo's sources; ``None`` if any input
    is something else (a closure cell, a global, a stride) or the graph returns values
    (a transform that replaces state instead of updating it in place)."""
    if as_list(gm.graph.output_node().args[0]):
        return None
    paths: list[Path] = []
    for node in gm.graph.nodes:
        if node.op != "placeholder":
            continue
        graph_arg = node.meta.get("grapharg")
        source = getattr(graph_arg, "source", None)
        keys: list[Any] = []
        dim = None
        if type(source).__name__ == "TensorPropertySource":
            if getattr(source.prop, "name", None) != "SIZE":
                return None
            dim, source = source.idx, source.base
        while type(source).__name__ in ("GetItemSource", "DictGetItemSource"):
            if not isinstance(source.index, int | str) or getattr(source, "index_is_slice", False):
                return None
            keys.append(source.index)
            source = source.base
        if type(source).__name__ != "LocalSource":
            return None
        as_tensor = bool(getattr(graph_arg, "pass_arg_as_tensor", False))
        paths.append((source.local_name, tuple(reversed(keys)), dim, as_tensor))
    return paths


def fetch(path: Path, roots: dict[str, Any]) -> Any:
    root, keys, dim, as_tensor = path
    value = roots[root]
    for key in keys:
        value = value[key]
    if dim is not None:
        return value.size(dim)
    if as_tensor:  # as dynamo passes a Python float it traced as a graph input
        return torch.tensor(value, dtype=torch.float64 if isinstance(value, float) else None)
    return value


def _tag(value: Any) -> Any:
    """What dynamo's guards see of one argument: a tensor's dtype, device, rank and
    whether a size is 0 or 1 (specialized), any other value itself with its type."""
    if isinstance(value, Tensor):
        small = min(value.numel(), 2) if value.dim() else None
        return ("T", value.dtype, value.device, value.dim(), value.requires_grad, small)
    if isinstance(value, dict):
        return ("D", tuple((k, _tag(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return (type(value), tuple(_tag(v) for v in value))
    if value is None or isinstance(value, bool | int | float | str):
        return (type(value), value)
    raise TypeError(type(value).__name__)


class CompiledStep:
    """:func:`apply` compiled for one chain, called directly once dynamo has chosen a graph.

    The first call with a new combination of argument types and constant hyperparameters
    goes through dynamo (which compiles, or picks a graph it has), and the graph it runs is
    remembered under that combination; later calls fetch the graph's inputs from the
    arguments and call it. A call that ran several graphs, or a graph that returns values
    or reads inputs other than the arguments, always goes through dynamo.
    """

    # Remembered combinations; a hyperparameter that changes every step (e.g. a scheduled
    # weight decay) would otherwise add one per step.
    MAX_DIRECT = 16

    def __init__(self, update: Callable[..., list[Tensor]], backend: Any) -> None:
        # Dynamo keeps compiled graphs (and its limit of 8 recompiles) per code object, so
        # every chain gets a copy of ``apply``'s code: an AdamW and an SGD in one process
        # must not share that limit. ``dynamic=True`` makes sizes symbolic: one graph for
        # groups of any size.
        name = f"_apply_{getattr(update, '__qualname__', 'update')}"
        name = name.replace(".", "_").replace("<", "").replace(">", "")
        code = apply.__code__.replace(co_name=name, co_qualname=name)
        fn = type(apply)(code, apply.__globals__, name)
        self.update = update
        self._backend = hoisted_inductor if backend == "inductor" else backend
        self._fn = torch.compile(fn, backend=self._capture, dynamic=True)
        self._direct: dict[Any, tuple[Callable[..., Any], list[Path]]] = {}
        self._ran: list[tuple[Callable[..., Any], list[Path] | None]] = []

    def _capture(self, gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
        paths = _input_paths(gm)
        compiled = self._backend(gm, example_inputs)
        entry = (compiled, paths)
        ran = self._ran

        def run(*args: Any) -> Any:
            ran.append(entry)
            return compiled(*args)

        return run

    @staticmethod
    def _key(grads: list[Tensor], state: Any, params: list[Tensor], hp: Any) -> Any:
        try:
            return (
                torch.is_grad_enabled(),
                torch.get_default_dtype(),
                _tag(grads),
                _tag(state),
                _tag(params),
                _tag(hp),
            )
        except TypeError:
            return None

    def direct(self, piece: Piece, hp: Any) -> tuple[Callable[..., Any], list[Path]] | None:
        """The graph (and where its inputs come from) that a call with these arguments
        runs without dynamo, once one has gone through it; else ``None``."""
        key = self._key(*piece, hp)
        return self._direct.get(key) if key is not None else None

    def __call__(
        self, grads: list[Tensor], state: dict[str, list[Tensor]], params: list[Tensor], hp: Any
    ) -> None:
        key = self._key(grads, state, params, hp)
        direct = self._direct.get(key) if key is not None else None
        if direct is not None:
            compiled, paths = direct
            roots = {"grads": grads, "state": state, "params": params, "hp": hp}
            compiled(*[fetch(p, roots) for p in paths])
            return
        self._through_dynamo(grads, state, params, hp, key)

    def run(self, pieces: list[Piece], hp: Any) -> None:
        """``self(grads, state, params, hp)`` for each piece of one param group, with the
        0-d prologue computed once for all of them when it reads only 0-d inputs.

        Pieces hold 1-d tensors of one dtype and device per role (what
        :class:`descend.optim.flat.FlatGroup` gives), so dynamo would guard them alike
        except for a length below 2; such a piece is called on its own. Only for an
        elementwise chain, or one given the group's gradient norm: each piece is updated
        as if it were the whole group.
        """
        first = pieces[0]
        key = self._key(*first, hp)
        direct = self._direct.get(key) if key is not None else None
        rest = pieces
        if direct is None:
            self._through_dynamo(*first, hp, key)
            direct = self._direct.get(key) if key is not None else None
            rest = pieces[1:]
        if direct is None:
            for piece in rest:
                self(*piece, hp)
            return
        compiled, paths = direct
        hoisted = compiled if isinstance(compiled, Hoisted) else None
        shared = hoisted if hoisted is not None and hoisted.per_step else None
        small = min(first[2][0].numel(), 2)
        extra = None
        # Hyperparameters are the same for every piece: fetched once.
        common = {"hp": hp}
        args = [fetch(p, common) if p[0] == "hp" else None for p in paths]
        own = [i for i, p in enumerate(paths) if p[0] != "hp"]
        for grads, state, params in rest:
            if min(params[0].numel(), 2) != small:
                self(grads, state, params, hp)
                continue
            roots = {"grads": grads, "state": state, "params": params}
            for i in own:
                args[i] = fetch(paths[i], roots)
            if hoisted is not None and shared is None:
                # A prologue that reads this call's tensors (a gradient norm): per call.
                hoisted.run_main(args, hoisted.prologue(*args))
                continue
            if shared is None:
                compiled(*args)
                continue
            if extra is None:
                extra = shared.prologue(*args)
            shared.run_main(args, extra)

    def _through_dynamo(
        self,
        grads: list[Tensor],
        state: dict[str, list[Tensor]],
        params: list[Tensor],
        hp: Any,
        key: Any,
    ) -> None:
        self._ran.clear()
        # Python floats (eps, betas[1]) become constants of the graph on the first trace
        # instead of after a restart of the analysis (see _tensorify_off).
        with torch._dynamo.config.patch(specialize_float=True):
            self._fn(self.update, grads, state, params, hp)
        if key is not None and len(self._ran) == 1 and self._ran[0][1] is not None:
            if len(self._direct) >= self.MAX_DIRECT:
                self._direct.clear()
            self._direct[key] = self._ran[0]  # type: ignore[assignment]
        self._ran.clear()


@functools.cache
def compiled_step(update: Callable[..., list[Tensor]], backend: Any) -> CompiledStep:
    """The one :class:`CompiledStep` of a chain (and backend) in this process."""
    return CompiledStep(update, backend)


_LOGGED: set[str] = set()


def run_compiled(
    name: str,
    update: Callable[..., list[Tensor]],
    buffers: list[tuple[Tensor, dict[str, Tensor], Tensor]],
    hp: dict[str, Any],
) -> None:
    """One fused step over a param group's flat ``(grad, state, param)`` buffers (one
    entry, or one per piece of an elementwise chain); the first (compiling) call is timed
    and logged."""
    step = compiled_step(update, BACKEND)
    first = name not in _LOGGED
    start = time.perf_counter()
    pieces = [([g], {k: [v] for k, v in st.items()}, [p]) for g, st, p in buffers]
    step.run(pieces, hp)
    for (_, state, _), (_, lists, _) in zip(buffers, pieces, strict=True):
        for k, values in lists.items():
            # A transform that replaces its state (the protocol allows it).
            if values[0] is not state[k]:
                state[k].copy_(values[0])
    if first:
        _LOGGED.add(name)
        seconds = time.perf_counter() - start
        level = logging.WARNING if seconds > 1.0 else logging.INFO
        logger.log(
            level,
            "descend: the first step of %s compiled its fused update for %d parameters "
            "in %.1f s (once per process; compile=False, or fused=False for a named optimizer, runs eagerly).",
            name,
            sum(p.numel() for _, _, p in buffers),
            seconds,
        )
