"""SOAP: Adam run in the eigenbasis of Shampoo's preconditioner (Vyas et al., 2024), and
its weight decay (applied to the stepped weights, as the reference does)."""

from __future__ import annotations

import torch
from torch import Tensor

from descend._validation import Interval, OneOf, Satisfies
from descend.optim._constraints import BETAS, FLAG, LEARNING_RATE, NON_NEGATIVE
from descend.optim.sharded import gather_whole, is_sharded, local_rows
from descend.optim.transform import Hyper, State, Transform, picklable
from descend.optim.transforms import eigenbasis as eb

POSITIVE_INT = Interval(1, None, closed="left", integer=True)
# The reference's "-1: use betas[1]", or a decay rate in [0, 1).
SHAMPOO_BETA = Satisfies(
    lambda v: v == -1 or (not isinstance(v, bool) and 0 <= v < 1),
    "-1 (use betas[1]) or a float in [0, 1)",
)
DATA_FORMAT = OneOf(("channels_first", "channels_last"))


@picklable
def scale_by_soap() -> Transform:
    r"""Adam's moments kept in the eigenbasis of Shampoo's per-dimension statistics.

    For a parameter with gradient :math:`G` (a matrix here; a tensor has one statistic
    per dimension, a vector none unless ``precondition_1d``):

    .. math::
        L_t &= \beta_s L_{t-1} + (1-\beta_s)\, G_t G_t^\top, \qquad
        R_t = \beta_s R_{t-1} + (1-\beta_s)\, G_t^\top G_t\\
        Q_L, Q_R &\leftarrow \operatorname{eigh}(L, R) \text{ at the first step; then every
        } f \text{ steps } Q \leftarrow \operatorname{qr}(L Q),\ \operatorname{qr}(R Q)\\
        \tilde G_t &= Q_L^\top G_t Q_R, \qquad
        M_t = \beta_1 M_{t-1} + (1-\beta_1) \tilde G_t, \qquad
        V_t = \beta_2 V_{t-1} + (1-\beta_2) \tilde G_t^2\\
        N_t &= Q_L \frac{M_t}{\sqrt{V_t} + \epsilon} Q_R^\top, \qquad
        N_t \leftarrow N_t / (10^{-30} + \operatorname{RMS}(N_t)) \ \text{(normalize\_grads)}\\
        u_t &= \frac{\sqrt{1-\beta_2^{s}}}{1-\beta_1^{s}}\, N_t \quad (s = t - 1)

    The first step only measures: it fills :math:`L, R`, computes their eigenvectors and
    returns a zero update, so that no step uses a basis built from its own gradient. When
    the basis changes, :math:`M` is rotated into the new one (:math:`V` is only permuted
    with the sorted columns), as in the authors' code.

    Symbols: :math:`(\beta_1, \beta_2)` ``betas``, :math:`\beta_s` ``shampoo_beta`` (-1:
    :math:`\beta_2`), :math:`\epsilon` ``eps``, :math:`f` ``precondition_frequency``;
    ``max_precond_dim`` (a larger dimension is not rotated), ``merge_dims`` (merge
    consecutive dimensions while their product fits, after a channels-last 4-D tensor is
    made channels-first per ``data_format``), ``correct_bias``. State ``exp_avg``
    (:math:`M`, in the eigenbasis), ``exp_avg_sq`` (:math:`V`), ``GG`` (the statistics,
    ``None`` for a dimension not rotated), ``Q`` (the bases), and ``step``.

    On FSDP2's sharded parameters every rank gathers each gradient whole (one all-gather
    per tensor per step, in float32 at least) and computes the whole step, keeping the
    whole state, the same on every rank: the moments live in the eigenbasis of the whole
    matrix, so no rank's rows of them are its own (docs/scale.md).

    .. warning:: :math:`\epsilon` is added to :math:`\sqrt{V}` before bias correction (the
       reference's form), unlike ``scale_by_adam``. Moments, statistics and bases are kept
       in float32 at least (eigh and QR need it); what ``load_state_dict`` casts to a
       bfloat16 parameter's dtype is promoted back at the next step.

    References:
        Vyas et al., "SOAP: Improving and Stabilizing Shampoo using Adam", ICLR 2025.
        https://arxiv.org/abs/2409.11321 ; code: https://github.com/nikhilvyas/SOAP
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        # A sharded parameter's state is whole, the same on every rank (see the class doc).
        wholes = [p.to_local().new_zeros(p.shape) if is_sharded(p) else p for p in params]

        def zeros() -> list[Tensor]:
            dtypes = [torch.promote_types(p.dtype, torch.float32) for p in params]
            return [torch.zeros_like(p, dtype=d) for p, d in zip(wholes, dtypes, strict=True)]

        return {
            "exp_avg": zeros(),
            "exp_avg_sq": zeros(),
            "GG": [eb.statistics(p, hp) for p in wholes],
            "Q": [None] * len(params),
        }

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        beta1, beta2 = hp["betas"]
        shampoo = 1 - (beta2 if hp["shampoo_beta"] < 0 else hp["shampoo_beta"])
        out = []
        for i, (grad, t) in enumerate(zip(grads, hp["step"], strict=True)):
            work = torch.promote_types(grad.dtype, torch.float32)
            if state["exp_avg"][i].dtype != work:
                _promote(state, i, work)
            sharded = is_sharded(grad)
            g = eb.to_work(gather_whole(grad, work) if sharded else grad.to(work), hp)
            stats = state["GG"][i]
            if state["Q"][i] is None:
                eb.accumulate(stats, g, shampoo)
                state["Q"][i] = eb.eigenvectors(stats)
                out.append(torch.zeros_like(grad))
                continue
            basis = state["Q"][i]
            m, v = state["exp_avg"][i], state["exp_avg_sq"][i]
            shape = m.shape
            rotated = eb.from_work(eb.rotate(g, basis), shape, hp)
            m.mul_(beta1).add_(rotated, alpha=1 - beta1)
            v.mul_(beta2).add_(rotated.square(), alpha=1 - beta2)
            denom = v.sqrt().add_(hp["eps"])
            n = eb.from_work(eb.rotate(eb.to_work(m / denom, hp), basis, back=True), shape, hp)
            if hp["normalize_grads"]:
                n = n / (1e-30 + torch.mean(n**2) ** 0.5)
            s = t - 1  # the reference counts the steps that update, not the first
            if hp["correct_bias"]:
                n = n * ((1 - beta2**s) ** 0.5 / (1 - beta1**s))
            out.append(local_rows(n.to(grad.dtype), grad) if sharded else n.to(grad.dtype))
            eb.accumulate(stats, g, shampoo)
            if s % hp["precondition_frequency"] == 0:
                # A new basis: M is rotated into it, V permuted with its sorted columns.
                back = eb.rotate(eb.to_work(m, hp), basis, back=True)
                new, second = eb.refresh(stats, basis, eb.to_work(v, hp))
                state["Q"][i] = new
                state["exp_avg_sq"][i] = eb.from_work(second, shape, hp)
                state["exp_avg"][i] = eb.from_work(eb.rotate(back, new), shape, hp)
        return out

    return Transform(
        init,
        update,
        {
            "betas": (0.95, 0.95),
            "shampoo_beta": -1,
            "eps": 1e-8,
            "precondition_frequency": 10,
            "max_precond_dim": 10000,
            "merge_dims": False,
            "precondition_1d": False,
            "normalize_grads": False,
            "data_format": "channels_first",
            "correct_bias": True,
        },
        {
            "betas": BETAS,
            "shampoo_beta": SHAMPOO_BETA,
            "eps": NON_NEGATIVE,
            "precondition_frequency": POSITIVE_INT,
            "max_precond_dim": POSITIVE_INT,
            "merge_dims": FLAG,
            "precondition_1d": FLAG,
            "normalize_grads": FLAG,
            "data_format": DATA_FORMAT,
            "correct_bias": FLAG,
        },
        True,
        "scale_by_soap",
    )


def _promote(state: State, i: int, dtype: torch.dtype) -> None:
    # load_state_dict casts state to a bfloat16 parameter's dtype; eigh and QR need float32.
    for key in ("exp_avg", "exp_avg_sq"):
        state[key][i] = state[key][i].to(dtype)
    for key in ("GG", "Q"):
        if state[key][i] is not None:
            state[key][i] = [None if t is None else t.to(dtype) for t in state[key][i]]


@picklable
def decay_after_step() -> Transform:
    r"""Decoupled weight decay of the weights *after* the step, skipped on a parameter's
    first step (where SOAP only measures), as the SOAP reference applies it.

    .. math::
        u \leftarrow u - \eta\lambda\,(\theta + u)
        \qquad (\theta_t = (\theta_{t-1} + u)(1 - \eta\lambda))

    Symbols: :math:`\eta` ``lr``, :math:`\lambda` ``weight_decay`` (default 0.01).
    """

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        rate = hp["lr"] * hp["weight_decay"]
        if rate == 0:
            return grads
        return [
            u if t == 1 else u - rate * (p + u)
            for u, p, t in zip(grads, params, hp["step"], strict=True)
        ]

    return Transform(
        lambda params, hp: {},
        update,
        {"lr": 3e-3, "weight_decay": 1e-2},
        {"lr": LEARNING_RATE, "weight_decay": NON_NEGATIVE},
        True,
        "decay_after_step",
    )
