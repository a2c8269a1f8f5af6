"""Scratch directories under the work dir, each owned by one process.

A scratch directory is named ``<purpose>-<pid>-<random>`` below
``<work-dir>/.scratch``; it is removed when its ``with`` block ends, and one
left by a process that was killed (its pid is gone) is removed by the next
run.  Nothing is left in /tmp, and nothing of a running process is touched.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCRATCH_DIR = ".scratch"
_OWNED = re.compile(r"^[a-z][a-z0-9-]*?-(\d+)-[^-]+$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def clean_stale(parent: Path) -> list[Path]:
    """Remove the scratch directories below ``parent`` whose owner process is gone."""
    removed = []
    if not parent.is_dir():
        return removed
    for entry in parent.iterdir():
        match = _OWNED.match(entry.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


@contextmanager
def scratch_dir(work_root: Path, purpose: str) -> Iterator[Path]:
    """A new scratch directory for ``purpose`` (letters and dashes) below ``work_root``."""
    parent = work_root / SCRATCH_DIR
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale(parent)
    path = Path(tempfile.mkdtemp(dir=parent, prefix=f"{purpose}-{os.getpid()}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        try:
            parent.rmdir()  # only when empty: another process may be using it
        except OSError:
            pass
