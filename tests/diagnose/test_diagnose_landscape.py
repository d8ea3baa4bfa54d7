"""Loss-landscape slices: filter normalization, the line, the plane and the projected trajectory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diag_problems import quadratic
from torch import nn

from descend.diagnose import (
    ParameterSnapshots,
    interpolate,
    loss_at,
    parameter_vector,
    pca_directions,
    plane,
    project,
    random_directions,
)
from descend.train import fit


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 16, 3),
    )


def test_directions_are_filter_normalized_and_skip_biases_and_batchnorm():
    model = _cnn()
    d1, d2 = random_directions(model, seed=3)
    assert not torch.equal(d1, d2)
    offset = 0
    for name, p in model.named_parameters():
        piece = d1[offset : offset + p.numel()].view(p.shape)
        offset += p.numel()
        if p.ndim < 2:
            assert torch.count_nonzero(piece) == 0, name
        else:
            filters = p.detach().reshape(p.shape[0], -1).norm(dim=1)
            torch.testing.assert_close(piece.reshape(p.shape[0], -1).norm(dim=1), filters)
    e1, _ = random_directions(model, seed=3)
    assert torch.equal(d1, e1)  # fixed by the seed


def test_interpolation_ends_are_the_two_losses_and_the_model_is_untouched():
    model, data, _ = quadratic()
    a = parameter_vector(model)
    b = torch.zeros_like(a)
    line = interpolate(model, a, {"weight": b.view(1, -1)}, data, nn.MSELoss(), num=11)
    assert line.losses[0] == pytest.approx(loss_at(model, a, data, nn.MSELoss()))
    assert line.losses[-1] == pytest.approx(float(nn.MSELoss()(torch.zeros_like(data[1]), data[1])))
    assert torch.equal(parameter_vector(model), a)
    # On a quadratic the loss along a line is a parabola: second differences are constant.
    second = line.losses[2:] - 2 * line.losses[1:-1] + line.losses[:-2]
    assert second == pytest.approx([second[0]] * len(second), rel=1e-3)


def test_plane_centre_and_projection_of_known_points():
    model = _cnn()
    x, y = torch.randn(24, 1, 4, 4), torch.randint(0, 3, (24,))
    center = parameter_vector(model)
    d1, d2 = random_directions(model, seed=0)
    surface = plane(model, center, d1, d2, (x, y), nn.functional.cross_entropy, grid=5, span=0.5)
    assert surface.losses.shape == (5, 5)
    assert surface.losses[2, 2] == pytest.approx(
        loss_at(model, center, (x, y), nn.functional.cross_entropy), rel=1e-5
    )
    assert surface.losses[0, 4] == pytest.approx(
        loss_at(model, center + 0.5 * d1 - 0.5 * d2, (x, y), nn.functional.cross_entropy), rel=1e-5
    )
    points = torch.stack([center + 0.3 * d1 - 0.2 * d2, center, center - 1.0 * d2])
    coords = project(points, center, d1, d2)
    assert coords == pytest.approx(np.array([[0.3, -0.2], [0.0, 0.0], [0.0, -1.0]]), abs=1e-5)


def test_snapshots_record_the_trajectory_and_pca_finds_its_plane():
    model, data, lam = quadratic(d=6)
    snaps = ParameterSnapshots(every_n_steps=4)
    fit(
        model,
        data,
        nn.MSELoss(),
        "gd",
        optimizer_options={"lr": 0.5 / lam},
        max_steps=10,
        callbacks=[snaps],
        progress=False,
    )
    assert snaps.steps == [0, 4, 8, 10]
    path = snaps.trajectory()
    assert torch.equal(path[-1], parameter_vector(model))
    d1, d2 = pca_directions(path, path[-1])
    coords = torch.as_tensor(project(path, path[-1], d1, d2), dtype=torch.float64)
    # The path is 4 points, so 2 principal directions capture most of it.
    rebuilt = path[-1].double() + coords[:, :1] * d1.double() + coords[:, 1:] * d2.double()
    residual = (rebuilt - path.double()).norm() / (path - path[-1]).double().norm()
    assert residual < 0.2
