"""Atomic file writes for the DR operations: a temp file in the same directory, then ``os.replace``.

Readers see the old file or the new one, never half of it.  ``owner=(uid, gid)`` gives
the new file that owner and group before it replaces the old one (pools.yaml is usually
``root:designate 0640`` and holds API keys); a chown the caller may not do is an error
and nothing is written.  Without ``mode`` the file keeps the old one's (0644 when new).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_bytes(path: Path, data: bytes, *, mode: int | None = None,
                owner: tuple[int, int] | None = None) -> None:
    """Write ``data`` to ``path`` atomically and durably (see the module docstring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        made = os.stat(tmp)
        if owner is not None and (made.st_uid, made.st_gid) != owner:
            try:
                os.chown(tmp, *owner)
            except PermissionError as exc:
                raise PermissionError(exc.errno, f"cannot keep owner {owner[0]}:{owner[1]} "
                                      "(run as root or as the file's owner)", str(path)) from None
        # after chown, which clears set-id bits
        if mode is not None:
            os.chmod(tmp, mode)
        elif path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
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


def write_text(path: Path, text: str, *, mode: int | None = None, owner: tuple[int, int] | None = None) -> None:
    write_bytes(path, text.encode("utf-8"), mode=mode, owner=owner)
