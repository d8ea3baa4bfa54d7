"""``compare``: several optimizers on one task over seeds, written to its folder as it goes.

One library call does what ``descend compare`` does, so a script and the CLI share
one path. Each run that finishes is saved before the next starts (its record,
its rows of ``metrics.csv``, then the summary, figures and report rebuilt from
disk), so a crash or a full disk costs at most the run in progress, and that run
resumes from its checkpoint. A first Ctrl-C (SIGINT) or SIGTERM stops the whole
comparison after the current step: the run in progress is checkpointed, never
counted as finished, and the report is rewritten as incomplete; a second Ctrl-C
exits at once.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from descend._validation import InvalidParameterError, unknown_choice
from descend.comparison import store
from descend.comparison.folder import DiskFullError, claim, disk_full
from descend.comparison.plan import Plan, change_entry, load_plan, save_plan
from descend.comparison.records import FROM_TUNING, task_info
from descend.comparison.tuning import Tuned, Tuner, TuningInterrupted, lr_grid, optuna_tuner
from descend.comparison.workers import Job, in_parallel, run_one
from descend.diagnose import verdicts_for_runs
from descend.report import write_text_atomic
from descend.tasks import Task, get_task, warm_up
from descend.tasks.task import OPTIMIZER_NAMES
from descend.train import ProgressBar
from descend.train.interrupts import catch_interrupts

SEED_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
"""The optimizers the source articles name, compared by default."""
TUNE_METHODS = ("grid", "lr", "all")
"""How --budget is spent: an lr grid, or an Optuna study of the lr or of every tunable."""

# Settings of a run kept next to its checkpoint: a resume continues it only when equal.
_RUN_SETTINGS = "settings.json"


@dataclass
class Comparison:
    """What :func:`compare` leaves: the folder, the finished runs and what is still missing.

    Attributes:
        folder: the run folder.
        plan: the settings the runs used.
        records: the finished runs (plain dicts), in the plan's order.
        missing: ``"<optimizer>-seed<k>"`` of each run not finished.
        interrupted_by: ``"SIGINT"``/``"SIGTERM"`` when a signal stopped it, else ``""``.
        written: the files of the run folder (``report``, ``summary``, ...).
    """

    folder: Path
    plan: Plan
    records: list[dict[str, Any]]
    missing: list[str]
    interrupted_by: str = ""
    written: dict[str, Path] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.missing

    def diagnostics(self) -> list[dict[str, Any]]:
        """The verdicts on the finished runs (``[{"optimizer", "seed", "verdict", "evidence"}]``)."""
        health = [r.get("health") or [] for r in self.records]
        return verdicts_for_runs(self.records, health)

    @property
    def summary(self) -> dict[str, Any] | None:
        path = self.written.get("summary")
        return None if path is None else json.loads(Path(path).read_text(encoding="utf-8"))


def _check_plan(plan: Plan) -> None:
    for name in [*plan.optimizers, *plan.lrs]:
        if name not in OPTIMIZER_NAMES:
            raise unknown_choice("optimizer", name, OPTIMIZER_NAMES)
    if not plan.optimizers or not plan.seeds:
        raise InvalidParameterError(
            "compare needs at least one optimizer and one seed. "
            f"Got optimizers={list(plan.optimizers)}, seeds={list(plan.seeds)}."
        )
    extra = sorted(set(plan.lrs) - set(plan.optimizers))
    if extra:
        raise InvalidParameterError(
            f"lrs names {extra}, which are not being compared. "
            f"Compared: {', '.join(plan.optimizers)}."
        )
    if plan.tune not in TUNE_METHODS:
        raise unknown_choice("tune", plan.tune, TUNE_METHODS)
    if plan.budget is not None and (
        isinstance(plan.budget, bool) or not isinstance(plan.budget, int) or plan.budget < 1
    ):
        raise InvalidParameterError(
            f"The 'budget' parameter of compare must be an int >= 1 or None. Got {plan.budget!r}."
        )


def compare(
    task: Task | str,
    optimizers: Iterable[str] = SEED_OPTIMIZERS,
    *,
    out: str | Path,
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int | None = None,
    batch_size: int | None = None,
    lrs: Mapping[str, float] | None = None,
    schedule: str = "constant",
    max_steps: int | None = None,
    on_nonfinite: str = "raise",
    checkpoint_every: int | None = None,
    budget: int | None = None,
    tune: str = "grid",
    tuner: Tuner | None = None,
    overwrite: bool = False,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    workers: int = 1,
    threads: int = 1,
) -> Comparison:
    """Run ``task`` once per optimizer and seed, everything else equal, into the folder ``out``.

    Args:
        task: a :class:`~descend.tasks.Task` or a registry name.
        optimizers: registry names, run in the order given.
        out: the run folder; it must be new or empty (``overwrite=True`` replaces what
            an earlier descend run left there; :func:`resume` continues one).
        seeds: each optimizer runs once per seed (same data and initial weights across
            optimizers for the same seed, so the comparison is paired).
        epochs, batch_size, schedule, max_steps, on_nonfinite: the recipe (``None``: the task's),
            as in :func:`descend.tasks.run_task`.
        lrs: learning rates by optimizer name; missing names use the task's table.
        checkpoint_every: also checkpoint the run in progress every N updates (it is
            always checkpointed when a signal stops it), so a killed process loses at most N.
        progress: a progress bar per run on standard error.
        budget: tune each optimizer first with this many trials, the same number for every
            one (:mod:`descend.comparison.tuning`; an optimizer with an lr in ``lrs`` is not
            tuned); the runs over ``seeds`` then use the chosen values.
        tune: how ``budget`` is spent: ``"grid"`` (:func:`~descend.comparison.tuning.lr_grid`,
            log-spaced learning rates), or an Optuna study of the ``tune`` layer over
            ``"lr"`` or ``"all"`` the hyperparameters the optimizer declares tunable.
        tuner: any tuning method, ``(task, optimizer, budget, *, recipe) -> Tuned``
            (overrides ``tune``; not saved, so pass it again to :func:`resume`).
        log: called with one line as each run starts (``"[3/18] adam, seed 2"``).
        workers: run this many (optimizer, seed) runs at once, each in its own process
            (:mod:`descend.comparison.workers`); the folder ends as with ``workers=1``.
        threads: torch threads in each worker process (``workers > 1``).

    Returns:
        The :class:`Comparison`. It is incomplete (``interrupted_by`` set) when SIGINT or
        SIGTERM stopped it; the finished runs and the checkpoint are on disk.

    Raises:
        InvalidParameterError: an unknown name, a folder that cannot be written or
            already holds files.
        FolderInUseError: another process is writing to ``out``.
        DiskFullError: the disk filled up (everything written before is kept).
    """
    task_obj = get_task(task) if isinstance(task, str) else task
    plan = Plan(
        task=task_obj.name,
        optimizers=tuple(optimizers),
        seeds=tuple(int(s) for s in seeds),
        epochs=epochs,
        batch_size=batch_size,
        lrs={k: float(v) for k, v in (lrs or {}).items()},
        schedule=schedule,
        max_steps=max_steps,
        on_nonfinite=on_nonfinite,
        checkpoint_every=checkpoint_every,
        budget=budget,
        tune=tune,
    )
    _check_plan(plan)
    folder = Path(out)
    with claim(folder, resume=False, overwrite=overwrite):
        _guard_disk(folder, "compare.json", lambda: save_plan(folder, plan))
        return _run(
            folder,
            plan,
            [],
            task_obj,
            progress=progress,
            log=log,
            tuner=tuner,
            workers=workers,
            threads=threads,
        )


def resume(
    out: str | Path,
    *,
    task: Task | str | None = None,
    allow_changes: bool = False,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    tuner: Tuner | None = None,
    workers: int = 1,
    threads: int = 1,
    **changes: Any,
) -> Comparison:
    """Continue the comparison in ``out``: finished runs are kept, the checkpointed one resumes.

    Args:
        out: the folder of a comparison started by :func:`compare`.
        task: the task, as saved (a name must match it); a :class:`~descend.tasks.Task`
            object is needed only for a task that is not in the registry.
        allow_changes: accept settings in ``changes`` that differ from the saved plan;
            runs already finished keep theirs, and the change is recorded in
            ``compare.json`` and ``config.yaml``.
        changes: settings of :func:`compare` (``lrs=``, ``epochs=``, ``seeds=``, ...);
            ``None`` values mean "as saved".
        workers, threads: as in :func:`compare`.

    Raises:
        InvalidParameterError: ``out`` holds no comparison, or a setting differs and
            ``allow_changes`` is false.
    """
    folder = Path(out)
    if not (folder / "compare.json").exists():
        load_plan(folder)  # raises the "holds no comparison" error
    with claim(folder, resume=True, overwrite=False):
        saved, history = load_plan(folder)
        if isinstance(task, str) and task != saved.task:
            raise InvalidParameterError(
                f"cannot resume {str(folder)!r} with task {task!r}: it compares on "
                f"{saved.task!r}. Start a new comparison with --out instead."
            )
        plan = saved.changed(**changes)
        _check_plan(plan)
        differences = saved.differences(plan)
        if "task" in differences:
            raise InvalidParameterError(
                f"cannot resume {str(folder)!r} with task {plan.task!r}: it compares on "
                f"{saved.task!r}. Start a new comparison with --out instead."
            )
        if differences and not allow_changes:
            listed = "; ".join(f"{k}: {v['was']!r} -> {v['now']!r}" for k, v in differences.items())
            raise InvalidParameterError(
                f"cannot resume {str(folder)!r} with other settings ({listed}): its finished "
                "runs used the saved ones. Resume without them, or pass --allow-changes "
                "(allow_changes=True) to mix them; the change is then recorded."
            )
        if differences:
            finished = [
                store.run_key(n, s)
                for n, s in saved.runs()
                if store.record_path(folder, n, s).exists()
            ]
            history = [*history, change_entry(differences, finished)]
            _guard_disk(folder, "compare.json", lambda: save_plan(folder, plan, history))
        task_obj = task if isinstance(task, Task) else get_task(plan.task)
        return _run(
            folder,
            plan,
            history,
            task_obj,
            progress=progress,
            log=log,
            tuner=tuner,
            workers=workers,
            threads=threads,
        )


def machine_load() -> dict[str, Any]:
    """The machine's 1-minute load average now (at the end of a run: the load during it)."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        load = None
    return {"load_1min": load, "cpus": os.cpu_count()}


def _guard_disk(
    folder: Path, what: str, write: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """``write(*args, **kwargs)``; a full disk becomes :class:`DiskFullError` naming ``what``."""
    try:
        return write(*args, **kwargs)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise disk_full(folder, exc, what) from exc
        raise


def _config(plan: Plan, task: Task, history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    config: dict[str, Any] = {
        "command": "compare",
        "task": task.name,
        "optimizers": list(plan.optimizers),
        "seeds": list(plan.seeds),
        "epochs": plan.epochs if plan.epochs is not None else task.epochs,
        "batch_size": plan.batch_size if plan.batch_size is not None else task.batch_size,
        "schedule": plan.schedule,
        "max_steps": plan.max_steps,
        "on_nonfinite": plan.on_nonfinite,
        "lr_overrides": dict(plan.lrs),
        "checkpoint_every": plan.checkpoint_every,
        "budget": plan.budget,
        "tune": plan.tune if plan.budget is not None else None,
    }
    if history:
        config["changes_on_resume"] = list(history)
    return config


def _run_settings(plan: Plan, name: str, lr: float | None) -> dict[str, Any]:
    return {
        "lr": lr,
        "epochs": plan.epochs,
        "batch_size": plan.batch_size,
        "schedule": plan.schedule,
        "max_steps": plan.max_steps,
        "on_nonfinite": plan.on_nonfinite,
    }


def _tune(
    folder: Path,
    plan: Plan,
    task: Task,
    tuner: Tuner,
    log: Callable[[str], None] | None,
    interrupt: Any,
) -> dict[str, Tuned]:
    """Tune every optimizer without a given lr, each with ``plan.budget`` trials.

    Each optimizer's result is saved (``tuning/<name>.json``) as soon as it is chosen, so a
    resumed comparison reuses it instead of tuning again.
    """
    recipe = {
        "epochs": plan.epochs,
        "batch_size": plan.batch_size,
        "schedule": plan.schedule,
        "max_steps": plan.max_steps,
    }
    found: dict[str, Tuned] = {}
    for name in plan.optimizers:
        if name in plan.lrs:
            continue  # the caller chose its lr
        path = folder / "tuning" / f"{name}.json"
        if path.exists():
            found[name] = Tuned.from_dict(json.loads(path.read_text(encoding="utf-8")))
            continue
        if interrupt.signum is not None:
            raise TuningInterrupted(interrupt.name)
        if log is not None:
            log(f"tuning {name}: {plan.budget} trial(s) on a split of the training set")
        found[name] = tuner(task, name, plan.budget, recipe=recipe)
        _guard_disk(
            folder,
            f"the tuning of {name}",
            write_text_atomic,
            path,
            json.dumps(found[name].to_dict()) + "\n",
        )
    return found


def _prepare_checkpoint(where: Path, settings: Mapping[str, Any]) -> None:
    """Keep a checkpoint only if it was written with these settings (an allowed change
    restarts the run in progress rather than continue it under other settings)."""
    saved = where / _RUN_SETTINGS
    try:
        same = json.loads(saved.read_text(encoding="utf-8")) == dict(settings)
    except (OSError, ValueError):
        same = False
    if not same:
        shutil.rmtree(where, ignore_errors=True)
        write_text_atomic(saved, json.dumps(dict(settings)) + "\n")


def _run(
    folder: Path,
    plan: Plan,
    history: Sequence[Mapping[str, Any]],
    task: Task,
    *,
    progress: bool,
    log: Callable[[str], None] | None,
    tuner: Tuner | None = None,
    workers: int = 1,
    threads: int = 1,
) -> Comparison:
    info = task_info(task)
    config = _config(plan, task, history)
    records = store.load_records(folder, plan)
    _guard_disk(folder, "metrics.csv", lambda: store.rewrite_metrics(folder, records))
    todo = [(n, s) for n, s in plan.runs() if not store.record_path(folder, n, s).exists()]
    warm_up(sorted({n for n, _ in todo}))
    total, interrupted_by = len(plan.runs()), ""
    # Per optimizer: its lr, where that came from (None: the caller or the task table),
    # and its other tuned hyperparameters.
    chosen: dict[str, tuple[float | None, str | None, dict[str, Any]]] = {
        name: (plan.lrs.get(name), None, {}) for name in plan.optimizers
    }
    tuned: dict[str, Tuned] = {}

    # One bar over all runs (which optimizer and seed is running in its label), and one
    # under it for the run in progress.
    overall = (
        tqdm(total=total, initial=total - len(todo), unit="run", position=0, file=sys.stderr)
        if progress
        else None
    )
    with catch_interrupts() as interrupt:
        if plan.budget is not None:
            try:
                default = lr_grid if plan.tune == "grid" else optuna_tuner(plan.tune)
                tuned = _tune(folder, plan, task, tuner or default, log, interrupt)
            except TuningInterrupted as stop:
                interrupted_by = stop.signal_name
                interrupt.signum = signal.Signals[stop.signal_name].value
                todo = []
            for name, found in tuned.items():
                others = {k: v for k, v in found.hyperparameters.items() if k != "lr"}
                chosen[name] = (float(found.hyperparameters["lr"]), FROM_TUNING, others)
            config["tuning"] = {name: found.to_dict() for name, found in tuned.items()}

        def job(name: str, seed: int) -> Job:
            """Prepare the run's checkpoint folder; its run_task arguments."""
            lr, lr_source, options = chosen[name]
            where = store.checkpoint_dir(folder, name, seed)
            _guard_disk(
                folder,
                "a checkpoint",
                _prepare_checkpoint,
                where,
                {**_run_settings(plan, name, lr), "optimizer_options": options},
            )
            kwargs = {
                "lr": lr,
                "optimizer_options": options or None,
                "epochs": plan.epochs,
                "batch_size": plan.batch_size,
                "schedule": plan.schedule,
                "max_steps": plan.max_steps,
                "checkpoint_dir": where,
                "checkpoint_every": plan.checkpoint_every,
                "resume": True,
                "progress": False,
                "on_nonfinite": plan.on_nonfinite,
            }
            return name, seed, lr_source, kwargs

        def finish(record: dict[str, Any]) -> None:
            """Save a finished run, then the metrics and the report with it."""
            name, seed = record["optimizer"], record["seed"]
            record["machine"] = machine_load()
            records.append(record)
            _guard_disk(
                folder, f"the record of {name}, seed {seed}", store.write_record, folder, record
            )
            _guard_disk(folder, "metrics.csv", store.add_metrics, folder, records)
            shutil.rmtree(store.checkpoint_dir(folder, name, seed), ignore_errors=True)
            if overall is not None:
                overall.update(1)
            _guard_disk(
                folder,
                "the report",
                lambda: store.rebuild_report(
                    folder, plan=plan, task=info, records=records, config=config
                ),
            )

        try:
            if workers > 1:
                jobs = (job(n, s) for n, s in todo)
                for _, record, signal_name in in_parallel(
                    task, jobs, workers, threads, lambda: interrupt.signum is not None
                ):
                    if record is None:
                        interrupted_by = signal_name
                        interrupt.signum = signal.Signals[signal_name].value
                    else:
                        finish(record)
                # Finished in any order: the files as the sequential loop leaves them.
                records[:] = store.load_records(folder, plan)
                _guard_disk(folder, "metrics.csv", lambda: store.rewrite_metrics(folder, records))
                if interrupt.signum is not None:
                    interrupted_by = interrupt.name
            else:
                for name, seed in todo:
                    if interrupt.signum is not None:
                        interrupted_by = interrupt.name
                        break
                    if log is not None:
                        done = total - len(store.missing_runs(folder, plan))
                        log(f"[{done + 1}/{total}] {name}, seed {seed}")
                    bars: list[Any] = []
                    if overall is not None:
                        overall.set_description_str(f"compare {task.name}: {name}, seed {seed}")
                        bars.append(
                            ProgressBar(
                                desc=f"{name}, seed {seed}", leave=False, position=1, disable=False
                            )
                        )
                    record, signal_name = run_one(task, *job(name, seed), callbacks=bars)
                    if record is None:
                        # The run stopped early: it stays checkpointed and is not counted. A
                        # second Ctrl-C from now on raises KeyboardInterrupt (catch_interrupts).
                        interrupted_by = signal_name
                        interrupt.signum = signal.Signals[signal_name].value
                        break
                    finish(record)
                else:
                    if interrupt.signum is not None:
                        interrupted_by = interrupt.name
        except DiskFullError:
            raise
        except OSError as exc:
            if exc.errno == errno.ENOSPC:  # from a run's own checkpoint writes
                raise disk_full(folder, exc, "a checkpoint") from exc
            raise

        missing = store.missing_runs(folder, plan)
        written: dict[str, Path] = {}
        if records:
            written = _guard_disk(
                folder,
                "the report",
                lambda: store.rebuild_report(
                    folder,
                    plan=plan,
                    task=info,
                    records=records,
                    config=config,
                    interrupted_by=interrupted_by,
                ),
            )
        if not missing:
            shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    if overall is not None:
        overall.close()
    return Comparison(folder, plan, records, missing, interrupted_by, written)
