"""The one ``fcntl`` lock helper: the build lock, a publish repository's lock, a test venv's lock.

Each lock is a file held with ``flock``; they differ only in how long a second
comer waits (``wait``): not at all (a second build in the same repository is an
error at once), up to a deadline (a second publisher), or as long as it takes
(two builds wanting the same test venv: the second reuses what the first made).
"""
from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from designate_dist.errors import DistError

#: How often a waiter with a deadline tries again.
_POLL_SECONDS = 0.1


def _acquire(path: Path, wait: float | None, busy: Callable[[str], DistError]):
    """The open, locked file at ``path``; ``busy(what the holder wrote)`` raised when ``wait`` runs out."""
    deadline = None if wait is None else time.monotonic() + wait
    while True:
        handle = open(path, "a+")
        try:
            if wait is None:
                fcntl.flock(handle, fcntl.LOCK_EX)
            else:
                while True:
                    try:
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            handle.seek(0)
                            raise busy(handle.read().strip()) from None
                        time.sleep(_POLL_SECONDS)
        except BaseException:
            handle.close()
            raise
        # A holder that removes the file on its way out (``remove=True``) may have done so
        # after we opened it: the lock is then on a file no longer at the path; try again.
        try:
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                return handle
        except FileNotFoundError:
            pass
        handle.close()


@contextmanager
def hold(path: Path, *, wait: float | None, busy: Callable[[str], DistError],
         owner: str | None = None, remove: bool = False) -> Iterator[None]:
    """Hold the lock of the file ``path`` for the ``with`` block.

    ``wait``: seconds to wait for another holder (0: fail at once; None: as long as it
    takes); then ``busy(holder)`` is raised, ``holder`` being what the other holder
    wrote into the file (``owner``), "" when nothing.  ``owner``: written into the
    file while held, for the next comer's message.  ``remove``: the file is removed
    on the way out, still locked, so that nothing is left behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = _acquire(path, wait, busy)
    try:
        if owner is not None:
            handle.seek(0)
            handle.truncate()
            handle.write(owner)
            handle.flush()
        yield
    finally:
        if remove:
            path.unlink(missing_ok=True)
        handle.close()
