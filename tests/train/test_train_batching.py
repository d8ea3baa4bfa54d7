"""Batch, stochastic and mini-batch gradient descent make the updates they should."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import Dataset
from train_problems import mlp, regression

from descend.train import fit
from descend.train.batching import Batches


class PairDataset(Dataset):
    """A plain indexable dataset (not a TensorDataset): the per-sample path."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i]


@pytest.mark.parametrize("batch_size, per_epoch", [(None, 1), (1, 10), (3, 4), (10, 1), (64, 1)])
@pytest.mark.parametrize("wrap", [False, True])
def test_updates_per_epoch(batch_size, per_epoch, wrap):
    x, y = regression(n=10)
    data = PairDataset(x, y) if wrap else (x, y)
    h = fit(
        mlp(),
        data,
        torch.nn.MSELoss(),
        torch.optim.SGD(mlp().parameters(), lr=0.0),
        epochs=2,
        batch_size=batch_size,
        progress=False,
        eval_train=False,
    )
    assert len(h.steps) == 2 * per_epoch
    assert [r["epoch"] for r in h.steps] == [1] * per_epoch + [2] * per_epoch
    assert [r["step"] for r in h.steps] == list(range(1, 2 * per_epoch + 1))
    assert [r["step"] for r in h.epochs] == [per_epoch, 2 * per_epoch]


def test_each_epoch_sees_every_sample_once_in_a_seeded_order():
    b = Batches((torch.arange(10.0), torch.arange(10)), 3, torch.device("cpu"))
    assert b.n_batches == math.ceil(10 / 3)
    orders = []
    for epoch in (1, 2):
        order = b.order(seed=5, epoch=epoch, shuffle=True)
        seen = torch.cat([b.batch(order, i)[1] for i in range(b.n_batches)])
        assert sorted(seen.tolist()) == list(range(10))
        orders.append(seen.tolist())
    assert orders[0] != orders[1]
    again = b.order(seed=5, epoch=1, shuffle=True)
    assert torch.cat([b.batch(again, i)[1] for i in range(b.n_batches)]).tolist() == orders[0]
    assert b.order(seed=5, epoch=1, shuffle=False) is None


def test_dataset_and_tensors_give_the_same_run():
    x, y = regression(n=12)
    runs = []
    for data in ((x, y), PairDataset(x, y)):
        model = mlp()
        fit(
            model,
            data,
            torch.nn.MSELoss(),
            torch.optim.SGD(model.parameters(), lr=0.1),
            epochs=2,
            batch_size=5,
            progress=False,
        )
        runs.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*runs):
        assert torch.equal(a, b)
