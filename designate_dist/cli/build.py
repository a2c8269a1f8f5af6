"""The build commands (``fetch``, ``prepare``, ``quilt``, ``build``, ``test``, ``lock``).

Argument parsing and printing only; the library modules are imported when a
command runs (``designate-dist --help`` needs none of them).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from designate_dist.cli.common import Add, find_distro, positive_int, progress_for
from designate_dist.errors import EXIT_OK


def cmd_fetch(args: argparse.Namespace) -> int:
    from designate_dist.fetch import fetch
    result = fetch(find_distro(args))
    print(result.archive)
    return EXIT_OK


def cmd_prepare(args: argparse.Namespace) -> int:
    from designate_dist.pipeline import prepare
    result = prepare(find_distro(args), force=args.force, progress=progress_for(args))
    print(result.work_tree)
    return EXIT_OK


def cmd_quilt(args: argparse.Namespace) -> int:
    from designate_dist.pipeline import quilt
    result = quilt(find_distro(args), output=Path(args.output) if args.output else None, force=args.force,
                   progress=progress_for(args))
    print(result.directory)
    return EXIT_OK


def cmd_build(args: argparse.Namespace) -> int:
    from designate_dist.pipeline import build
    result = build(find_distro(args), output=Path(args.output) if args.output else None,
                   skip_tests=args.skip_tests, force=args.force, rebuild=args.rebuild,
                   concurrency=args.concurrency, progress=progress_for(args))
    print(result.output_dir)
    return EXIT_OK


def cmd_test(args: argparse.Namespace) -> int:
    from designate_dist.pipeline import run_tests
    report = run_tests(find_distro(args), output=Path(args.output) if args.output else None,
                       concurrency=args.concurrency, force=args.force, progress=progress_for(args))
    print(f"{report.passed} passed, {report.failed} failed, {report.skipped} skipped, "
          f"{report.excluded} excluded")
    return EXIT_OK


def cmd_lock(args: argparse.Namespace) -> int:
    from designate_dist.pipeline import relock
    path = relock(find_distro(args), force=args.force, progress=progress_for(args))
    print(path)
    return EXIT_OK


def register(add: Add) -> None:
    add("fetch", cmd_fetch, "download the pinned upstream archive into the cache and verify its sha256")
    prep = add("prepare", cmd_prepare,
               "fetch, import upstream into the git work tree and apply the series; prints the work tree")
    prep.add_argument("--force", action="store_true",
                      help="discard uncommitted changes and extra commits in the work tree")
    qlt = add("quilt", cmd_quilt,
              "prepare, then write the applied series as a quilt series into patches/ (generated)")
    qlt.add_argument("--output", metavar="DIR", help="where to write it (default: DISTRO/patches)")
    qlt.add_argument("--force", action="store_true", help="discard changes in the work tree")
    bld = add("build", cmd_build, "prepare, run upstream tests, build wheel and debs, write the manifest")
    bld.add_argument("--skip-tests", action="store_true",
                     help="do not run upstream's unit tests (recorded in the manifest)")
    bld.add_argument("--output", metavar="DIR", help="output root (default: DISTRO/dist)")
    bld.add_argument("--concurrency", type=positive_int, metavar="N",
                     help="test workers (default: CPU count)")
    bld.add_argument("--force", action="store_true",
                     help="discard changes in the work tree and rebuild even if up to date")
    bld.add_argument("--rebuild", action="store_true", help="rebuild even if the output is up to date")
    tst = add("test", cmd_test, "run upstream's unit tests on the patched work tree (pinned venv, stestr)")
    tst.add_argument("--output", metavar="DIR",
                     help="where the subunit stream, JUnit XML and log go (default: DISTRO/dist/tests)")
    tst.add_argument("--concurrency", type=positive_int, metavar="N", help="workers (default: CPU count)")
    tst.add_argument("--force", action="store_true", help="discard changes in the work tree")
    lck = add("lock", cmd_lock, "regenerate build/constraints.txt from the patched tree's requirements")
    lck.add_argument("--force", action="store_true", help="discard changes in the work tree")
