"""Test-wide settings.

The suite runs as two pytest-xdist workers on two cores. Each torch process would
otherwise start one OpenMP thread per core, and four spinning threads on two cores make
small models 10x slower (measured: 170 ms against 13 ms per digits step). One thread
per worker, inherited by the CLI subprocesses that some tests start.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch

torch.set_num_threads(1)
