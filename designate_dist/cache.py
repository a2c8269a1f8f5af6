"""Where designate-dist keeps what it can make again: the user cache directory.

``$DESIGNATE_DIST_CACHE``, else ``$XDG_CACHE_HOME/designate-dist``, else
``~/.cache/designate-dist``.  It holds the verified upstream archives (fetch), the
imported trees (tree_cache), the test venvs (testsuite), the wheelhouses and
scratch builds (deb) and the clones of upstream repositories (history).
"""
from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "DESIGNATE_DIST_CACHE"


def cache_root() -> Path:
    """The user cache directory of designate-dist."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "designate-dist"
