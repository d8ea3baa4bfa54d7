"""Every call of a step's compiled loop in one C++ loop: the table of their arguments.

Inductor's generated module runs a compiled update through ``call(args)``, Python that
unpacks the arguments and calls the kernel's binding. A param group's step makes that
call once per large parameter (:mod:`descend.optim.flat`), and each costs ~20 us once the
previous one has streamed the caches out. The kernels compiled by
:func:`descend.optim.backend.hoisted_inductor` carry a second entry point
(:func:`descend.optim.kernel_source.with_call_table`) that makes many calls from a table
of their arguments; :func:`kernel_calls` finds it behind an entry whose ``call`` does
nothing but call that one kernel, and works out which of ``call``'s arguments each
kernel argument is.
"""

from __future__ import annotations

import ast
import ctypes
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

import numpy
from torch import Tensor

from descend.optim.backend import same_values, two_element_copies
from descend.optim.kernel_source import CALLS_SYMBOL


class KernelCalls:
    """A kernel's many-call entry point, and which argument of Inductor's ``call(args)``
    each kernel argument is: ``order[j]`` is the index in ``args`` of kernel argument
    ``j``, which is that argument itself, or its length when ``j`` is in ``lengths``."""

    def __init__(self, function: Any, order: list[int], lengths: set[int]) -> None:
        self._function = function
        self.order = order
        self.lengths = lengths

    def table(self, calls: list[list[Any]]) -> numpy.ndarray | None:
        """The int64 table for calls with arguments ``calls`` (a row per call: tensors as
        their data pointers, integers as they are); ``None`` when an argument is neither."""
        rows = []
        for args in calls:
            row = []
            for j, i in enumerate(self.order):
                a = args[i]
                if j in self.lengths:
                    if not isinstance(a, Tensor) or a.dim() != 1:
                        return None
                    row.append(a.size(0))
                elif isinstance(a, Tensor):
                    row.append(a.data_ptr())
                elif type(a) is int:
                    row.append(a)
                else:
                    return None
            rows.append(row)
        return numpy.array(rows, dtype=numpy.int64)

    def __call__(self, table: numpy.ndarray) -> None:
        """Run every row of ``table`` (C-contiguous int64), in order."""
        self._function(table.ctypes.data, table.shape[0])


def kernel_calls(entry: Callable[[list[Any]], Any], args: list[Any]) -> KernelCalls | None:
    """The many-call entry point behind Inductor's ``call(args)``, checked once to leave
    what ``entry`` leaves on two-element copies of ``args`` (one call's arguments); else
    ``None``.

    ``entry``'s source must be exactly what Inductor generates for one kernel call:
    unpack ``args``, clear it, name lengths (``s0 = arg1_1``, or read off a 1-d tensor:
    ``arg2_1_size = arg2_1.size()``, ``s0 = arg2_1_size[0]``), call one kernel with those
    names, delete names, return an empty tuple. Anything else (a buffer allocated, a
    second kernel, a reinterpreted view) gets ``None``, as does a kernel compiled without
    the entry point.
    """
    found = _parse(entry)
    expected, got = two_element_copies(args), two_element_copies(args)
    if found is None or expected is None or got is None:
        return None
    table = found.table([got])
    if table is None:
        return None
    entry(list(expected))
    found(table)
    return found if same_values(expected, got) else None


def _parse(entry: Callable[[list[Any]], Any]) -> KernelCalls | None:
    function = getattr(entry, "__func__", entry)
    try:
        layout = call_layout(inspect.getsource(function))
    except (OSError, TypeError):
        return None
    if layout is None:
        return None
    kernel, order, lengths = layout
    binding = function.__globals__.get(kernel)
    library = getattr(getattr(binding, "__self__", None), "__file__", None)
    if not isinstance(library, str):
        return None
    try:
        loaded = getattr(ctypes.CDLL(library), CALLS_SYMBOL)
    except (OSError, AttributeError):
        return None
    loaded.argtypes = [ctypes.c_void_p, ctypes.c_int64]
    loaded.restype = None
    return KernelCalls(loaded, order, lengths)


def call_layout(source: str) -> tuple[str, list[int], set[int]] | None:
    """For the source of Inductor's ``call(self, args)``: the kernel it calls, which of
    ``args`` each kernel argument is, and which kernel arguments are lengths read off a
    1-d tensor (:class:`KernelCalls`); ``None`` unless the source is one kernel call and
    nothing else."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return None
    definition = tree.body[0] if len(tree.body) == 1 else None
    if not isinstance(definition, ast.FunctionDef) or not definition.args.args:
        return None
    body = list(definition.body)
    args_name = definition.args.args[-1].arg
    # arg0_1, arg1_1, ... = args
    first = body.pop(0) if body else None
    if not (
        isinstance(first, ast.Assign)
        and len(first.targets) == 1
        and isinstance(first.targets[0], ast.Tuple)
        and _is_name(first.value, args_name)
        and all(isinstance(t, ast.Name) for t in first.targets[0].elts)
    ):
        return None
    index = {t.id: i for i, t in enumerate(first.targets[0].elts)}  # type: ignore[attr-defined]
    # args.clear()
    clear = body.pop(0) if body else None
    if not (
        isinstance(clear, ast.Expr)
        and isinstance(clear.value, ast.Call)
        and isinstance(clear.value.func, ast.Attribute)
        and clear.value.func.attr == "clear"
        and _is_name(clear.value.func.value, args_name)
        and not clear.value.args
    ):
        return None
    kernel: str | None = None
    order: list[int] = []
    lengths: set[int] = set()
    shapes: dict[str, int] = {}  # name -> the argument whose .size() it holds
    measured: set[str] = set()  # names holding the length of their argument
    for statement in body:
        if isinstance(statement, ast.Delete):
            continue
        if isinstance(statement, ast.Return):
            empty = isinstance(statement.value, ast.Tuple) and not statement.value.elts
            if not empty or statement is not body[-1]:
                return None
            continue
        target = _assigned_name(statement) if kernel is None else None
        value = statement.value if target is not None else None  # type: ignore[attr-defined]
        if isinstance(value, ast.Name) and value.id in index:  # s0 = arg1_1, s1 = s0
            index[target] = index[value.id]  # type: ignore[index]
            measured.discard(target)  # type: ignore[arg-type]
            if value.id in measured:
                measured.add(target)  # type: ignore[arg-type]
            continue
        if (  # arg2_1_size = arg2_1.size()
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Attribute)
            and value.func.attr == "size"
            and not value.args
            and not value.keywords
            and isinstance(value.func.value, ast.Name)
            and value.func.value.id in index
        ):
            shapes[target] = index[value.func.value.id]  # type: ignore[index]
            continue
        if (  # s0 = arg2_1_size[0]
            isinstance(value, ast.Subscript)
            and isinstance(value.value, ast.Name)
            and value.value.id in shapes
            and isinstance(value.slice, ast.Constant)
            and value.slice.value == 0
        ):
            index[target] = shapes[value.value.id]  # type: ignore[index]
            measured.add(target)  # type: ignore[arg-type]
            continue
        call = statement.value if isinstance(statement, ast.Expr) else None
        if (
            kernel is not None
            or not isinstance(call, ast.Call)
            or not isinstance(call.func, ast.Name)
            or call.keywords
            or not all(isinstance(a, ast.Name) and a.id in index for a in call.args)
        ):
            return None
        kernel = call.func.id
        order = [index[a.id] for a in call.args]  # type: ignore[attr-defined]
        lengths = {j for j, a in enumerate(call.args) if a.id in measured}  # type: ignore[attr-defined]
    if kernel is None or not order:
        return None
    return kernel, order, lengths


def _is_name(node: Any, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _assigned_name(statement: Any) -> str | None:
    """The name ``statement`` assigns to, when it is ``name = <expression>``."""
    if (
        isinstance(statement, ast.Assign)
        and len(statement.targets) == 1
        and isinstance(statement.targets[0], ast.Name)
    ):
        return statement.targets[0].id
    return None
