"""Checkpoint files: atomic writes, a checksum, and loading that never runs pickled code.

A checkpoint file is ``torch.save`` of one dict::

    {"format": "descend.checkpoint", "format_version": 1,
     "descend_version": ..., "torch_version": ...,
     "sha256": <hex digest of the payload>, "payload": {...}}

The payload may hold tensors, numbers, strings, ``None``, lists, tuples and dicts
only, so that :func:`load_checkpoint` can use ``torch.load(weights_only=True)``: a
file crafted to run code when unpickled is refused, never executed. The checksum
is computed over a canonical walk of the payload (types, shapes, raw bytes), not
over the file's bytes, so it does not depend on how a torch version lays out its
zip archive.
"""

from __future__ import annotations

import glob
import hashlib
import os
import tempfile
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

FORMAT = "descend.checkpoint"
FORMAT_VERSION = 1
LAST = "last.pt"
PREVIOUS = "last.prev.pt"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: missing, truncated, corrupted or of an unknown format.

    A ``ValueError``: a file is input, and the command line answers bad input with status 2.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot use checkpoint {str(self.path)!r}: {reason}")


def _descend_version() -> str:
    try:
        from importlib.metadata import version

        return version("descend")
    except Exception:  # noqa: BLE001 - an uninstalled source tree has no metadata
        return "unknown"


def payload_digest(payload: Any) -> str:
    """sha256 of a canonical walk over ``payload``: the same content gives the same digest."""
    h = hashlib.sha256()
    _feed(h, payload)
    return h.hexdigest()


def _feed(h: Any, obj: Any) -> None:
    # Each value is prefixed by a type tag and a length, so that different
    # structures can never produce the same byte stream.
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif type(obj) in (dict, OrderedDict):
        h.update(f"D{len(obj)}".encode())
        for key, value in obj.items():
            _feed(h, key)
            _feed(h, value)
    elif type(obj) in (list, tuple):
        h.update(f"L{len(obj)}".encode())
        for value in obj:
            _feed(h, value)
    elif type(obj) is str:
        data = obj.encode()
        h.update(f"S{len(data)}:".encode() + data)
    elif obj is None or isinstance(obj, bool):
        h.update(f"B{obj}".encode())
    elif type(obj) is int:
        h.update(f"I{obj};".encode())
    elif type(obj) is float:
        h.update(f"F{obj.hex()};".encode())
    elif isinstance(obj, torch.dtype | torch.device):
        h.update(f"X{obj};".encode())
    else:
        # Exact types only: a subclass (numpy.float64, TorchVersion) would be
        # written fine but refused by torch.load(weights_only=True) later.
        raise TypeError(
            "A checkpoint can only hold tensors, numbers, strings, None, lists and dicts "
            f"(exact types, not subclasses). Got {type(obj).__module__}.{type(obj).__qualname__} "
            "instead."
        )


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; some platforms cannot open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(
    path: str | os.PathLike[str], payload: Mapping[str, Any], *, keep_previous: bool = False
) -> Path:
    """Write ``payload`` to ``path`` atomically, with format version, versions and checksum.

    The file is written to a temporary name in the same folder, flushed and
    fsynced, then renamed over ``path`` (and the folder fsynced), so ``path`` is
    always either the old complete file or the new complete one. With
    ``keep_previous`` the old file is first renamed to ``<stem>.prev<suffix>``,
    which :func:`latest_good_checkpoint` falls back to.

    Args:
        path: the file to write; its folder is created when missing.
        payload: tensors, numbers, strings, ``None``, lists, tuples and dicts only.
        keep_previous: keep the file being replaced as ``<stem>.prev<suffix>``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "descend_version": _descend_version(),
        "torch_version": str(torch.__version__),
        "sha256": payload_digest(payload),
        "payload": dict(payload),
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(record, f)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous and path.exists():
            os.replace(path, previous_path(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    _remove_stale_temporaries(path)
    return path


# A temporary file untouched this long belongs to a writer that died (SIGKILL, power
# loss) before its rename: a writer that is still at work keeps its file's mtime fresh.
STALE_SECONDS = 600.0


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary files earlier writers of ``path`` left when they were killed
    mid-write (``.<name>.<random>.tmp``, older than :data:`STALE_SECONDS`); they are
    never read, and a run that checkpoints every few minutes would otherwise collect
    one per kill."""
    now = time.time()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > STALE_SECONDS:
                tmp.unlink()
        except OSError:  # gone already, or not ours to delete: leave it
            pass


def previous_path(path: str | os.PathLike[str]) -> Path:
    """Where :func:`save_checkpoint` keeps the file it replaced: ``last.pt`` -> ``last.prev.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def load_tensors_file(path: str | os.PathLike[str]) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, every failure a :class:`CheckpointError`.

    The one way descend reads a ``.pt`` file (checkpoints, ``model.pt`` given back to the
    command line): tensors and plain containers only, so nothing in the file can run code.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        kind = (
            "it holds objects other than tensors and plain containers"
            if "weights only load failed" in str(exc).lower()
            else "it is truncated or corrupted"
        )
        raise CheckpointError(
            path, f"{kind} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint's payload, refusing anything that is not a complete, intact one.

    Uses ``torch.load(weights_only=True)`` only, then checks the format and the
    checksum.

    Raises:
        CheckpointError: the file is missing, truncated, corrupted, holds objects
            other than tensors and plain containers, or has an unknown format.
    """
    path = Path(path)
    record = load_tensors_file(path)
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(path, f"not a descend checkpoint (expected format {FORMAT!r})")
    version = record.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            path, f"unknown format version {version!r}; this descend reads version {FORMAT_VERSION}"
        )
    payload = record.get("payload")
    if not isinstance(payload, dict) or not isinstance(record.get("sha256"), str):
        raise CheckpointError(path, "the payload or its checksum is missing")
    try:
        digest = payload_digest(payload)
    except TypeError as exc:
        raise CheckpointError(path, str(exc)) from exc
    if digest != record["sha256"]:
        raise CheckpointError(
            path, "checksum mismatch: the file was corrupted after it was written"
        )
    return payload


def latest_good_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """The newest intact resume checkpoint in ``directory``: ``last.pt``, else ``last.prev.pt``.

    Returns:
        The path, or ``None`` when the folder holds neither file.

    Raises:
        CheckpointError: when a checkpoint exists but none of them can be loaded.
    """
    found = load_latest(directory)
    return None if found is None else found[0]


def load_latest(directory: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]] | None:
    """Like :func:`latest_good_checkpoint`, also returning the loaded payload."""
    directory = Path(directory)
    errors: list[CheckpointError] = []
    for name in (LAST, PREVIOUS):
        candidate = directory / name
        if not candidate.exists():
            continue
        try:
            return candidate, load_checkpoint(candidate)
        except CheckpointError as exc:
            errors.append(exc)
    if not errors:
        return None
    raise CheckpointError(directory, "no intact checkpoint: " + "; ".join(str(e) for e in errors))
