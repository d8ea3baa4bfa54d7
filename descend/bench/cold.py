"""Cold compile: the first step of an optimizer on a machine that has compiled nothing yet.

Each run is a fresh Python process whose temporary directory and Inductor cache are new,
empty directories, so nothing compiled before (kernels, precompiled headers, probe
libraries) is reused; the step is timed inside that process, and the process's start-up
and imports are reported apart. A second process on the same directories shows the warm
case (a first step that finds its kernel on disk).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from descend._validation import InvalidParameterError, unknown_choice


# Each named optimizer's rule as a compiled chain (compile=True): what a user who opts in
# to compilation pays on the first step. Momentum SGD compiles on its second step, after
# the first has created the momentum buffer (a first step runs eagerly while state is
# missing, so that the compiled graph sees one layout).
def _compiled(cls: str, hp: str) -> str:
    return f"descend.Optimizer(ps, descend.{cls}.transform, compile=True, {hp})"


OPTIMIZERS = {
    "sgd": _compiled("SGD", "lr=1e-3, momentum=0.0"),
    "momentum": _compiled("SGD", "lr=1e-3, momentum=0.9"),
    "adam": _compiled("Adam", "lr=1e-3"),
    "adamw": _compiled("Adam", "lr=1e-3, weight_decay=1e-2, decoupled_weight_decay=True"),
    "rmsprop": _compiled("RMSprop", "lr=1e-3, momentum=0.0"),
}

_CHILD = """
import json, sys, time
start = time.perf_counter()
import torch, descend
from descend.bench.step import model_shapes
ps = [torch.randn(s).requires_grad_() for s in model_shapes({n})]
for p in ps:
    p.grad = torch.randn_like(p)
opt = {make}
imported = time.perf_counter() - start
if {momentum}:
    opt.step()
t = time.perf_counter(); opt.step(); first = time.perf_counter() - t
t = time.perf_counter(); opt.step(); second = time.perf_counter() - t
print(json.dumps({{"first_step_s": first, "next_step_s": second, "setup_s": imported}}))
"""


def _one(n: int, name: str, tmp: str) -> dict[str, float]:
    env = dict(os.environ)
    env["TMPDIR"] = tmp
    env["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(tmp, "inductor")
    code = _CHILD.format(n=n, make=OPTIMIZERS[name], momentum=name == "momentum")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"the cold-compile run of {name} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_cold(
    n: int,
    optimizers: list[str],
    *,
    repeats: int = 2,
    echo: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """First-step times of each optimizer from empty caches, ``repeats`` times, and warm."""
    for name in optimizers:
        if name not in OPTIMIZERS:
            raise unknown_choice("optimizer", name, OPTIMIZERS)
    if repeats < 1:
        raise InvalidParameterError(f"--repeats must be at least 1. Got {repeats} instead.")
    rows = []
    for name in optimizers:
        cold, warm = [], []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory(prefix="descend-cold-") as tmp:
                cold.append(_one(n, name, tmp))
                warm.append(_one(n, name, tmp))
        row = {
            "optimizer": name,
            "cold_first_step_s": [r["first_step_s"] for r in cold],
            "warm_first_step_s": [r["first_step_s"] for r in warm],
            "next_step_ms": statistics.median(r["next_step_s"] for r in cold) * 1e3,
            "setup_s": statistics.median(r["setup_s"] for r in cold),
        }
        rows.append(row)
        echo(
            f"  {name}: cold first step "
            + ", ".join(f"{x:.2f}" for x in row["cold_first_step_s"])
            + " s; warm "
            + ", ".join(f"{x:.2f}" for x in row["warm_first_step_s"])
            + f" s; next step {row['next_step_ms']:.1f} ms"
        )
    from descend.bench.step import model_shapes

    total = sum(math.prod(s) for s in model_shapes(n))
    return {"params": total, "repeats": repeats, "rows": rows}
