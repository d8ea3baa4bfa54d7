"""``linreg``: least squares on generated data, where the optimum is known in closed form."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from descend.tasks._common import lr_table
from descend.tasks.task import Target, Task, TaskData

N_TRAIN, N_VAL, N_FEATURES = 512, 256, 10
NOISE_STD = 0.1


def _mse(output: Tensor, target: Tensor) -> Tensor:
    return nn.functional.mse_loss(output, target)


def _data(seed: int) -> TaskData:
    g = torch.Generator().manual_seed(seed)
    n = N_TRAIN + N_VAL
    # Features with different scales make the problem mildly ill-conditioned,
    # so plain gradient descent and adaptive methods visibly differ.
    scales = torch.linspace(0.5, 2.0, N_FEATURES)
    x = torch.randn(n, N_FEATURES, generator=g) * scales
    w_true = torch.randn(1, N_FEATURES, generator=g)
    b_true = torch.randn(1, generator=g)
    y = x @ w_true.T + b_true + NOISE_STD * torch.randn(n, 1, generator=g)
    x_tr, y_tr, x_va, y_va = x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]

    # The minimiser of the train MSE, in float64 so it is a trustworthy reference.
    design = torch.cat([x_tr, torch.ones(N_TRAIN, 1)], 1).double()
    sol = torch.linalg.lstsq(design, y_tr.double()).solution  # (F + 1, 1)
    w_opt, b_opt = sol[:-1].T.float(), sol[-1].float()

    def loss_at(xs: Tensor, ys: Tensor) -> float:
        return (xs @ w_opt.T + b_opt - ys).pow(2).mean().item()

    meta = {
        "optimum": {"weight": w_opt, "bias": b_opt},
        "optimum_train_loss": loss_at(x_tr, y_tr),
        "optimum_val_loss": loss_at(x_va, y_va),
        "true_weight": w_true,
        "true_bias": b_true,
        "noise_std": NOISE_STD,
    }
    return TaskData(train=(x_tr, y_tr), val=(x_va, y_va), meta=meta)


def linreg() -> Task:
    """Linear regression, y = x w + b + noise; ``meta["optimum"]`` holds the lstsq solution."""
    return Task(
        name="linreg",
        summary="least-squares linear regression; the optimum is known in closed form",
        data_source=(
            f"generated: {N_TRAIN}+{N_VAL} samples, {N_FEATURES} Gaussian features of scales "
            f"0.5..2, noise std {NOISE_STD}"
        ),
        model_summary=f"nn.Linear({N_FEATURES}, 1)",
        # Noise floor: MSE = NOISE_STD**2 = 0.01; the lstsq optimum's val loss is ~0.009-0.011.
        target=Target("val_loss", 0.012, "min"),
        epochs=200,
        batch_size=None,
        lrs=lr_table(0.05, gd=0.1, sgd=0.1, momentum=0.05, nesterov=0.05, adagrad=0.5),
        default_optimizer="gd",
        measured="val_loss 0.0091 (the lstsq optimum), at target from epoch 44",
        metrics={},
        make_data=_data,
        make_model=lambda: nn.Linear(N_FEATURES, 1),
        loss_fn=_mse,
    )
