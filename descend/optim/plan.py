"""A param group's steady step, prepared once: the compiled loop called with no other work.

Once a step of a :class:`descend.optim.flat.FlatGroup` has run through
:class:`descend.optim.compiled.CompiledStep`'s direct path, everything the next steps
pass to the compiled loop is known except each piece's gradient (a fresh tensor after
``zero_grad(set_to_none=True)``) and the hyperparameters' values. A :class:`StepPlan`
holds each call's argument list, with the scheduled hyperparameters and the step count as
0-d views into one float64 buffer that is written through numpy (no dispatch), and the
0-d prologue (bias corrections, a clipping coefficient) evaluated on Python numbers into
0-d tensors of its own (:func:`float_prologue`). A step is then ``entry(arguments)`` per
call, or, when the prologue runs once per step, one C++ loop over a table of every
call's arguments (:mod:`descend.optim.kernel_calls`) in which only the gradients'
addresses change.

Why it pays: the loop streams each large parameter through the caches, so every torch
operation between two calls starts cold (~50-70 us each measured after a 28 MB pass on
the 2-core machine, against ~3 us warm); a step with 10 pieces spent ~0.9 ms outside the
loop before this, against ~0.5 ms for torch's fused Adam outside its kernel
(docs/bench.md, design point 12).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import numpy
import torch
from torch import Tensor

from descend.optim.backend import Hoisted, joint_norm
from descend.optim.backend import norms as backend_norms
from descend.optim.compiled import (
    GRAD_NORM,
    CompiledStep,
    Path,
    dynamic_entries,
    dynamic_hyper,
    fetch,
)
from descend.optim.kernel_calls import kernel_calls


def _reciprocal(x: float) -> float:
    return 1.0 / x


def _rsqrt(x: float) -> float:
    return 1.0 / math.sqrt(x)


def _where(condition: bool, a: float, b: float) -> float:
    return a if condition else b


def _to(x: Any, dtype: torch.dtype) -> Any:
    """``x.to(dtype)`` for a Python number: float32 rounds as a float32 tensor would."""
    if dtype == torch.float32:
        return float(numpy.float32(x))
    if dtype == torch.float64:
        return float(x)
    if dtype == torch.bool:
        return bool(x)
    raise TypeError(dtype)


def _norms(tensors: list[Tensor]) -> list[float]:
    # The one tensor operation: each gradient's norm as the tensor prologue computes it.
    return [n.item() for n in backend_norms(tensors)]


def _vector_norm(values: Any) -> float:
    values = values if isinstance(values, list) else [values]
    return math.sqrt(math.fsum(v * v for v in values))


def _clamp(x: float, min: float | None = None, max: float | None = None) -> float:
    if min is not None and x < min:
        x = min
    if max is not None and x > max:
        x = max
    return x


# The prologue's operations on Python floats (float64, as the 0-d tensors they replace;
# a float32 value is rounded where it is stored or converted).
_FLOAT_OPS: dict[Any, Callable[..., Any]] = {
    operator.add: operator.add,
    operator.sub: operator.sub,
    operator.mul: operator.mul,
    operator.truediv: operator.truediv,
    operator.neg: operator.neg,
    operator.pow: operator.pow,
    torch.add: operator.add,
    torch.sub: operator.sub,
    torch.mul: operator.mul,
    torch.div: operator.truediv,
    torch.neg: operator.neg,
    torch.pow: operator.pow,
    torch.reciprocal: _reciprocal,
    torch.sqrt: math.sqrt,
    torch.rsqrt: _rsqrt,
    torch.exp: math.exp,
    torch.log: math.log,
    torch.abs: abs,
    operator.abs: abs,
    operator.ge: operator.ge,
    operator.gt: operator.gt,
    operator.le: operator.le,
    operator.lt: operator.lt,
    torch.where: _where,
    operator.getitem: operator.getitem,
    backend_norms: _norms,
    torch.stack: list,
    torch.linalg.vector_norm: _vector_norm,
    torch._C._linalg.linalg_vector_norm: _vector_norm,
    torch.clamp: _clamp,
}
# Functions whose keyword arguments the float versions take as they are.
_KEYWORDS = {torch.clamp}
_FLOAT_METHODS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "neg": operator.neg,
    "sqrt": math.sqrt,
    "reciprocal": _reciprocal,
    "to": _to,
}
# Output dtypes the plan can hold in a 0-d tensor written through numpy, with the
# tolerance its float evaluation is checked to once against the tensors.
_OUTPUT_TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-6, torch.bool: 0.0}


def float_prologue(prologue: torch.fx.GraphModule) -> torch.fx.GraphModule | None:
    """``prologue`` as a function of Python numbers, or ``None`` when it holds an
    operation without a counterpart here, or returns anything but 0-d float64, float32 or
    bool values."""
    graph = torch.fx.Graph()
    env: dict[torch.fx.Node, torch.fx.Node] = {}
    for node in prologue.graph.nodes:
        if node.op == "output":
            outputs = node.args[0]
            if not all(output_dtype(n) in _OUTPUT_TOLERANCE for n in outputs):
                return None
            graph.output(tuple(env[n] for n in outputs))
            continue
        if node.op == "placeholder":
            env[node] = graph.placeholder(node.name)
            continue
        if node.op == "call_function" and node.target in _FLOAT_OPS:
            fn = _FLOAT_OPS[node.target]
        elif node.op == "call_method" and node.target in _FLOAT_METHODS:
            fn = _FLOAT_METHODS[node.target]
        else:
            return None
        if node.kwargs and not (node.target in _KEYWORDS and set(node.kwargs) <= {"min", "max"}):
            return None
        args = torch.fx.node.map_arg(node.args, lambda n: env[n])
        env[node] = graph.call_function(fn, args, dict(node.kwargs))
    return torch.fx.GraphModule(prologue, graph)


def output_dtype(node: Any) -> torch.dtype | None:
    """The dtype of a 0-d tensor a graph node stands for, else ``None``."""
    value = node.meta.get("example_value") if isinstance(node, torch.fx.Node) else None
    return value.dtype if isinstance(value, Tensor) and value.dim() == 0 else None


class StepPlan:
    """The compiled calls of one param group's step, with their arguments laid out.

    Built by :func:`build` from a step that ran on the direct path; :meth:`accepts` says
    whether a new step's hyperparameters fit (constants equal, scheduled values numbers:
    written into the buffer), and :meth:`run` makes the calls.
    """

    def __init__(
        self,
        hoisted: Hoisted,
        entry: Callable[[list[Any]], Any],
        calls: list[tuple[list[Any], list[int], Tensor | None]],
        hp: dict[str, Any],
        values: Tensor,
        slots: dict[tuple[str, int | None], int],
        step_slot: int | None,
        pro_inputs: list[tuple[int | None, Any]],
    ) -> None:
        self._hoisted = hoisted
        self._entry = entry
        self._calls = calls
        self._np = values.numpy()
        self._step_slot = step_slot
        self._dtype = torch.get_default_dtype()
        # How each key of a new step's hyperparameters is checked: a constant (equal to
        # this one), a scheduled number (written to its slot), or betas (the first
        # scheduled, the second a constant).
        self._rules: dict[str, tuple[Any, ...]] = {}
        # The gradients' joint norm, which the plan computes itself on every step.
        self._norm_slot = slots.get((GRAD_NORM, None))
        for key, value in hp.items():
            if key == GRAD_NORM:
                continue
            if (key, 0) in slots:
                self._rules[key] = ("pair", slots[key, 0], type(value), value[1])
            elif (key, None) in slots:
                self._rules[key] = ("number", slots[key, None], key == "momentum")
            else:
                self._rules[key] = ("constant", value)
        self._pro_inputs = pro_inputs
        self._types: list[torch.dtype | None] = []
        self._float = None
        self._extra: list[Tensor] = []
        if pro_inputs:
            self._float = float_prologue(hoisted.prologue)
        if self._float is not None:
            outputs = hoisted.prologue.graph.output_node().args[0]
            self._types = [output_dtype(n) for n in outputs]
            eager = [t.item() for t in hoisted.prologue(*calls[0][0])]
            values = self._float_values(calls[0][0])
            if values is None or not all(
                math.isclose(a, b, rel_tol=_OUTPUT_TOLERANCE[d], abs_tol=1e-300)
                for a, b, d in zip(values, eager, self._types, strict=True)
            ):
                self._float = None  # not the same numbers: the eager prologue it is
            else:
                self._extra = [torch.zeros((), dtype=d) for d in self._types]
                self._extra_np = [t.numpy() for t in self._extra]
        self._table: numpy.ndarray | None = None
        if hoisted.per_step and self._extra:
            self._lay_out_table()

    def _lay_out_table(self) -> None:
        """Every call's arguments as one table for :mod:`descend.optim.kernel_calls`, and
        the cells that hold a gradient's address (rewritten every step); nothing when the
        entry is not a single kernel with the table's entry point."""
        calls = [[*template, *self._extra] for template, _, _ in self._calls]
        found = kernel_calls(self._entry, calls[0])
        table = found.table(calls) if found is not None else None
        if found is None or table is None:
            return
        cells = [
            (row, column)
            for row, (_, slots, source) in enumerate(self._calls)
            if source is not None
            for column, index in enumerate(found.order)
            if index in slots and column not in found.lengths  # not a length read off it
        ]
        rows = numpy.array([row for row, _ in cells], dtype=numpy.intp)
        columns = numpy.array([column for _, column in cells], dtype=numpy.intp)
        # Checked once: rewriting those cells with this step's gradients gives the table
        # of the full argument lists (an address in a wrong cell would be a wild pointer).
        grads = self._grads()
        expected = found.table(
            [
                _arguments(call, grad.view(-1), self._extra)
                for call, grad in zip(self._calls, grads, strict=True)
            ]
        )
        rewritten = table.copy()
        rewritten[rows, columns] = numpy.array([g.data_ptr() for g in grads])[rows]
        if expected is None or not numpy.array_equal(expected, rewritten):
            return
        self._run_table = found
        self._table = table
        self._rows, self._columns = rows, columns

    def _grads(self) -> list[Tensor]:
        """Each call's gradient: a piece's where autograd wrote it, the tail's buffer."""
        return [
            template[slots[0]] if src is None else src.grad for template, slots, src in self._calls
        ]

    def accepts(self, hp: dict[str, Any]) -> bool:
        """Whether a step with hyperparameters ``hp`` can run on this plan; its scheduled
        values are written into the plan's buffer when it can."""
        rules = self._rules
        if len(hp) != len(rules) or torch.get_default_dtype() is not self._dtype:
            return False
        values = self._np
        for key, value in hp.items():
            rule = rules.get(key)
            if rule is None:
                return False
            kind = rule[0]
            if kind == "constant":
                if value is not rule[1] and not _equal(value, rule[1]):
                    return False
            elif kind == "number":
                if type(value) not in (float, int) or (rule[2] and value == 0):
                    return False
                values[rule[1]] = value
            else:
                if (
                    type(value) is not rule[2]
                    or len(value) != 2
                    or type(value[0]) not in (float, int)
                    or not _equal(value[1], rule[3])
                ):
                    return False
                values[rule[1]] = value[0]
        return True

    def _float_values(self, args: list[Any]) -> list[Any] | None:
        numbers = self._np.tolist()
        inputs = [
            numbers[v] if kind == "slot" else args[v] if kind == "arg" else v
            for kind, v in self._pro_inputs
        ]
        try:
            out = self._float.forward(*inputs)  # type: ignore[union-attr]
        except (ArithmeticError, ValueError, TypeError):
            return None  # e.g. a division by zero: torch's rules (inf, nan) apply
        # A complex number (a negative base to a fractional power) or a bool where a
        # float belongs: the tensors decide.
        ok = all(
            type(x) is (bool if d == torch.bool else float)
            for x, d in zip(out, self._types, strict=True)
        )
        return list(out) if ok else None

    def run(self, step: float | None) -> None:
        """One step: the prologue, then every call of the compiled loop (the plan's
        gradients read from each piece's ``.grad``, checked by the caller)."""
        if step is not None and self._step_slot is not None:
            self._np[self._step_slot] = step
        grads = self._grads()
        if self._norm_slot is not None:
            self._np[self._norm_slot] = joint_norm(grads)
        per_step = self._hoisted.per_step
        extra: list[Tensor] = []
        if per_step:
            extra = self._prologue(self._calls[0][0])
            if self._table is not None and extra is self._extra:
                # ``grads`` holds the gradients until the calls return: the table has
                # only their addresses.
                addresses = numpy.array(list(map(Tensor.data_ptr, grads)), dtype=numpy.int64)
                self._table[self._rows, self._columns] = addresses[self._rows]
                self._run_table(self._table)
                return
        entry = self._entry
        # Pieces' gradients as 1-d views, all made before the first call: between calls
        # the caches are cold (and Inductor's entry reads lengths off its tensors).
        views = [g.view(-1) for g in grads]
        for call, grad in zip(self._calls, views, strict=True):
            args = _arguments(call, grad, extra)
            if not per_step:  # a prologue that reads this call's gradient (its norm)
                args.extend(self._prologue(args))
            entry(args)

    def _prologue(self, args: list[Any]) -> list[Tensor]:
        """The prologue's outputs for a call with arguments ``args``: evaluated on Python
        numbers into the plan's 0-d tensors, or on tensors when that fails."""
        values = self._float_values(args) if self._float is not None else None
        if values is None:
            return list(self._hoisted.prologue(*args))
        for array, value in zip(self._extra_np, values, strict=True):
            array[()] = value
        return self._extra


def _arguments(
    call: tuple[list[Any], list[int], Tensor | None], grad: Tensor, extra: list[Tensor]
) -> list[Any]:
    """One call's arguments: its template with ``grad`` (1-d) in the gradient's slots when
    the call reads a piece's gradient, then the prologue's outputs ``extra``."""
    template, slots, source = call
    args = [*template, *extra]
    if source is not None:
        for i in slots:
            args[i] = grad
    return args


def _equal(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # noqa: BLE001 - a value without a plain equality is not the same
        return False


def build(
    step: CompiledStep,
    calls: list[tuple[Tensor, dict[str, Tensor], Tensor, Tensor | None]],
    hp: dict[str, Any],
    count: float | None,
) -> StepPlan | None:
    """A plan for steps over ``calls`` — ``(grad, state, param, source)`` 1-d tensors per
    call, ``source`` the parameter whose ``.grad`` a step reads (``None``: ``grad`` is a
    buffer of the plan) — with hyperparameters like ``hp``; ``None`` when the step has no
    checked direct entry for them (it runs through :class:`CompiledStep` instead)."""
    entries = dynamic_entries(hp)
    # One slot per scheduled value, in dynamic_hyper's order, and the last for the step.
    n = len(entries) + 1
    values = torch.zeros(n, dtype=torch.float64)
    slots = {entry: i for i, entry in enumerate(entries)}
    order = iter(range(n))

    def scalar(value: float) -> Tensor:
        i = next(order)
        values[i] = value
        return values[i]

    hyper = dynamic_hyper(hp, scalar)
    step_slot = None
    if count is not None:
        step_slot = n - 1
        values[step_slot] = count
        hyper["step"] = [values[step_slot]]
    grad, state, param, _ = calls[0]
    direct = step.direct(([grad], {k: [v] for k, v in state.items()}, [param]), hyper)
    if direct is None:
        return None
    hoisted, paths = direct
    if not isinstance(hoisted, Hoisted) or hoisted.entry is None:
        return None
    # Where each call's gradient goes: the same inputs for every call.
    grad_slots = [i for i, p in enumerate(paths) if p[0] == "grads" and p[2] is None]
    layout: list[tuple[list[Any], list[int], Tensor | None]] = []
    for grad, state, param, source in calls:
        roots = {"grads": [grad], "state": {k: [v] for k, v in state.items()}, "params": [param]}
        roots["hp"] = hyper
        args = [fetch(p, roots) for p in paths]
        if any(isinstance(a, Tensor) and a.dim() == 1 and a.numel() != param.numel() for a in args):
            return None
        layout.append((args, grad_slots, source))
    inputs = _prologue_inputs(hoisted, paths, slots, step_slot, hp)
    return StepPlan(hoisted, hoisted.entry, layout, hp, values, slots, step_slot, inputs)


def _prologue_inputs(
    hoisted: Hoisted,
    paths: list[Path],
    slots: dict[tuple[str, int | None], int],
    step_slot: int | None,
    hp: dict[str, Any],
) -> list[tuple[str, Any]]:
    """For each input of the prologue, where its value comes from: ``("slot", j)`` of
    the plan's buffer, ``("const", c)``, or ``("arg", i)``, the call's argument ``i`` (a
    gradient whose norm the prologue takes); empty when a read input is none of these
    (the prologue then runs on tensors)."""
    placeholders = [n for n in hoisted.prologue.graph.nodes if n.op == "placeholder"]
    out: list[tuple[str, Any]] = []
    for i, (node, (root, keys, dim, as_tensor)) in enumerate(zip(placeholders, paths, strict=True)):
        if not node.users:
            out.append(("const", None))
        elif root == "grads" and dim is None and not hoisted.per_step:
            out.append(("arg", i))
        elif root != "hp" or dim is not None:
            return []
        elif keys == ("step", 0) and step_slot is not None:
            out.append(("slot", step_slot))
        elif len(keys) == 1 and (keys[0], None) in slots:
            out.append(("slot", slots[keys[0], None]))
        elif len(keys) == 2 and (keys[0], keys[1]) in slots:
            out.append(("slot", slots[keys[0], keys[1]]))
        elif as_tensor and len(keys) == 1 and isinstance(hp.get(keys[0]), float):
            out.append(("const", hp[keys[0]]))
        else:
            return []
    return out
