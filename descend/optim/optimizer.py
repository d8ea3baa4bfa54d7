"""``descend.Optimizer``: any transform chain as a real ``torch.optim.Optimizer``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor

from descend._validation import reject_unknown, validate
from descend.optim import fused as torch_fused
from descend.optim._constraints import TORCH_WORDS
from descend.optim.apply import apply_updates
from descend.optim.compiled import compiled_step, lr_tensor
from descend.optim.flags import (
    BOOKKEEPING_KEYS,
    EXECUTION_CONSTRAINTS,
    EXECUTION_DEFAULTS,
    as_number,
    check_flags,
    refuse_empty,
    refuse_shared,
    refuse_sparse,
    scalar_dtype,
)
from descend.optim.layout import as_real, cache_sized, like_param
from descend.optim.lr import GroupSchedules
from descend.optim.sharded import is_sharded
from descend.optim.transform import State, Transform

# Attributes of a descend optimizer that pickling and deepcopy must carry besides torch's.
_CARRIED = ("transform", "_schedules", "_compile", "_routes")


class Optimizer(torch.optim.Optimizer):
    """Wrap a transform (usually a :func:`~descend.optim.chain`) as a ``torch.optim.Optimizer``.

    Each call to :meth:`step` runs, for every param group, the transform over the list of
    parameters that have a gradient, then adds the resulting updates to the parameters:

    .. math::
        \\theta \\leftarrow \\theta + T(g;\\ \\text{state}, \\theta, \\text{hp})

    Hyperparameters are read from the param group at every step, so
    ``torch.optim.lr_scheduler`` classes and ``group["lr"] = x`` work as with torch; ``lr``
    may be a float, a 1-element tensor, or a schedule (any callable ``step -> lr``, e.g. from
    :mod:`descend.schedules`), per optimizer or per group, which sets it before every
    update (:mod:`descend.optim.lr` says which wins when two are given).

    State is created lazily for each parameter before its first update and keyed by
    ``torch.optim``'s names, so ``state_dict()`` has torch's layout.

    Execution: the transforms run eagerly over the group's lists with ``torch._foreach_*``
    ops. ``compile=True`` compiles that same step with ``torch.compile`` (one graph per
    param-group layout; ``lr`` and the step counts enter as 0-d tensors, so a schedule does
    not recompile); ``torch.compile(opt.step)`` works too. The named optimizers run
    torch's fused kernel where torch has one (:mod:`descend.optim.fused`).

    Args:
        params: parameters or param-group dicts, as for any torch optimizer.
        transform: the update rule.
        compile: compile the step with ``torch.compile`` (the first step pays the compile).
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

    # Named optimizers set these on the class: the rule, whether it creates state at
    # construction (torch's Adagrad), whether it keeps exactly torch's group keys, whether
    # it takes sparse gradients, and torch's fused kernel with the devices it runs on.
    transform: Transform
    _eager_state: ClassVar[bool] = False
    _torch_layout: ClassVar[bool] = False
    _sparse_grads: ClassVar[bool] = False
    # Group keys torch's class accepts and ignores (Rprop's weight_decay): kept, with a warning.
    _ignored_keys: ClassVar[frozenset[str]] = frozenset()
    _fused: ClassVar[Callable[..., None] | None] = None
    _fused_devices: ClassVar[tuple[str, ...]] = torch_fused.FUSED_DEVICES

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        transform: Transform,
        *,
        compile: bool = False,
        **defaults: Any,
    ) -> None:
        if getattr(type(self), "transform", None) is not transform:
            self.transform = transform
        owner = self._owner
        reject_unknown(owner, defaults, set(transform.defaults) | set(EXECUTION_DEFAULTS))
        merged = {} if self._torch_layout else dict(transform.defaults)
        merged.update(defaults)
        lr = merged.get("lr")
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError(f"Tensor lr must be 1-element (the 'lr' of {owner} has {lr.numel()}).")
        self._check(merged, transform)
        check_flags(owner, merged, has_kernel=self._fused is not None)
        refuse_empty(owner, params)
        self._schedules = GroupSchedules(owner)
        self._compile = bool(compile)
        super().__init__(params, merged)

    @property
    def _owner(self) -> str:
        return (
            type(self).__name__
            if type(self) is not Optimizer
            else f"Optimizer({self.transform.name})"
        )

    def _check(self, values: dict[str, Any], transform: Transform) -> None:
        owner = self._owner
        validate(owner, values, {**transform.constraints, **EXECUTION_CONSTRAINTS}, TORCH_WORDS)
        for rule in transform.rules:
            rule.check(owner, values)

    # What a group runs and which keys it takes: one rule for all groups here; a
    # partitioned optimizer (``descend.optim.partition``) looks up the group's route.
    def _transform_for(self, group: dict[str, Any]) -> Transform:
        return self.transform

    def _defaults_for(self, group: dict[str, Any]) -> dict[str, Any]:
        return self.defaults

    def _check_params(self, group: dict[str, Any]) -> None:
        """Refuse the parameters the rule cannot take (Muon's: all but matrices)."""

    # -- copies and old state dicts -----------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.update({k: self.__dict__[k] for k in _CARRIED if k in self.__dict__})
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Also what load_state_dict ends with: a state dict from an older torch lacks the
        # newer group keys (maximize, foreach, ...) and may count steps in Python floats.
        had = set(state.get("defaults", self.__dict__.get("defaults", ())))
        super().__setstate__(state)
        # torch's adds ``differentiable`` to the defaults; a group of a class without it
        # (Muon) does not take it.
        added = set(self.defaults) - had
        self.__dict__.setdefault("_schedules", GroupSchedules(self._owner))
        self.__dict__.setdefault("_compile", False)
        for group in self.param_groups:
            for key, value in self._defaults_for(group).items():
                if key not in added:
                    group.setdefault(key, value)
        for st in self.state.values():
            step = st.get("step")
            if step is not None and not torch.is_tensor(step):
                st["step"] = torch.tensor(float(step), dtype=scalar_dtype())

    # -- param groups -------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group (as torch does: ``params`` may be any iterable, a generator
        included), validating its hyperparameters against the declared constraints."""
        if isinstance(param_group, dict):
            given = set(param_group) - BOOKKEEPING_KEYS
            known = set(self._defaults_for(param_group))
            ignored = given & self._ignored_keys - known
            if ignored:
                warnings.warn(
                    f"{self._owner} has no {', '.join(sorted(ignored))}: the param group's value "
                    "is kept but not used, as torch.optim does.",
                    stacklevel=3,
                )
            reject_unknown(self._owner, given - ignored, known)
            params = param_group.get("params")
            if not isinstance(params, Tensor | set | None):
                # Once, here: a generator read twice (to check, then to keep) would be empty.
                param_group["params"] = params = list(params)
                refuse_shared(self._owner, self.param_groups, params)
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            self._check(group, self._transform_for(group))
            self._check_params(group)
        except Exception:
            self.param_groups.pop()
            raise
        self._schedules.adopt(len(self.param_groups) - 1, group)
        if self._eager_state:
            self._init_state(group, group["params"])

    # -- the step -----------------------------------------------------------------------
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Perform one update of every param group; ``closure`` re-evaluates the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        # differentiable=True: the update is recorded by autograd, as torch.optim's is.
        with torch.set_grad_enabled(bool(self.defaults.get("differentiable", False))):
            for index, group in enumerate(self.param_groups):
                scheduled = self._schedules.before_update(index, group)
                params = [p for p in group["params"] if p.grad is not None]
                if params:
                    self._step_group(group, params)
                if scheduled:
                    self._schedules.after_update(group)
        return loss

    @property
    def lr_schedules(self) -> dict[int, Callable[[int], float]]:
        """The param groups whose ``lr`` is a schedule, by index (a copy)."""
        return dict(self._schedules.schedules)

    def _step_group(self, group: dict[str, Any], params: list[Tensor]) -> None:
        grads = [p.grad for p in params]
        if not self._sparse_grads:
            refuse_sparse(self._owner, params, grads)
        transform = self._transform_for(group)
        fuses = torch_fused.runs(self._fused, self._fused_devices, group, params, self._compile)
        self._init_state(group, params, fused=fuses)
        # ``self.state.get``: reading the defaultdict would add empty entries.
        states = [self.state.get(p, {}) for p in params]
        if fuses:
            type(self)._fused(self, group, params, grads, states)  # type: ignore[misc]
            return
        # Python numbers in an eager step (fast, and torch's for-loop's); 0-d tensors when
        # the step is compiled, capturable or differentiable.
        tensors = (
            self._compile
            or torch.compiler.is_compiling()
            or group.get("capturable", False)
            or group.get("differentiable", False)
        )
        hp = {k: v for k, v in group.items() if k not in BOOKKEEPING_KEYS}
        if not tensors:
            hp = {k: as_number(v) for k, v in hp.items()}
        elif self._compile and not isinstance(hp["lr"], Tensor):
            hp["lr"] = lr_tensor(self.__dict__, group)
        if transform.needs_step:
            counts = [st["step"] for st in states]
            torch._foreach_add_(counts, 1)
            # float64, as the eager path's Python floats: 1 - beta2**t is a difference of
            # nearly equal numbers, and float32 would cost it three digits.
            hp["step"] = (
                [c.to(torch.float64) for c in counts] if tensors else [c.item() for c in counts]
            )
        per_tensor = ["step"] if "step" in hp else []
        if transform.scalars is not None:
            # Outside a compiled step, whose kernels would recompute them per element.
            scalars = transform.scalars(hp)
            hp.update(scalars)
            per_tensor += list(scalars)
        if transform.prepare is not None:
            # Over the whole group, before the update runs (a few tensors at a time).
            hp.update(transform.prepare([as_real(g) for g in grads], hp))
        # A key some parameters lack (Adafactor's factors, kept by matrices only) is None
        # for them while the transforms run, and stays absent.
        keys = [k for k in dict.fromkeys(k for st in states for k in st) if k != "step"]
        lists: State = {k: [as_real(st.get(k)) for st in states] for k in keys}
        if group.get("differentiable"):
            # New state tensors each step: the last step's graph keeps the old ones, which
            # the in-place state updates would otherwise change under it.
            lists = {k: [v if v is None else v.clone() for v in vs] for k, vs in lists.items()}
        apply = apply_updates
        if self._compile and not any(v is None for values in lists.values() for v in values):
            apply = compiled_step(self.__dict__)
        real_grads, real_params = [as_real(g) for g in grads], [as_real(p) for p in params]
        # Whole when the rule spans the group, off the CPU, and on FSDP2 shards (which
        # shard a module's parameters all alike): Muon shares a group's matrices out among
        # the ranks in one exchange. (Under DDP each run is its own all-gather.)
        whole = (
            tensors
            or not transform.elementwise
            or params[0].device.type != "cpu"
            or is_sharded(params[0])
        )
        for part in [range(len(params))] if whole else cache_sized(params):
            sub = {k: [v[i] for i in part] for k, v in lists.items()}
            sub_hp = {**hp, **{k: [hp[k][i] for i in part] for k in per_tensor}}
            apply(
                transform,
                [real_grads[i] for i in part],
                sub,
                [real_params[i] for i in part],
                sub_hp,
            )
            for k, v in sub.items():
                for j, i in enumerate(part):
                    lists[k][i] = v[j]
        # Transforms may create state on their first update (the momentum buffer).
        for key, values in lists.items():
            for p, st, value in zip(params, states, values, strict=True):
                if value is not None or key in st:
                    st[key] = like_param(p, value)

    def _init_state(
        self, group: dict[str, Any], params: list[Tensor], *, fused: bool = False
    ) -> None:
        transform = self._transform_for(group)
        if not transform.needs_step and not transform.init([], group):
            return  # a stateless chain (plain SGD): nothing to create, nothing to scan for
        fresh = [p for p in params if not self.state.get(p)]
        if not fresh:
            return
        parts = transform.init([as_real(p) for p in fresh], group)
        if not parts and not transform.needs_step:
            return  # a stateless chain (plain SGD) keeps no per-parameter entries, as torch
        on_device = fused or group.get("fused") or group.get("capturable")
        for i, p in enumerate(fresh):
            state = self.state[p]
            if transform.needs_step:
                state["step"] = (
                    torch.zeros((), dtype=torch.float32, device=p.device)
                    if on_device
                    else torch.tensor(0.0, dtype=scalar_dtype())
                )
            for key, values in parts.items():
                state[key] = like_param(p, values[i])
