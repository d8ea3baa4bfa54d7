"""The fast path's layout: large parameters updated in place, the others in flat buffers.

An optimizer step does a few arithmetic operations per parameter, so its floor is memory
traffic (Adam: read :math:`\\theta, g, m, v`, write :math:`\\theta, m, v` — 28 bytes per
float32 parameter). Running the transform chain over per-tensor lists costs one pass over
memory per elementary operation; compiling it per tensor fuses the passes but makes a graph
(and a compile time) that grows with the number of tensors. Here the chain's ``update``
is compiled once, over one-element lists holding 1-d tensors of any length
(:mod:`descend.optim.compiled`), and a step calls that one fused loop on:

- each *piece*, a parameter of at least :data:`PIECE_NUMEL` elements of an elementwise
  chain, as it is: ``p``, ``p.grad`` where autograd wrote it, and its state tensors;
- the *tail*, every other parameter of the group, as views into flat buffers::

    flat_param = [θ_0 | θ_1 | ... | θ_{N-1}]     p.data      is a view of its slice
    flat_grad  = [g_0 | g_1 | ... | g_{N-1}]     p.grad      is copied in when it is not a view
    flat_<key> = [s_0 | s_1 | ... | s_{N-1}]     state[p][k] is a view of its slice

  so that a model's many small tensors (biases, norms) cost one call. A chain that
  clips by the global norm is split too (the optimizer computes the norm over every
  call's gradient first: :attr:`descend.optim.Transform.grad_norm`); one that reduces
  over elements in any other way keeps the whole group in the tail.

All step counts are elements of one tensor (``state[p]["step"]`` is its element).

Storage can change under the optimizer: ``zero_grad(set_to_none=True)`` gives each
parameter a fresh gradient, ``model.to()`` or ``p.data = ...`` replaces a parameter's
storage, ``load_state_dict`` replaces the state. :meth:`FlatGroup.steady` checks, by
identity and data pointer, that nothing changed; when something did, the optimizer takes
the slower checks of :meth:`FlatGroup.matches` and rebuilds the layout if needed.
When the tail is the whole group, a fresh gradient from ``backward()`` is copied into
its slice of ``flat_grad`` by a post-accumulate-grad hook, right after autograd writes it
(while it is in cache), and ``p.grad`` becomes the view; gradients assigned by hand are
copied in at ``step()`` and become views too. Next to pieces the tail's gradients are
copied in by ``step()`` and stay where autograd wrote them (gradients kept across steps
become views there too).
"""

from __future__ import annotations

import functools
import itertools
import operator
import weakref
from typing import Any

import torch
from torch import Tensor

# Groups smaller than this run eagerly: compiling costs seconds once, and below a million
# parameters an eager step already takes well under a millisecond.
MIN_NUMEL = 1 << 20

# Parameters of an elementwise chain at least this large are updated where they are, one
# call each. A call costs ~25 us; copying a gradient into a flat buffer during backward
# costs ~0.3 ns per element (docs/bench.md): above ~100k elements the call is cheaper.
PIECE_NUMEL = 1 << 17


def _is_piece(p: Tensor, split: bool) -> bool:
    return split and p.numel() >= PIECE_NUMEL


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


def _flat_alias(t: Tensor) -> Tensor:
    """Contiguous ``t`` as a 1-d tensor over the same memory, sharing its version counter
    (an in-place update bumps ``t``'s version, as torch.optim's does).

    Not a view in autograd's sense: when a compiled update returns state, dynamo guards
    the base of every input view, and bases of each parameter shape would each compile a
    graph.
    """
    out = t.detach()
    with torch.no_grad():
        out.set_(t.untyped_storage(), t.storage_offset(), (t.numel(),), (1,))
    return out


_GRAD = operator.attrgetter("grad")
_LAYOUT = operator.attrgetter("layout")


def _all_strided(grads: list[Tensor | None]) -> bool:
    """Whether every gradient exists and is dense. (torch keeps a ``.grad``'s shape, dtype
    and device those of its parameter; a gradient with a graph, from
    ``backward(create_graph=True)``, is read for its values like any other.)"""
    # Not ``None in grads``: that compares each tensor with ``==`` (~10 us each).
    return not any(map(operator.is_, grads, itertools.repeat(None))) and all(
        map(operator.is_, map(_LAYOUT, grads), itertools.repeat(torch.strided))
    )


def _owns_storage(p: Tensor) -> bool:
    # A parameter that is a view into storage someone else holds (tied to a user buffer,
    # an FSDP shard) must not be moved: the other holder would stop seeing updates.
    return p.storage_offset() == 0 and p.untyped_storage().nbytes() == p.numel() * p.element_size()


class FlatGroup:
    """One param group's layout on the fast path: pieces updated in place, a flat tail.

    With ``split`` (an elementwise chain, :attr:`descend.optim.Transform.elementwise`, or
    one that reads only the gradients' joint norm besides, ``grad_norm``),
    each parameter of at least :data:`PIECE_NUMEL` elements is a *piece*: it stays where
    it is, with its own state tensors, and gets its own call of the compiled update, which
    reads its gradient where autograd wrote it. The remaining parameters (all of them
    without ``split``) form the *tail*: building the group moves each into ``param``
    (``p.data = view``: the model keeps its ``Parameter`` objects, and the old storage is
    freed) and its state into the key's buffer, and their gradients are copied into
    ``grad``. Memory: the state the algorithm needs, plus a gradient buffer for the tail.
    """

    def __init__(
        self,
        params: list[Tensor],
        states: list[dict[str, Any]],
        keys: list[str],
        split: bool = False,
    ) -> None:
        self.params = list(params)
        self.keys = list(keys)
        big = [_is_piece(p, split) for p in params]
        self._piece_params = [p for p, b in zip(params, big, strict=True) if b]
        self.tail_params = [p for p, b in zip(params, big, strict=True) if not b]
        tail_states = [st for st, b in zip(states, big, strict=True) if not b]
        sizes = [p.numel() for p in self.tail_params]
        total = sum(sizes)
        if total == 1 and self._piece_params:
            # Compiled graphs specialize on a length of 1: one unused element keeps a tail
            # of a single scalar on the pieces' graph instead of a second compile.
            total = 2
        first = params[0]
        self.param = torch.empty(total, dtype=first.dtype, device=first.device)
        self.grad = torch.zeros(total, dtype=first.dtype, device=first.device)
        self.state = {
            k: torch.empty(total, dtype=states[0][k].dtype, device=first.device) for k in keys
        }
        # Step counts as elements of one tensor: one add per step instead of one per
        # parameter (~60 us for 50 0-d tensors, more with cold caches after the update).
        self.steps = torch.stack([st["step"] for st in states]) if "step" in states[0] else None
        # Counted through numpy: a torch op costs ~50 us with the caches the update leaves.
        self._counts = self.steps.numpy() if self.steps is not None else None
        # The prepared steady step (descend.optim.plan), made by the optimizer.
        self.plan: Any = None
        self.grad_views: list[Tensor] = []
        offset = 0
        with torch.no_grad():
            for p, st, n in zip(self.tail_params, tail_states, sizes, strict=True):
                view = self.param[offset : offset + n].view_as(p)
                view.copy_(p)
                p.data = view
                self.grad_views.append(self.grad[offset : offset + n].view_as(p))
                for k in keys:
                    sv = self.state[k][offset : offset + n].view_as(p)
                    sv.copy_(st[k])
                    st[k] = sv
                offset += n
            for p, st, b in zip(params, states, big, strict=True):
                if b:
                    for k in keys:
                        st[k] = st[k].contiguous()  # updated in place through a 1-d alias
            if self.steps is not None:
                for i, st in enumerate(states):
                    st["step"] = self.steps[i]
        # What a piece's call reads besides its gradient: its state and parameter as 1-d
        # aliases.
        self._piece_views = [
            ({k: _flat_alias(st[k]) for k in keys}, _flat_alias(p))
            for p, st, b in zip(params, states, big, strict=True)
            if b
        ]
        self._all_keys = [*keys, "step"] if self.steps is not None else list(keys)
        self._param_ptrs = [p.data_ptr() for p in params]
        self._grad_ptrs = [g.data_ptr() for g in self.grad_views]
        self._last_grad: Tensor | None = None  # the first tail gradient at the last gather
        self._tail_ptrs = [p.data_ptr() for p in self.tail_params]
        self._state_views = [st[k] for st in states for k in self._all_keys]
        self._state_ptrs = [v.data_ptr() for v in self._state_views]
        # Gradients of the tail from backward land in fresh tensors (after
        # zero_grad(set_to_none=True)). When the tail is the whole group, copying each into
        # its slice right after autograd writes it, while it is still in cache, costs less
        # than a gather over cold memory in step(). Next to pieces the tail holds the small
        # tensors, and one gather in step() costs less than a Python hook per tensor
        # (~15 us each; measured with 192 vectors next to 48 matrices: a training step
        # 0.98x torch's fused Adam without hooks, 1.15x with). The hook holds the group
        # weakly: a dropped optimizer costs nothing.
        ref = weakref.ref(self)
        self._hooks = [
            p.register_post_accumulate_grad_hook(functools.partial(_adopt_grad, ref, i))
            for i, p in enumerate(self.tail_params)
            if not self._piece_params
        ]

    def close(self) -> None:
        """Stop adopting gradients (the group is being replaced)."""
        for handle in self._hooks:
            handle.remove()
        self._hooks = []

    def adopt(self, i: int) -> None:
        """Copy tail parameter ``i``'s fresh gradient into its slice; its ``.grad`` becomes
        the view."""
        p = self.tail_params[i]
        g = p.grad
        view = self.grad_views[i]
        if g is None or g.data_ptr() == self._grad_ptrs[i] or p.data_ptr() != self._tail_ptrs[i]:
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
    def can_build(params: list[Tensor], previous: FlatGroup | None, split: bool = False) -> bool:
        """Whether every parameter that would move into the tail owns its storage or lives
        in ``previous``'s buffer, so that moving it is invisible to anyone else."""
        ours = previous.param.untyped_storage().data_ptr() if previous is not None else None
        return all(
            _owns_storage(p) or p.untyped_storage().data_ptr() == ours
            for p in params
            if not _is_piece(p, split)
        )

    def matches(self, params: list[Tensor], states: list[dict[str, Any]], keys: list[str]) -> bool:
        """Whether the parameters and state are still the ones (and views) this group made."""
        # List comparisons, not a loop with early exits: this runs on every step that is
        # not :meth:`steady`, and its cost is paid by a 10M-parameter model's ~50 tensors.
        if keys != self.keys or len(params) != len(self.params):
            return False
        if any(p is not q for p, q in zip(params, self.params, strict=True)):
            return False
        if [p.data_ptr() for p in params] != self._param_ptrs:
            return False
        try:
            ptrs = [st[k].data_ptr() for st in states for k in self._all_keys]
        except (KeyError, AttributeError):
            return False
        return ptrs == self._state_ptrs

    def steady(self, params: list[Tensor], state: Any) -> bool:
        """Whether this step can run on the layout as it is, without any copy.

        True when ``params`` are this group's parameters, in place, the tail's gradients
        are their views of ``grad`` (or, next to pieces, dense tensors that
        :meth:`gather_grads` copies in), the pieces' gradients are dense and contiguous,
        the state (in ``state``, the optimizer's per-parameter dicts) is the tensors and
        views this group holds, and all step counts are equal. The common case of a
        training loop, checked by identity.
        """
        # Every check runs as one C-level pass (map, no Python frame per tensor): with the
        # caches the update leaves, a pass over 50 tensors costs ~50-100 us either way,
        # and each Python frame adds to it.
        mine = self.params
        if len(params) != len(mine) or not all(map(operator.is_, params, mine)):
            return False
        grads = list(map(_GRAD, self.tail_params))
        if not all(map(operator.is_, grads, self.grad_views)) and (
            self._hooks  # a tail gradient the hooks did not adopt: take the slow checks
            or not _all_strided(grads)
        ):
            return False
        grads = list(map(_GRAD, self._piece_params))
        if not _all_strided(grads) or not all(map(Tensor.is_contiguous, grads)):
            return False
        if list(map(Tensor.data_ptr, params)) != self._param_ptrs:
            return False
        keys = self._all_keys
        try:
            views = [st[k] for st in map(state.get, params) for k in keys]
        except (KeyError, TypeError):
            return False
        if not all(map(operator.is_, views, self._state_views)):
            return False
        if self._counts is not None:
            counts = self._counts.tolist()
            return counts.count(counts[0]) == len(counts)
        return True

    def advance(self) -> float | None:
        """Count a step for every parameter; the new count (``None`` without counts)."""
        counts = self._counts
        if counts is None:
            return None
        counts += 1
        return float(counts[0])

    def calls(self) -> list[tuple[Tensor, dict[str, Tensor], Tensor, Tensor | None]]:
        """:meth:`buffers` with, for each piece, the parameter whose ``.grad`` a later step
        reads (``None`` for the tail, whose gradient buffer stays)."""
        sources = [*self._piece_params, None] if self.tail_params else self._piece_params
        return [(*b, src) for b, src in zip(self.buffers(), sources, strict=True)]

    def buffers(self) -> list[tuple[Tensor, dict[str, Tensor], Tensor]]:
        """``(grad, state, param)`` flat tensors for each call of the update: one per piece
        (the gradient read where it is; reshaping copies only a non-contiguous one, off
        the steady path), then the tail's buffers."""
        out = [
            (_flat_alias(p.grad) if p.grad.is_contiguous() else p.grad.reshape(-1), st, pv)
            for p, (st, pv) in zip(self._piece_params, self._piece_views, strict=True)
        ]
        if self.tail_params:
            out.append((self.grad, self.state, self.param))
        return out

    def gather_grads(self) -> bool:
        """Copy tail gradients that are not views of ``grad`` into it, then make them views.

        Returns ``False`` (and copies nothing) when a gradient is not a strided tensor.
        """
        params = self.tail_params
        grads = list(map(_GRAD, params))
        if all(map(operator.is_, grads, self.grad_views)):
            return True
        if not _all_strided(grads):
            return False
        # One copy of every gradient (copy_ skips a view onto itself): fewer passes over
        # the tensors than finding which changed.
        torch._foreach_copy_(self.grad_views, grads)
        if not self._hooks:
            # Next to pieces, tail gradients are usually fresh tensors on every step
            # (after zero_grad(set_to_none=True)), and making each a view would cost an
            # assignment per tensor per step for nothing. Gradients kept from the previous
            # step (no zero_grad, or assigned once by hand) become views below, told by
            # the first one: it is held (at most PIECE_NUMEL elements) so that a new
            # tensor cannot take its place (ids and addresses of freed tensors recur).
            first = grads[0] if grads else None
            if first is not self._last_grad:
                self._last_grad = first
                return True
        for p, v, g in zip(params, self.grad_views, grads, strict=True):
            # Gradients kept across steps become views: later steps copy nothing. One that
            # is a view into someone else's buffer (DDP's gradient_as_bucket_view) stays
            # where it is, copied on every step; one with a graph stays too.
            if g is not v and not g.requires_grad and _owns_storage(g):
                p.grad = v
        return True


def _adopt_grad(ref: weakref.ref[FlatGroup], i: int, param: Tensor) -> None:
    group = ref()
    if group is not None:
        group.adopt(i)
