"""The compiled update of the fast path: one fused loop over a param group's flat buffers.

:func:`apply` (``params += update(grads)``) runs under ``torch.compile(dynamic=True)``
with the backend :func:`hoisted_inductor`, over one-element lists holding the flat
buffers of :class:`descend.optim.flat.FlatGroup`. Three rewrites keep the loop at memory
speed:

- 0-d arithmetic (Adam's bias corrections, a clipping coefficient) is computed once per
  step before the loop instead of per element (:func:`_split_scalars`);
- division by such a value becomes multiplication by its reciprocal
  (:func:`_reciprocal_divisions`);
- a global norm of the gradients is one BLAS dot product in that prologue
  (:func:`_norms`).

After the first step, :class:`CompiledStep` calls the compiled graph directly, without
dynamo's frame evaluation and guards (about 0.3 ms per step after the loop has streamed
the caches out), keyed on everything dynamo would have guarded for this function.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import operator
import os
import platform
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

logger = logging.getLogger("descend")

# The torch.compile backend of the fast path, ``"inductor"`` meaning :func:`hoisted_inductor`
# (tests swap in a compile-counting backend).
BACKEND: Any = "inductor"


# Hyperparameters that torch's schedulers change during training (every scheduler sets
# ``lr``; OneCycleLR and CyclicLR also cycle Adam's beta1 and SGD's/RMSprop's momentum).
# Inductor bakes Python floats used as scalars into the kernel, so these are passed as
# 0-d float64 tensors: graph inputs, never a reason to recompile. Other hyperparameters
# are constants of the compiled step; changing one recompiles once.
def dynamic_hyper(hp: dict[str, Any]) -> dict[str, Any]:
    """``hp`` with the scheduled hyperparameters as 0-d float64 tensors."""

    def scalar(v: Any) -> Tensor:
        return torch.tensor(float(v), dtype=torch.float64)

    out = dict(hp)
    if isinstance(out.get("lr"), int | float):
        out["lr"] = scalar(out["lr"])
    betas = out.get("betas")
    if isinstance(betas, tuple | list) and len(betas) == 2:
        out["betas"] = (scalar(betas[0]), betas[1])
    # momentum 0 stays a Python 0 so that ``trace`` keeps no buffer (a different algorithm).
    if isinstance(out.get("momentum"), int | float) and out["momentum"] != 0:
        out["momentum"] = scalar(out["momentum"])
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


# -- graph rewrites ------------------------------------------------------------------------
def _is_small(node: torch.fx.Node) -> bool:
    """Whether ``node`` is a tensor of one element with a static shape (0-d, or a stack of
    one 0-d value)."""
    value = node.meta.get("example_value")
    return (
        isinstance(value, Tensor)
        and all(isinstance(d, int) for d in value.shape)
        and math.prod(value.shape) == 1
    )


def _norms(tensors: list[Tensor]) -> list[Tensor]:
    """``torch._foreach_norm(tensors)``, each 2-norm as the square root of a dot product.

    On one long flat buffer BLAS's dot streams at memory speed (0.8 ms for 10.5M float32
    values on the 2-core machine, torch's norm kernel 1.6 ms) and, summing in blocks, is
    closer to the exact norm (relative error 6e-6 against 4e-4 for 10.5M N(0, 1) values).
    Squares overflow to ``inf`` exactly where the norm kernel's do.
    """
    out = []
    for t in tensors:
        if t.dtype in (torch.float32, torch.float64):
            flat = t.reshape(-1)
            out.append(torch.dot(flat, flat).sqrt())
        else:
            out.extend(torch._foreach_norm([t]))
    return out


def _flat_args(args: Any) -> list[Any]:
    return list(args) if isinstance(args, list | tuple) else [args]


_IN_PLACE_OPERATORS = {
    operator.iadd,
    operator.isub,
    operator.imul,
    operator.itruediv,
    operator.ipow,
}


def _in_place(node: torch.fx.Node) -> bool:
    if node.target in _IN_PLACE_OPERATORS:
        return True
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    return name.endswith("_")


def _split_scalars(
    gm: torch.fx.GraphModule,
) -> tuple[torch.fx.GraphModule, torch.fx.GraphModule, int]:
    """Split ``gm`` into a prologue of one-element computations and the main graph.

    The prologue holds every computation whose result has one element and whose inputs
    are 0-d graph inputs or prologue results, and the 2-norms of graph inputs
    (``torch._foreach_norm``, computed by :func:`_norms`) that no earlier in-place op
    has modified. Returns ``(prologue, main, k)``: ``prologue(*args)`` returns ``k``
    tensors and ``main(*args, *those)`` does the rest.
    """
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    hoisted: list[torch.fx.Node] = []
    scalar = {n for n in placeholders if _is_small(n)}
    mutated: set[torch.fx.Node] = set()
    for node in gm.graph.nodes:
        if node.op not in ("call_function", "call_method"):
            continue
        if _in_place(node):
            # In place: a norm of this input read after it must stay after it.
            mutated.update(a for a in _flat_args(node.args[0]) if isinstance(a, torch.fx.Node))
            continue
        if node.op != "call_function":
            continue
        if (
            node.target is torch._foreach_norm
            and len(node.args) == 1
            and not node.kwargs
            and all(
                isinstance(a, torch.fx.Node) and a.op == "placeholder" and a not in mutated
                for a in _flat_args(node.args[0])
            )
        ):
            scalar.add(node)
            hoisted.append(node)
            continue
        if (
            not _is_small(node)
            or not node.all_input_nodes
            or not all(i in scalar for i in node.all_input_nodes)
        ):
            continue  # reads a tensor that is not a 0-d input or a hoisted value
        scalar.add(node)
        hoisted.append(node)
    boundary = [n for n in hoisted if any(u not in scalar for u in n.users)]
    if any(not isinstance(n.meta.get("example_value"), Tensor) for n in boundary):
        return gm, gm, 0  # a list of norms read by the main loop itself: keep the graph whole

    pro = torch.fx.Graph()
    env = {p: pro.placeholder(p.name) for p in placeholders}
    for node in hoisted:
        env[node] = pro.node_copy(node, lambda n: env[n])
        if node.target is torch._foreach_norm:
            env[node].target = _norms
    pro.output(tuple(env[n] for n in boundary))

    main = torch.fx.Graph()
    env2: dict[torch.fx.Node, torch.fx.Node] = {}
    for p in placeholders:
        env2[p] = main.node_copy(p)
    for node in boundary:
        env2[node] = main.placeholder(f"hoisted_{node.name}")
        env2[node].meta = dict(node.meta)
    for node in gm.graph.nodes:
        if node.op != "placeholder" and node not in scalar:
            env2[node] = main.node_copy(node, lambda n: env2[n])
    return torch.fx.GraphModule(gm, pro), torch.fx.GraphModule(gm, main), len(boundary)


_DIVISIONS = {
    torch._foreach_div: torch._foreach_mul,
    torch._foreach_div_: torch._foreach_mul_,
    operator.truediv: operator.mul,
    torch.div: torch.mul,
}


def _reciprocal_divisions(gm: torch.fx.GraphModule) -> int:
    """Rewrite ``x / s`` as ``x * (1 / s)`` where ``s`` is 0-d and computed from 0-d inputs.

    A vector division costs several times a multiplication, and Adam divides every element
    by both bias corrections: with three divisions and a square root per element, the fused
    loop is bound by arithmetic, not memory (measured: 7.8 ms against the floor's 7.1 ms at
    10.5M parameters). The reciprocal is then a 0-d value the prologue computes once per
    step. Results differ from the eager path by at most one rounding per rewritten op.
    Returns the number of divisions rewritten.
    """
    scalar = {n for n in gm.graph.nodes if n.op == "placeholder" and _is_small(n)}
    for node in gm.graph.nodes:
        if (
            node.op == "call_function"
            and _is_small(node)
            and node.all_input_nodes
            and all(i in scalar for i in node.all_input_nodes)
        ):
            scalar.add(node)
    rewritten = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in _DIVISIONS or node.kwargs:
            continue
        if len(node.args) != 2:
            continue
        divisor = node.args[1]
        foreach = isinstance(divisor, list | tuple)
        divisors = list(divisor) if foreach else [divisor]
        if not divisors or not all(isinstance(d, torch.fx.Node) and d in scalar for d in divisors):
            continue
        if not foreach and _is_small(node):
            continue  # 0-d by 0-d: the prologue computes it once anyway
        with gm.graph.inserting_before(node):
            inverses = []
            for d in divisors:
                inv = gm.graph.call_function(torch.reciprocal, (d,))
                inv.meta = dict(d.meta)
                scalar.add(inv)
                inverses.append(inv)
        node.target = _DIVISIONS[node.target]
        node.args = (node.args[0], inverses if foreach else inverses[0])
        rewritten += 1
    if rewritten:
        gm.graph.lint()
        gm.recompile()
    return rewritten


@functools.cache
def _trusted_isa() -> Any:
    """AVX-512 (or AVX2) as the CPU reports it, for Inductor, or ``None`` (not x86, or
    ``ATEN_CPU_CAPABILITY`` chooses)."""
    if platform.machine() not in ("x86_64", "AMD64") or os.getenv("ATEN_CPU_CAPABILITY"):
        return None
    from torch._inductor import cpu_vec_isa

    if torch.cpu._is_avx512_supported():
        base: Any = cpu_vec_isa.VecAVX512
    elif torch.cpu._is_avx2_supported():
        base = cpu_vec_isa.VecAVX2
    else:
        return None

    class Trusted(base):  # type: ignore[misc, valid-type]
        # No probe build: the CPU reports the ISA, and gcc has known its flags for a decade.
        def __bool__(self) -> bool:
            return True

        __hash__ = cpu_vec_isa.VecISA.__hash__

    return Trusted()


@contextlib.contextmanager
def _plain_vector_isa() -> Iterator[None]:
    """While compiling, let Inductor choose only AVX-512 (or AVX2), without probe builds.

    Inductor's ISA list costs four probe builds on a cold cache (avx512_bf16, vnni, amx,
    amx_fp16; ~2 s of a 5 s first step), and none of those extensions speeds up a float
    pointwise loop: the kernel is the same 16-wide AVX-512 code.
    """
    trusted = _trusted_isa()
    if trusted is None:
        yield
        return
    from torch._inductor import cpu_vec_isa

    original = cpu_vec_isa.valid_vec_isa_list
    cpu_vec_isa.valid_vec_isa_list = lambda: [trusted]
    try:
        yield
    finally:
        cpu_vec_isa.valid_vec_isa_list = original


@contextlib.contextmanager
def _tensorify_off() -> Iterator[None]:
    """Turn off AOTAutograd's pass that turns float symbols into tensors, while compiling.

    Fake tensors give every 0-d float64 input (``lr``, ``betas[0]``, the step) a symbol for
    the value ``.item()`` would return. Nothing reads those symbols, but the pass
    specializes each one it cannot convert and restarts dynamo, which traces the same
    graph again (~0.25 s of a 5 s cold first step). Dynamo runs with
    ``specialize_float=True`` (:class:`CompiledStep`), so no other float symbols exist for
    the pass to convert. An environment variable is its only switch; it is set only for
    the duration of this backend's compile.
    """
    old = os.environ.get("TENSORIFY_PYTHON_SCALARS")
    os.environ["TENSORIFY_PYTHON_SCALARS"] = "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ["TENSORIFY_PYTHON_SCALARS"]
        else:
            os.environ["TENSORIFY_PYTHON_SCALARS"] = old


def hoisted_inductor(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
    """Inductor, with the step's 0-d arithmetic computed once per call instead of per element.

    Inductor inlines 0-d computations into the loops that read them, so Adam's bias
    corrections :math:`1 - \\beta_1^t` and :math:`\\sqrt{1 - \\beta_2^t}` (from tensor
    inputs, which keep a changing step from recompiling) would cost two ``pow`` calls per
    16 elements: measured, that doubles a 10M-parameter Adam step. The 0-d part runs first,
    as a small FX graph in eager mode; its results are inputs of the compiled main loop.
    """
    from torch._inductor.compile_fx import compile_fx as inductor_compile
    from torch._subclasses.fake_tensor import FakeTensor, unset_fake_temporarily

    def compile_fx(graph: torch.fx.GraphModule, inputs: list[Any]) -> Callable[..., Any]:
        # Inductor probes each vector ISA the CPU reports by building and loading a test
        # library in a subprocess (~0.5 s each, ~10 s of a 13 s cold first step on the
        # 2-core machine); see _plain_vector_isa. A compiler that cannot build for the ISA
        # fails the compile, and the optimizer runs eagerly (with a warning). A
        # precompiled header pays only from the second kernel on: building it made the
        # first step on a fresh machine 8.5 s; without it every cold compile takes ~4 s.
        with (
            torch._inductor.config.patch(
                {"cpp.vec_isa_ok": True, "cpp_cache_precompile_headers": False}
            ),
            _plain_vector_isa(),
            _tensorify_off(),
        ):
            return inductor_compile(graph, inputs)

    _reciprocal_divisions(gm)
    prologue, main, k = _split_scalars(gm)
    if k == 0:
        return compile_fx(gm, example_inputs)
    fake = next((x.fake_mode for x in example_inputs if isinstance(x, FakeTensor)), None)
    if fake is not None:
        with fake:
            extra = list(prologue(*example_inputs))
    else:  # real example inputs: run the prologue for real, outside the tracing fake mode
        with unset_fake_temporarily():
            extra = list(prologue(*example_inputs))
    compiled = compile_fx(main, [*example_inputs, *extra])

    def run(*args: Any) -> Any:
        return compiled(*args, *prologue(*args))

    return run


# -- calling the compiled graph -------------------------------------------------------------
# How to fetch one graph input from ``apply``'s arguments: the argument's name, the keys and
# indices below it, the dimension when the input is a size, and whether it is a Python
# number dynamo passes as a 0-d tensor.
Path = tuple[str, tuple[Any, ...], int | None, bool]


def _input_paths(gm: torch.fx.GraphModule) -> list[Path] | None:
    """Where each graph input comes from, read off dynamo's sources; ``None`` if any input
    is something else (a closure cell, a global, a stride) or the graph returns values
    (a transform that replaces state instead of updating it in place)."""
    if _flat_args(gm.graph.output_node().args[0]):
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


def _fetch(path: Path, roots: dict[str, Any]) -> Any:
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

    def __call__(
        self, grads: list[Tensor], state: dict[str, list[Tensor]], params: list[Tensor], hp: Any
    ) -> None:
        try:
            key = (
                torch.is_grad_enabled(),
                torch.get_default_dtype(),
                _tag(grads),
                _tag(state),
                _tag(params),
                _tag(hp),
            )
        except TypeError:
            key = None
        direct = self._direct.get(key) if key is not None else None
        if direct is not None:
            compiled, paths = direct
            roots = {"grads": grads, "state": state, "params": params, "hp": hp}
            compiled(*[_fetch(p, roots) for p in paths])
            return
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
    grad: Tensor,
    state: dict[str, Tensor],
    param: Tensor,
    hp: dict[str, Any],
) -> None:
    """One fused step over flat buffers; the first (compiling) call is timed and logged."""
    step = compiled_step(update, BACKEND)
    first = name not in _LOGGED
    start = time.perf_counter()
    lists = {k: [v] for k, v in state.items()}
    step([grad], lists, [param], hp)
    for k, values in lists.items():
        if (
            values[0] is not state[k]
        ):  # a transform that replaces its state (the protocol allows it)
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
            param.numel(),
            seconds,
        )
