"""What every command of the ``designate-dist`` CLI shares: progress lines, number arguments,
and the one rule for finding the distribution repository.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from designate_dist.distro import PIN_FILE, Distro, load_distro

#: ``add(name, handler, help) -> parser``: how a command group registers its commands (see main.py).
Add = Callable[..., argparse.ArgumentParser]


def progress_for(args: argparse.Namespace) -> Callable[[str], None]:
    """Progress lines to stderr, or nothing with -q or --json (stdout is then the JSON)."""
    if args.quiet or getattr(args, "json", False):
        return lambda message: None
    return lambda message: print(message, file=sys.stderr, flush=True)


def find_distro(args: argparse.Namespace) -> Distro:
    """The distribution repository: ``--distro``, else the nearest directory up from here with a pin.

    One rule for every command, so that each also works from inside the work tree
    under ``.work/``, where the developer resolves conflicts and edits
    (``rebase --continue``, ``patches export``, ``build`` ...).
    """
    root = args.distro
    if root is None:
        here = Path.cwd()
        root = next((str(d) for d in (here, *here.parents) if (d / PIN_FILE).is_file()), None)
    return load_distro(root, args.work_dir)


def number_arg(kind: Callable[[str], Any], minimum: float, *, inclusive: bool = True
               ) -> Callable[[str], Any]:
    """An argparse ``type``: ``kind(text)``, at least (or, not inclusive, above) ``minimum``."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"must be {'>=' if inclusive else '>'} {minimum:g}")
        return value
    return parse


#: ``--concurrency N`` and the like: a whole number of at least 1.
positive_int = number_arg(int, 1)
