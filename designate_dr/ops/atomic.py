"""Atomic file writes for the DR operations: a temp file in the same directory, then ``os.replace``.

Readers see the old file or the new one, never half of it.  The new file keeps the
mode, owner and group of the file it replaces (pools.yaml is usually ``root:designate
0640`` and holds API keys), or of ``like`` (a backup takes its original's).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_bytes(path: Path, data: bytes, *, like: Path | None = None, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically and durably.

    Mode, owner and group come from ``like`` (default: ``path`` itself when it exists);
    ``mode`` overrides the mode; a new file without either is 0644.  Changing the owner
    needs the right to: when it is refused the file keeps ours (never an error).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    source = like if like is not None else (path if path.exists() else None)
    stat = source.stat() if source is not None else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if stat is not None:
            try:
                os.chown(tmp, stat.st_uid, stat.st_gid)
            except PermissionError:
                pass
        os.chmod(tmp, mode if mode is not None else (stat.st_mode & 0o7777 if stat else 0o644))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        directory = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)


def write_text(path: Path, text: str, *, like: Path | None = None, mode: int | None = None) -> None:
    write_bytes(path, text.encode("utf-8"), like=like, mode=mode)
