"""``designate-dist dr ...``: the DR commands of ``designate-dr`` (:mod:`designate_dr.cli`), delegated.

One-way: designate_dist imports designate_dr, never the other way.  The commands and
their options are ``designate_dr.cli``'s; a :class:`designate_dr.ops.errors.DRError`
becomes a :class:`designate_dist.errors.DistError` with the same message, hint and exit
code, so ``designate-dist`` prints it like its own.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable

from designate_dist.errors import DistError

Add = Callable[..., argparse.ArgumentParser]


def cmd_dr(args: argparse.Namespace) -> int:
    from designate_dr import cli
    from designate_dr.ops.errors import DRError
    try:
        return cli.run(args, prog="designate-dist dr")
    except DRError as exc:
        error = DistError(exc.message, hint=exc.hint)
        error.exit_code = exc.exit_code
        raise error from None


def register(add: Add) -> None:
    from designate_dr import cli
    dr = add("dr", cmd_dr, "disaster recovery across regions: sync check, failover, failback "
                           "(the same as designate-dr)")
    cli.add_commands(dr.add_subparsers(dest="dr_command", metavar="SUBCOMMAND", parser_class=type(dr)))
