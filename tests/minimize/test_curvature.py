"""Hessian-vector products and Lanczos eigenvalues against the explicit Hessian."""

from __future__ import annotations

import doctest

import pytest
import torch

import descend.curvature
from descend.curvature import hessian_eigenvalues, hessian_extreme_eigenvalues, hvp, lanczos


def _wiggly(x: torch.Tensor) -> torch.Tensor:
    # A non-quadratic function with an indefinite Hessian at most points.
    a = torch.arange(1, x.numel() + 1, dtype=x.dtype)
    return (torch.sin(a * x) * x).sum() + 0.25 * (x.sum() ** 2) - (x[0] * x[-1]) ** 2


def test_hvp_matches_explicit_hessian():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, generator=g, dtype=torch.float64)
    v = torch.randn(6, generator=g, dtype=torch.float64)
    H = torch.autograd.functional.hessian(_wiggly, x)
    torch.testing.assert_close(hvp(_wiggly, x, v), H @ v)
    assert not x.requires_grad  # the caller's tensor is untouched


@pytest.mark.parametrize("seed", [0, 3])
def test_extreme_eigenvalues_match_eigvalsh(seed):
    x = torch.randn(8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    expected = torch.linalg.eigvalsh(torch.autograd.functional.hessian(_wiggly, x))
    lo, hi = hessian_extreme_eigenvalues(_wiggly, x, iters=8)
    assert lo == pytest.approx(float(expected[0]), rel=1e-4)
    assert hi == pytest.approx(float(expected[-1]), rel=1e-4)
    # Full Lanczos recovers the whole spectrum.
    torch.testing.assert_close(
        hessian_eigenvalues(_wiggly, x, iters=8), expected, rtol=1e-4, atol=1e-8
    )


def test_saddle_of_x2_minus_y2_has_smallest_eigenvalue_minus_two():
    lo, hi = hessian_extreme_eigenvalues(lambda z: z[0] ** 2 - z[1] ** 2, torch.zeros(2))
    assert lo == pytest.approx(-2.0, rel=1e-5)
    assert hi == pytest.approx(2.0, rel=1e-5)


def test_lanczos_extremes_of_a_large_operator_with_few_steps():
    # A 300-dimensional spectrum in [-1, 50]: extreme Ritz values converge long before n steps.
    diag = torch.cat([torch.tensor([-1.0, 50.0]), torch.linspace(0.0, 10.0, 298)]).double()
    ritz = lanczos(lambda v: diag * v, 300, iters=60, seed=2)
    assert len(ritz) == 60
    assert float(ritz[0]) == pytest.approx(-1.0, rel=1e-4)
    assert float(ritz[-1]) == pytest.approx(50.0, rel=1e-4)


def test_lanczos_breakdown_on_identity_is_exact():
    ritz = lanczos(lambda v: 3.0 * v, 5, iters=5)
    torch.testing.assert_close(ritz, torch.tensor([3.0], dtype=torch.float64))


def test_linear_function_has_zero_hessian():
    x = torch.ones(3, dtype=torch.float64)
    assert torch.equal(
        hvp(lambda z: z.sum(), x, torch.ones(3, dtype=torch.float64)),
        torch.zeros(3, dtype=torch.float64),
    )


def test_non_scalar_function_is_refused():
    with pytest.raises(ValueError, match="scalar"):
        hvp(lambda z: z * 2, torch.ones(2), torch.ones(2))


def test_docstring_examples_run():
    result = doctest.testmod(descend.curvature)
    assert result.attempted > 0 and result.failed == 0
