"""Layer ``diagnose``: say why a descent stalls, crawls or blows up, with evidence.

- gradient health: :func:`gradient_report` (one batch) and the :class:`GradientHealth`
  callback (inside ``fit``): per-parameter gradient norms, update-to-parameter
  ratios, dead ReLU units;
- verdicts: :class:`Verdict` (kinds in :data:`KINDS`), :func:`diagnose_history`,
  :class:`Thresholds`, and :func:`verdicts_for_runs` / :func:`layer_gradient_series` for reports;
- two-player runs (a GAN): :func:`diagnose_adversarial` (mode collapse, oscillation);
- curvature of a model: :func:`curvature` (extreme Hessian eigenvalues by Lanczos on
  Hessian-vector products, sharpness against :math:`2/\\eta`);
- the learning-rate range test :func:`lr_find`;
- loss-landscape slices: :func:`interpolate`, :func:`random_directions`,
  :func:`plane`, :func:`project`, and the :class:`ParameterSnapshots` callback.

This layer builds on ``optim``, ``train`` and ``curvature``; it knows nothing of tasks,
reports or the command line.
"""

from descend.diagnose.adversarial import diagnose_adversarial
from descend.diagnose.health import GradientHealth, first_nonfinite, gradient_report, weight_names
from descend.diagnose.landscape import (
    ParameterSnapshots,
    Plane,
    Slice1D,
    filter_normalized_direction,
    interpolate,
    loss_at,
    parameter_vector,
    pca_directions,
    plane,
    project,
    random_directions,
)
from descend.diagnose.lr_find import SUGGESTIONS, LRFindResult, lr_find, suggest, valley_index
from descend.diagnose.model_curvature import Curvature, curvature, flat_loss
from descend.diagnose.record import HealthRecord
from descend.diagnose.rules import Thresholds, diagnose_history, layer_ratio
from descend.diagnose.runs import layer_gradient_series, verdicts_for_runs
from descend.diagnose.verdict import KINDS, Verdict

__all__ = [
    "KINDS",
    "SUGGESTIONS",
    "Curvature",
    "GradientHealth",
    "HealthRecord",
    "LRFindResult",
    "ParameterSnapshots",
    "Plane",
    "Slice1D",
    "Thresholds",
    "Verdict",
    "curvature",
    "diagnose_adversarial",
    "diagnose_history",
    "filter_normalized_direction",
    "first_nonfinite",
    "flat_loss",
    "gradient_report",
    "interpolate",
    "layer_gradient_series",
    "layer_ratio",
    "loss_at",
    "lr_find",
    "parameter_vector",
    "pca_directions",
    "plane",
    "project",
    "random_directions",
    "suggest",
    "valley_index",
    "verdicts_for_runs",
    "weight_names",
]
