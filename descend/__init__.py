"""descend: gradient descent, whole.

Drop-in ``torch.optim`` replacements built from composable transforms, learning-rate
schedules, the training loop, diagnostics and benchmarks. See ``docs/architecture.md``
for the layers.
"""

from descend.optim import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    Optimizer,
    RMSprop,
    chain,
    make_optimizer,
    optimizer_names,
)
from descend.optim import (
    Adagrad as adagrad,
)
from descend.optim import (
    Adam as adam,
)
from descend.optim import (
    AdamW as adamw,
)
from descend.optim import (
    RMSprop as rmsprop,
)
from descend.optim import (
    SGD as sgd,
)

__version__ = "0.1.0"

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSprop",
    "__version__",
    "adagrad",
    "adam",
    "adamw",
    "chain",
    "make_optimizer",
    "optimizer_names",
    "rmsprop",
    "sgd",
]
