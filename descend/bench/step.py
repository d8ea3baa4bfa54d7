"""Step throughput: descend's default path against torch.optim's (and optax's) on the same
parameters, in interleaved rounds, as time, bandwidth and percent of the memory floor.

An optimizer step is a few arithmetic operations per parameter, so its floor is memory
traffic. For an algorithm that reads :math:`r` and writes :math:`w` float32 arrays per
parameter (Adam: read :math:`\\theta, g, m, v`, write :math:`\\theta, m, v`), the floor on
:math:`n` parameters is

.. math::
    t_\\text{floor} = \\frac{4 (r + w)\\, n}{B_\\text{in-place}}

where :math:`B_\\text{in-place}` is the bandwidth of an in-place pass (``x.mul_(1.0)``:
read and write each element once), measured in the same rounds. Timings on a shared
machine are noisy, so every implementation is timed once per round, in an order shuffled
anew each round, and the median over rounds is reported with its spread.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import platform
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

import descend
from descend._validation import InvalidParameterError, unknown_choice
from descend.bench.matrices import matrix_shapes, torch_muon
from descend.optim import (
    AdamW,
    add_decayed_weights,
    cautious,
    chain,
    clip_by_global_norm,
    ema,
    lookahead,
    maximize,
    scale_by_adam,
    scale_by_lr,
)

Factory = Callable[[list[Tensor]], Any]


@dataclass(frozen=True)
class Algorithm:
    """One update rule, how each library builds it, and its memory traffic.

    Attributes:
        name: the name on the command line.
        descend: ``params -> optimizer`` with descend's default execution.
        torch: ``(params, impl) -> optimizer`` for impl in ``forloop``, ``foreach``, ``fused``;
            ``None`` where torch has no such path.
        traffic: float32 arrays read plus written per parameter per step (averaged over
            the steps for a rule that does more on some steps, Lookahead's every k-th).
        state: float32 state arrays per parameter; ``None``: measured, as the bytes of
            descend's optimizer state after its first steps over the parameter count (for
            a rule whose state depends on the shapes: Adafactor's factors, SOAP's bases).
        torch_impls: the torch paths that exist for this algorithm.
        optax: the optax update as ``(optax module) -> GradientTransformation``, if any.
        clip: torch's reference clips the gradients by global norm before stepping.
        reference: ``params -> optimizer`` from the authors' (or a reference) package, for
            a rule torch does not have (its row is ``reference``, compared as torch's).
        shapes: ``n -> shapes`` where the rule needs its own (Muon: matrices only).
    """

    name: str
    descend: Factory
    torch: Callable[[list[Tensor], str], Any] | None
    traffic: float
    state: float | None
    torch_impls: tuple[str, ...] = ("forloop", "foreach")
    optax: Callable[[Any], Any] | None = None
    clip: bool = False
    summary: str = ""
    reference: Factory | None = None
    shapes: Callable[[int], list[tuple[int, ...]]] | None = None  # default: model_shapes


def _torch(cls: type, **opts: Any) -> Callable[[list[Tensor], str], Any]:
    def make(params: list[Tensor], impl: str) -> Any:
        flags = {
            "forloop": {"foreach": False},
            "foreach": {"foreach": True},
            "fused": {"fused": True},
        }
        return cls(params, **opts, **flags[impl])

    return make


class _ThenAverage:
    """torch's way to keep an EMA of the weights: the optimizer's step, then what
    ``AveragedModel(multi_avg_fn=get_ema_multi_avg_fn(decay)).update_parameters`` does
    (a copy on the first call, a ``_foreach_lerp_`` after), over the parameter list."""

    def __init__(self, opt: torch.optim.Optimizer, params: list[Tensor], decay: float) -> None:
        from torch.optim.swa_utils import get_ema_multi_avg_fn

        self.opt, self.params, self.average = opt, params, get_ema_multi_avg_fn(decay)
        self.kept = [p.detach().clone() for p in params]
        self.n = 0

    def step(self) -> None:
        self.opt.step()
        if self.n > 0:
            self.average(self.kept, [p.detach() for p in self.params], self.n)
        else:
            torch._foreach_copy_(self.kept, [p.detach() for p in self.params])
        self.n += 1


def _torch_then_average(cls: type, decay: float, **opts: Any) -> Callable[[list[Tensor], str], Any]:
    make = _torch(cls, **opts)
    return lambda params, impl: _ThenAverage(make(params, impl), params, decay)


# Rows whose torch columns time a package outside descend's dependencies (the dev extra):
# left out of the default list where it is not installed.
_NEEDS = {"schedulefree_adamw_ref": "schedulefree", "soap": "pytorch_optimizer"}


def _installed(package: str | None) -> bool:
    return package is None or importlib.util.find_spec(package) is not None


def _schedulefree_reference(params: list[Tensor], impl: str) -> Any:
    """The authors' ``schedulefree.AdamWScheduleFree`` (the ``dev`` extra), its for-loop
    or foreach path, in train mode."""
    from schedulefree import AdamWScheduleFree

    opt = AdamWScheduleFree(params, lr=1e-3, weight_decay=0.01, foreach=impl == "foreach")
    opt.train()
    return opt


def _reference_soap(params: list[Tensor]) -> Any:
    # pytorch-optimizer's SOAP (the dev extra), with the authors' defaults.
    from pytorch_optimizer import SOAP

    return SOAP(params)


def _decay(t: int) -> float:
    # A schedule that changes every step: a compiled step must not recompile for it.
    return 1e-3 / (1.0 + 1e-3 * t)


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in [
        Algorithm(
            "sgd",
            lambda p: descend.SGD(p, lr=0.01),
            _torch(torch.optim.SGD, lr=0.01),
            3,
            0,
            ("forloop", "foreach", "fused"),
            lambda o: o.sgd(0.01),
            summary="plain SGD",
        ),
        Algorithm(
            "momentum",
            lambda p: descend.SGD(p, lr=0.01, momentum=0.9),
            _torch(torch.optim.SGD, lr=0.01, momentum=0.9),
            5,
            1,
            ("forloop", "foreach", "fused"),
            lambda o: o.sgd(0.01, momentum=0.9),
            summary="SGD, heavy-ball momentum",
        ),
        Algorithm(
            "nesterov",
            lambda p: descend.SGD(p, lr=0.01, momentum=0.9, nesterov=True),
            _torch(torch.optim.SGD, lr=0.01, momentum=0.9, nesterov=True),
            5,
            1,
            ("forloop", "foreach", "fused"),
            lambda o: o.sgd(0.01, momentum=0.9, nesterov=True),
            summary="SGD, Nesterov momentum",
        ),
        Algorithm(
            "adagrad",
            lambda p: descend.Adagrad(p, lr=0.01),
            _torch(torch.optim.Adagrad, lr=0.01),
            5,
            1,
            ("forloop", "foreach", "fused"),
            lambda o: o.adagrad(0.01),
            summary="AdaGrad",
        ),
        Algorithm(
            "rmsprop",
            lambda p: descend.RMSprop(p, lr=1e-3),
            _torch(torch.optim.RMSprop, lr=1e-3),
            5,
            1,
            optax=lambda o: o.rmsprop(1e-3, decay=0.99, eps=1e-8),
            summary="RMSprop",
        ),
        Algorithm(
            "rmsprop_centered",
            lambda p: descend.RMSprop(p, lr=1e-3, centered=True),
            _torch(torch.optim.RMSprop, lr=1e-3, centered=True),
            7,
            2,
            summary="RMSprop, centered",
        ),
        Algorithm(
            "adam",
            lambda p: descend.Adam(p, lr=1e-3),
            _torch(torch.optim.Adam, lr=1e-3),
            7,
            2,
            ("forloop", "foreach", "fused"),
            lambda o: o.adam(1e-3),
            summary="Adam",
        ),
        Algorithm(
            "amsgrad",
            lambda p: descend.Adam(p, lr=1e-3, amsgrad=True),
            _torch(torch.optim.Adam, lr=1e-3, amsgrad=True),
            9,
            3,
            ("forloop", "foreach", "fused"),
            lambda o: o.amsgrad(1e-3),
            summary="Adam, AMSGrad",
        ),
        Algorithm(
            "adamw",
            lambda p: descend.AdamW(p, lr=1e-3),
            _torch(torch.optim.AdamW, lr=1e-3),
            7,
            2,
            ("forloop", "foreach", "fused"),
            lambda o: o.adamw(1e-3, weight_decay=0.01),
            summary="AdamW",
        ),
        Algorithm(
            "adamw_clip_sched",
            lambda p: descend.Optimizer(
                p,
                chain(clip_by_global_norm(), scale_by_adam(), add_decayed_weights(), scale_by_lr()),
                lr=_decay,
                max_norm=1.0,
                weight_decay=0.01,
            ),
            _torch(torch.optim.AdamW, lr=1e-3),
            8,
            2,
            ("forloop", "foreach", "fused"),
            clip=True,
            summary="clip by global norm -> Adam -> decoupled decay -> scheduled lr",
        ),
        # Wrappers, against torch's AdamW without them (torch has neither): what they add.
        # Lookahead reads and writes its slow weights on every 5th step only (2/5 of an
        # array a step; time a multiple of 5 steps per round, --steps 5, for an even share).
        Algorithm(
            "adamw_lookahead",
            lambda p: descend.Optimizer(
                p,
                lookahead(AdamW.transform, k=5),
                lr=1e-3,
                weight_decay=0.01,
                decoupled_weight_decay=True,
            ),
            _torch(torch.optim.AdamW, lr=1e-3),
            7.4,
            3,
            ("forloop", "foreach", "fused"),
            summary="AdamW -> lookahead(k=5, alpha=0.5)",
        ),
        # The average is read and written every step: 2 arrays more than AdamW's 7.
        Algorithm(
            "adamw_ema",
            lambda p: descend.Optimizer(
                p,
                ema(AdamW.transform, decay=0.999),
                lr=1e-3,
                weight_decay=0.01,
                decoupled_weight_decay=True,
            ),
            _torch_then_average(torch.optim.AdamW, 0.999, lr=1e-3),
            9,
            3,
            ("forloop", "foreach", "fused"),
            summary="AdamW -> ema(decay=0.999) of the weights; torch: AdamW, then the "
            "swa_utils EMA update (AveragedModel.update_parameters' arithmetic)",
        ),
        # Schedule-Free AdamW against the closest torch rule (AdamW: the same reads and
        # writes, theta g z v in, theta z v out), then against the authors' package.
        Algorithm(
            "schedulefree_adamw",
            lambda p: descend.ScheduleFreeAdamW(p, lr=1e-3, weight_decay=0.01),
            _torch(torch.optim.AdamW, lr=1e-3),
            7,
            2,
            ("forloop", "foreach", "fused"),
            summary="Schedule-Free AdamW (torch columns: torch.optim.AdamW)",
        ),
        Algorithm(
            "schedulefree_adamw_ref",
            lambda p: descend.ScheduleFreeAdamW(p, lr=1e-3, weight_decay=0.01),
            _schedulefree_reference,
            7,
            2,
            summary="Schedule-Free AdamW (torch columns: schedulefree.AdamWScheduleFree)",
        ),
        # The newer optimizers, each against the torch optimizer that moves the same arrays
        # (torch has none of them): Lion reads theta, g, m and writes theta, m, as SGD with
        # momentum does; AdEMAMix reads theta, g, m1, m2, v and writes all but g, as AMSGrad
        # does (Adam, the rule it extends, moves two arrays fewer).
        Algorithm(
            "lion",
            lambda p: descend.Lion(p, lr=1e-4),
            _torch(torch.optim.SGD, lr=0.01, momentum=0.9),
            5,
            1,
            ("forloop", "foreach", "fused"),
            lambda o: o.lion(1e-4),
            summary="Lion (torch: SGD with momentum, the same traffic)",
        ),
        Algorithm(
            "ademamix",
            lambda p: descend.AdEMAMix(p, lr=1e-3),
            _torch(torch.optim.Adam, lr=1e-3, amsgrad=True),
            9,
            3,
            ("forloop", "foreach", "fused"),
            summary="AdEMAMix (torch: Adam with AMSGrad, the same traffic)",
        ),
        Algorithm(
            "cautious_adamw",
            lambda p: descend.Optimizer(
                p,
                chain(maximize(), cautious(scale_by_adam()), add_decayed_weights(), scale_by_lr()),
                lr=1e-3,
                weight_decay=0.01,
            ),
            _torch(torch.optim.AdamW, lr=1e-3),
            # Two passes at least: the mask's count over a whole tensor comes before any of
            # its elements can be written (read m, v, g, write m, v; read m, v, g, theta,
            # write theta), where AdamW moves 7 arrays.
            10,
            2,
            ("forloop", "foreach", "fused"),
            summary="cautious AdamW (torch: AdamW, which masks nothing)",
        ),
        # Reads g twice (its row and column statistics, then the update) and theta twice
        # (its RMS, then the step), writes theta: 5 arrays; the factors are O(n + m).
        Algorithm(
            "adafactor",
            lambda p: descend.Adafactor(p),
            _torch(torch.optim.Adafactor),
            5,
            None,
            summary="Adafactor (torch's defaults)",
        ),
        # Compute-bound: per n x n matrix and step, six n^3 products (rotate g in, the
        # update out, two statistics), so its % of the memory floor (Adam's 7 arrays) is
        # not its measure; the ratio to the reference is.
        Algorithm(
            "soap",
            lambda p: descend.SOAP(p),
            None,
            7,
            None,
            (),
            summary="SOAP (the authors' defaults) against pytorch-optimizer's SOAP",
            reference=_reference_soap,
        ),
        Algorithm(
            "muon",
            lambda p: descend.Muon(p, lr=0.02),
            torch_muon,
            5,  # and 5 Newton-Schulz rounds of three matrix products: compute, not traffic
            1,
            ("forloop",),
            summary="Muon (bfloat16 Newton-Schulz), matrices only",
            shapes=matrix_shapes,
        ),
    ]
}
IMPLS = (
    "descend",
    "descend_eager",
    "descend_compiled",
    "torch_forloop",
    "torch_foreach",
    "torch_fused",
    "optax",
    "reference",
)


def parse_size(text: str) -> int:
    """``"10M"`` -> 10_000_000; ``"500k"``, ``"1.5M"``, ``"2000"`` also work."""
    t = text.strip().upper()
    scale = {"K": 10**3, "M": 10**6, "G": 10**9}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if scale != 1 else t) * scale
    except ValueError:
        raise InvalidParameterError(
            f"A parameter count must be a number with an optional k, M or G suffix, e.g. 10M. "
            f"Got {text!r} instead."
        ) from None
    if value < 1:
        raise InvalidParameterError(f"A parameter count must be at least 1. Got {text!r} instead.")
    return int(value)


def model_shapes(n: int) -> list[tuple[int, ...]]:
    """Shapes of a stack of linear layers with about ``n`` parameters.

    Width 1024 (each weight 1024 x 1024) with four 1024-vectors (bias, norm scale and shift,
    one more bias) per weight, as in a transformer block's linear layers; ``10M`` gives
    10 matrices and 40 vectors (10.5M parameters), ``50M`` gives 48 and 192. Below one
    layer, a ``(n // 1024, 1024)`` matrix and a vector.
    """
    width = 1024
    layers = round(n / (width * width))
    if layers == 0:
        return [(max(1, n // width), width), (width,)]
    return [(width, width)] * layers + [(width,)] * (4 * layers)


@dataclass
class Timing:
    """Seconds per step of one implementation, one entry per round."""

    samples: list[float] = field(default_factory=list)
    first_step: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.samples), max(self.samples)


class _Runner:
    """Parameters, gradients and an optimizer for one implementation; ``step()`` times nothing."""

    def __init__(
        self, impl: str, algo: Algorithm, shapes: list[tuple[int, ...]], seed: int
    ) -> None:
        g = torch.Generator().manual_seed(seed)
        self.params = [torch.randn(s, generator=g).requires_grad_() for s in shapes]
        self.grads = [torch.randn(s, generator=g) * 1e-2 for s in shapes]
        self.impl, self.algo = impl, algo
        for p, gr in zip(self.params, self.grads, strict=True):
            p.grad = gr
        if impl == "reference":
            assert algo.reference is not None
            self.opt = algo.reference(self.params)
        elif impl.startswith("descend"):
            self.opt = algo.descend(self.params)
            if impl != "descend":
                self.opt = as_chain(self.opt, compile=impl == "descend_compiled")
        else:
            self.opt = algo.torch(self.params, impl.removeprefix("torch_"))
            if algo.name == "adamw_clip_sched":
                self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda t: _decay(t) / 1e-3)

    def step(self) -> None:
        # Gradients assigned before every step, as backward() leaves new ones.
        for p, gr in zip(self.params, self.grads, strict=True):
            p.grad = gr
        if self.algo.clip and not self.impl.startswith("descend"):
            torch.nn.utils.clip_grad_norm_(self.params, 1.0, foreach=self.impl != "torch_forloop")
        self.opt.step()
        if hasattr(self, "sched"):
            self.sched.step()


def as_chain(opt: Any, *, compile: bool) -> Any:
    """A descend optimizer's rule as a plain chain over the same parameters and settings:
    its eager transforms (no fused kernel) or, with ``compile``, their compiled step."""
    from descend.optim.flags import EXECUTION_DEFAULTS

    hp = {k: v for k, v in opt.defaults.items() if k not in EXECUTION_DEFAULTS}
    params = opt.param_groups[0]["params"]
    accepted = inspect.signature(type(opt)).parameters
    if type(opt).step is not descend.Optimizer.step and "compile" in accepted:
        # A class whose step is more than its chain (Schedule-Free's averaging, Prodigy's
        # estimate): the same class, its constructor's settings, compiled or not.
        return type(opt)(params, compile=compile, **{k: v for k, v in hp.items() if k in accepted})
    return descend.Optimizer(params, opt.transform, compile=compile, **hp)


class _OptaxRunner:
    """The same update under ``jax.jit`` (parameters and state as jax arrays)."""

    def __init__(self, algo: Algorithm, shapes: list[tuple[int, ...]], seed: int) -> None:
        import jax
        import jax.numpy as jnp
        import optax

        g = torch.Generator().manual_seed(seed)
        self.params = [jnp.asarray(torch.randn(s, generator=g).numpy()) for s in shapes]
        self.grads = [jnp.asarray((torch.randn(s, generator=g) * 1e-2).numpy()) for s in shapes]
        tx = algo.optax(optax)
        self.state = tx.init(self.params)

        def update(params: Any, grads: Any, state: Any) -> Any:
            updates, state = tx.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        self._update = jax.jit(update, donate_argnums=(0, 2))

    def step(self) -> None:
        import jax

        self.params, self.state = self._update(self.params, self.grads, self.state)
        jax.block_until_ready(self.params)


def optax_available() -> bool:
    """Whether jax and optax import (they are the optional ``optax`` extra)."""
    try:
        import jax  # noqa: F401
        import optax  # noqa: F401
    except ImportError:
        return False
    return True


def round_orders(names: list[str], rounds: int, seed: int) -> list[list[str]]:
    """The order of ``names`` in each round: a new seeded shuffle per round.

    What runs just before an implementation decides what its first step finds in the
    caches. A rotation keeps that predecessor fixed (each name always follows the one
    before it in the list), so its effect does not average out over rounds; a shuffle
    changes both the position and the predecessor.
    """
    rng = random.Random(seed)
    return [rng.sample(names, len(names)) for _ in range(rounds)]


def _timed(fn: Callable[[], None], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def _bandwidth_runners(n: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """An in-place pass and a read-only pass over one buffer of 4n floats.

    The buffer is as large as Adam's working set (four arrays of n floats), so that caches
    help these measurements no more than they help the optimizers. The in-place pass
    (``x.mul_(1.0)``) defines the floor; the read-only one (``torch.dot(x, x)``, each
    element read once) shows what a pass costs that only reads, such as a global norm:
    where reads are what limits the memory system, it takes most of the in-place time.
    """
    buf = torch.ones(4 * n)

    def touch() -> None:
        buf.mul_(1.0)

    def read() -> None:
        torch.dot(buf, buf)

    return touch, read


def _training_step(
    opt: Any, params: list[Tensor], coefs: list[Tensor], clip: bool = False
) -> Callable[[], None]:
    # torch's composed step: clip_grad_norm_ before the optimizer, the schedule after it
    # (descend's chain clips, and reads its schedule, inside step()).
    torch_clip = clip and not isinstance(opt, descend.Optimizer)
    sched = (
        torch.optim.lr_scheduler.LambdaLR(opt, lambda t: _decay(t) / 1e-3) if torch_clip else None
    )

    def run() -> None:
        opt.zero_grad(set_to_none=True)
        torch.autograd.backward([(c * p).sum() for c, p in zip(coefs, params, strict=True)])
        if torch_clip:
            torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if sched is not None:
            sched.step()

    return run


# The training step's implementations: Adam, and clip -> Adam -> decay -> schedule.
_TRAINING = {
    "descend": lambda p: descend.Adam(p, lr=1e-3),
    "torch_fused": lambda p: torch.optim.Adam(p, lr=1e-3, fused=True),
    "descend_clip": ALGORITHMS["adamw_clip_sched"].descend,
    "torch_fused_clip": lambda p: torch.optim.AdamW(p, lr=1e-3, fused=True),
}


def training_step(
    shapes: list[tuple[int, ...]], rounds: int, steps: int, seed: int = 0
) -> dict[str, float]:
    """A whole training step, where gradients come from ``backward()``, against torch.

    Times ``zero_grad(set_to_none=True)``, ``backward()`` of :math:`\\sum_i c_i
    \\theta_i` (autograd writes one fresh gradient per parameter) and ``step()`` of
    ``descend.Adam`` (its default path) and of ``torch.optim.Adam(fused=True)``, and of
    the composed chain of ``adamw_clip_sched`` and torch's ``clip_grad_norm_`` + fused
    ``AdamW`` + ``LambdaLR``, interleaved. This is what a training loop pays. Returns the medians in ms, Adam's ratio to torch's, and what the
    composition adds to each side's Adam training step.
    """
    g = torch.Generator().manual_seed(seed)
    runs = {}
    for name, make in _TRAINING.items():
        params = [torch.randn(s, generator=g).requires_grad_() for s in shapes]
        coefs = [torch.randn(s, generator=g) * 1e-2 for s in shapes]
        run = _training_step(make(params), params, coefs, clip=name.endswith("_clip"))
        run()  # the first step allocates state
        runs[name] = (run, Timing())
    for order in round_orders(list(runs), rounds, seed):
        for name in order:
            fn, timing = runs[name]
            timing.samples.append(_timed(fn, steps))
    ms = {name: timing.median * 1e3 for name, (_, timing) in runs.items()}
    return {
        "descend_ms": ms["descend"],
        "torch_ms": ms["torch_fused"],
        "ratio": ms["descend"] / ms["torch_fused"],
        "descend_clip_ms": ms["descend_clip"],
        "torch_clip_ms": ms["torch_fused_clip"],
        "clip_ratio": ms["descend_clip"] / ms["torch_fused_clip"],
    }


def bench_size(
    n_target: int,
    algorithms: list[str],
    impls: list[str],
    *,
    rounds: int,
    steps: int,
    seed: int = 0,
    echo: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Time every implementation of every algorithm at one size; return the results."""
    shapes = model_shapes(n_target)
    n = sum(math.prod(s) for s in shapes)
    touch, read = _bandwidth_runners(n)
    inplace, reads = Timing(), Timing()
    results: dict[str, dict[str, Timing]] = {}
    state_bytes: dict[str, float] = {}
    counts: dict[str, int] = {}
    for name in algorithms:
        algo = ALGORITHMS[name]
        own = shapes if algo.shapes is None else algo.shapes(n_target)
        counts[name] = sum(math.prod(s) for s in own)
        runners: dict[str, Any] = {}
        for impl in impls:
            if impl.startswith("torch_") and impl.removeprefix("torch_") not in algo.torch_impls:
                continue
            if impl == "optax":
                if algo.optax is None or not optax_available():
                    continue
                runners[impl] = _OptaxRunner(algo, own, seed)
            elif impl == "reference" and algo.reference is None:
                continue
            elif impl == "descend_compiled" and algo.state is None:
                continue  # per-tensor Python arithmetic and eigh/QR: nothing to compile
            elif (
                impl == "descend_eager"
                and type(algo.descend([torch.zeros(2, 2)])) is descend.Optimizer
            ):
                continue  # a chain's default is its eager step: the "descend" row
            else:
                runners[impl] = _Runner(impl, algo, own, seed)
        timings = {impl: Timing() for impl in runners}
        with torch.no_grad():
            for impl, r in runners.items():
                # The first steps pay for any compilation (a compiled chain compiles on the
                # second step when the first has created a momentum buffer): report them
                # separately, as their total.
                timings[impl].first_step = 2 * _timed(r.step, 2)
                r.step()
            for order in round_orders([*runners, "inplace", "read"], rounds, seed):
                for impl in order:
                    if impl == "inplace":
                        inplace.samples.append(_timed(touch, steps))
                    elif impl == "read":
                        reads.samples.append(_timed(read, steps))
                    else:
                        timings[impl].samples.append(_timed(runners[impl].step, steps))
        results[name] = timings
        if algo.state is None and "descend" in runners:
            state_bytes[name] = _state_bytes(runners["descend"].opt) / counts[name]
        echo(
            f"  {counts[name] / 1e6:.1f}M {name}: "
            + ", ".join(f"{i} {t.median * 1e3:.2f} ms" for i, t in timings.items())
        )
        del runners
    bw = 8 * 4 * n / inplace.median  # x.mul_(1.0) reads and writes 4n floats
    rows = []
    for name, timings in results.items():
        algo = ALGORITHMS[name]
        n_algo = counts[name]
        floor = 4 * algo.traffic * n_algo / bw
        torch_best = min(
            (t.median for i, t in timings.items() if i.startswith("torch_") or i == "reference"),
            default=None,
        )
        forloop = timings.get("torch_forloop")
        for impl, t in timings.items():
            lo, hi = t.spread
            rows.append(
                {
                    "params": n_algo,
                    "algorithm": name,
                    "impl": impl,
                    "median_ms": t.median * 1e3,
                    "min_ms": lo * 1e3,
                    "max_ms": hi * 1e3,
                    "first_step_s": t.first_step,
                    "bytes_per_param": 4 * algo.traffic,
                    "state_bytes_per_param": (
                        4 * algo.state if algo.state is not None else state_bytes.get(name)
                    ),
                    "gb_per_s": 4 * algo.traffic * n_algo / t.median / 1e9,
                    "pct_of_floor": 100 * floor / t.median,
                    "vs_torch_best": t.median / torch_best if torch_best else None,
                    "vs_torch_forloop": t.median / forloop.median if forloop else None,
                }
            )
    return {
        "params": n,
        "training_step": (
            training_step(shapes, rounds, steps, seed) if "descend" in impls else None
        ),
        "shapes": f"{len([s for s in shapes if len(s) == 2])} matrices + "
        f"{len([s for s in shapes if len(s) == 1])} vectors",
        "inplace_gb_per_s": bw / 1e9,
        "inplace_spread_ms": [x * 1e3 for x in inplace.spread],
        "read_gb_per_s": 4 * 4 * n / reads.median / 1e9,  # torch.dot(x, x) reads 4n floats
        "read_ms": reads.median * 1e3,
        "inplace_ms": inplace.median * 1e3,
        "rows": rows,
    }


def _state_bytes(opt: Any) -> int:
    """Bytes of every tensor in an optimizer's state (lists of tensors included)."""
    total = 0
    for st in opt.state.values():
        for value in st.values():
            for t in value if isinstance(value, list) else [value]:
                if isinstance(t, Tensor) and t.dim() > 0:
                    total += t.numel() * t.element_size()
    return total


def machine() -> dict[str, Any]:
    """The machine the numbers come from: CPU model, cores, threads, torch version."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import os

    return {
        "cpu": model,
        "nproc": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "optax": optax_available(),
    }


def bench_step(
    sizes: list[int],
    algorithms: list[str] | None = None,
    *,
    rounds: int = 7,
    steps: int = 3,
    impls: list[str] | None = None,
    echo: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Run the step benchmark for each size; the result is what ``--json`` writes.

    Args:
        sizes: target parameter counts (each rounded to whole layers, see :func:`model_shapes`).
        algorithms: names from :data:`ALGORITHMS` (default: all).
        rounds: interleaved rounds; medians and min-max spreads are over rounds.
        steps: steps timed per implementation per round.
        impls: implementations from :data:`IMPLS` (default: all available).
        echo: called with a progress line per algorithm and size.
    """
    algorithms = list(algorithms or [a for a in ALGORITHMS if _installed(_NEEDS.get(a))])
    for name in algorithms:
        if name not in ALGORITHMS:
            raise unknown_choice("optimizer", name, ALGORITHMS)
        if not _installed(_NEEDS.get(name)):
            raise InvalidParameterError(
                f"The {name} row times the {_NEEDS[name]} package, which is not installed "
                f"(pip install {_NEEDS[name]}, or descend's dev extra). Got {name} without it."
            )
    impls = list(impls or IMPLS)
    for impl in impls:
        if impl not in IMPLS:
            raise unknown_choice("implementation", impl, dict.fromkeys(IMPLS))
    if rounds < 1 or steps < 1:
        raise InvalidParameterError(
            f"--rounds and steps must be at least 1. Got {rounds} and {steps} instead."
        )
    return {
        "machine": machine(),
        "rounds": rounds,
        "steps_per_round": steps,
        "sizes": [
            bench_size(n, algorithms, impls, rounds=rounds, steps=steps, echo=echo) for n in sizes
        ],
    }


def _bytes(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def table(result: dict[str, Any]) -> str:
    """The results as a Markdown table (one row per size, algorithm and implementation)."""
    lines = [
        (
            "| params | optimizer | implementation | median ms (min-max) | GB/s | % of floor | "
            "vs torch best | vs torch for-loop | bytes/param moved | state bytes/param | "
            "first 2 steps s |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in result["sizes"]:
        for r in size["rows"]:
            vs = f"{r['vs_torch_best']:.2f}x" if r["vs_torch_best"] is not None else "-"
            vs_loop = r.get("vs_torch_forloop")
            vs += f" | {vs_loop:.2f}x" if vs_loop is not None else " | -"
            lines.append(
                f"| {r['params'] / 1e6:.1f}M | {r['algorithm']} | {r['impl']} | "
                f"{r['median_ms']:.2f} ({r['min_ms']:.2f}-{r['max_ms']:.2f}) | {r['gb_per_s']:.1f} | "
                f"{r['pct_of_floor']:.0f}% | {vs} | {r['bytes_per_param']} | {_bytes(r['state_bytes_per_param'])} | "
                f"{r['first_step_s']:.2f} |"
            )
    for size in result["sizes"]:
        lo, hi = size["inplace_spread_ms"]
        lines.append(
            f"\nIn-place bandwidth at {size['params'] / 1e6:.1f}M ({size['shapes']}): "
            f"{size['inplace_gb_per_s']:.1f} GB/s (x.mul_(1.0) over 4n floats, {lo:.2f}-{hi:.2f} ms)."
        )
        if "read_gb_per_s" in size:
            lines.append(
                f"Read-only bandwidth at {size['params'] / 1e6:.1f}M: "
                f"{size['read_gb_per_s']:.1f} GB/s (torch.dot(x, x) over the same 4n floats, "
                f"{size['read_ms']:.2f} ms against {size['inplace_ms']:.2f} ms for reading "
                "and writing them)."
            )
        t = size.get("training_step")
        if t:
            lines.append(
                f"Training step at {size['params'] / 1e6:.1f}M (zero_grad + backward + Adam "
                f"step): descend {t['descend_ms']:.2f} ms, torch fused {t['torch_ms']:.2f} ms "
                f"({t['ratio']:.2f}x)."
            )
        if t and "descend_clip_ms" in t:
            lines.append(
                f"Training step at {size['params'] / 1e6:.1f}M with clip -> Adam -> decay -> "
                f"schedule: descend {t['descend_clip_ms']:.2f} ms "
                f"({t['descend_clip_ms'] - t['descend_ms']:+.2f} ms against its Adam step), "
                f"torch {t['torch_clip_ms']:.2f} ms "
                f"({t['torch_clip_ms'] - t['torch_ms']:+.2f} ms) ({t['clip_ratio']:.2f}x)."
            )
    return "\n".join(lines)


def plot(result: dict[str, Any], path: str) -> None:
    """Percent of the in-place floor per optimizer and implementation, one panel per size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = result["sizes"]
    fig, axes = plt.subplots(len(sizes), 1, figsize=(11, 3.6 * len(sizes)), squeeze=False)
    for ax, size in zip(axes[:, 0], sizes, strict=True):
        algos = list(dict.fromkeys(r["algorithm"] for r in size["rows"]))
        impls = [i for i in IMPLS if any(r["impl"] == i for r in size["rows"])]
        width = 0.8 / len(impls)
        for j, impl in enumerate(impls):
            xs, ys = [], []
            for i, a in enumerate(algos):
                for r in size["rows"]:
                    if r["algorithm"] == a and r["impl"] == impl:
                        xs.append(i + j * width)
                        ys.append(r["pct_of_floor"])
            ax.bar(xs, ys, width, label=impl)
        ax.axhline(100, color="black", lw=0.8)
        ax.axhline(90, color="gray", lw=0.8, ls="--")
        ax.set_xticks(
            [i + 0.4 - width / 2 for i in range(len(algos))], algos, rotation=20, fontsize=8
        )
        top = max(r["pct_of_floor"] for r in size["rows"])
        ax.set_ylim(0, 1.3 * max(top, 100))  # room for the legend above the bars
        ax.set_ylabel("% of in-place floor")
        ax.set_title(
            f"{size['params'] / 1e6:.1f}M parameters ({size['shapes']}), "
            f"in-place {size['inplace_gb_per_s']:.0f} GB/s"
        )
        ax.legend(fontsize=7, ncol=len(impls))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
