"""The ``designate-dist`` command line; ``designate_dist.cli:main`` is the console script.

``main.py``: the parser, ``main`` and the error line; ``common.py``: what the
commands share; one module per command group, listed in ``main.COMMAND_GROUPS``.
"""
from __future__ import annotations

from designate_dist.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
