"""The comparison's folder: checked writable, claimed with a lock, never silently reused.

Before any training: the folder is created (or found) and a probe file written in
it, so an unwritable ``--out`` fails in a second, not after the runs; a lock file
(``.lock``, holding the owner's process id) keeps a second process out while the
first one writes; a folder that already holds files is refused unless the caller
resumes it or asks to overwrite it.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from descend._validation import InvalidParameterError

LOCK = ".lock"
# What a run folder of descend holds; --overwrite removes these and nothing else.
OWN_FILES = (
    "compare.json",
    "config.yaml",
    "metrics.csv",
    "summary.json",
    "report.html",
    "model.pt",
)
OWN_FOLDERS = ("runs", "checkpoints", "tensorboard", "tuning")


class FolderInUseError(RuntimeError):
    """Another live process holds the folder's lock."""


class DiskFullError(OSError):
    """The disk filled up while writing; what was written before is intact."""

    def __str__(self) -> str:
        return str(self.strerror)  # the sentence, without OSError's "[Errno 28]" prefix


def disk_full(folder: Path, exc: OSError, what: str) -> DiskFullError:
    """The error a comparison raises for ENOSPC, saying what is kept and how to go on."""
    return DiskFullError(
        errno.ENOSPC,
        f"disk full while writing {what} in {str(folder)!r}: every file written before is "
        f"intact (finished runs are in {str(folder / 'runs')!r}). Free some space, then "
        f"continue with: descend compare --resume {folder}",
    )


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own stale lock (an earlier call in this process that crashed)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and write a probe file in it; name the folder when that fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ENOSPC:
            reason = "disk full"
        raise InvalidParameterError(
            f"cannot write to the output folder {str(folder)!r}: {reason}. Choose another --out."
        ) from None


def _acquire(lock: Path) -> None:
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pid = _read_pid(lock)
            if pid is not None and _pid_alive(pid):
                raise FolderInUseError(
                    f"{str(lock.parent)!r} is in use by another descend process (pid {pid}); "
                    f"wait for it to end, or choose another --out. If no such process "
                    f"exists, delete {str(lock)!r}."
                ) from None
            lock.unlink(missing_ok=True)  # its owner is gone: a stale lock
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{os.getpid()}\n")
        return
    raise FolderInUseError(
        f"could not take the lock {str(lock)!r}: another process keeps taking it."
    )


def existing_entries(folder: Path) -> list[str]:
    """Names in ``folder`` other than the lock, sorted."""
    return sorted(p.name for p in folder.iterdir() if p.name != LOCK)


def clear_own_files(folder: Path) -> None:
    """Remove what an earlier descend run left in ``folder`` (and nothing else)."""
    for name in OWN_FILES:
        (folder / name).unlink(missing_ok=True)
    for png in folder.glob("*.png"):
        png.unlink()
    for name in OWN_FOLDERS:
        shutil.rmtree(folder / name, ignore_errors=True)


@contextmanager
def claim(folder: Path, *, resume: bool, overwrite: bool) -> Iterator[Path]:
    """Hold ``folder`` for one comparison: writable, locked, and empty unless resumed.

    Raises:
        InvalidParameterError: the folder cannot be written, or it already holds files
            and neither ``resume`` nor ``overwrite`` was given.
        FolderInUseError: another live process holds its lock.
    """
    folder = Path(folder)
    check_writable(folder)
    lock = folder / LOCK
    _acquire(lock)
    try:
        entries = existing_entries(folder)
        if entries and not resume:
            if not overwrite:
                shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
                raise InvalidParameterError(
                    f"the output folder {str(folder)!r} already holds files ({shown}). "
                    f"Continue that comparison with --resume {folder}, replace it with "
                    "--overwrite, or choose another --out."
                )
            clear_own_files(folder)
        yield folder
    finally:
        # Only our own lock: never remove one another process took after a stale takeover.
        if _read_pid(lock) == os.getpid():
            lock.unlink(missing_ok=True)
