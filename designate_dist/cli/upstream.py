"""The ``backports`` and ``cherry-pick`` commands: argument parsing and printing only."""
from __future__ import annotations

import argparse
import json
import sys

from designate_dist.cli.common import Add, find_distro, progress_for
from designate_dist.errors import EXIT_ERROR, EXIT_OK, UsageError


def cmd_backports(args: argparse.Namespace) -> int:
    from designate_dist.backports import BackportsRequest, backports
    report = backports(find_distro(args), BackportsRequest(upstream=args.upstream, branch=args.branch,
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


def cmd_cherry_pick(args: argparse.Namespace) -> int:
    from designate_dist import cherrypick as cp
    given = [name for name, value in (("COMMIT", args.commit), ("--upstream", args.upstream),
                                      ("--note", args.note)) if value]
    if args.abort or args.cont:
        action = "--abort" if args.abort else "--continue"
        extra = [g for g in given if not (action == "--continue" and g == "--note")]
        if extra:
            raise UsageError(f"designate-dist cherry-pick {action}: {', '.join(extra)} not allowed here")
    elif not (args.commit and args.upstream):
        raise UsageError("designate-dist cherry-pick: COMMIT and --upstream REPO are required "
                         "(or --continue / --abort)")
    elif args.note:
        raise UsageError("designate-dist cherry-pick: --note goes with --continue")
    distro = find_distro(args)
    if args.abort:
        restored = cp.cherry_pick_abort(distro)
        if not args.quiet:
            print("cherry-pick aborted" + (f"; restored {', '.join(restored)}" if restored else ""))
        return EXIT_OK
    if args.cont:
        result = cp.cherry_pick_continue(distro, note=args.note, progress=progress_for(args))
    else:
        result = cp.cherry_pick(distro, cp.CherryPickRequest(commit=args.commit, upstream=args.upstream),
                                progress=progress_for(args))
    print(result.ref)
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

    cp = add("cherry-pick", cmd_cherry_pick,
             "add one upstream commit at the end of cherry-pick/: verbatim .upstream, or, when it "
             "does not apply, stop for a resolution that --continue turns into an adapted .patch")
    cp.add_argument("commit", metavar="COMMIT", nargs="?", help="the upstream commit (id, tag or branch)")
    cp.add_argument("--upstream", metavar="REPO", help="upstream's git repository: a local path or a URL")
    what = cp.add_mutually_exclusive_group()
    what.add_argument("--continue", dest="cont", action="store_true",
                      help="turn the resolved work tree into cherry-pick/NNNN-<subject>.patch")
    what.add_argument("--abort", action="store_true",
                      help="stop; put the work tree and cherry-pick/ back as they were")
    cp.add_argument("--note", metavar="TEXT",
                    help="--continue: what was adapted and why (goes into the Backport-Note)")
