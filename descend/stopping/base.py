"""What a stopping criterion sees, what it answers, and how criteria combine.

A loop (``minimize`` or ``fit``) builds a :class:`Progress` after every update and
asks its criterion ``check(progress)``. ``None`` means "go on"; a :class:`Stop`
means "stop here", says whether the run converged, and carries a sentence for users.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass
class Progress:
    """The state of a run after an update, as the stopping criteria see it.

    Args:
        step: updates completed so far (1 after the first update, 0 before any).
        value: objective or training loss at this point (may be nan or inf).
        grad_norm: Euclidean norm of the gradient at this point, when known.
        step_norm: :math:`\\lVert x_t - x_{t-1} \\rVert`, when known.
        elapsed: seconds since the run started.
    """

    step: int
    value: float
    grad_norm: float | None = None
    step_norm: float | None = None
    elapsed: float = 0.0


@dataclass(frozen=True)
class Stop:
    """The decision to stop: which criterion fired, a sentence for users, and whether it converged."""

    criterion: str
    message: str
    success: bool


class Criterion(ABC):
    """A stopping rule: ``check`` after every update, ``reset`` before a new run.

    Each criterion keeps only the state it needs (a window of values, a reference
    value), so one instance can be reused across runs after ``reset()``.
    """

    name: str = "criterion"

    def reset(self) -> None:
        """Forget everything seen so far; stateless criteria have nothing to forget."""
        return

    @abstractmethod
    def check(self, p: Progress) -> Stop | None:
        """Return a :class:`Stop` when the run should end after this update, else ``None``."""

    def state_dict(self) -> dict:
        """What a checkpoint must hold so a resumed run stops where an unbroken one would
        (plain numbers and lists only, so it loads with ``torch.load(weights_only=True)``)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        return

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class AnyOf(Criterion):
    """Stop when any of the given criteria fires; the first one, in the order given, wins.

    Every criterion sees every update (even after an earlier one fired on the same
    update), so windowed criteria keep a consistent history.

    Example:
        >>> from descend.stopping import AnyOf, MaxIter, GradientTolerance, Progress
        >>> stop = AnyOf(GradientTolerance(1e-6), MaxIter(3))
        >>> stop.check(Progress(step=3, value=1.0, grad_norm=0.5)).criterion
        'max_iter'
    """

    name = "any_of"

    def __init__(self, *criteria: Criterion) -> None:
        for c in criteria:
            if not isinstance(c, Criterion):
                raise TypeError(f"AnyOf takes Criterion instances. Got {type(c).__name__} instead.")
        self.criteria: tuple[Criterion, ...] = tuple(criteria)

    def reset(self) -> None:
        for c in self.criteria:
            c.reset()

    def state_dict(self) -> dict:
        return {"criteria": [c.state_dict() for c in self.criteria]}

    def load_state_dict(self, state: dict) -> None:
        for c, s in zip(self.criteria, state["criteria"], strict=True):
            c.load_state_dict(s)

    def check(self, p: Progress) -> Stop | None:
        fired = [c.check(p) for c in self.criteria]
        return next((s for s in fired if s is not None), None)

    def __repr__(self) -> str:
        return f"AnyOf({', '.join(repr(c) for c in self.criteria)})"
