"""The ``torch.compile`` backend of the fast path: Inductor, with the step's 0-d work hoisted.

:func:`hoisted_inductor` rewrites the graph dynamo traced from
:func:`descend.optim.compiled.apply` before Inductor compiles it:

- 0-d arithmetic (Adam's bias corrections, a clipping coefficient) is computed once per
  step before the loop instead of per element (:func:`_split_scalars`);
- division by such a value becomes multiplication by its reciprocal
  (:func:`_reciprocal_divisions`);
- a global norm of the gradients is one BLAS dot product in that prologue
  (:func:`norms`);

and compiles with settings that keep a cold compile near 3 s (:func:`_plain_vector_isa`,
:func:`_tensorify_off`, no precompiled header, a slim C++ prelude from
:mod:`descend.optim.kernel_prefix`), each C++ kernel reading its 0-d inputs once
(:mod:`descend.optim.kernel_source`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
import os
import platform
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from descend.optim.kernel_source import generated_code_key, kernels_adjusted


def _is_small(node: torch.fx.Node) -> bool:
    """Whether ``node`` is a tensor of one element with a static shape (0-d, or a stack of
    one 0-d value)."""
    value = node.meta.get("example_value")
    return (
        isinstance(value, Tensor)
        and all(isinstance(d, int) for d in value.shape)
        and math.prod(value.shape) == 1
    )


def norms(tensors: list[Tensor]) -> list[Tensor]:
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


def joint_norm(tensors: list[Tensor]) -> float:
    r"""The 2-norm of ``tensors`` taken together, :math:`\sqrt{\sum_i \lVert t_i\rVert_2^2}`,
    from :func:`norms`, summed in float64 (``inf`` or ``nan`` where a norm is)."""
    return math.sqrt(math.fsum(float(n) ** 2 for n in norms(tensors)))


def as_list(args: Any) -> list[Any]:
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

    The prologue holds every computation (function or method) whose result has one
    element and whose inputs are 0-d graph inputs or prologue results, and the 2-norms of
    graph inputs (``torch._foreach_norm``, computed by :func:`norms`) that no earlier
    in-place op has modified. Returns ``(prologue, main, k)``: ``prologue(*args)``
    returns ``k`` tensors and ``main(*args, *those)`` does the rest.

    A floating result of another dtype than float64 (a float32 gradient norm) leaves the
    prologue as float64 and is converted back where the main graph reads it, without
    rounding: a float64 input is one the kernel can read once, before its loop
    (:func:`descend.optim.kernel_source.hoist_scalar_loads`); a float32 one it would read,
    and compute from, for every 16 elements of a float32 model.
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
            mutated.update(a for a in as_list(node.args[0]) if isinstance(a, torch.fx.Node))
            continue
        if (
            node.op == "call_function"
            and node.target is torch._foreach_norm
            and len(node.args) == 1
            and not node.kwargs
            and all(
                isinstance(a, torch.fx.Node) and a.op == "placeholder" and a not in mutated
                for a in as_list(node.args[0])
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
            env[node].target = norms
    narrow = [_narrow_float(n) for n in boundary]
    outputs = []
    for node, dtype in zip(boundary, narrow, strict=True):
        if dtype is not None:
            cast = pro.call_method("to", (env[node], torch.float64))
            cast.meta["example_value"] = torch.empty((), dtype=torch.float64)
            outputs.append(cast)
        else:
            outputs.append(env[node])
    pro.output(tuple(outputs))

    main = torch.fx.Graph()
    env2: dict[torch.fx.Node, torch.fx.Node] = {}
    for p in placeholders:
        env2[p] = main.node_copy(p)
    for node, dtype in zip(boundary, narrow, strict=True):
        env2[node] = main.placeholder(f"hoisted_{node.name}")
        if dtype is None:
            env2[node].meta = dict(node.meta)
    for node, dtype in zip(boundary, narrow, strict=True):
        if dtype is not None:
            env2[node] = main.call_method("to", (env2[node], dtype))
    for node in gm.graph.nodes:
        if node.op != "placeholder" and node not in scalar:
            env2[node] = main.node_copy(node, lambda n: env2[n])
    return torch.fx.GraphModule(gm, pro), torch.fx.GraphModule(gm, main), len(boundary)


def _narrow_float(node: torch.fx.Node) -> torch.dtype | None:
    """The dtype of a floating 0-d value narrower than float64, else ``None``."""
    value = node.meta.get("example_value")
    dtype = value.dtype if isinstance(value, Tensor) else None
    return (
        dtype if dtype is not None and dtype.is_floating_point and dtype != torch.float64 else None
    )


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
        return trusted(cpu_vec_isa.VecAVX512)
    if torch.cpu._is_avx2_supported():
        return trusted(cpu_vec_isa.VecAVX2)
    return None


def trusted(base: type) -> Any:
    """Inductor's vector ISA ``base`` (``VecAVX512``, ``VecAVX2``), taken as valid
    without its probe build."""
    from torch._inductor import cpu_vec_isa

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


def _cell(fn: Any, name: str) -> Any:
    return fn.__closure__[fn.__code__.co_freevars.index(name)].cell_contents


def _inductor_entry(compiled: Callable[..., Any]) -> Callable[[list[Any]], Any] | None:
    """The generated module's own ``call(args)`` inside what ``compile_fx`` returns, or
    ``None`` where this torch's wrappers are laid out differently.

    AOTAutograd's forward holds the compiled function; a fresh compile and one loaded
    from the caches wrap Inductor's ``CompiledFxGraph`` in one or two more layers.
    """
    try:
        node = _cell(_cell(compiled, "fn"), "compiled_fn")
        for _ in range(4):
            if type(node).__name__ == "CompiledFxGraph":
                entry = node.current_callable
                return entry if callable(entry) else None
            inner = getattr(node, "compiled_fn", None)
            node = inner if inner is not None else _cell(node, "_inner_compiled_fn")
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
    return None


def _checked_entry(main: Callable[..., Any], args: list[Any]) -> Callable[[list[Any]], Any] | None:
    """Inductor's entry point of ``main`` if calling it does what calling ``main`` does.

    ``main`` wraps the generated code in AOTAutograd's runtime wrapper, which costs
    ~45 us per call once a step has streamed the caches out (measured: 11 calls per step
    at 10.5M parameters, 0.5 ms). For an update whose input mutations Inductor compiled
    in place and that returns nothing, the wrapper only bumps version counters (the
    optimizer does that). That is checked once, on copies two elements long: both calls
    must leave the same values and the entry must return nothing. ``args`` are 1-d
    tensors of one length, 0-d tensors, that length and other integers (a hyperparameter
    such as SGD's ``dampening=0`` is a symbolic integer of the graph, passed as it is);
    anything else gets ``None``. (The entry reads lengths off its tensors too, not only
    from the length argument: every caller passes 1-d tensors of the length.)
    """
    entry = _inductor_entry(main)
    expected, got = two_element_copies(args), two_element_copies(args)
    if entry is None or expected is None or got is None:
        return None
    main(*expected)
    returned = entry(list(got))
    return entry if same_values(expected, got) and not returned else None


def two_element_copies(args: list[Any]) -> list[Any] | None:
    """Arguments like ``args`` (1-d tensors of one length, 0-d tensors, that length and
    other integers), with every 1-d tensor two elements long and the length 2: the same
    values on every call, to check that two ways of running a compiled loop agree.
    ``None`` for any other ``args``."""
    lengths = {a.numel() for a in args if isinstance(a, Tensor) and a.dim() == 1}
    if len(lengths) != 1:
        return None
    (n,) = lengths
    if any(
        (isinstance(a, Tensor) and a.dim() > 1) or (not isinstance(a, Tensor | int)) for a in args
    ):
        return None
    g = torch.Generator().manual_seed(0)
    out: list[Any] = []
    for a in args:
        if not isinstance(a, Tensor):
            out.append(2 if a == n else a)
        elif a.dim() == 1:
            out.append((torch.rand(2, generator=g, dtype=torch.float64) + 0.5).to(a.dtype))
        else:
            out.append(a.clone())
    return out


def same_values(a: list[Any], b: list[Any]) -> bool:
    """Whether two argument lists from :func:`two_element_copies` hold equal tensors."""
    return all(not isinstance(x, Tensor) or torch.equal(x, y) for x, y in zip(a, b, strict=True))


_UNCHECKED: Any = object()


class Hoisted:
    """A compiled main loop and the prologue of 0-d work it reads: ``main(*args,
    *prologue(*args))``.

    ``per_step`` says the prologue reads only 0-d inputs (hyperparameters, the step), so
    one run of it serves every call of ``main`` in a step (one per piece of a param group,
    :mod:`descend.optim.flat`); a prologue that takes a norm of the gradients does not.
    Calls that go around dynamo (:meth:`run_main`) leave version counters to the caller.
    """

    def __init__(
        self,
        prologue: torch.fx.GraphModule,
        main: Callable[..., Any],
        per_step: bool,
        entry: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        self.prologue = prologue
        self.main = main
        self.per_step = per_step
        # ``entry``: a call of ``main`` on one list, known to do what ``main`` does
        # (tests give an eager one); else Inductor's, checked on first use.
        self._entry: Any = _UNCHECKED if entry is None else entry

    @property
    def entry(self) -> Callable[[list[Any]], Any] | None:
        """Inductor's entry point once :meth:`run_main` has checked it, else ``None``."""
        return None if self._entry is _UNCHECKED else self._entry

    def run_main(self, args: list[Any], extra: Any) -> None:
        """``main(*args, *extra)``, through Inductor's entry point once it is checked."""
        entry = self._entry
        if entry is _UNCHECKED:
            entry = self._entry = _checked_entry(self.main, [*args, *extra])
        if entry is None:
            self.main(*args, *extra)
        else:
            entry([*args, *extra])

    def __call__(self, *args: Any) -> Any:
        return self.main(*args, *self.prologue(*args))


def hoisted_inductor(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
    """Inductor, with the step's 0-d arithmetic computed once per call instead of per element.

    Inductor inlines 0-d computations into the loops that read them, so Adam's bias
    corrections :math:`1 - \\beta_1^t` and :math:`\\sqrt{1 - \\beta_2^t}` (from tensor
    inputs, which keep a changing step from recompiling) would cost two ``pow`` calls per
    16 elements: measured, that doubles a 10M-parameter Adam step. The 0-d part runs first,
    as a small FX graph in eager mode; its results are inputs of the compiled main loop
    (returned as a :class:`Hoisted`, or Inductor's callable when there is nothing to hoist).
    """
    from torch._inductor.compile_fx import compile_fx as inductor_compile

    def compile_fx(graph: torch.fx.GraphModule, inputs: list[Any]) -> Callable[..., Any]:
        # Inductor probes each vector ISA the CPU reports by building and loading a test
        # library in a subprocess (~0.5 s each, ~10 s of a 13 s cold first step on the
        # 2-core machine); see _plain_vector_isa. A compiler that cannot build for the ISA
        # fails the compile, and the optimizer runs eagerly (with a warning). A
        # precompiled header pays only from the second kernel on: building it made the
        # first step on a fresh machine 8.5 s; without it every cold compile took ~4 s,
        # ~3 s since the slim prelude (kernels_adjusted(slim=...)).
        # No size asserts in the generated entry (one C++ call per input, ~3 us each
        # with cold caches): dynamo's guards, or the prepared plan's construction, hold
        # the shapes, and the entry is used directly only after _checked_entry.
        with (
            torch._inductor.config.patch(
                {
                    "cpp.vec_isa_ok": True,
                    "cpp_cache_precompile_headers": False,
                    "size_asserts": False,
                    "post_grad_custom_post_pass": generated_code_key(),
                }
            ),
            kernels_adjusted(slim=_trusted_isa() is not None and sys.platform != "win32"),
            _plain_vector_isa(),
            _tensorify_off(),
        ):
            return inductor_compile(graph, inputs)

    return hoist(gm, example_inputs, compile_fx)


def hoist(
    gm: torch.fx.GraphModule,
    example_inputs: list[Any],
    compile_main: Callable[[torch.fx.GraphModule, list[Any]], Callable[..., Any]],
) -> Callable[..., Any]:
    """``gm`` split into its 0-d prologue and a main graph compiled by ``compile_main``
    (a :class:`Hoisted`), or ``gm`` compiled whole when it has no 0-d work."""
    from torch._subclasses.fake_tensor import FakeTensor, unset_fake_temporarily

    _reciprocal_divisions(gm)
    prologue, main, k = _split_scalars(gm)
    if k == 0:
        return compile_main(gm, example_inputs)
    fake = next((x.fake_mode for x in example_inputs if isinstance(x, FakeTensor)), None)
    if fake is not None:
        with fake:
            extra = list(prologue(*example_inputs))
    else:  # real example inputs: run the prologue for real, outside the tracing fake mode
        with unset_fake_temporarily():
            extra = list(prologue(*example_inputs))
    per_step = not any(n.target is norms for n in prologue.graph.nodes)
    return Hoisted(prologue, compile_main(main, [*example_inputs, *extra]), per_step)
