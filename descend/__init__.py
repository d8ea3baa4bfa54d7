"""descend: gradient descent, whole.

Drop-in ``torch.optim`` replacements built from composable transforms, learning-rate
schedules, stopping rules, descent on functions (:func:`minimize`), the training loop
(:func:`fit`), diagnostics and benchmarks. See ``docs/architecture.md`` for the layers;
the submodules ``descend.optim``, ``descend.schedules``, ``descend.stopping``,
``descend.terrains``, ``descend.train``, ``descend.tasks``, ``descend.diagnose``,
``descend.report`` and ``descend.bench`` hold the rest.

Example:
    >>> import torch, descend
    >>> x = torch.tensor([3.0, -1.0], requires_grad=True)
    >>> opt = descend.adam([x], lr=0.1)   # the lower-case names are the same classes
    >>> type(opt) is descend.Adam
    True
"""

from descend.minimize import MinimizeResult, minimize
from descend.optim import (
    ASGD,
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    NAdam,
    Optimizer,
    RAdam,
    RMSprop,
    Rprop,
    chain,
    make_optimizer,
    optimizer_names,
)
from descend.terrains import get_terrain
from descend.train import History, fit

# torch.optim's class names are the API; the lower-case names match DESIGN.md's
# ``descend.adam(model.parameters(), lr=1e-3)`` and the registry's spelling.
sgd = SGD
adagrad = Adagrad
rmsprop = RMSprop
adam = Adam
adamw = AdamW
adadelta = Adadelta
asgd = ASGD
adamax = Adamax
nadam = NAdam
radam = RAdam
rprop = Rprop

__version__ = "0.1.0"

__all__ = [
    "ASGD",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "History",
    "MinimizeResult",
    "NAdam",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "Rprop",
    "__version__",
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "asgd",
    "chain",
    "fit",
    "get_terrain",
    "make_optimizer",
    "minimize",
    "nadam",
    "optimizer_names",
    "radam",
    "rmsprop",
    "rprop",
    "sgd",
]
