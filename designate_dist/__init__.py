"""designate-dist: build a patched OpenStack Designate distribution."""
from __future__ import annotations


def tool_version() -> str:
    """The installed version of designate-dist (pbr / importlib.metadata)."""
    try:
        from importlib.metadata import version
        return version("designate-dist")
    except Exception:  # running from a source tree that is not installed
        return "0+unknown"
