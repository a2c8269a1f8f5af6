"""The ``release`` command: argument parsing and printing only."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from designate_dist.cli.common import Add, find_distro, positive_int, progress_for
from designate_dist.errors import EXIT_OK


def cmd_release(args: argparse.Namespace) -> int:
    from designate_dist.release import release
    distro = find_distro(args)
    result = release(distro, dry_run=args.dry_run, build=not args.no_build,
                     output=Path(args.output) if args.output else None, skip_tests=args.skip_tests,
                     concurrency=args.concurrency, progress=progress_for(args))
    plan = result.plan
    if args.json:
        data = plan.as_json()
        data.update({"dry_run": result.dry_run, "commit": result.commit,
                     "build_dir": str(result.build_dir) if result.build_dir else None})
        print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
        return EXIT_OK
    if result.dry_run:
        what = "resume" if plan.resume else "release"
        print(f"would {what} {plan.version.pep440} ({plan.version.debian}) as tag {plan.tag}"
              + (f", after {plan.previous_tag}" if plan.previous_tag and not plan.resume else ""))
        print()
        print(plan.debian_entry(), end="")
        return EXIT_OK
    print(result.tag)
    print(result.build_dir)
    return EXIT_OK


def register(add: Add) -> None:
    rel = add("release", cmd_release,
              "bump the distro revision, write the changelogs, commit, build, check the manifest "
              "against HEAD and tag debian/<version>")
    rel.add_argument("--dry-run", action="store_true",
                     help="print the next version, the tag and the changelog entry; change nothing")
    rel.add_argument("--no-build", action="store_true",
                     help="do not build: the existing build of the version must match HEAD")
    rel.add_argument("--skip-tests", action="store_true",
                     help="build without upstream's unit tests (recorded in the manifest)")
    rel.add_argument("--output", metavar="DIR", help="build output root (default: DISTRO/dist)")
    rel.add_argument("--concurrency", type=positive_int, metavar="N",
                     help="test workers (default: CPU count)")
    rel.add_argument("--json", action="store_true", help="print the plan (and result) as JSON")
