"""Where a study lives: Optuna storages opened from a URL or a journal file, and studies in them.

``--storage`` takes

- a path (``runs/tune/study.journal``): Optuna's journal file storage, the default
  (in the run folder). Several processes on one machine append to it under a file
  lock; ``docs/tuning.md`` has the measurements behind this choice over SQLite;
- an RDB URL (``postgresql://user@host/db``, ``sqlite:///study.db``, ``mysql://...``):
  Optuna's ``RDBStorage``, for workers on several machines.

A study carries its own settings (task, optimizer, space, trials, ...) in its user
attributes, so every worker, on any machine, reads the same ones, and a command
that joins a study with other settings is refused instead of mixing two searches.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from descend._validation import InvalidParameterError

SETTINGS_KEY = "descend"
# A study's settings that must match for a command to join it.
_MATCHED = (
    "task",
    "task_options",
    "optimizer",
    "space",
    "metric",
    "epochs",
    "batch_size",
    "schedule",
    "seed",
    "trials",
    "pruner",
)


def optuna_module() -> Any:
    """Optuna, or an error that says how to install it."""
    try:
        import optuna
    except ImportError:
        raise ImportError(
            "descend tune needs Optuna: pip install 'descend[tune]' (or pip install 'optuna>=4')."
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def is_url(storage: str) -> bool:
    """Whether ``storage`` is a database URL (``scheme://...``) rather than a journal file."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", storage) is not None


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (it goes into messages and reports)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(storage: str | Path) -> Any:
    """An Optuna storage for a journal file path or a database URL.

    Raises:
        InvalidParameterError: when the database cannot be reached (the message names
            the URL, password hidden, and the driver's first line).
    """
    optuna = optuna_module()
    text = str(storage)
    if not is_url(text):
        from optuna.storages.journal import JournalFileBackend

        Path(text).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(text))
    try:
        # A SQLite file is locked by one writer at a time: wait instead of failing at once.
        kwargs = {"connect_args": {"timeout": 60}} if text.startswith("sqlite") else {}
        return optuna.storages.RDBStorage(text, engine_kwargs=kwargs)
    except Exception as exc:  # noqa: BLE001 - each driver (sqlalchemy, psycopg2) has its own types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InvalidParameterError(
            f"--storage {redact(text)!r} cannot be reached: {first}"
        ) from None


def create_or_join(
    storage: Any, name: str, settings: Mapping[str, Any], *, direction: str
) -> tuple[Any, bool]:
    """The study called ``name``: created with ``settings``, or joined when it exists.

    Creating is atomic in every Optuna storage (the study name is unique), so of
    several commands started at once exactly one creates the study and enqueues its
    trials; the others join it.

    Returns:
        ``(study, created)``.

    Raises:
        InvalidParameterError: when the existing study was made by another command
            (other task, optimizer, space, metric, epochs, ...).
    """
    optuna = optuna_module()
    try:
        # Looked up first: a failed create would still leave a line in a journal file.
        storage.get_study_id_from_name(name)
    except KeyError:
        try:
            study = optuna.create_study(study_name=name, storage=storage, direction=direction)
        except optuna.exceptions.DuplicatedStudyError:
            # Created by another command a moment ago: join it below.
            pass
        else:
            study.set_user_attr(SETTINGS_KEY, dict(settings))
            return study, True
    study = optuna.load_study(study_name=name, storage=storage)
    check_same(study, name, settings)
    return study, False


def study_settings(study: Any) -> dict[str, Any]:
    """The settings a study was created with (waits for none: the creator writes them first)."""
    return dict(study.user_attrs.get(SETTINGS_KEY) or {})


def check_same(study: Any, name: str, settings: Mapping[str, Any], wait: float = 10.0) -> None:
    """Refuse to join a study that searches something else.

    A study created a moment ago may not have its settings yet (the creator writes
    them right after creating it), so they are awaited for up to ``wait`` seconds.
    """
    deadline = time.monotonic() + wait
    while not (theirs := study_settings(study)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not theirs:
        raise InvalidParameterError(
            f"study {name!r} exists but was not made by descend tune (no settings); "
            "choose another --study name."
        )
    differ = [k for k in _MATCHED if theirs.get(k) != settings.get(k)]
    if differ:
        shown = "; ".join(
            f"{k}: study {theirs.get(k)!r}, command {settings.get(k)!r}" for k in differ
        )
        raise InvalidParameterError(
            f"study {name!r} searches something else than this command ({shown}); "
            "give the study's settings or another --study name."
        )
