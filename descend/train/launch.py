"""Start a command on N processes of this machine with torchrun's elastic agent.

``descend train ... --nproc N`` calls :func:`torchrun`: the agent (``torch.distributed.run``,
run in this process) starts ``N`` workers of ``python -m descend.cli.main ...``, watches
them, and, with ``max_restarts``, restarts them all when one dies (each run then resumes
from its last complete sharded checkpoint). On several machines, start ``torchrun``
yourself on each (see ``docs/scale.md``): this helper is for one machine.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

from descend._validation import Interval, OneOf, validate
from descend.train.distributed import STRATEGIES, TIMEOUT_ENV


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def strip_option(argv: Sequence[str], option: str) -> list[str]:
    """``argv`` without ``option`` and its value (``--nproc 2`` or ``--nproc=2``)."""
    out: list[str] = []
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token == option:
            skip = True
        elif not token.startswith(option + "="):
            out.append(token)
    return out


def torchrun(
    nproc: int,
    module_argv: Sequence[str],
    *,
    strategy: str = "ddp",
    max_restarts: int = 0,
    timeout: float | None = None,
) -> None:
    """Run ``python -m <module_argv>`` on ``nproc`` processes under torchrun's agent.

    The workers meet through a c10d rendezvous on 127.0.0.1 and a free port (a restart
    starts a fresh rendezvous round), and find ``strategy`` in ``DESCEND_STRATEGY`` and
    ``timeout`` (seconds a collective waits for a silent peer) in
    ``DESCEND_COLLECTIVE_TIMEOUT``.

    Raises:
        torch.distributed.elastic.multiprocessing.errors.ChildFailedError: a worker
            failed (after ``max_restarts`` restarts); its message names the rank, the exit
            code and the worker's error.
    """
    validate(
        "torchrun",
        {"nproc": nproc, "strategy": strategy, "max_restarts": max_restarts},
        {
            "nproc": Interval(1, None, closed="left", integer=True),
            "strategy": OneOf(STRATEGIES),
            "max_restarts": Interval(0, None, closed="left", integer=True),
        },
    )
    from torch.distributed.run import parse_args, run

    os.environ["DESCEND_STRATEGY"] = strategy
    if timeout is not None:
        os.environ[TIMEOUT_ENV] = str(timeout)
    args = [
        f"--nproc-per-node={nproc}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{_free_port()}",
        f"--max-restarts={max_restarts}",
        "--monitor-interval=0.5",
        # A worker stuck past its collective timeout gets this long after SIGTERM.
        "--shutdown-timeout=5",
        "-m",
        *module_argv,
    ]
    run(parse_args(args))
