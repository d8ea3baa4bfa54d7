# Usage: python scripts/bench_soap_references.py ROUNDS   (needs the dev extra: pytorch-optimizer)
"""Interleaved SOAP step times at 10.5M (10 x 1024^2 + 40 x 1024): descend vs the authors'
soap.py vs pytorch-optimizer, one torch thread, medians over shuffled rounds."""

import random
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.optim.reference
from pytorch_optimizer import SOAP as PO

import descend
from descend.bench.step import model_shapes
from tests.optim.reference.soap_vyas import SOAP as Authors

torch.set_num_threads(1)
shapes = model_shapes(10_000_000)
impls = {"descend": descend.SOAP, "authors": Authors, "pytorch_optimizer": PO}
runs = {}
for name, cls in impls.items():
    g = torch.Generator().manual_seed(0)
    ps = [torch.randn(s, generator=g).requires_grad_() for s in shapes]
    gs = [torch.randn(s, generator=g) * 1e-2 for s in shapes]
    opt = cls(ps)

    def step(ps=ps, gs=gs, opt=opt):
        for p, gr in zip(ps, gs):
            p.grad = gr
        opt.step()

    with torch.no_grad():
        step()
        step()
    runs[name] = (step, [])
rng = random.Random(0)
with torch.no_grad():
    for r in range(int(sys.argv[1])):
        for name in rng.sample(list(runs), len(runs)):
            fn, ts = runs[name]
            t = time.perf_counter()
            for _ in range(2):
                fn()
            ts.append((time.perf_counter() - t) / 2)
med = {n: statistics.median(ts) for n, (_, ts) in runs.items()}
for n, m in med.items():
    print(
        f"{n}: median {m * 1e3:.0f} ms/step (min {min(runs[n][1]) * 1e3:.0f}, max {max(runs[n][1]) * 1e3:.0f}); vs authors {m / med['authors']:.2f}x, vs pytorch_optimizer {m / med['pytorch_optimizer']:.2f}x"
    )
