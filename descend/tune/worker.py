"""``python -m descend.tune.worker --storage S --study NAME``: one worker process of a study.

``descend tune --workers N`` starts N of these; on another machine, start
``descend tune`` with the same ``--storage`` and ``--study`` instead (it joins).
Everything a trial needs (task, optimizer, space, recipe) is read from the study.
"""

from __future__ import annotations

import argparse
import sys

from descend.tune.processes import run_worker
from descend.tune.storage import open_storage, optuna_module, study_settings
from descend.tune.workers import defer_signals


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m descend.tune.worker")
    parser.add_argument("--storage", required=True)
    parser.add_argument("--study", required=True)
    parser.add_argument("--worker", type=int, default=0, help="index: seeds this worker's sampler")
    parser.add_argument("--heartbeat", type=float, default=5.0)
    parser.add_argument("--grace", type=float, default=30.0)
    parser.add_argument(
        "--device", default="cpu", help="where this worker trains (auto, cpu, cuda, mps)"
    )
    parser.add_argument("--precision", default="fp32", help="fp32, bf16 or fp16")
    args = parser.parse_args(argv)
    storage = open_storage(args.storage)
    study = optuna_module().load_study(study_name=args.study, storage=storage)
    # The device and precision are this worker's, not the study's (see processes._runtime).
    settings = {**study_settings(study), "device": args.device, "precision": args.precision}
    defer_signals()
    try:
        run_worker(storage, args.study, settings, args.worker, args.heartbeat, args.grace, False)
    except KeyboardInterrupt:
        sys.exit(130)  # its trial, if any, was given back to the queue


if __name__ == "__main__":
    main()
