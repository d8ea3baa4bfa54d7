"""Hessian-vector products and extreme Hessian eigenvalues of a scalar function of one tensor.

The Hessian is never formed: :func:`hvp` costs one double backward pass, and
:func:`lanczos` needs only a matrix-vector product. For a network, turn the loss
into a function of one flat parameter vector (``torch.func.functional_call``) and
use the same routines.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from descend._validation import Interval, validate

Matvec = Callable[[Tensor], Tensor]


def hvp_operator(fun: Callable[[Tensor], Tensor], x: Tensor) -> Matvec:
    """Return :math:`v \\mapsto \\nabla^2 f(x)\\, v`, reusing one gradient graph for every product.

    .. math::
        \\nabla^2 f(x)\\, v = \\nabla_x \\big( \\nabla f(x)^\\top v \\big)

    Args:
        fun: scalar function of one tensor, differentiable twice by autograd.
        x: the point; not modified.

    Returns:
        A function taking ``v`` (shape of ``x``) to the product (shape of ``x``).

    Example:
        >>> import torch
        >>> mv = hvp_operator(lambda x: (x**3).sum(), torch.tensor([1.0, 2.0]))
        >>> mv(torch.tensor([1.0, 1.0]))
        tensor([ 6., 12.])
    """
    xg = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        value = fun(xg)
        if value.numel() != 1:
            raise ValueError(f"fun must return a scalar. Got shape {tuple(value.shape)} instead.")
        (grad,) = torch.autograd.grad(value.reshape(()), xg, create_graph=True)

    def matvec(v: Tensor) -> Tensor:
        # A gradient with no graph back to x (f linear in x) has a zero Hessian.
        if not grad.requires_grad:
            return torch.zeros_like(xg)
        (hv,) = torch.autograd.grad(grad, xg, grad_outputs=v, retain_graph=True, allow_unused=True)
        return torch.zeros_like(xg) if hv is None else hv.detach()

    return matvec


def hvp(fun: Callable[[Tensor], Tensor], x: Tensor, v: Tensor) -> Tensor:
    """One Hessian-vector product :math:`\\nabla^2 f(x)\\, v` by double backward.

    Args:
        fun: scalar function of one tensor.
        x: the point.
        v: the direction, same shape as ``x``.

    Returns:
        :math:`\\nabla^2 f(x)\\, v`, detached, shape of ``x``.

    Example:
        >>> import torch
        >>> hvp(lambda x: x[0] ** 2 - x[1] ** 2, torch.zeros(2), torch.tensor([1.0, 1.0]))
        tensor([ 2., -2.])
    """
    return hvp_operator(fun, x)(v)


def lanczos(
    matvec: Matvec,
    n: int,
    *,
    iters: int = 30,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> Tensor:
    """Ritz values of a symmetric operator by Lanczos with full reorthogonalisation.

    From a random unit :math:`q_1`, build the Krylov basis :math:`Q` and the
    tridiagonal :math:`T = Q^\\top A Q`:

    .. math::
        w = A q_j - \\beta_{j-1} q_{j-1}, \\quad \\alpha_j = q_j^\\top w, \\quad
        w \\leftarrow w - Q Q^\\top w, \\quad \\beta_j = \\lVert w \\rVert, \\quad
        q_{j+1} = w / \\beta_j

    The extreme eigenvalues of :math:`T` converge first to those of :math:`A`; with
    ``iters >= n`` (or an early breakdown, :math:`\\beta_j \\approx 0`) they are exact.

    Args:
        matvec: :math:`v \\mapsto A v` on flat vectors of length ``n``.
        n: dimension of the operator.
        iters: Krylov steps, at most ``n`` are taken.
        dtype: dtype of the Lanczos vectors.
        device: device of the Lanczos vectors.
        seed: seed of the random start vector (runs are reproducible).

    Returns:
        The Ritz values, ascending, a 1-D tensor of length at most ``iters``.

    Example:
        >>> import torch
        >>> A = torch.diag(torch.tensor([-1.0, 2.0, 5.0], dtype=torch.float64))
        >>> lanczos(lambda v: A @ v, 3, iters=3).round(decimals=6)
        tensor([-1.,  2.,  5.], dtype=torch.float64)
    """
    validate(
        "lanczos",
        {"n": n, "iters": iters},
        {"n": Interval(1, None, integer=True), "iters": Interval(1, None, integer=True)},
    )
    steps = min(int(n), int(iters))
    gen = torch.Generator(device="cpu").manual_seed(seed)
    q = torch.randn(n, generator=gen, dtype=dtype).to(device)
    q = q / q.norm()
    basis = [q]
    alphas: list[Tensor] = []
    betas: list[Tensor] = []
    # Breakdown threshold relative to the operator's scale seen so far.
    tiny = torch.finfo(dtype).eps ** 0.5
    for j in range(steps):
        w = matvec(basis[j]).to(dtype)
        alpha = torch.dot(basis[j], w)
        alphas.append(alpha)
        Q = torch.stack(basis)  # (j+1, n)
        # Full reorthogonalisation, twice ("twice is enough"), keeps Q orthonormal in floating point.
        w = w - Q.T @ (Q @ w)
        w = w - Q.T @ (Q @ w)
        beta = w.norm()
        scale = max(float(alpha.abs()), max((float(b) for b in betas), default=0.0), 1e-30)
        if j == steps - 1 or float(beta) <= tiny * scale:
            break
        betas.append(beta)
        basis.append(w / beta)
    a = torch.stack(alphas)
    T = torch.diag(a)
    if betas:
        b = torch.stack(betas)
        T = T + torch.diag(b, 1) + torch.diag(b, -1)
    return torch.linalg.eigvalsh(T)


def hessian_eigenvalues(
    fun: Callable[[Tensor], Tensor], x: Tensor, *, iters: int = 30, seed: int = 0
) -> Tensor:
    """Ritz values of the Hessian of ``fun`` at ``x`` (Lanczos on :func:`hvp_operator`).

    Args:
        fun: scalar function of one tensor.
        x: the point (any shape; it is treated as a flat vector).
        iters: Lanczos steps (exact when ``iters >= x.numel()``).
        seed: seed of the Lanczos start vector.

    Returns:
        Ascending Ritz values in the dtype of ``x``.

    Example:
        >>> import torch
        >>> f = lambda x: x[0] ** 2 - x[1] ** 2
        >>> hessian_eigenvalues(f, torch.zeros(2, dtype=torch.float64)).round(decimals=6)
        tensor([-2.,  2.], dtype=torch.float64)
    """
    shape = x.shape
    op = hvp_operator(fun, x)

    def flat_matvec(v: Tensor) -> Tensor:
        return op(v.to(x.dtype).reshape(shape)).reshape(-1)

    return lanczos(flat_matvec, x.numel(), iters=iters, dtype=x.dtype, device=x.device, seed=seed)


def hessian_extreme_eigenvalues(
    fun: Callable[[Tensor], Tensor], x: Tensor, *, iters: int = 30, seed: int = 0
) -> tuple[float, float]:
    """The smallest and largest Hessian eigenvalues of ``fun`` at ``x``, by Lanczos.

    A negative smallest eigenvalue at a point where the gradient vanishes marks a
    saddle point; the largest bounds the stable learning rate of gradient descent,
    :math:`\\eta < 2 / \\lambda_{\\max}`.

    Args:
        fun: scalar function of one tensor.
        x: the point.
        iters: Lanczos steps (exact when ``iters >= x.numel()``).
        seed: seed of the Lanczos start vector.

    Returns:
        ``(smallest, largest)`` as Python floats.

    Example:
        >>> import torch
        >>> lo, hi = hessian_extreme_eigenvalues(lambda x: x[0] ** 2 - x[1] ** 2, torch.zeros(2))
        >>> round(lo, 6), round(hi, 6)
        (-2.0, 2.0)
    """
    values = hessian_eigenvalues(fun, x, iters=iters, seed=seed)
    return float(values[0]), float(values[-1])


extreme_eigenvalues = hessian_extreme_eigenvalues
