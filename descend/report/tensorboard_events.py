"""TensorBoard event files for runs, when TensorBoard is installed.

``write_tensorboard(out_dir, runs)`` writes one subfolder per run,
``<out_dir>/<optimizer>-seed<seed>/``, so that ``tensorboard --logdir <out_dir>``
overlays every optimizer and seed. Step metrics are logged under ``train/`` at
their step; epoch metrics under ``epoch/`` at the step where the epoch ended, so
both share one x axis.

TensorBoard is optional (``pip install descend[tensorboard]``): without it this
writes nothing and returns an empty list, because a missing viewer must not
fail a training run whose other outputs are complete.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from descend.report.summary import finite_or_none

_SKIP = ("step", "epoch", "time")


def _folder_name(run: Mapping[str, Any]) -> str:
    raw = f"{run.get('optimizer', 'run')}-seed{run.get('seed', 0)}"
    # Keep the name a single safe path component whatever the optimizer is called.
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", raw).strip(".") or "run"


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` can be imported (needs the tensorboard package)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


def write_tensorboard(out_dir: Path | str, runs: Sequence[Mapping[str, Any]]) -> list[Path]:
    """Write event files, one subfolder per run; return the subfolders (empty without TensorBoard)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return []
    written: list[Path] = []
    for run in runs:
        folder = Path(out_dir) / _folder_name(run)
        history = run.get("history") or {}
        # Each call writes the whole history, so earlier event files of this run (from
        # before a resume) would show every point twice; they are replaced.
        for stale in folder.glob("events.out.tfevents.*"):
            stale.unlink()
        writer = SummaryWriter(log_dir=str(folder))
        try:
            for record in history.get("steps") or []:
                step = int(record.get("step", 0))
                for key, value in record.items():
                    number = finite_or_none(value)
                    if key not in _SKIP and number is not None:
                        writer.add_scalar(f"train/{key}", number, step)
            for record in history.get("epochs") or []:
                step = int(record.get("step", 0))
                for key, value in record.items():
                    number = finite_or_none(value)
                    if key not in _SKIP and number is not None:
                        writer.add_scalar(f"epoch/{key}", number, step)
        finally:
            writer.close()
        written.append(folder)
    return written
