r"""Muon's core: Newton–Schulz orthogonalization of a matrix update, and the learning-rate
ratio that depends on the matrix's shape."""

from __future__ import annotations

import dataclasses
import math
from numbers import Integral, Real
from typing import Any

import torch
from torch import Tensor

from descend._validation import OneOf, Satisfies
from descend.optim._constraints import NON_NEGATIVE
from descend.optim.sharded import map_whole
from descend.optim.transform import Hyper, Quotient, State, Transform, picklable, stateless

# Keller Jordan's quintic coefficients (a, b, c), chosen to maximize the slope at zero.
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
ADJUST_LR_FNS = (None, "original", "match_rms_adamw")


def newton_schulz(
    g: Tensor,
    coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
    steps: int = 5,
    eps: float = 1e-7,
    dtype: torch.dtype | None = torch.bfloat16,
) -> Tensor:
    r"""About :math:`U V^\top` for :math:`G = U S V^\top`: ``steps`` iterations of
    :math:`X \leftarrow aX + (bA + cA^2)X` with :math:`A = XX^\top`, from
    :math:`X_0 = G / \max(\lVert G\rVert_F, \epsilon)`, in ``dtype`` (``None``: ``g``'s own).

    The operations are ``torch.optim.Muon``'s, in its order (``addmm``), so the result is
    the same bit for bit. The iteration runs on the wide orientation (rows ≤ columns), so
    :math:`A` is the smaller Gram matrix. Returns a tensor in ``dtype``.
    """
    if g.ndim != 2:
        raise ValueError(
            f"Newton–Schulz orthogonalizes matrices. Got a tensor of shape {tuple(g.shape)} "
            "instead."
        )
    a, b, c = coefficients
    x = g.to(g.dtype if dtype is None else dtype, copy=True)  # ours to scale in place
    tall = g.size(0) > g.size(1)
    if tall:
        x = x.T
    # The Frobenius norm bounds the spectral norm: every singular value starts in [0, 1].
    x.div_(x.norm().clamp(min=eps))
    for _ in range(steps):
        gram = x @ x.T
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.addmm(x, poly, x, beta=a)
    return x.T if tall else x


def newton_schulz_cost(shape: torch.Size) -> float:
    """Multiply-adds of one Newton–Schulz iteration on a matrix of ``shape`` (a filter as
    ``out × in·kh·kw``): two ``m × m × n`` products and one ``m × m × m``, ``m ≤ n``."""
    rows, cols = shape[0], math.prod(shape[1:])
    m, n = min(rows, cols), max(rows, cols)
    return 2 * m * m * n + m**3


def shape_ratio(adjust_lr_fn: str | None, shape: torch.Size | tuple[int, ...]) -> float:
    r"""The factor Muon multiplies the learning rate by for an ``A × B`` matrix (a filter
    ``(out, in, kh, kw)`` counts as ``out × in·kh·kw``): :math:`\sqrt{\max(1, A/B)}` (``"original"`` or ``None``: Keller Jordan's) or
    :math:`0.2\sqrt{\max(A, B)}` (``"match_rms_adamw"``: Moonshot's, an update RMS near
    AdamW's, so AdamW's learning rate and weight decay carry over)."""
    rows = shape[0]
    cols = math.prod(shape[1:])
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return math.sqrt(max(1, rows / cols))


def _is_coefficients(value: Any) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) == 3
        and all(isinstance(v, Real) and math.isfinite(v) for v in value)
    )


def _is_ns_steps(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool) and 0 <= value < 100


@picklable
def orthogonalize(
    *, dtype: torch.dtype | None = torch.bfloat16, flatten: bool = False
) -> Transform:
    r"""Replace each matrix update by (about) the nearest semi-orthogonal matrix: Muon's step.

    .. math::
        X_0 &= G / \max(\lVert G\rVert_F,\ \epsilon), \qquad
        A_k = X_k X_k^\top\\
        X_{k+1} &= a X_k + (b A_k + c A_k^2) X_k \qquad (k < K),
        \qquad u = X_K \approx U V^\top \ \text{for}\ G = U S V^\top

    Symbols: :math:`(a, b, c)` is ``ns_coefficients`` (default ``(3.4445, -4.7750,
    2.0315)``), :math:`K` is ``ns_steps`` (5), :math:`\epsilon` is ``eps`` (1e-7). The
    coefficients push every singular value towards 1 fast rather than exactly: the result
    is :math:`U S' V^\top` with :math:`S'_{ii}` roughly in :math:`[0.5, 1.5]`, which trains as
    well (Jordan et al.). Stateless; it needs the whole matrix, so it is not elementwise,
    and every tensor must be 2-D. Sharded tensors (FSDP2's row-sharded ``DTensor``\ s)
    are orthogonalized a share per rank: each matrix's owner receives its rows (in
    ``dtype``), orthogonalizes it whole and sends each rank its rows back, two
    ``all_to_all``\ s per step for all the matrices (:mod:`descend.optim.sharded`);
    under DDP (:func:`descend.optim.sharded.replicated`, which ``fit`` enters) each rank
    orthogonalizes its share and one all-gather brings every rank the rest; either way
    the result is the unsharded one, bit for bit (docs/scale.md).

    Args:
        dtype: the dtype the iteration runs in. ``torch.bfloat16`` (the default) is
            Keller Jordan's reference and ``torch.optim.Muon``, on every device and for
            every parameter dtype, float64 included; ``None`` runs it in the gradient's
            dtype (a float64 reference, or float32 where bfloat16 matmuls are slow). The
            update stays in ``dtype`` in an eager step (later arithmetic with the
            parameters promotes it exactly, from bfloat16), else is cast back.
        flatten: orthogonalize a tensor of more than two dimensions (a conv filter
            ``(out, in, kh, kw)``) as the matrix ``(out, in * kh * kw)``, as Keller Jordan's
            reference does; ``False`` (torch's Muon) takes matrices only.

    .. warning:: The iteration's input is normalized by :math:`\max(\lVert G\rVert_F,
       \epsilon)` as in ``torch.optim.Muon``; Keller Jordan's reference divides by
       :math:`\lVert G\rVert_F + \epsilon` (a relative difference of
       :math:`\epsilon / \lVert G\rVert_F`).

    Example:
        >>> import torch
        >>> from descend.optim.transforms.orthogonalize import orthogonalize
        >>> g = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
        >>> hp = {"ns_coefficients": (3.4445, -4.7750, 2.0315), "ns_steps": 5, "eps": 1e-7}
        >>> (u,) = orthogonalize(dtype=None).update([g], {}, [g], hp)
        >>> s = torch.linalg.svdvals(u)
        >>> bool(s.min() > 0.5 and s.max() < 1.5)  # singular values near 1, not exactly
        True

    References:
        Jordan et al., "Muon: An optimizer for hidden layers in neural networks", 2024.
        https://kellerjordan.github.io/posts/muon/ ; code: https://github.com/KellerJordan/Muon
    """

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        coefficients, steps, eps = hp["ns_coefficients"], hp["ns_steps"], hp["eps"]
        # Left in ``dtype`` in an eager step: what follows (the shape ratio, the decay, the
        # parameter update) promotes it to the parameter's dtype exactly, as torch's
        # ``param.add_(update)`` does, without a pass to convert it. Converted where a step
        # may scale it by a tensor lr in its own dtype (compiled or differentiable).
        back = torch.compiler.is_compiling() or torch.is_grad_enabled()

        def whole(g: Tensor) -> Tensor:
            m = g.reshape(g.shape[0], -1) if flatten and g.ndim > 2 else g
            return newton_schulz(m, coefficients, steps, eps, dtype).view(g.shape)

        # Shards and DDP's replicated matrices are shared out among the ranks (sharded.py).
        out = map_whole(grads, whole, dtype, newton_schulz_cost)
        return [o.to(g.dtype) if back else o for o, g in zip(out, grads, strict=True)]

    def direction(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> Quotient:
        # A direction without a denominator: the fold adds it to the parameters with the
        # step size -lr * r in one pass, as torch's ``param.add_(update, alpha=...)``.
        return update(grads, state, params, hp), None, None

    transform = stateless(
        update,
        name=f"orthogonalize[{'flat, ' * flatten}{str(dtype).removeprefix('torch.')}]",
        defaults={"ns_coefficients": NS_COEFFICIENTS, "eps": 1e-7, "ns_steps": 5},
        constraints={
            "ns_coefficients": Satisfies(_is_coefficients, "a tuple of three finite floats"),
            "eps": NON_NEGATIVE,
            "ns_steps": Satisfies(_is_ns_steps, "an int in [0, 100)"),
        },
    )
    return dataclasses.replace(transform, quotient=direction)


@picklable
def scale_by_shape() -> Transform:
    r"""Multiply each matrix's update by Muon's shape ratio (:func:`shape_ratio`).

    .. math::
        u \leftarrow r(A, B)\, u, \qquad r = \begin{cases}
            \sqrt{\max(1, A/B)} & \texttt{adjust\_lr\_fn} \in \{\text{None}, \text{"original"}\}\\
            0.2\sqrt{\max(A, B)} & \texttt{adjust\_lr\_fn} = \text{"match\_rms\_adamw"}
        \end{cases}

    for an :math:`A \times B` matrix. An orthogonalized update has RMS
    :math:`1/\sqrt{\max(A, B)}`; ``"match_rms_adamw"`` brings it to about 0.2, the RMS of a
    typical AdamW update (Liu et al., "Muon is Scalable for LLM Training", 2025,
    https://arxiv.org/abs/2502.16982).
    """

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        ratios = _ratios(grads, state, params, hp)
        # Only the matrices whose ratio is not 1 (wide and square ones keep theirs), in the
        # parameter's dtype: a bfloat16 update (orthogonalize's) times r in bfloat16 would
        # round again.
        return [
            g if r == 1 else g.to(torch.promote_types(g.dtype, p.dtype), copy=True).mul_(r)
            for g, p, r in zip(grads, params, ratios, strict=True)
        ]

    scale = stateless(
        update,
        name="scale_by_shape",
        defaults={"adjust_lr_fn": None},
        constraints={"adjust_lr_fn": OneOf(ADJUST_LR_FNS)},
    )
    # An eager step multiplies r into the learning rate instead (torch's ``alpha=-lr * r``).
    return dataclasses.replace(scale, factors=_ratios)


def _ratios(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[float]:
    """Each update's :func:`shape_ratio` (:attr:`Transform.factors` of :func:`scale_by_shape`)."""
    return [shape_ratio(hp["adjust_lr_fn"], g.shape) for g in grads]
