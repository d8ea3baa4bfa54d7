"""Sharpness-aware minimization: a wrapper that steps any optimizer with the gradient taken
at the worst nearby weights."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from descend._validation import BOOL, validate
from descend.optim._constraints import NON_NEGATIVE
from descend.optim.registry import make_optimizer
from descend.optim.sharded import copy_all

Params = Iterable[Tensor] | Iterable[dict[str, Any]]
BaseOptimizer = type[torch.optim.Optimizer] | Callable[..., torch.optim.Optimizer] | str


class SAM(torch.optim.Optimizer):
    r"""Sharpness-aware minimization (Foret et al., 2021) around any optimizer, descend's
    or torch's; ``adaptive=True`` is ASAM (Kwon et al., 2021).

    Each step takes two gradients: :math:`g` at the weights :math:`w`, then :math:`g'` at
    the point of (approximately) highest loss within radius :math:`\rho`, and hands
    :math:`g'` to the base optimizer as the gradient at :math:`w`:

    .. math::
        g &= \nabla L(w), \qquad
        \epsilon = \rho\,\frac{T_w^2\, g}{\lVert T_w\, g \rVert_2 + 10^{-12}}\\
        g' &= \nabla L(w + \epsilon), \qquad
        w \leftarrow \text{base.step}(w,\ g')

    with :math:`T_w = I` (SAM) or :math:`T_w = \mathrm{diag}(|w|)` (ASAM, ``adaptive``);
    the norm is over all parameters of all groups. Symbols: :math:`\rho` ``rho``. The
    base optimizer keeps the state; ``state_dict()`` is its state dict (``rho`` and
    ``adaptive`` are the wrapper's constructor arguments, not saved).

    Use it with a closure that clears the gradients, recomputes the loss and calls
    ``backward`` (as for ``torch.optim.LBFGS``)::

        opt = descend.SAM(model.parameters(), descend.SGD, rho=0.05, lr=0.1, momentum=0.9)
        for x, y in loader:
            def closure():
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                return loss
            loss = closure()      # g at w (optional: step calls it when no gradient is set)
            opt.step(closure)     # perturb, g' at w + eps, restore w, base step

    ``first_step()`` and ``second_step()`` split the step as the reference's do, for
    loops that compute the two passes themselves. ``descend.fit`` writes that closure
    itself (``requires_closure``): the same batch, at the perturbed weights; its
    gradient clipping clips both gradients.

    .. warning:: The second forward pass updates BatchNorm's running statistics a
       second time, at the perturbed weights (as in the reference); put BatchNorm layers
       in ``eval()`` mode, or set their ``momentum`` to 0, for the closure's pass to avoid it.

    Args:
        params: parameters or param-group dicts, as for any torch optimizer.
        base_optimizer: the optimizer that takes the step: a class (``descend.AdamW``,
            ``torch.optim.SGD``), a function ``params, **kwargs -> optimizer``, or a
            registry name (``"momentum"``, with the registry's defaults).
        rho: :math:`\rho`, the neighbourhood's radius (>= 0; the authors use 0.05 for SAM,
            larger, e.g. 2.0, for ASAM).
        adaptive: ASAM's scale-invariant neighbourhood.
        **kwargs: the base optimizer's hyperparameters.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.SAM([x], descend.SGD, rho=0.05, lr=0.1)
        >>> def closure():
        ...     opt.zero_grad(); loss = (x ** 2).sum(); loss.backward(); return loss
        >>> for _ in range(100):
        ...     _ = opt.step(closure)
        >>> bool(x.abs().max() < 0.05)
        True

    References:
        Foret, Kleiner, Mobahi & Neyshabur, "Sharpness-Aware Minimization for Efficiently
        Improving Generalization", ICLR 2021. https://arxiv.org/abs/2010.01412
        Kwon, Kim, Park & Choi, "ASAM: Adaptive Sharpness-Aware Minimization for
        Scale-Invariant Learning of Deep Neural Networks", ICML 2021. https://arxiv.org/abs/2102.11600
        Reference implementation: https://github.com/davda54/sam
    """

    # Read by descend.fit: a step needs a closure (the second pass).
    requires_closure = True

    def __init__(
        self,
        params: Params,
        base_optimizer: BaseOptimizer,
        rho: float = 0.05,
        adaptive: bool = False,
        **kwargs: Any,
    ) -> None:
        validate("SAM", {"rho": rho, "adaptive": adaptive}, {"rho": NON_NEGATIVE, "adaptive": BOOL})
        base = _build(base_optimizer, params, kwargs)
        self.rho, self.adaptive = float(rho), adaptive
        # torch's machinery (step hooks, the step wrapper schedulers patch) over the base's
        # groups and state, which stay the base's own objects.
        super().__init__([{"params": list(g["params"])} for g in base.param_groups], {})
        self.base_optimizer = base
        self._bind()

    def __repr__(self) -> str:
        return f"SAM(rho={self.rho}, adaptive={self.adaptive}) around {self.base_optimizer!r}"

    def _bind(self) -> None:
        self.param_groups = self.base_optimizer.param_groups
        self.state = self.base_optimizer.state
        self.defaults = self.base_optimizer.defaults
        self._restore: list[tuple[Tensor, Tensor]] = []

    def __getstate__(self) -> dict[str, Any]:
        return {
            **super().__getstate__(),
            "base_optimizer": self.base_optimizer,
            "rho": self.rho,
            "adaptive": self.adaptive,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._bind()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group to the base optimizer (the wrapper shares its groups)."""
        if "base_optimizer" not in self.__dict__:  # torch's constructor, before binding
            super().add_param_group(param_group)
        else:
            self.base_optimizer.add_param_group(param_group)

    def state_dict(self) -> dict[str, Any]:
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base_optimizer.load_state_dict(state_dict)
        self._bind()  # torch's loader builds new group dicts and a new state

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move to :math:`w + \\epsilon` (remembering :math:`w`) using the gradients now set."""
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not params:
            raise RuntimeError(
                "SAM needs the gradients at the current weights before its first step; got no "
                "parameter with a gradient. Call loss.backward() (or the closure) first."
            )
        grads = [p.grad for p in params]
        scaled = torch._foreach_mul(grads, torch._foreach_abs(params)) if self.adaptive else grads
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(scaled)))
        scale = self.rho / (norm + 1e-12)
        # eps = rho T^2 g / ||T g||, with the reference's order of operations: (w^2 g) scale.
        eps = torch._foreach_mul(torch._foreach_pow(params, 2), grads) if self.adaptive else grads
        eps = torch._foreach_mul(eps, scale)
        self._restore = list(zip(params, [p.detach().clone() for p in params], strict=True))
        torch._foreach_add_(params, eps)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Return to :math:`w` (its exact values, in its own storage) and step the base
        optimizer with the gradients now set (those at :math:`w + \\epsilon`)."""
        if not self._restore:
            raise RuntimeError("SAM.second_step() must follow first_step(); got no first step.")
        params, kept = zip(*self._restore, strict=True)
        copy_all(list(params), list(kept))
        self._restore = []
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One SAM step. ``closure`` clears the gradients, computes the loss and calls
        ``backward``. Returns the loss at :math:`w` when this step computed it (no gradient
        was set), else None (the caller computed it). The gradients are cleared at the end
        (those left were taken at the perturbed weights, not at the new ones)."""
        if closure is None:
            raise RuntimeError(
                "SAM.step needs a closure that recomputes the loss and its gradients (the "
                "second pass, at the perturbed weights). Got closure=None; see help(descend.SAM)."
            )
        loss = None
        if all(p.grad is None for g in self.param_groups for p in g["params"]):
            with torch.enable_grad():
                loss = closure()
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            closure()
        self.second_step(zero_grad=True)
        return loss


def _build(base: BaseOptimizer, params: Params, kwargs: dict[str, Any]) -> torch.optim.Optimizer:
    if isinstance(base, torch.optim.Optimizer):
        raise TypeError(
            "The 'base_optimizer' parameter of SAM must be an optimizer class, a function "
            "returning one, or a registry name (it is built over SAM's params). Got an "
            f"optimizer instance of {type(base).__name__} instead."
        )
    if isinstance(base, str):
        return make_optimizer(base, params, **kwargs)
    if not callable(base):
        raise TypeError(
            "The 'base_optimizer' parameter of SAM must be an optimizer class, a function "
            f"returning one, or a registry name. Got {base!r} instead."
        )
    return base(params, **kwargs)
