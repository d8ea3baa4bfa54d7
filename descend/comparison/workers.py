"""One run of a comparison, and several of them at once in worker processes.

A comparison's runs (optimizer x seed) are independent: each builds its data and model
from its seed, and its numbers depend on nothing else. ``compare(..., workers=N)`` runs
them in ``N`` processes (``spawn``, so no torch state is shared with the parent) and
writes each finished run as it arrives, exactly as the sequential loop does; once all
are done the folder's files are rewritten in the plan's order, so a comparison run with
``N`` workers leaves the same records, metrics and report as one run sequentially (the
wall-clock columns aside).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from descend._validation import InvalidParameterError
from descend.comparison.records import run_record
from descend.diagnose import GradientHealth
from descend.tasks import Task, get_task, run_task, task_names

Job = tuple[str, int, str | None, dict[str, Any]]
"""(optimizer, seed, where its lr came from, keyword arguments of ``run_task``)."""


def run_one(
    task: Task,
    name: str,
    seed: int,
    lr_source: str | None,
    kwargs: dict[str, Any],
    callbacks: Sequence[Any] = (),
) -> tuple[dict[str, Any] | None, str]:
    """Run one (optimizer, seed); return its record, or ``None`` and the signal that
    stopped it (it stays checkpointed and is not counted)."""
    health = GradientHealth(every_n_steps=10)
    result = run_task(task, name, seed=seed, callbacks=[health, *callbacks], **kwargs)
    if result.history.interrupted_by:
        return None, result.history.interrupted_by
    return run_record(result, task, [r.to_dict() for r in health.records], lr_source=lr_source), ""


def _portable(task: Task) -> Any:
    """What a worker rebuilds the task from: the registry's name and options when it is a
    registered task (their factories close over local functions, which do not pickle)."""
    if task.name in task_names():
        return (task.name, dict(task.options))
    return task


def _worker_run(task: Any, threads: int, job: Job) -> tuple[dict[str, Any] | None, str]:
    import torch

    torch.set_num_threads(threads)
    if isinstance(task, tuple):
        task = get_task(task[0], **task[1])
    name, seed, lr_source, kwargs = job
    return run_one(task, name, seed, lr_source, kwargs)


def in_parallel(
    task: Task, jobs: Iterable[Job], workers: int, threads: int, stopped: Any
) -> Iterator[tuple[Job, dict[str, Any] | None, str]]:
    """Run ``jobs`` in ``workers`` processes; yield ``(job, record, signal)`` as each ends.

    No new job starts once ``stopped()`` is true (a signal reached the parent: the
    workers, in its process group, got it too and checkpoint their runs).
    """
    if workers < 1 or isinstance(workers, bool):
        raise InvalidParameterError(
            f"The 'workers' parameter of compare must be an int >= 1. Got {workers!r}."
        )
    pending = list(jobs)
    portable = _portable(task)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        running: dict[Future, Job] = {}
        while pending or running:
            while pending and len(running) < workers and not stopped():
                job = pending.pop(0)
                running[pool.submit(_worker_run, portable, threads, job)] = job
            if not running:
                return
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                record, signal_name = future.result()
                yield job, record, signal_name
