"""``python -m descend.tune.worker --storage S --study NAME``: one worker process of a study.

``descend tune --workers N`` starts N of these; on another machine, start
``descend tune`` with the same ``--storage`` and ``--study`` instead (it joins).
Everything a trial needs (task, optimizer, space, recipe) is read from the study.
"""

from __future__ import annotations

import argparse
import os
import sys

from descend.tune.processes import run_worker
from descend.tune.storage import open_storage, optuna_module, study_settings
from descend.tune.workers import sigterm_as_interrupt


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m descend.tune.worker")
    parser.add_argument("--storage", required=True)
    parser.add_argument("--study", required=True)
    parser.add_argument("--worker", type=int, default=0, help="index: seeds this worker's sampler")
    parser.add_argument("--heartbeat", type=float, default=5.0)
    parser.add_argument("--grace", type=float, default=30.0)
    args = parser.parse_args(argv)
    storage = open_storage(args.storage)
    study = optuna_module().load_study(study_name=args.study, storage=storage)
    settings = study_settings(study)
    sigterm_as_interrupt()
    try:
        run_worker(storage, args.study, settings, args.worker, args.heartbeat, args.grace, False)
    except KeyboardInterrupt:
        # Its trial was given back to the queue (every storage write is committed when made).
        # os._exit: interpreter shutdown after a KeyboardInterrupt can end the process by
        # SIGINT instead of this status (seen when SIGINT's handler was inherited).
        sys.stderr.flush()
        os._exit(130)


if __name__ == "__main__":
    main()
