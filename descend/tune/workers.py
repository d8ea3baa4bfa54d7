"""The worker loop: take a queued trial, run it with a heartbeat, record it; until none is left.

A study of N trials is N trials queued when it is created (Optuna's
``enqueue_trial`` with no fixed values, so the sampler still chooses them). A
worker takes one by moving it from WAITING to RUNNING, which every Optuna storage
grants to exactly one process (the journal by the order of its log, an RDB by a
row lock), so no trial runs twice and the study never holds more than N.
Optuna's own ``optimize`` cannot promise that: its stop callbacks are checked
after a trial ends, so workers finishing together each start one more.

A killed worker cannot say that its trial ended. While a trial runs, a thread
writes the time to the trial's ``descend:heartbeat`` attribute every
``heartbeat`` seconds; any worker that finds a RUNNING trial silent for longer than
``grace`` seconds marks it FAIL (attribute ``descend:lost``) and queues a copy with
the same hyperparameters and seed (as Optuna's
``RetryHeartbeatStaleTrialCallback`` does).
Optuna's built-in heartbeat exists only for RDB storages; this one works with the
journal file too, the same way. A worker leaves when nothing is queued or running,
so a lost trial is always retried by someone who is still there.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Self

from descend.tune.storage import optuna_module

HEARTBEAT_KEY = "descend:heartbeat"
LOST_KEY = "descend:lost"
READY_KEY = "descend:queued"
DEFAULT_HEARTBEAT = 5.0
DEFAULT_GRACE = 30.0


def _retry(study: Any, lost: Any) -> None:
    """Queue a copy of the lost trial: same hyperparameters, same seed, a fresh start.

    Optuna's ``RetryHeartbeatStaleTrialCallback`` would copy the lost trial's system
    attributes too, heartbeat included, and the copy would look lost the moment it
    started; the retry keys are Optuna's, so its ``retried_trial_number`` still works.
    """
    optuna = optuna_module()
    history = [*lost.system_attrs.get("retry_history", []), lost.number]
    study.add_trial(
        optuna.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params=lost.params,
            distributions=lost.distributions,
            user_attrs={"seed": lost.user_attrs.get("seed")},
            system_attrs={"failed_trial": history[0], "retry_history": history},
        )
    )


def queue_trials(study: Any, trials: int, seed: int) -> None:
    """Queue ``trials`` trials (the study's whole budget); done once, by the study's creator."""
    for _ in range(trials):
        study.enqueue_trial({}, user_attrs={"seed": seed}, skip_if_exists=False)
    study.set_user_attr(READY_KEY, trials)


def wait_until_queued(study: Any, timeout: float = 30.0) -> None:
    """Block until the creator has queued the study's trials (a joiner can arrive first)."""
    deadline = time.monotonic() + timeout
    while READY_KEY not in study.user_attrs:
        if time.monotonic() > deadline:
            raise TimeoutError(f"study {study.study_name!r} has no queued trials after {timeout} s")
        time.sleep(0.2)


class Heartbeat:
    """A thread that stamps ``trial_id``'s heartbeat every ``interval`` seconds until stopped."""

    def __init__(self, storage: Any, trial_id: int, interval: float) -> None:
        self._storage, self._trial_id, self._interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="descend-heartbeat")

    def _run(self) -> None:
        while True:
            try:
                self._storage.set_trial_system_attr(self._trial_id, HEARTBEAT_KEY, time.time())
            except optuna_module().exceptions.UpdateFinishedTrialError:
                return  # finished, possibly failed as lost by another worker
            except Exception:  # noqa: BLE001, S110 - a database hiccup: beat again next time
                pass
            if self._stop.wait(self._interval):
                return

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _last_sign_of_life(trial: Any) -> float:
    beat = trial.system_attrs.get(HEARTBEAT_KEY)
    if beat is not None:
        return float(beat)
    start = trial.datetime_start
    return start.timestamp() if start is not None else time.time()


def fail_lost_trials(study: Any, storage: Any, study_id: int, grace: float) -> list[int]:
    """Mark RUNNING trials silent for more than ``grace`` s as FAIL and queue their retries.

    Returns:
        The numbers of the trials this call failed (another worker may fail some first).
    """
    TrialState = optuna_module().trial.TrialState
    failed = []
    now = time.time()
    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        silent = now - _last_sign_of_life(trial)
        reason = f"worker lost: no heartbeat for {silent:.0f} s (grace {grace:g} s); retried"
        if silent > grace and give_back(study, storage, trial._trial_id, reason):
            failed.append(trial.number)
    return failed


def give_back(study: Any, storage: Any, trial_id: int, reason: str) -> bool:
    """Fail a RUNNING trial as lost (not counted) and queue its retry; ``False`` if it had ended."""
    optuna = optuna_module()
    try:
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        storage.set_trial_system_attr(trial_id, LOST_KEY, True)
        storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False  # it ended, or another worker failed it first
    _retry(study, storage.get_trial(trial_id))
    return True


def _take_queued(storage: Any, study_id: int) -> int | None:
    optuna = optuna_module()
    TrialState = optuna.trial.TrialState
    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING):
                return trial._trial_id
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def _anything_running(storage: Any, study_id: int) -> bool:
    TrialState = optuna_module().trial.TrialState
    return bool(storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)))


def work(
    study: Any,
    storage: Any,
    run_trial: Callable[[Any], None],
    *,
    heartbeat: float = DEFAULT_HEARTBEAT,
    grace: float = DEFAULT_GRACE,
    poll: float | None = None,
    on_trial_end: Callable[[], None] | None = None,
) -> int:
    """Run queued trials of ``study`` until none is queued or running; return how many ran here.

    Args:
        run_trial: runs one ``optuna.Trial`` to its end and records it (``study.tell``).
        heartbeat, grace: seconds between heartbeats; silence after which a RUNNING
            trial counts as lost (several heartbeats, so a busy machine is not taken
            for a dead one).
        poll: seconds between looks at the study while only others' trials run.
        on_trial_end: called after each trial this worker ran (a progress bar).
    """
    optuna = optuna_module()
    wait_until_queued(study)
    study_id = storage.get_study_id_from_name(study.study_name)
    poll = min(1.0, heartbeat) if poll is None else poll
    ran = 0
    while True:
        if signalled():
            raise KeyboardInterrupt(signalled())  # between trials: nothing to give back
        fail_lost_trials(study, storage, study_id, grace)
        trial_id = _take_queued(storage, study_id)
        if trial_id is None:
            if not _anything_running(storage, study_id):
                return ran
            time.sleep(poll)  # others' trials: stay to retry them if their worker dies
            continue
        try:  # from here on, however this ends, the trial does not stay RUNNING
            trial = optuna.trial.Trial(study, trial_id)
            trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
            with Heartbeat(storage, trial_id, heartbeat):
                run_trial(trial)
        except KeyboardInterrupt as exc:
            # Ctrl-C or SIGTERM: the trial is not this worker's to finish; queue it again.
            give_back(study, storage, trial_id, f"interrupted ({exc or 'SIGINT'}); retried")
            raise
        except Exception as exc:
            # A bug, not the hyperparameters: record it (no retry, it would fail again).
            storage.set_trial_user_attr(trial_id, "fail_reason", f"error: {exc!r}")
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL)
            raise
        ran += 1
        if on_trial_end is not None:
            on_trial_end()


_SIGNALLED: list[str] = []  # signals a worker process received, acted on at safe points


def defer_signals() -> None:
    """In a worker process, note SIGINT and SIGTERM instead of raising where they land.

    A ``KeyboardInterrupt`` raised at an arbitrary point can land inside a storage write
    (a journal's file lock held, a transaction open). The worker acts on the note where
    that cannot happen: before taking a trial (it leaves), as training starts (the trial
    stops at once) and after it (the trial is given back). While ``fit`` trains it
    handles both signals itself, the same way.
    """

    def note(signum: int, frame: object) -> None:
        _SIGNALLED.append(signal.Signals(signum).name)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, note)


def signalled() -> str:
    """The first signal :func:`defer_signals` noted, ``""`` if none."""
    return _SIGNALLED[0] if _SIGNALLED else ""


def finished_value(trial: Any) -> float | None:
    """A finished trial's value, ``None`` when it has none (failed) or it is not finite."""
    value = trial.value if trial.values else None
    return value if value is not None and math.isfinite(value) else None
