"""Every task's data: deterministic per seed, the shapes its model expects, and never downloaded."""

from __future__ import annotations

import math
import random
import shutil
import socket
import urllib.request

# Importing scikit-learn draws from Python's `random`; imported here, before the
# stream checks below, so those checks see only what *loading* a task's data does.
import mnist1d.data  # noqa: F401
import numpy as np
import pytest
import sklearn.datasets  # noqa: F401
import torch

from descend.tasks import _common, charlm, get_task, mnist1d_task, task_names

random.seed(7)
np.random.seed(7)
EXPECTED_DRAWS = (random.random(), np.random.rand())

# Tasks whose data changes with the seed (mnist1d keeps its canonical split).
SEEDED = {
    "linreg",
    "logreg",
    "digits",
    "deep_sigmoid",
    "deep_residual",
    "recommender",
    "charlm",
    "vae",
    "transformer",
    "gan",
    "speech",
}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach the network fails loudly, and the in-process caches start empty."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a task tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    _common.sklearn_dataset.cache_clear()
    mnist1d_task._generated.cache_clear()
    charlm.corpus.cache_clear()


def _equal(a: object, b: object) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))  # type: ignore[call-overload]


@pytest.mark.parametrize("name", task_names())
def test_data_is_deterministic_offline_and_fits_the_model(name: str, no_network: None) -> None:
    if name == "speech" and shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (.ci/run installs it)")
    task = get_task(name)
    random.seed(7)
    np.random.seed(7)
    first = task.data(0)  # the first load: every cache was emptied by the fixture
    # Loading leaves the global `random` and NumPy streams alone (mnist1d reseeds them inside).
    assert (random.random(), np.random.rand()) == EXPECTED_DRAWS
    again = task.data(0)
    assert _equal(first.train, again.train) and _equal(first.val, again.val)
    if name in SEEDED:
        assert not _equal(task.data(1).train, first.train)
    x, y = first.train
    xv, yv = first.val
    assert len(x) == len(y) > 0 and len(xv) == len(yv) > 0
    assert x.shape[1:] == xv.shape[1:] and y.shape[1:] == yv.shape[1:]

    model = task.model(0)
    model.train()
    out = model(x[:16])
    loss = task.loss(out, y[:16])
    assert loss.dim() == 0 and math.isfinite(loss.item())
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad():
        out = model(xv[:16])
        for metric in task.metrics.values():
            assert math.isfinite(metric(out, yv[:16]))


def test_linreg_exposes_its_closed_form_optimum() -> None:
    data = get_task("linreg").data(0)
    x, y = data.train
    opt = data.meta["optimum"]
    pred = x @ opt["weight"].T + opt["bias"]
    # The optimum's residual is orthogonal to the features (normal equations).
    residual = (pred - y).squeeze(1)
    assert residual.abs().mean() < 0.2
    assert (x.T @ residual).abs().max() < 1e-3 * len(x)  # the true weights give ~4
    noise = data.meta["noise_std"] ** 2
    assert 0.5 * noise < data.meta["optimum_val_loss"] < 1.5 * noise


def test_logreg_is_standardised_with_train_statistics() -> None:
    data = get_task("logreg").data(0)
    x, _ = data.train
    assert torch.allclose(x.mean(0), torch.zeros(x.shape[1]), atol=1e-5)
    assert torch.allclose(x.std(0), torch.ones(x.shape[1]), atol=1e-4)
    assert not torch.allclose(data.val[0].mean(0), torch.zeros(x.shape[1]), atol=1e-3)
