"""The ``designate-dist`` command line: the parser, ``main`` and the one error line.

Every command is a function of the library; the modules of this package parse
arguments, call it and print its result, one module per command group, each
registered in :data:`COMMAND_GROUPS`.  This module turns a :class:`DistError`
into one ``error: ...`` line and its exit code.  ``--debug`` (or
DESIGNATE_DIST_DEBUG=1) shows the traceback instead.
"""
from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from designate_dist import tool_version
from designate_dist.cli import build, dr, publish, rebase, release, upstream
from designate_dist.errors import EXIT_ERROR, DiskFull, DistError, UsageError, os_failure

Handler = Callable[[argparse.Namespace], int]
#: The command groups, in the order ``--help`` lists their commands.
COMMAND_GROUPS = (build, rebase, release, publish, dr, upstream)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors: one line, exit 2
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--distro", metavar="DIR", default=argparse.SUPPRESS,
                        help="the distribution repository (default: the current directory, or the "
                             "nearest directory above it holding build/upstream.toml)")
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

    for group in COMMAND_GROUPS:
        group.register(add)
    return parser


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
