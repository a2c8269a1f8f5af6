"""The ``designate-dist`` command line: argument parsing and error reporting only.

Every command is a function of the library; this module parses arguments,
calls it, prints its result and turns a :class:`DistError` into one
``error: ...`` line and its exit code.  ``--debug`` (or DESIGNATE_DIST_DEBUG=1)
shows the traceback instead.
"""
from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from designate_dist import tool_version
from designate_dist.distro import Distro, load_distro
from designate_dist.errors import EXIT_ERROR, EXIT_OK, DiskFull, DistError, UsageError, os_failure

Handler = Callable[[argparse.Namespace], int]


def progress_for(args: argparse.Namespace) -> Callable[[str], None]:
    """Progress lines to stderr, or nothing with -q or --json (stdout is then the JSON)."""
    if args.quiet or getattr(args, "json", False):
        return lambda message: None
    return lambda message: print(message, file=sys.stderr, flush=True)


def _distro(args: argparse.Namespace) -> Distro:
    return load_distro(args.distro, args.work_dir)


def cmd_fetch(args: argparse.Namespace) -> int:
    from designate_dist.fetch import fetch
    result = fetch(_distro(args))
    print(result.archive)
    return EXIT_OK


def cmd_prepare(args: argparse.Namespace) -> int:
    from designate_dist.pipeline import prepare
    result = prepare(_distro(args), force=args.force, progress=progress_for(args))
    print(result.work_tree)
    return EXIT_OK


def cmd_quilt(args: argparse.Namespace) -> int:
    from designate_dist.pipeline import quilt
    result = quilt(_distro(args), output=Path(args.output) if args.output else None, force=args.force,
                   progress=progress_for(args))
    print(result.directory)
    return EXIT_OK


def cmd_build(args: argparse.Namespace) -> int:
    from designate_dist.pipeline import build
    result = build(_distro(args), output=Path(args.output) if args.output else None,
                   skip_tests=args.skip_tests, force=args.force, rebuild=args.rebuild,
                   concurrency=args.concurrency, progress=progress_for(args))
    print(result.output_dir)
    return EXIT_OK


def cmd_test(args: argparse.Namespace) -> int:
    from designate_dist.pipeline import run_tests
    report = run_tests(_distro(args), output=Path(args.output) if args.output else None,
                       concurrency=args.concurrency, force=args.force, progress=progress_for(args))
    print(f"{report.passed} passed, {report.failed} failed, {report.skipped} skipped, "
          f"{report.excluded} excluded")
    return EXIT_OK


def cmd_lock(args: argparse.Namespace) -> int:
    from designate_dist.pipeline import relock
    path = relock(_distro(args), force=args.force, progress=progress_for(args))
    print(path)
    return EXIT_OK


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


_positive = number_arg(int, 1)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors: one line, exit 2
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--distro", metavar="DIR", default=argparse.SUPPRESS,
                        help="the distribution repository (default: the current directory)")
    common.add_argument("--work-dir", metavar="DIR", default=argparse.SUPPRESS,
                        help="where work trees live (default: DISTRO/.work)")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and debug logs")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress lines")

    parser = _Parser(prog="designate-dist", parents=[common],
                     description="Build a patched OpenStack Designate distribution.")
    parser.add_argument("--version", action="version", version=f"designate-dist {tool_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        command.set_defaults(handler=handler)
        return command

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
    bld.add_argument("--concurrency", type=_positive, metavar="N",
                     help="test workers (default: CPU count)")
    bld.add_argument("--force", action="store_true",
                     help="discard changes in the work tree and rebuild even if up to date")
    bld.add_argument("--rebuild", action="store_true", help="rebuild even if the output is up to date")
    tst = add("test", cmd_test, "run upstream's unit tests on the patched work tree (pinned venv, stestr)")
    tst.add_argument("--output", metavar="DIR",
                     help="where the subunit stream, JUnit XML and log go (default: DISTRO/dist/tests)")
    tst.add_argument("--concurrency", type=_positive, metavar="N", help="workers (default: CPU count)")
    tst.add_argument("--force", action="store_true", help="discard changes in the work tree")
    lck = add("lock", cmd_lock, "regenerate build/constraints.txt from the patched tree's requirements")
    lck.add_argument("--force", action="store_true", help="discard changes in the work tree")
    _extend(sub, add)
    return parser


def _extend(sub, add) -> None:
    """Commands contributed by later modules (rebase, patches, release, dr)."""
    for module_name in ("designate_dist.cli_rebase", "designate_dist.cli_release",
                        "designate_dist.cli_publish", "designate_dist.cli_dr",
                        "designate_dist.cli_upstream"):
        try:
            module = __import__(module_name, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        module.register(add)


class _ClosedPipeSafe:
    """A stream whose reader may go away (``designate-dist ... | head -1``): not an error.

    A write or flush after the reader closed the pipe is dropped, and the
    descriptor is pointed at /dev/null so that the interpreter's last flush has
    nowhere to fail; the command runs on and exits with its own status.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.reader_gone = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a closed pipe on stdout or stderr is never an error (the one place for it)."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _ClosedPipeSafe(out), _ClosedPipeSafe(err)
    try:
        return _main(argv)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = out, err


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("DESIGNATE_DIST_DEBUG") == "1"
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        args = build_parser().parse_args(argv)
        for name, default in (("distro", None), ("work_dir", None), ("debug", False),
                              ("quiet", False)):
            if not hasattr(args, name):
                setattr(args, name, default)
        if not getattr(args, "handler", None):
            raise UsageError("designate-dist: a command is required (see --help)")
        return args.handler(args)
    except DistError as exc:
        if debug:
            raise
        line = str(exc).replace("\n", " ")
        if exc.hint:
            line += f" ({exc.hint})"
        print(f"error: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except UnicodeDecodeError as exc:  # an input read without read_utf8(): still one line
        if debug:
            raise
        print(f"error: an input file is not UTF-8 text ({exc.reason} at byte {exc.start})", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        if debug:
            raise
        error = os_failure(exc, "")
        if isinstance(error, DiskFull):  # wherever it happened, a full disk says so
            print(f"error: {error} ({error.hint})", file=sys.stderr)
        else:
            print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
