"""The ``designate-dist`` command line; ``designate_dist.cli:main`` is the console script.

``main.py``: the parser, ``main`` and the error line; ``common.py``: what the
commands share; one module per command group, listed in ``main.COMMAND_GROUPS``.
"""
from __future__ import annotations

# common first: designate_dist.cli_dr (registered from main) still imports number_arg from
# this package while it is being initialised; it moves into the package with the DR operations.
from designate_dist.cli.common import number_arg, progress_for  # noqa: I001
from designate_dist.cli.main import build_parser, main

__all__ = ["build_parser", "main", "number_arg", "progress_for"]
