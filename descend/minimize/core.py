"""``minimize``: gradient descent on a plain function of one tensor, with a guard against blow-ups."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from descend._validation import BOOL, Interval, Satisfies, validate
from descend.minimize.result import (
    CONVERGED,
    DIVERGED,
    FLAT,
    MAX_ITER,
    OTHER,
    SADDLE,
    TIME_BUDGET,
    MinimizeResult,
    Trajectory,
)
from descend.minimize.second_order import Verdict, classify
from descend.optim.modes import eval_mode, has_modes, train_mode
from descend.stopping import (
    AnyOf,
    Criterion,
    Divergence,
    FunctionTolerance,
    GradientTolerance,
    MaxIter,
    Progress,
    StepTolerance,
    Stop,
    TimeBudget,
)

Objective = Callable[[Tensor], Any]
Callback = Callable[[Progress, Tensor], bool | None]

_OPT_TOL = [Interval(0, None, closed="left"), Satisfies(lambda v: v is None, "None")]
_TABLE = {
    "lr": [Interval(0, None, closed="left"), Satisfies(lambda v: v is None, "None")],
    "max_iter": Interval(0, None, integer=True),
    "gtol": _OPT_TOL,
    "ftol": _OPT_TOL,
    "fatol": _OPT_TOL,
    "fwindow": Interval(1, None, integer=True),
    "xtol": _OPT_TOL,
    "time_budget": _OPT_TOL,
    "divergence_factor": Interval(0, None, closed="neither"),
    "jac": BOOL,
    "check_curvature": BOOL,
    "keep_x": BOOL,
    "curvature_tol": _OPT_TOL,
}
_STATUS = {"max_iter": MAX_ITER, "time_budget": TIME_BUDGET, "divergence": DIVERGED}


def minimize(
    fun: Objective,
    x0: Tensor | Sequence[float],
    optimizer: str | type[torch.optim.Optimizer] | functools.partial[Any] = "adam",
    *,
    lr: float | None = None,
    max_iter: int = 1000,
    gtol: float | None = 1e-5,
    ftol: float | None = None,
    fatol: float | None = None,
    fwindow: int = 10,
    xtol: float | None = None,
    time_budget: float | None = None,
    divergence_factor: float = 1e6,
    stop: Criterion | Sequence[Criterion] | None = None,
    callback: Callback | None = None,
    jac: bool = False,
    check_curvature: bool = True,
    curvature_tol: float | None = None,
    keep_x: bool = True,
    **optimizer_options: Any,
) -> MinimizeResult:
    """Minimize a differentiable function of one tensor with a first-order optimizer.

    Each iteration takes one optimizer step from :math:`x_t` with the gradient
    :math:`g_t = \\nabla f(x_t)` (plain gradient descent is
    :math:`x_{t+1} = x_t - \\eta\\, g_t`), then evaluates :math:`f` and :math:`\\nabla f`
    at the candidate :math:`x_{t+1}`. A non-finite or exploding candidate is rejected
    (the result keeps the last finite point) and the run stops as diverged.
    Otherwise the stopping criteria see the new point, in this order: divergence,
    ``gtol`` (:math:`\\lVert g \\rVert \\le`), ``ftol``/``fatol`` (change of :math:`f` over
    ``fwindow`` steps), ``xtol`` (:math:`\\lVert x_{t+1} - x_t \\rVert \\le`), ``stop``,
    ``time_budget``, ``max_iter``. When a tolerance fires, the smallest Hessian
    eigenvalue (Lanczos on Hessian-vector products) decides whether the point is a
    minimum; a saddle or flat region is reported with ``success=False``.

    Args:
        fun: ``fun(x) -> scalar tensor``, or ``(value, gradient)`` with ``jac=True``.
        x0: start point; not modified; its dtype and device are used throughout.
        optimizer: a name of ``descend.optim``'s registry ("gd", "momentum", "adam", ...)
            or a ``torch.optim.Optimizer`` class, or a ``functools.partial`` of one: the
            way to give an option whose name ``minimize`` takes itself, such as LBFGS's
            inner ``max_iter`` (``partial(torch.optim.LBFGS, max_iter=5)``).
        lr: learning rate; ``None`` keeps the optimizer's default.
        max_iter: most updates.
        gtol: gradient-norm tolerance (``None`` disables it).
        ftol: relative tolerance on the change of :math:`f` over ``fwindow`` steps.
        fatol: absolute tolerance on that change.
        fwindow: window of the function tolerance.
        xtol: tolerance on the step norm.
        time_budget: wall-clock seconds.
        divergence_factor: :math:`f` rising more than this times :math:`|f_0| + 1`
            above :math:`f_0` counts as divergence.
        stop: extra criteria, checked after the tolerances.
        callback: ``callback(progress, x)`` after each accepted update; returning
            ``True`` stops the run (``success=False``).
        jac: ``fun`` returns the value and the gradient.
        check_curvature: run the second-order test when a tolerance fires.
        curvature_tol: relative threshold of that test (default :math:`\\sqrt{\\epsilon}`).
        keep_x: keep every point in ``result.trajectory.x``.
        **optimizer_options: passed to the optimizer (``momentum=0.9``, ``betas=...``).

    Returns:
        A :class:`~descend.minimize.result.MinimizeResult`.

    Example:
        >>> import torch
        >>> res = minimize(lambda x: ((x - 3.0) ** 2).sum(), torch.zeros(2), torch.optim.SGD, lr=0.1)
        >>> res.success, [round(v, 4) for v in res.x.tolist()], res.criterion
        (True, [3.0, 3.0], 'gtol')
    """
    validate(
        "minimize",
        {
            "lr": lr,
            "max_iter": max_iter,
            "gtol": gtol,
            "ftol": ftol,
            "fatol": fatol,
            "fwindow": fwindow,
            "xtol": xtol,
            "time_budget": time_budget,
            "divergence_factor": divergence_factor,
            "jac": jac,
            "check_curvature": check_curvature,
            "keep_x": keep_x,
            "curvature_tol": curvature_tol,
        },
        _TABLE,
    )
    x = _as_start(x0)
    evaluate = _evaluator(fun, jac=jac)
    divergence = Divergence(divergence_factor)
    criteria = AnyOf(
        divergence,
        *_tolerances(gtol, ftol, fatol, fwindow, xtol),
        *_extra(stop),
        *([TimeBudget(time_budget)] if time_budget is not None else []),
        MaxIter(max_iter),
    )
    criteria.reset()

    started = time.perf_counter()
    f, g = evaluate(x)
    nfev = 1
    if not (math.isfinite(f) and bool(torch.isfinite(g).all())):
        raise ValueError(f"fun is not finite at x0: f(x0) = {f}. Start from a point where it is.")
    param = x.clone().requires_grad_(True)
    opt = _make(optimizer, [param], lr, optimizer_options)
    train_mode(opt)  # Schedule-Free: gradients at y
    xs, fs, gs = [x.reshape(-1).clone()] if keep_x else [], [f], [float(g.norm())]
    # A start that already meets a criterion (a stationary x0, max_iter=0) takes no step.
    stopped = criteria.check(Progress(step=0, value=f, grad_norm=gs[0], elapsed=0.0))

    # The closure serves the cached gradient at the current point, so optimizers that
    # evaluate inside step() (LBFGS) work, and plain ones cost one evaluation per step.
    cache = {"x": param.detach().clone(), "f": f, "g": g}

    def closure() -> float:
        nonlocal nfev
        if not torch.equal(param.detach(), cache["x"]):
            cache["x"] = param.detach().clone()
            cache["f"], cache["g"] = evaluate(cache["x"])
            nfev += 1
        param.grad = cache["g"].clone()
        return cache["f"]

    nit = 0
    while stopped is None:
        x_prev, f_prev, g_prev = param.detach().clone(), f, g
        param.grad = g.clone()
        opt.step(closure)
        if not bool(torch.isfinite(param.detach()).all()):
            f_new, g_new = math.nan, g_prev
        else:
            f_new, g_new = closure(), cache["g"]
        p = Progress(
            step=nit + 1,
            value=f_new,
            grad_norm=float(g_new.norm()),
            step_norm=float((param.detach() - x_prev).norm()),
            elapsed=time.perf_counter() - started,
        )
        rejected = divergence.check(p)
        if rejected is not None:
            # Never step into NaN: keep the last finite point and say why we stopped.
            with torch.no_grad():
                param.copy_(x_prev)
            f, g, stopped = f_prev, g_prev, rejected
            break
        nit, f, g = nit + 1, f_new, g_new
        if keep_x:
            xs.append(param.detach().reshape(-1).clone())
        fs.append(f)
        gs.append(p.grad_norm or 0.0)
        stopped = criteria.check(p)
        if stopped is None and callback is not None and callback(p, param.detach().clone()):
            stopped = Stop("callback", f"Stopped by the callback at iteration {nit}.", False)

    if has_modes(opt):
        # Schedule-Free: the answer is the averaged point x, not the gradient point y.
        eval_mode(opt)
        f, g = evaluate(param.detach().clone())
        nfev += 1
    x_final = param.detach().clone().reshape(x.shape)
    curvature: tuple[float, float] | None = None
    status, success, message = _status(stopped), stopped.success, stopped.message
    if success and check_curvature:
        verdict = classify(
            None if jac else fun,
            x_final,
            tol=curvature_tol,
            grad_fun=(lambda z: evaluate(z)[1]) if jac else None,
        )
        curvature = (verdict.smallest, verdict.largest)
        if verdict.kind != "minimum":
            success = False
            status = SADDLE if verdict.kind == "saddle" else FLAT
            message = _verdict_sentence(verdict) + f" ({message.removeprefix('Converged by ')})"
    trajectory = Trajectory(
        x=torch.stack(xs) if keep_x else None,
        f=torch.tensor(fs, dtype=torch.float64),
        grad_norm=torch.tensor(gs, dtype=torch.float64),
    )
    return MinimizeResult(
        x=x_final,
        fun=f,
        jac=g.detach().reshape(x.shape),
        nit=nit,
        nfev=nfev,
        success=success,
        status=status,
        message=message,
        criterion=stopped.criterion,
        trajectory=trajectory,
        curvature=curvature,
    )


def _as_start(x0: Tensor | Sequence[float]) -> Tensor:
    x = torch.as_tensor(x0).detach().clone()
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    if not bool(torch.isfinite(x).all()):
        raise ValueError(
            "The 'x0' parameter of minimize must be finite. Got non-finite values instead."
        )
    return x


def _evaluator(fun: Objective, *, jac: bool) -> Callable[[Tensor], tuple[float, Tensor]]:
    def evaluate(x: Tensor) -> tuple[float, Tensor]:
        if jac:
            value, grad = fun(x.detach().clone())
            grad = torch.as_tensor(grad, dtype=x.dtype, device=x.device).detach().reshape(x.shape)
            return float(value), grad
        xg = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            value = fun(xg)
            if not isinstance(value, Tensor) or value.numel() != 1:
                raise ValueError(
                    "fun must return a scalar tensor (or pass jac=True for (value, gradient)). "
                    f"Got {type(value).__name__} instead."
                )
            (grad,) = torch.autograd.grad(value.reshape(()), xg, allow_unused=True)
        grad = torch.zeros_like(xg) if grad is None else grad
        return float(value.detach()), grad.detach()

    return evaluate


def _make(
    optimizer: str | type[torch.optim.Optimizer] | functools.partial[Any],
    params: list[Tensor],
    lr: float | None,
    options: dict[str, Any],
) -> torch.optim.Optimizer:
    kwargs = dict(options)
    if lr is not None:
        kwargs["lr"] = lr
    if isinstance(optimizer, str):
        from descend.optim import make_optimizer

        return make_optimizer(optimizer, params, **kwargs)
    if _makes_optimizer(optimizer):
        return optimizer(params, **kwargs)  # type: ignore[operator]
    raise TypeError(
        "The 'optimizer' parameter of minimize must be a registry name, a torch.optim.Optimizer "
        f"class or a functools.partial of one. Got {optimizer!r} instead."
    )


def _makes_optimizer(optimizer: Any) -> bool:
    """Whether ``optimizer`` is a ``torch.optim.Optimizer`` subclass or a
    ``functools.partial`` of one."""
    if isinstance(optimizer, functools.partial):
        optimizer = optimizer.func
    return isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)


def _tolerances(
    gtol: float | None, ftol: float | None, fatol: float | None, fwindow: int, xtol: float | None
) -> list[Criterion]:
    out: list[Criterion] = []
    if gtol is not None:
        out.append(GradientTolerance(gtol))
    if ftol is not None or fatol is not None:
        out.append(FunctionTolerance(atol=fatol or 0.0, rtol=ftol or 0.0, window=fwindow))
    if xtol is not None:
        out.append(StepTolerance(xtol))
    return out


def _extra(stop: Criterion | Sequence[Criterion] | None) -> list[Criterion]:
    if stop is None:
        return []
    return [stop] if isinstance(stop, Criterion) else list(stop)


def _status(stop: Stop) -> int:
    if stop.success:
        return CONVERGED
    return _STATUS.get(stop.criterion, OTHER)


def _verdict_sentence(verdict: Verdict) -> str:
    if verdict.kind == "saddle":
        return (
            "Stalled at a saddle point, not a minimum: the smallest Hessian eigenvalue is "
            f"{verdict.smallest:.3g} < 0 (largest {verdict.largest:.3g})."
        )
    return (
        "Stalled on a flat region, not a confirmed minimum: all Hessian eigenvalues are ~0 "
        f"(within [{verdict.smallest:.3g}, {verdict.largest:.3g}]), a plateau or degenerate "
        "stationary point."
    )
