"""``descend.Optimizer``: any transform chain as a real ``torch.optim.Optimizer``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from descend._validation import InvalidParameterError, OneOf, reject_unknown, validate
from descend.optim import compiled as _compiled
from descend.optim import flat as _flat
from descend.optim import plan as _plan
from descend.optim._constraints import _is_schedule
from descend.optim.backend import joint_norm
from descend.optim.step_hooks import with_step_hooks, without_grad
from descend.optim.transform import State, Transform

# Settings torch.optim keeps in every param group that select an execution path rather
# than the algorithm. descend accepts them so state dicts and call sites stay unchanged.
EXECUTION_CONSTRAINTS = {
    "foreach": OneOf((None, True, False)),
    "fused": OneOf((None, True, False)),
    "capturable": OneOf((False,)),
    "differentiable": OneOf((False,)),
}
# Group keys that are not hyperparameters: torch's own bookkeeping and descend's
# position in a learning-rate schedule.
BOOKKEEPING_KEYS = {"params", "param_names", "initial_lr", "lr_schedule_step"}


def _scalar_dtype() -> torch.dtype:
    # The dtype torch.optim uses for ``state["step"]``, so state dicts load both ways.
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


class Optimizer(torch.optim.Optimizer):
    """Wrap a transform (usually a :func:`~descend.optim.chain`) as a ``torch.optim.Optimizer``.

    Each call to :meth:`step` runs, for every param group, the transform over the list of
    parameters that have a gradient, then adds the resulting updates to the parameters:

    .. math::
        \\theta \\leftarrow \\theta + T(g;\\ \\text{state}, \\theta, \\text{hp})

    Hyperparameters are read from the param group at every step, so
    ``torch.optim.lr_scheduler`` classes and ``group["lr"] = x`` work as with torch.
    ``lr`` may also be a schedule (any callable ``step -> lr``, e.g. from
    :mod:`descend.schedules`), per optimizer or per group: before update ``t`` (0-based)
    the group's ``lr`` is set to ``schedule(t)``; the position is kept in the group as
    ``lr_schedule_step`` and saved with the state dict (the schedule itself is
    configuration and is given again when the optimizer is rebuilt).

    State is created lazily for each parameter before its first update and keyed by
    ``torch.optim``'s names, so ``state_dict()`` has torch's layout.

    Execution: by default (``compile=None``) a param group of at least
    :data:`descend.optim.flat.MIN_NUMEL` CPU parameters, all with gradients and equal step
    counts, takes the fast path: the chain runs as one compiled loop over each large
    parameter where it is (gradient included) and over flat buffers holding the others
    (:mod:`descend.optim.flat`);
    other steps run eagerly with ``torch._foreach_*`` over the lists. Both run the same
    transform source and give the same numbers up to floating-point rounding.

    Args:
        params: parameters or param-group dicts, as for any torch optimizer.
        transform: the update rule.
        compile: ``None`` (default) takes the fast path where it applies and pays (large CPU
            groups); ``True`` takes it for groups of any size; ``False`` always runs eagerly.
            The named optimizers take torch's ``fused`` flag for the same choice
            (``fused=True`` as ``compile=True``, ``fused=False`` as ``compile=False``).
        **defaults: hyperparameters; names the transform does not read are refused.

    Example:
        >>> import torch, descend
        >>> from descend.optim import chain, clip_by_global_norm, scale_by_adam, scale_by_lr
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.Optimizer([x], chain(clip_by_global_norm(), scale_by_adam(),
        ...                         scale_by_lr()), lr=0.1, max_norm=1.0)
        >>> (x ** 2).sum().backward(); opt.step()
        >>> [round(v, 4) for v in x.tolist()]
        [0.9, -1.9]
    """

    # Subclasses that mirror a torch optimizer creating its state eagerly (Adagrad) set this.
    _eager_state = False
    # Named optimizers pass every torch hyperparameter explicitly and keep exactly those in
    # their param groups (torch's layout); a generic chain takes its transforms' defaults.
    _torch_layout = False

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        transform: Transform,
        *,
        compile: bool | None = None,
        **defaults: Any,
    ) -> None:
        self._owner = (
            type(self).__name__ if type(self) is not Optimizer else f"Optimizer({transform.name})"
        )
        self.transform = transform
        known = set(transform.defaults) | set(EXECUTION_CONSTRAINTS)
        reject_unknown(self._owner, defaults, known)
        merged = {} if self._torch_layout else dict(transform.defaults)
        merged.update(defaults)
        params = list(params)
        if not params:
            raise InvalidParameterError(
                f"The 'params' argument of {self._owner} must be a non-empty iterable of tensors "
                "or of param-group dicts. Got an empty list instead."
            )
        self._constraints = {**transform.constraints, **EXECUTION_CONSTRAINTS}
        self._lr_schedules: dict[int, Callable[[int], float]] = {}
        # Named optimizers take torch's ``fused`` flag instead: True forces the fast path,
        # False turns it off, None (torch's default too) lets descend choose.
        fused = merged.get("fused")
        self._compile = compile if fused is None else bool(fused)
        self._flat: dict[int, _flat.FlatGroup] = {}
        super().__init__(params, merged)

    # -- param groups -------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group, validating its hyperparameters against the declared constraints."""
        index = len(self.param_groups)
        owner = self._owner
        reject_unknown(owner, set(param_group) - BOOKKEEPING_KEYS, set(self.defaults))
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p): i for i, g in enumerate(self.param_groups) for p in g["params"]}
        for p in params:
            if id(p) in seen:
                raise InvalidParameterError(
                    f"The 'params' of param group {index} of {owner} must not contain a parameter "
                    f"of another group. Got a parameter of shape {tuple(p.shape)} that is already "
                    f"in group {seen[id(p)]} instead."
                )
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        validate(owner, group, self._constraints)
        for rule in self.transform.rules:
            rule.check(owner, group)
        if _is_schedule(group.get("lr")):
            self._lr_schedules[index] = group["lr"]
            group.setdefault("lr_schedule_step", 0)
            group["lr"] = float(group["lr"](0))
        if self._eager_state:
            self._init_state(group, group["params"])

    # -- the step -----------------------------------------------------------------------
    @with_step_hooks
    @without_grad
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Perform one update of every param group; ``closure`` re-evaluates the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for index, group in enumerate(self.param_groups):
            schedule = self._lr_schedules.get(index)
            if schedule is not None:
                group["lr"] = float(schedule(int(group.get("lr_schedule_step", 0))))
            flat = self._flat.get(index)
            if flat is not None and flat.steady(group["params"], self.state):
                self._step_steady(index, flat, group)
            else:
                params = [p for p in group["params"] if p.grad is not None]
                if params:
                    self._step_group(index, group, params)
            if schedule is not None:
                group["lr_schedule_step"] = int(group.get("lr_schedule_step", 0)) + 1
        return loss

    def _init_state(self, group: dict[str, Any], params: list[Tensor]) -> None:
        # ``self.state.get``: reading a defaultdict would add empty entries to the state dict.
        fresh = [p for p in params if not self.state.get(p)]
        if not fresh:
            return
        parts = self.transform.init([_real(p) for p in fresh], group)
        if not parts and not self.transform.needs_step:
            return  # a stateless chain (plain SGD) keeps no per-parameter entries, as torch
        for i, p in enumerate(fresh):
            state = self.state[p]
            if self.transform.needs_step:
                state["step"] = torch.tensor(0.0, dtype=_scalar_dtype())
            for key, values in parts.items():
                value = values[i]
                state[key] = (
                    torch.view_as_complex(value) if p.is_complex() and value is not None else value
                )

    def _step_group(self, index: int, group: dict[str, Any], params: list[Tensor]) -> None:
        for p in params:
            if p.grad.is_sparse:
                raise InvalidParameterError(
                    f"{self._owner} does not support sparse gradients. Got a sparse gradient for a "
                    f"parameter of shape {tuple(p.shape)}; use torch.optim.SparseAdam or dense "
                    "embeddings (sparse=False)."
                )
        self._init_state(group, params)
        states = [self.state.get(p, {}) for p in params]
        hp = {k: v for k, v in group.items() if k not in BOOKKEEPING_KEYS}
        steps = None
        if self.transform.needs_step:
            counts = [st["step"] for st in states]
            torch._foreach_add_(counts, 1)
            steps = [float(c) for c in counts]
        keys = [k for k in states[0] if k != "step"] if states[0] else []
        flat = self._flat_group(index, group, params, states, keys, steps)
        if (
            flat is not None
            and flat.gather_grads()
            and self._run_flat(
                flat, self._with_grad_norm(flat, hp), steps[0] if steps is not None else None
            )
        ):
            return
        if steps is not None:
            hp["step"] = steps
        lists: State = {k: [_real(st[k]) for st in states] for k in keys}
        real_params = [_real(p) for p in params]
        grads = [_real(p.grad) for p in params]
        # Steps off the fast path run eagerly even with compile=True: compiling per-tensor
        # lists makes a graph per tensor count and a recompile per learning rate
        # (docs/bench.md has the measurements).
        _compiled.apply(self.transform.update, grads, lists, real_params, hp)
        # Transforms may create state on their first update (the momentum buffer).
        for key, values in lists.items():
            for p, st, value in zip(params, states, values, strict=True):
                st[key] = (
                    torch.view_as_complex(value) if p.is_complex() and value is not None else value
                )

    def _step_steady(self, index: int, flat: _flat.FlatGroup, group: dict[str, Any]) -> None:
        """A step of a group whose layout holds everything already (the training-loop
        case): count it and run the compiled update, with no per-parameter work; through
        the group's prepared plan (:mod:`descend.optim.plan`) when its hyperparameters
        fit it."""
        hp = {k: v for k, v in group.items() if k not in BOOKKEEPING_KEYS}
        plan = flat.plan
        if plan is not None and plan.accepts(hp):
            count = flat.advance()  # every parameter's state["step"] is an element of it
            flat.gather_grads()  # steady: every tail gradient is dense
            # Before the calls, while the caches still hold the step's Python state.
            torch.autograd.graph.increment_version(flat.params)
            plan.run(count)
            return
        count = flat.advance()
        flat.gather_grads()
        hp = self._with_grad_norm(flat, hp)
        if not self._run_flat(flat, hp, count):
            if flat.steps is not None:
                flat.steps.sub_(1)  # the eager path counts the step again
            self._step_group(index, group, list(group["params"]))
            return
        flat.plan = _plan.build(
            _compiled.compiled_step(self.transform.update, _compiled.BACKEND),
            flat.calls(),
            hp,
            count,
        )

    def _with_grad_norm(self, flat: _flat.FlatGroup, hp: dict[str, Any]) -> dict[str, Any]:
        """``hp``, with the joint norm of the group's gradients when the chain reads it
        (:attr:`descend.optim.Transform.grad_norm`): one value for all of the step's calls."""
        if not self.transform.grad_norm:
            return hp
        return {**hp, _compiled.GRAD_NORM: joint_norm([g for g, _, _ in flat.buffers()])}

    def _run_flat(self, flat: _flat.FlatGroup, hp: dict[str, Any], step: float | None) -> bool:
        """Run the compiled update over ``flat``; ``False`` when it cannot compile (said once:
        this optimizer runs eagerly from then on)."""
        if step is not None:
            # A 0-d tensor, not a float: Inductor specializes on Python floats that reach
            # foreach scalar lists (a recompile per step); float64 keeps the bias
            # corrections as exact as the eager path's Python floats.
            hp = {**hp, "step": [torch.tensor(step, dtype=torch.float64)]}
        try:
            _compiled.run_compiled(
                self._owner, self.transform.update, flat.buffers(), _compiled.dynamic_hyper(hp)
            )
            # The update went around autograd's bookkeeping (the tail through its buffer,
            # pieces through Inductor's entry point): a backward through a graph that saved
            # the parameters must fail, as after torch.optim's in-place update.
            torch.autograd.graph.increment_version(flat.params)
            return True
        except Exception as exc:  # noqa: BLE001 - a compiler that cannot run is not fatal
            # Compilation failed before the update ran (no C++ compiler, an unsupported
            # op in a custom transform): say so once and run this optimizer eagerly.
            _compiled.logger.warning(
                "descend: %s could not compile its fused update (%s: %s); running eagerly.",
                self._owner,
                type(exc).__name__,
                exc,
            )
            self._compile = False
            for group in self._flat.values():
                group.close()
            self._flat.clear()
            return False

    def _flat_group(
        self,
        index: int,
        group: dict[str, Any],
        params: list[Tensor],
        states: list[dict[str, Any]],
        keys: list[str],
        steps: list[float] | None,
    ) -> _flat.FlatGroup | None:
        """The group's flat buffers when this step can take the fast path, else ``None``."""
        if self._compile is False:
            return None
        flat = self._flat.get(index)
        if (
            flat is not None
            and flat.matches(params, states, keys)
            and (steps is None or steps.count(steps[0]) == len(steps))
        ):
            return flat  # the views are the ones checked when the group was built
        if _flat.ineligible(params, group["params"], states, steps) is not None:
            return None
        if self._compile is None and sum(p.numel() for p in params) < _flat.MIN_NUMEL:
            return None
        # Separate calls for large parameters: each is updated where it is, its gradient
        # read where autograd wrote it. A chain that clips by the global norm is split too;
        # the norm is computed over all calls first (_with_grad_norm).
        split = self.transform.elementwise or self.transform.grad_norm
        if not _flat.FlatGroup.can_build(params, flat, split):
            return None
        # First step, or storage replaced since the last one (model.to(), p.data = ...,
        # load_state_dict): lay parameters and state out afresh.
        if flat is not None:
            flat.close()
        self._flat[index] = flat = _flat.FlatGroup(params, states, keys, split)
        return flat


def _real(t: Tensor | None) -> Any:
    # Complex parameters are updated as pairs of reals, as torch.optim does.
    return torch.view_as_real(t) if t is not None and t.is_complex() else t
