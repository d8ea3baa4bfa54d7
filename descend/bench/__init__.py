"""Layer ``bench``: how fast descend runs, measured against its peers.

- :mod:`descend.bench.step`: one optimizer step against torch.optim's for-loop, foreach and
  fused paths (and optax's), as time, GB/s and percent of the memory-bandwidth floor;
- :mod:`descend.bench.cold`: the first (compiling) step from empty caches;
- :mod:`descend.bench.loop`: ``descend.fit`` against a hand-written PyTorch loop.

They run as ``descend bench step``, ``descend bench compile`` and ``descend bench loop``;
see docs/bench.md.
"""

from descend.bench.cold import bench_cold
from descend.bench.loop import bench_loop
from descend.bench.step import ALGORITHMS, bench_step, model_shapes, parse_size

__all__ = ["ALGORITHMS", "bench_cold", "bench_loop", "bench_step", "model_shapes", "parse_size"]
