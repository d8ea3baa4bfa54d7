"""descend: gradient descent, whole.

Drop-in ``torch.optim`` replacements built from composable transforms, learning-rate
schedules, stopping rules, descent on functions (:func:`minimize`), the training loop
(:func:`fit`), diagnostics and benchmarks. See ``docs/architecture.md`` for the layers;
the submodules ``descend.optim``, ``descend.schedules``, ``descend.stopping``,
``descend.terrains``, ``descend.train``, ``descend.tasks``, ``descend.diagnose``,
``descend.report``, ``descend.comparison`` and ``descend.bench`` hold the rest.
:func:`compare` runs a comparison of optimizers on a task into a run folder.

Example:
    >>> import torch, descend
    >>> x = torch.tensor([3.0, -1.0], requires_grad=True)
    >>> opt = descend.adam([x], lr=0.1)   # the lower-case names are the same classes
    >>> type(opt) is descend.Adam
    True
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

# The public names, by the submodule that defines them. They are imported on first
# use (PEP 562), so that ``import descend.cli`` and ``descend --help`` do not pay for
# importing torch (about a second); ``from descend import adam`` works as before.
_EXPORTS = {
    "descend.minimize": ("MinimizeResult", "minimize"),
    "descend.optim": (
        "SGD",
        "Adagrad",
        "Adam",
        "AdamW",
        "Optimizer",
        "RMSprop",
        "ASGD",
        "Adadelta",
        "Adamax",
        "NAdam",
        "RAdam",
        "Rprop",
        "ScheduleFreeAdamW",
        "ScheduleFreeSGD",
        "Prodigy",
        "Lion",
        "AdEMAMix",
        "LAMB",
        "Adafactor",
        "SOAP",
        "Muon",
        "MuonAdamW",
        "Partitioned",
        "Route",
        "describe",
        "muon_defaults",
        "partition",
        "chain",
        "make_optimizer",
        "optimizer_names",
        "SAM",
        "averaged_weights",
        "centralize_gradient",
        "ema",
        "lookahead",
    ),
    "descend.terrains": ("get_terrain",),
    "descend.train": ("History", "fit"),
    "descend.comparison": ("Comparison", "compare"),
}
# torch.optim's class names are the API; the lower-case names match DESIGN.md's
# ``descend.adam(model.parameters(), lr=1e-3)`` and the registry's spelling.
_ALIASES = {
    "sgd": "SGD",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
    "adam": "Adam",
    "adamw": "AdamW",
    "adadelta": "Adadelta",
    "asgd": "ASGD",
    "adamax": "Adamax",
    "nadam": "NAdam",
    "radam": "RAdam",
    "rprop": "Rprop",
    "lion": "Lion",
    "ademamix": "AdEMAMix",
    "lamb": "LAMB",
    "adafactor": "Adafactor",
    "soap": "SOAP",
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

if TYPE_CHECKING:
    from descend.comparison import Comparison, compare
    from descend.minimize import MinimizeResult, minimize
    from descend.optim import (
        ASGD,
        LAMB,
        SAM,
        SGD,
        SOAP,
        Adadelta,
        Adafactor,
        Adagrad,
        Adam,
        Adamax,
        AdamW,
        AdEMAMix,
        Lion,
        Muon,
        MuonAdamW,
        NAdam,
        Optimizer,
        Partitioned,
        Prodigy,
        RAdam,
        RMSprop,
        Route,
        Rprop,
        ScheduleFreeAdamW,
        ScheduleFreeSGD,
        averaged_weights,
        centralize_gradient,
        chain,
        describe,
        ema,
        lookahead,
        make_optimizer,
        muon_defaults,
        optimizer_names,
        partition,
    )
    from descend.terrains import get_terrain
    from descend.train import History, fit

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
    lion = Lion
    ademamix = AdEMAMix
    lamb = LAMB
    adafactor = Adafactor
    soap = SOAP


def __getattr__(name: str) -> Any:
    target = _ALIASES.get(name, name)
    if target not in _WHERE:
        raise AttributeError(f"module 'descend' has no attribute {name!r}")
    value = getattr(import_module(_WHERE[target]), target)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = [
    "ASGD",
    "LAMB",
    "SAM",
    "SGD",
    "SOAP",
    "AdEMAMix",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Comparison",
    "History",
    "Lion",
    "MinimizeResult",
    "Muon",
    "MuonAdamW",
    "NAdam",
    "Optimizer",
    "Partitioned",
    "Prodigy",
    "RAdam",
    "RMSprop",
    "Route",
    "Rprop",
    "ScheduleFreeAdamW",
    "ScheduleFreeSGD",
    "__version__",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "ademamix",
    "asgd",
    "averaged_weights",
    "centralize_gradient",
    "chain",
    "compare",
    "describe",
    "ema",
    "fit",
    "get_terrain",
    "lamb",
    "lion",
    "lookahead",
    "make_optimizer",
    "minimize",
    "muon_defaults",
    "nadam",
    "optimizer_names",
    "partition",
    "radam",
    "rmsprop",
    "rprop",
    "sgd",
    "soap",
]
