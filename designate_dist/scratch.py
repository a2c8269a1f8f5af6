"""Scratch files and directories that name their owner, and the sweep of a dead owner's leftovers.

Every temporary file or directory the tool makes next to its outputs (in the
cache, the work directory, ``dist/``, a publish repository) is named
``<kind>pid<N>@<host>_<label><random>``.  A run that is killed (``kill -9``, a
full disk, a power cut) cannot remove its scratch; the next run that makes
scratch of the same kind in the same place sweeps the entries whose owner
process, on this host, no longer exists.  Entries of a live process, or of
another host sharing the directory, are never touched.

Work that needs a scratch tree of its own (a rebase's two imports) takes one
below ``<work-dir>/.scratch`` with :func:`scratch_dir`: nothing goes to /tmp.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "localhost"
_OWNER = re.compile(r"pid(?P<pid>[0-9]+)@(?P<host>[A-Za-z0-9.-]+)_")
#: In a scratch directory whose path must stay short, the owner is written here instead.
OWNER_FILE = ".designate-dist-owner"
#: Below the work dir: where :func:`scratch_dir` makes its directories.
SCRATCH_DIR = ".scratch"
#: ``<purpose>-<pid>-<random>``: how scratch_dir named its directories before the owner tag.
_OLD_OWNED = re.compile(r"^[a-z][a-z0-9-]*?-(?P<pid>[0-9]+)-[^-]+$")


def owner_tag(pid: int | None = None) -> str:
    """``pid<N>@<host>_``: the part of a scratch name that says whose it is."""
    return f"pid{os.getpid() if pid is None else pid}@{HOST}_"


def make_dir(parent: Path, kind: str, label: str = "", *, short: bool = False) -> Path:
    """A new scratch directory ``parent/<kind><owner><label><random>``.

    ``short``: ``parent/<kind><label><random>`` with the owner in :data:`OWNER_FILE` inside,
    for a path that ends up in a limited place (the deb build's virtualenv lands in
    ``#!`` lines, which the kernel cuts at 127 bytes).
    """
    parent.mkdir(parents=True, exist_ok=True)
    if short:
        path = Path(tempfile.mkdtemp(dir=parent, prefix=f"{kind}{label}"))
        (path / OWNER_FILE).write_text(owner_tag() + "\n")
        return path
    return Path(tempfile.mkdtemp(dir=parent, prefix=f"{kind}{owner_tag()}{label}"))


def make_file(parent: Path, kind: str, label: str = "", suffix: str = "") -> tuple[int, Path]:
    """A new scratch file (its open descriptor and path), named like :func:`make_dir`'s."""
    parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=parent, prefix=f"{kind}{owner_tag()}{label}", suffix=suffix)
    return fd, Path(name)


@contextmanager
def directory(parent: Path, kind: str, label: str = "") -> Iterator[Path]:
    """A scratch directory for the ``with`` block, removed after it (whatever happens)."""
    path = make_dir(parent, kind, label)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def owner_alive(pid: int) -> bool:
    """True while a process ``pid`` exists on this host (whoever owns it)."""
    if pid <= 0:
        return True  # not a pid we wrote: leave it alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dead_owner(rest: str) -> bool:
    match = _OWNER.match(rest)
    return bool(match) and match.group("host") == HOST and not owner_alive(int(match.group("pid")))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _owner_in_file(entry: Path) -> str:
    try:
        return (entry / OWNER_FILE).read_text().strip() if not entry.is_symlink() else ""
    except OSError:
        return ""


def sweep(parent: Path, *kinds: str) -> list[Path]:
    """Remove the scratch entries of ``kinds`` directly in ``parent`` whose owner is gone; return them.

    The owner is read from the name, or from :data:`OWNER_FILE` in a ``short`` directory;
    an entry whose owner cannot be read is left alone.
    """
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        for kind in kinds:
            if not entry.name.startswith(kind):
                continue
            rest = entry.name[len(kind):]
            if _OWNER.match(rest) is None:
                rest = _owner_in_file(entry)
            if _dead_owner(rest):
                _remove(entry)
                removed.append(entry)
                break
    return removed


_TEMP_FILE = re.compile(r"^\..+?\.(?P<rest>pid[0-9]+@[A-Za-z0-9.-]+_.*)\.tmp$")


def sweep_temp_files(root: Path) -> list[Path]:
    """Remove, anywhere below ``root``, the ``.<name>.<owner>....tmp`` files of atomic writes whose owner is gone."""
    removed = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            match = _TEMP_FILE.match(name)
            if match and _dead_owner(match.group("rest")):
                path = Path(dirpath) / name
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def clean_stale(parent: Path) -> list[Path]:
    """Remove every entry of ``parent`` (a directory of scratch only) whose owner process is gone."""
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        owner = _OWNER.search(entry.name)
        old = _OLD_OWNED.match(entry.name)
        if (owner and _dead_owner(entry.name[owner.start():])) or (
                owner is None and old and not owner_alive(int(old.group("pid")))):
            _remove(entry)
            removed.append(entry)
    return removed


@contextmanager
def scratch_dir(work_root: Path, purpose: str) -> Iterator[Path]:
    """A scratch directory for ``purpose`` (letters and dashes) below ``work_root/.scratch``.

    Removed when the block ends; ``.scratch`` too when nothing else is in it.
    What a killed run left there is removed first.
    """
    parent = work_root / SCRATCH_DIR
    clean_stale(parent)
    with directory(parent, f"{purpose}-") as path:
        yield path
    try:
        parent.rmdir()  # only when empty: another process may be using it
    except OSError:
        pass
