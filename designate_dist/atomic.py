"""Atomic writes: a temp file in the same directory, then os.replace."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from designate_dist.scratch import make_file


def write_bytes(path: Path, data: bytes, *, mode: int | None = None, durable: bool = True,
                owner: tuple[int, int] | None = None) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half.

    ``durable=False`` skips the fsync: still atomic for readers, but after a crash
    the old content may come back.  Only for state that is checked before use.
    ``owner=(uid, gid)`` gives the new file that owner and group before it replaces
    ``path`` (root may give any; others only their own uid and one of their groups):
    a file the service reads keeps being its file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_file(path.parent, f".{path.name}.", suffix=".tmp")  # owner named: see scratch
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
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


def write_text(path: Path, text: str, *, mode: int | None = None, durable: bool = True) -> None:
    write_bytes(path, text.encode("utf-8"), mode=mode, durable=durable)


def write_json(path: Path, data: Any, *, durable: bool = True) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n", durable=durable)
