"""Gradient descent on a plain function of one tensor: :func:`minimize` and its result."""

from descend.minimize.core import minimize
from descend.minimize.result import MinimizeResult, Trajectory

__all__ = ["MinimizeResult", "Trajectory", "minimize"]
