"""The lessons: one preset per idea of the articles, a paragraph in plain words and a setting.

A terrain lesson is an explorer request (terrain, start, optimizers with their
hyperparameters, steps, noise): the page loads it into the sliders, so the reader can
move on from it. The other lessons (the momentum phase diagram, batch size on linear
regression, schedules, vanishing gradients) compute a figure of their own
(:mod:`descend.explore.lesson_figures`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Lesson:
    """A lesson: its key, title, paragraph, and either an explorer request or a figure kind."""

    key: str
    title: str
    text: str
    request: Mapping[str, Any] | None = None
    figure: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "text": self.text,
            "request": dict(self.request) if self.request else None,
            "figure": self.figure,
        }


def _gd(lr: float) -> dict[str, Any]:
    return {"name": "gd", "hp": {"lr": lr}}


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        "lr_too_large",
        "Learning rate too large",
        "On a bowl whose steepest curvature is λmax = 10, each gradient step multiplies the "
        "distance along that direction by |1 − η·λmax|. Below η = 2/λmax = 0.2 that factor is "
        "under 1 and the walker settles; at 0.19 it overshoots and zig-zags across the valley "
        "but still comes down; at 0.21 every step lands farther up the other side than the "
        "last, and the run diverges. The second figure sweeps η: the edge sits at 2/λmax.",
        request={
            "terrain": "quadratic",
            "steps": 150,
            "optimizers": [_gd(0.1), _gd(0.19), _gd(0.21)],
        },
        figure="lr_sweep",
    ),
    Lesson(
        "lr_too_small",
        "Learning rate too small",
        "A step a hundred times too short never overshoots, but it crawls: after 300 steps "
        "it has covered a fraction of the way a well-sized step covered in 90.",
        request={"terrain": "quadratic", "steps": 300, "optimizers": [_gd(0.0015), _gd(0.15)]},
    ),
    Lesson(
        "momentum_ravine",
        "Momentum through a ravine",
        "Rosenbrock's valley is steep across and nearly flat along. Plain gradient descent "
        "must keep its step small for the steep walls and so inches along the floor. Momentum "
        "keeps a running sum of past gradients: the side-to-side pushes cancel, the push along "
        "the floor adds up, and the walker gathers speed down the valley.",
        request={
            "terrain": "rosenbrock",
            "steps": 600,
            "optimizers": [
                _gd(0.002),
                {"name": "momentum", "hp": {"lr": 0.001, "momentum": 0.9}},
            ],
        },
    ),
    Lesson(
        "nesterov",
        "Nesterov's look-ahead",
        "Heavy-ball momentum measures the slope where the walker stands; Nesterov's method "
        "measures it where momentum is about to carry it. Seeing the far wall one step early, "
        "it brakes sooner: with the same step and momentum it overshoots less and settles "
        "faster.",
        request={
            "terrain": "quadratic",
            "steps": 200,
            "optimizers": [
                {"name": "momentum", "hp": {"lr": 0.05, "momentum": 0.9}},
                {"name": "nesterov", "hp": {"lr": 0.05, "momentum": 0.9}},
            ],
        },
    ),
    Lesson(
        "saddle",
        "A saddle point",
        "On x² − y², starting exactly on the ridge line y = 0, the gradient never points off "
        "it: descent slides into the saddle and stops there, and the verdict shows the "
        "negative curvature (λmin = −2) that proves it is no minimum. Raise the gradient noise "
        "above zero, or start a hair off the line, and the walker rolls off the saddle; "
        "momentum rolls off faster.",
        request={
            "terrain": "saddle",
            "start": [1.5, 0.0],
            "steps": 200,
            "optimizers": [_gd(0.05), {"name": "momentum", "hp": {"lr": 0.005, "momentum": 0.9}}],
        },
    ),
    Lesson(
        "plateau",
        "A plateau",
        "Far from the well the ground is almost flat: the gradient is tiny, so plain gradient "
        "descent barely moves. Adam divides by the gradient's own recent size, so it walks the "
        "plateau at full stride until the slope appears.",
        request={
            "terrain": "plateau",
            "steps": 300,
            "optimizers": [_gd(1.0), {"name": "adam", "hp": {"lr": 0.05}}],
        },
    ),
    Lesson(
        "local_minima_rastrigin",
        "Local minima: Rastrigin",
        "Rastrigin's egg-box has a local minimum in every cell. Gradient descent goes down into "
        "the nearest one and stays there: the start decides the end. Click elsewhere on the map "
        "to start in another cell.",
        request={
            "terrain": "rastrigin",
            "steps": 300,
            "optimizers": [_gd(0.002), {"name": "adam", "hp": {"lr": 0.05}}],
        },
    ),
    Lesson(
        "local_minima_himmelblau",
        "Local minima: Himmelblau",
        "Himmelblau's function has four minima of equal depth. Which one a run finds depends "
        "only on where it starts and how it steps: click around the map and watch the basins.",
        request={
            "terrain": "himmelblau",
            "start": [-1.0, -1.0],
            "steps": 300,
            "optimizers": [_gd(0.01), {"name": "momentum", "hp": {"lr": 0.002, "momentum": 0.9}}],
        },
    ),
    Lesson(
        "adaptive",
        "Adaptive methods on an ill-conditioned bowl",
        "This bowl is a hundred times steeper across than along (condition number 100: the "
        "setting under the terrain menu). Gradient descent's one learning rate is capped by "
        "the steep direction (η < 2/λmax = 0.02), so along the shallow one it moves at 2% of "
        "the remaining distance per step and is still on its way after 300 steps. AdaGrad, "
        "RMSprop and Adam divide each coordinate by the size of its own gradients, so both "
        "directions shrink at a similar pace and they reach the bottom. Set the condition "
        "number to 1 and the difference disappears.",
        request={
            "terrain": "quadratic",
            "knobs": {"condition": 100},
            "steps": 300,
            "optimizers": [
                _gd(0.019),
                {"name": "adagrad", "hp": {"lr": 1.0}},
                {"name": "rmsprop", "hp": {"lr": 0.05}},
                {"name": "adam", "hp": {"lr": 0.2}},
            ],
        },
    ),
    Lesson(
        "batch",
        "Batch, stochastic and mini-batch",
        "Linear regression's loss over its two parameters (slope, intercept) is a bowl. Batch "
        "gradient descent uses every sample per step and walks the smooth path. Stochastic "
        "gradient descent uses one sample: each step is cheap but noisy, and the path jitters "
        "around the bottom. A mini-batch sits between; the slider sets its size.",
        figure="batch",
    ),
    Lesson(
        "schedules",
        "Learning-rate schedules",
        "Mini-batch noise keeps a constant-step walker jittering around the bottom. A schedule "
        "shrinks the step as training goes on: step decay in stages, cosine smoothly to zero; "
        "warmup starts small so the first steps, taken before anything is known about the "
        "slope, cannot throw the walker off.",
        figure="schedules",
    ),
    Lesson(
        "vanishing",
        "Vanishing gradients",
        "In a deep stack of sigmoid layers each layer multiplies the back-propagated gradient "
        "by at most 1/4, so the first layers receive almost nothing and barely learn. The "
        "residual network with BatchNorm passes the gradient through its shortcuts: every layer "
        "gets a gradient of similar size. The figure shows each layer's gradient norm at "
        "initialisation on the digits data.",
        figure="vanishing",
    ),
    Lesson(
        "phase",
        "The momentum phase diagram",
        "For each step size (across) and momentum (up), the rate at which heavy-ball momentum "
        "closes the gap on the bowl (λ from 1 to 10), per step: dark is fast, light is slow, "
        "white diverges. The best rate is not at zero momentum: with β = ((√κ − 1)/(√κ + 1))² "
        "(dotted, κ = 10) and the matching step, the gap shrinks by (√κ − 1)/(√κ + 1) ≈ 0.52 "
        "per step instead of gradient descent's best (κ − 1)/(κ + 1) ≈ 0.82.",
        figure="phase",
    ),
)

LESSON_KEYS: tuple[str, ...] = tuple(lesson.key for lesson in LESSONS)


def get_lesson(key: str) -> Lesson:
    """The lesson called ``key``; an unknown key lists the lessons."""
    for lesson in LESSONS:
        if lesson.key == key:
            return lesson
    from descend._validation import unknown_choice

    raise unknown_choice("lesson", key, LESSON_KEYS)
