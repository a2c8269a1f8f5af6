"""The ``rebase`` and ``patches`` commands: argument parsing and printing only."""
from __future__ import annotations

import argparse
import json
import re
import sys

from designate_dist.cli.common import Add, find_distro, progress_for
from designate_dist.distro import SOURCE_KINDS
from designate_dist.errors import EXIT_OK, EXIT_PATCH, DistError, UsageError
from designate_dist.rebase_state import RebaseStatus
from designate_dist.text import counted


def _print_report(report, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.as_json(), indent=2, sort_keys=True))
    else:
        print(report.table())


def _print_status(status: RebaseStatus, as_json: bool) -> int:
    """Where a stopped rebase stands: from/onto, patches done, the one it stopped at."""
    if as_json:
        print(json.dumps(status.as_json(), indent=2, sort_keys=True) if status.in_progress
              else json.dumps(status.as_json()))
    else:
        print("\n".join(status.lines()))
    return EXIT_OK


def _json_error(exc: DistError, report=None) -> None:
    """What a failed command prints on stdout with --json: the error as an object (and the report)."""
    error = {"message": str(exc), "exit_code": exc.exit_code}
    if exc.hint:
        error["hint"] = exc.hint
    for name in ("patch", "files"):
        if getattr(exc, name, None):
            error[name] = getattr(exc, name)
    data = report.as_json() if report is not None else {}
    print(json.dumps({**data, "error": error}, indent=2, sort_keys=True))


def cmd_rebase(args: argparse.Namespace) -> int:
    try:
        return _cmd_rebase(args)
    except DistError as exc:
        report = getattr(exc, "report", None)
        if args.json:
            _json_error(exc, report)
        elif report is not None:
            print(report.table())
        raise


def _cmd_rebase(args: argparse.Namespace) -> int:
    from designate_dist import rebase as rb
    distro = find_distro(args)
    if args.status:
        return _print_status(rb.rebase_status(distro), args.json)
    if args.abort:
        restored = rb.rebase_abort(distro)
        if not args.quiet:
            print("rebase aborted" + (f"; restored {', '.join(restored)}" if restored else ""))
        return EXIT_OK
    if args.cont:
        report = rb.rebase_continue(distro, progress=progress_for(args))
    else:
        request = rb.RebaseRequest(version=args.onto, sha256=args.sha256, source=args.source,
                                   path=args.path, url=args.url, tag=args.tag, commit=args.commit,
                                   dry_run=args.dry_run)
        report = rb.rebase(distro, request, progress=progress_for(args))
    _print_report(report, args.json)
    if report.dry_run and report.conflicts:
        refs = ", ".join(o.ref for o in report.conflicts)
        count = len(report.conflicts)
        print(f"error: dry run onto {report.onto}: {counted(count, 'patch')} "
              f"{'conflicts' if count == 1 else 'conflict'}: {refs}", file=sys.stderr)
        return EXIT_PATCH
    return EXIT_OK


def cmd_patches(args: argparse.Namespace) -> int:
    from designate_dist import patchqueue
    distro = find_distro(args)
    if args.action == "import":
        result = patchqueue.import_queue(distro, force=args.force, progress=progress_for(args))
        print(result.work_tree)
        if not args.quiet:
            print(f"{len(result.commits)} patches on branch {result.branch}; edit, reorder or add "
                  "commits there, then run `designate-dist patches export`", file=sys.stderr)
        return EXIT_OK
    if args.action == "add":
        for patch in patchqueue.add_commits(distro, args.commits, series=args.series,
                                            progress=progress_for(args)):
            print(patch.line())
        return EXIT_OK
    if args.commits:
        raise UsageError(f"designate-dist patches {args.action}: takes no commits (only `add` does)")
    exported = patchqueue.export_queue(distro, new_series=args.series, progress=progress_for(args))
    for line in exported.lines():
        print(line)
    return EXIT_OK


def _sha256_arg(text: str) -> str:
    """An argparse ``type``: 64 hex digits (a usage error before anything is downloaded)."""
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a sha256 (64 hex digits)")
    return text.strip().lower()


def register(add: Add) -> None:
    reb = add("rebase", cmd_rebase,
              "move the patch series onto a new upstream release, classifying every patch")
    what = reb.add_mutually_exclusive_group(required=True)
    what.add_argument("--onto", metavar="VERSION", help="the new upstream release")
    what.add_argument("--continue", dest="cont", action="store_true",
                      help="go on after resolving a conflict (the resolution is exported into the patch)")
    what.add_argument("--abort", action="store_true",
                      help="stop the rebase; restore the pin, series, patch files and work tree")
    what.add_argument("--status", action="store_true",
                      help="say whether a rebase is stopped, where, and what to do next")
    reb.add_argument("--sha256", metavar="HASH", type=_sha256_arg,
                     help="sha256 of the new archive, 64 hex digits (pypi and file sources)")
    reb.add_argument("--source", choices=SOURCE_KINDS, help="source kind (default: the pin's)")
    reb.add_argument("--path", metavar="PATH", help="file source: tarball or mirror directory")
    reb.add_argument("--url", metavar="URL", help="git source: repository URL (default: the pin's)")
    reb.add_argument("--tag", metavar="TAG", help="git source: tag (default: VERSION)")
    reb.add_argument("--commit", metavar="SHA", help="git source: the commit the tag must point to")
    reb.add_argument("--dry-run", action="store_true",
                     help="triage in a scratch tree and report; change nothing in the repository")
    reb.add_argument("--json", action="store_true", help="print the report as JSON")

    pq = add("patches", cmd_patches,
             "patch queue: import the series as commits on a branch of the work tree, export them "
             "back; or add new commits of the work tree as the next numbered patches")
    pq.add_argument("action", choices=("import", "export", "add"),
                    help="import: series -> commits on branch patch-queue; export: commits -> files; "
                         "add: commits above the applied series -> new NNNN-<subject>.patch files "
                         "and series entries")
    pq.add_argument("commits", nargs="*", metavar="COMMIT",
                    help="add: the commits to add, before any option (default: every commit above "
                         "the applied series)")
    pq.add_argument("--force", action="store_true",
                    help="import: discard uncommitted changes and extra commits in the work tree")
    pq.add_argument("--series", choices=("customs", "cherry-pick"), default="customs",
                    help="export, add: where new commits go (default: customs)")
