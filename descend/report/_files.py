"""Durable file writes: a reader never sees a half-written file, and a crash keeps what was written.

Each whole file is written to a temporary file in the same folder, flushed to disk
(``fsync``) and moved into place with :func:`os.replace`, which is atomic on POSIX and
Windows when source and target are on the same file system (hence "same folder", not
``/tmp``); the folder is then synced so that the rename itself survives a power cut.
Appends (``metrics.csv`` of a comparison) are flushed and synced before returning.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def _sync_folder(folder: Path) -> None:
    # A rename is recorded in the folder's entry; without this it may be lost on a crash.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows, where a folder cannot be opened: renames there are durable
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably; return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name opened with "x" rather than mkstemp: mkstemp creates 0600 files,
    # and a report should get the usual permissions (the umask's), like any other file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Leave no stray temporary file behind when the write fails half way.
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically and durably; return ``path``."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def append_text_durable(path: Path, text: str) -> Path:
    """Append UTF-8 ``text`` to ``path`` (created if missing), synced to disk; return ``path``.

    A crash during the append can leave a partial last line; readers that rebuild
    from the file (a resumed comparison) rewrite it whole rather than trust its tail.
    """
    path = Path(path)
    with open(path, "ab") as handle:
        handle.write(text.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    return path
