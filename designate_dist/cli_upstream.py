"""The ``backports`` and ``cherry-pick`` commands: argument parsing and printing only.

``designate_dist.cli`` calls :func:`register` with its ``add(name, handler, help)``.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from designate_dist.cli import progress_for
from designate_dist.cli_rebase import _distro
from designate_dist.errors import EXIT_ERROR, EXIT_OK

Add = Callable[..., argparse.ArgumentParser]


def cmd_backports(args: argparse.Namespace) -> int:
    from designate_dist.backports import BackportsRequest, backports
    report = backports(_distro(args), BackportsRequest(upstream=args.upstream, branch=args.branch,
                                                       to=args.to), progress=progress_for(args))
    if args.json:
        print(json.dumps(report.as_json(), indent=2, sort_keys=True))
    else:
        print(report.table())
    alarms = report.alarms
    if alarms:
        shown = ", ".join(f"{a.commit[:8]} ({a.subject})" for a in alarms)
        print(f"error: {len(alarms)} security fix(es) apply to {report.release} and are not carried: "
              f"{shown}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def register(add: Add) -> None:
    bp = add("backports", cmd_backports,
             "report upstream commits after the pinned release: carried by our series?, applies?, "
             "kind (exit 1 when a security fix that applies is not carried)")
    bp.add_argument("--upstream", metavar="REPO", required=True,
                    help="upstream's git repository: a local path or a URL")
    bp.add_argument("--branch", metavar="B",
                    help="the release's stable branch (default: the stable/* branch holding the tag)")
    bp.add_argument("--to", metavar="REF", help="also commits up to REF (a later tag, or master)")
    bp.add_argument("--json", action="store_true", help="print the report as JSON")
