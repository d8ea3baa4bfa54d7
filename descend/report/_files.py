"""Atomic file writes: a reader never sees a half-written report file.

Each file is written to a temporary file in the same folder and then moved into
place with :func:`os.replace`, which is atomic on POSIX and Windows when source and
target are on the same file system (hence "same folder", not ``/tmp``).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name opened with "x" rather than mkstemp: mkstemp creates 0600 files,
    # and a report should get the usual permissions (the umask's), like any other file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        # Leave no stray temporary file behind when the write fails half way.
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically and return ``path``."""
    return write_bytes_atomic(path, text.encode("utf-8"))
