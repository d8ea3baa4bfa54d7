"""The fast path: one param group's parameters, gradients and state as views into flat buffers.

An optimizer step does a few arithmetic operations per parameter, so its floor is memory
traffic (Adam: read :math:`\\theta, g, m, v`, write :math:`\\theta, m, v` — 28 bytes per
float32 parameter). Running the transform chain over per-tensor lists costs one pass over
memory per elementary operation; compiling it per tensor fuses the passes but makes a graph
(and a compile time) that grows with the number of tensors. Here every tensor of a param
group lives in one flat buffer per role::

    flat_param = [θ_0 | θ_1 | ... | θ_{N-1}]     p.data      is a view of its slice
    flat_grad  = [g_0 | g_1 | ... | g_{N-1}]     p.grad      is copied in when it is not a view
    flat_<key> = [s_0 | s_1 | ... | s_{N-1}]     state[p][k] is a view of its slice

and the chain's ``update`` runs, unchanged, over one-element lists holding the flat buffers.
Under ``torch.compile(dynamic=True)`` the whole chain becomes one fused loop over memory,
the graph is the same for any number of tensors and any size, and hyperparameters (``lr``,
``betas``, the step count) are symbolic inputs, so a schedule never triggers a recompile.

Storage can change under the optimizer: ``zero_grad(set_to_none=True)`` gives each
parameter a fresh gradient, ``model.to()`` or ``p.data = ...`` replaces a parameter's
storage, ``load_state_dict`` replaces the state. :meth:`FlatGroup.matches` checks the
data pointers every step; the optimizer rebuilds the buffers when they no longer match.
A fresh gradient from ``backward()`` is copied into its slice of ``flat_grad`` by a
post-accumulate-grad hook, right after autograd writes it (while it is in cache), and
``p.grad`` becomes the view; gradients assigned by hand are copied in at ``step()``.

Two rewrites keep the compiled loop at memory speed: 0-d arithmetic (bias corrections)
is computed once per step instead of per element (:func:`hoisted_inductor`), and
division by such a value becomes multiplication by its reciprocal
(:func:`_reciprocal_divisions`).
"""

from __future__ import annotations

import functools
import logging
import operator
import time
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

logger = logging.getLogger("descend")

# Groups smaller than this run eagerly: compiling costs seconds once, and below a million
# parameters an eager step already takes well under a millisecond.
MIN_NUMEL = 1 << 20
# The torch.compile backend of the fast path, ``"inductor"`` meaning :func:`hoisted_inductor`
# (tests swap in a compile-counting backend).
BACKEND: Any = "inductor"


def ineligible(
    params: list[Tensor],
    group_params: list[Tensor],
    states: list[dict[str, Any]],
    steps: list[float] | None,
) -> str | None:
    """Why this step of a param group cannot take the fast path (``None`` when it can)."""
    if len(params) != len(group_params):
        return "some parameters have no gradient on this step"
    first = params[0]
    if first.device.type != "cpu":
        return f"parameters on {first.device.type} (the fast path is for CPU)"
    if not first.dtype.is_floating_point:
        return f"dtype {first.dtype}"
    for p, st in zip(params, states, strict=True):
        if p.dtype != first.dtype or p.device != first.device:
            return "parameters of several dtypes or devices in one group"
        if not p.is_contiguous() or p.grad.layout != torch.strided:
            return "a non-contiguous parameter or a non-strided gradient"
        if any(v is None for k, v in st.items() if k != "step"):
            return "state created on the first update (momentum buffer) does not exist yet"
    if steps is not None and any(s != steps[0] for s in steps):
        return "parameters have taken different numbers of steps"
    return None


def _owns_storage(p: Tensor) -> bool:
    # A parameter that is a view into storage someone else holds (tied to a user buffer,
    # an FSDP shard) must not be moved: the other holder would stop seeing updates.
    return p.storage_offset() == 0 and p.untyped_storage().nbytes() == p.numel() * p.element_size()


class FlatGroup:
    """Flat buffers for one param group; ``params``, their grads and state become views.

    Building it moves each parameter into ``param`` (``p.data = view``: the model keeps its
    ``Parameter`` objects, and a parameter's old storage is freed) and each state tensor into
    its key's buffer. Memory: the state the algorithm needs, plus one gradient buffer.
    """

    def __init__(self, params: list[Tensor], states: list[dict[str, Any]], keys: list[str]) -> None:
        self.params = list(params)
        self.keys = list(keys)
        sizes = [p.numel() for p in params]
        total = sum(sizes)
        first = params[0]
        self.param = torch.empty(total, dtype=first.dtype, device=first.device)
        self.grad = torch.zeros(total, dtype=first.dtype, device=first.device)
        self.state = {
            k: torch.empty(total, dtype=states[0][k].dtype, device=first.device) for k in keys
        }
        self.grad_views: list[Tensor] = []
        offset = 0
        with torch.no_grad():
            for p, st, n in zip(params, states, sizes, strict=True):
                view = self.param[offset : offset + n].view_as(p)
                view.copy_(p)
                p.data = view
                self.grad_views.append(self.grad[offset : offset + n].view_as(p))
                for k in keys:
                    sv = self.state[k][offset : offset + n].view_as(p)
                    sv.copy_(st[k])
                    st[k] = sv
                offset += n
        self.numel = total
        self._param_ptrs = [p.data_ptr() for p in params]
        self._grad_ptrs = [g.data_ptr() for g in self.grad_views]
        self._state_ptrs = [[st[k].data_ptr() for k in keys] for st in states]
        # Gradients from backward land in fresh tensors (after zero_grad(set_to_none=True));
        # copying each into its slice right after autograd writes it, while it is still in
        # cache, costs less than a gather over cold memory in step() (docs/bench.md,
        # "training step"). The hook holds the group weakly: a dropped optimizer costs
        # nothing.
        ref = weakref.ref(self)
        self._hooks = [
            p.register_post_accumulate_grad_hook(functools.partial(_adopt_grad, ref, i))
            for i, p in enumerate(params)
        ]

    def close(self) -> None:
        """Stop adopting gradients (the group is being replaced)."""
        for handle in self._hooks:
            handle.remove()
        self._hooks = []

    def adopt(self, i: int) -> None:
        """Copy parameter ``i``'s fresh gradient into its slice; its ``.grad`` becomes the view."""
        p = self.params[i]
        g = p.grad
        view = self.grad_views[i]
        if g is None or g.data_ptr() == self._grad_ptrs[i] or p.data_ptr() != self._param_ptrs[i]:
            return
        if (
            g.requires_grad  # backward(create_graph=True): keep the graph
            or g.layout != torch.strided
            or g.device != view.device
            or g.dtype != view.dtype
            or g.shape != view.shape
            or not _owns_storage(g)  # DDP's gradient_as_bucket_view: leave it where it is
        ):
            return
        with torch.no_grad():
            view.copy_(g)
        p.grad = view

    @staticmethod
    def can_build(params: list[Tensor], previous: FlatGroup | None) -> bool:
        """Whether every parameter owns its storage or lives in ``previous``'s buffer, so that
        moving it is invisible to anyone else."""
        ours = previous.param.untyped_storage().data_ptr() if previous is not None else None
        return all(_owns_storage(p) or p.untyped_storage().data_ptr() == ours for p in params)

    def matches(self, params: list[Tensor], states: list[dict[str, Any]], keys: list[str]) -> bool:
        """Whether the parameters and state are still the views this group made."""
        # List comparisons, not a loop with early exits: this runs on every step and its
        # cost is paid by every step of a 10M-parameter model (~50 tensors).
        if keys != self.keys or len(params) != len(self.params):
            return False
        if any(p is not q for p, q in zip(params, self.params, strict=True)):
            return False
        if [p.data_ptr() for p in params] != self._param_ptrs:
            return False
        return [[st[k].data_ptr() for k in keys] for st in states] == self._state_ptrs

    def gather_grads(self) -> bool:
        """Copy gradients that are not views of ``grad`` into it, then make them views.

        Returns ``False`` (and copies nothing) when a gradient is not a strided tensor.
        """
        stale = [i for i, p in enumerate(self.params) if p.grad.data_ptr() != self._grad_ptrs[i]]
        if not stale:
            return True
        if any(self.params[i].grad.layout != torch.strided for i in stale):
            return False
        views = [self.grad_views[i] for i in stale]
        grads = [self.params[i].grad for i in stale]
        torch._foreach_copy_(views, grads)
        for i, v, g in zip(stale, views, grads, strict=True):
            # A gradient that is a view into someone else's buffer (DDP's
            # gradient_as_bucket_view) stays where it is; it is copied on every step.
            if _owns_storage(g):
                self.params[i].grad = v
        return True


def _adopt_grad(ref: weakref.ref[FlatGroup], i: int, param: Tensor) -> None:
    group = ref()
    if group is not None:
        group.adopt(i)


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


def _is_scalar(node: torch.fx.Node) -> bool:
    value = node.meta.get("example_value")
    return isinstance(value, Tensor) and value.dim() == 0


def _split_scalars(
    gm: torch.fx.GraphModule,
) -> tuple[torch.fx.GraphModule, torch.fx.GraphModule, int]:
    """Split ``gm`` into a prologue of 0-d computations and the main graph that reads them.

    Returns ``(prologue, main, k)``: ``prologue(*args)`` returns ``k`` 0-d tensors and
    ``main(*args, *those)`` does the rest.
    """
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    hoisted: list[torch.fx.Node] = []
    scalar = {n for n in placeholders if _is_scalar(n)}
    for node in gm.graph.nodes:
        if node.op != "call_function" or not _is_scalar(node):
            continue
        name = getattr(node.target, "__name__", "")
        if (
            name.endswith("_")
            or not node.all_input_nodes
            or not all(i in scalar for i in node.all_input_nodes)
        ):
            continue  # in place, or reads a tensor that is not a 0-d input or a hoisted value
        scalar.add(node)
        hoisted.append(node)
    boundary = [n for n in hoisted if any(u not in scalar for u in n.users)]

    pro = torch.fx.Graph()
    env = {p: pro.placeholder(p.name) for p in placeholders}
    for node in hoisted:
        env[node] = pro.node_copy(node, lambda n: env[n])
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
    scalar = {n for n in gm.graph.nodes if n.op == "placeholder" and _is_scalar(n)}
    for node in gm.graph.nodes:
        if (
            node.op == "call_function"
            and _is_scalar(node)
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
        if not foreach and _is_scalar(node):
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


def hoisted_inductor(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
    """Inductor, with the step's 0-d arithmetic computed once per call instead of per element.

    Inductor inlines 0-d computations into the loops that read them, so Adam's bias
    corrections :math:`1 - \beta_1^t` and :math:`\\sqrt{1 - \beta_2^t}` (from tensor
    inputs, which keep a changing step from recompiling) would cost two ``pow`` calls per
    16 elements: measured, that doubles a 10M-parameter Adam step. The 0-d part runs first,
    as a small FX graph in eager mode; its results are inputs of the compiled main loop.
    """
    from torch._inductor.compile_fx import compile_fx as inductor_compile
    from torch._subclasses.fake_tensor import FakeTensor, unset_fake_temporarily

    def compile_fx(graph: torch.fx.GraphModule, inputs: list[Any]) -> Callable[..., Any]:
        # Inductor probes each vector ISA the CPU reports by building and loading a test
        # library in a subprocess (nine builds, ~8 s of a 13 s cold compile on the 2-core
        # machine). Trusting /proc/cpuinfo instead brings the cold first step under 5 s; a
        # compiler that cannot build for the ISA fails the compile, and the step runs eagerly.
        with torch._inductor.config.patch({"cpp.vec_isa_ok": True}):
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


@functools.cache
def compiled_apply(update: Callable[..., list[Tensor]], backend: Any) -> Callable[..., None]:
    """``apply`` compiled for one chain, with its own compile cache.

    Dynamo keeps compiled graphs (and its limit of 8 recompiles) per code object, so every
    chain gets a copy of ``apply``'s code: an AdamW and an SGD in one process must not share
    that limit. ``dynamic=True`` makes sizes symbolic: one graph for groups of any size.
    """
    name = f"_apply_{getattr(update, '__qualname__', 'update').replace('.', '_').replace('<', '').replace('>', '')}"
    code = apply.__code__.replace(co_name=name, co_qualname=name)
    fn = type(apply)(code, apply.__globals__, name)
    return torch.compile(
        fn, backend=hoisted_inductor if backend == "inductor" else backend, dynamic=True
    )


_LOGGED: set[str] = set()


def run_compiled(
    name: str, update: Callable[..., list[Tensor]], flat: FlatGroup, hp: dict[str, Any]
) -> None:
    """One fused step over the flat buffers; the first (compiling) call is timed and logged."""
    fn = compiled_apply(update, BACKEND)
    state = {k: [flat.state[k]] for k in flat.keys}
    first = name not in _LOGGED
    start = time.perf_counter()
    fn(update, [flat.grad], state, [flat.param], hp)
    if first:
        _LOGGED.add(name)
        seconds = time.perf_counter() - start
        level = logging.WARNING if seconds > 1.0 else logging.INFO
        logger.log(
            level,
            "descend: the first step of %s compiled its fused update for %d parameters "
            "in %.1f s (once per process; compile=False, or fused=False for a named optimizer, runs eagerly).",
            name,
            flat.numel,
            seconds,
        )
