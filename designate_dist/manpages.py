"""Man pages generated from the argparse definitions, so that they cannot drift from the CLI.

One page per command: ``designate-dist(1)`` lists the commands, ``designate-dist-build(1)``,
``designate-dist-dr-check(1)`` ... describe one each, in the ``man(7)`` macros that groff and
man-db render.  The text is a pure function of the parsers, the version and the date, so the
pages are reproducible.
"""
from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from designate_dist import atomic


@dataclass(frozen=True)
class ManPage:
    name: str            # e.g. designate-dist-dr-check
    text: str

    @property
    def filename(self) -> str:
        return f"{self.name}.1"


def _escape(text: str) -> str:
    """Text safe for roff: backslashes, and a leading dot or quote on a line."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.M)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            return {name: (sub, helps.get(name, "")) for name, sub in action.choices.items()}
    return {}


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = (), summary: str = ""
         ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    """Every (command path, parser, one-line help) under ``parser``, the root first."""
    yield path, parser, summary or parser.description or ""
    for name, (sub, help_text) in _subcommands(parser).items():
        yield from walk(sub, (*path, name), help_text)


def _options(parser: argparse.ArgumentParser) -> list[str]:
    lines: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            metavar = ""
            if action.nargs != 0:
                choices = "{" + ",".join(map(str, action.choices)) + "}" if action.choices else ""
                metavar = " " + (action.metavar or choices or action.dest.upper())
            names = ", ".join(f"\\fB{_escape(o)}\\fR{_escape(metavar)}" for o in action.option_strings)
        else:
            names = f"\\fI{_escape(str(action.metavar or action.dest))}\\fR"
        lines += [".TP", names, _escape(action.help or "")]
    return lines


def render(prog: str, parser: argparse.ArgumentParser, *, manual: str = "designate-dist manual"
           ) -> list[ManPage]:
    """The pages of ``prog`` and of every command under it.

    No date and no version in the header: the pages are committed and checked against the
    parsers (tests/dist/test_docs.py), so they must change only when the CLI does.
    """
    pages = []
    for path, sub, summary in walk(parser):
        name = "-".join((prog, *path))
        command = " ".join((prog, *path))
        # a fixed width: argparse would otherwise wrap at the terminal's ($COLUMNS)
        formatter = argparse.HelpFormatter(prog=sub.prog, width=78)
        formatter.add_usage(sub.usage, sub._actions, sub._mutually_exclusive_groups, prefix="")
        usage = formatter.format_help().strip()
        lines = [f'.TH "{name.upper()}" "1" "" "{prog}" "{manual}"',
                 ".SH NAME", f"{_escape(name)} \\- {_escape(summary or sub.description or command)}",
                 ".SH SYNOPSIS", ".nf", _escape(usage), ".fi"]
        if sub.description and sub.description != summary:
            lines += [".SH DESCRIPTION", _escape(sub.description)]
        children = _subcommands(sub)
        if children:
            lines.append(".SH COMMANDS")
            for child, (_, help_text) in children.items():
                lines += [".TP", f"\\fB{_escape(command + ' ' + child)}\\fR", _escape(help_text),
                          ".br", f"See \\fB{_escape(name + '-' + child)}\\fR(1)."]
        options = _options(sub)
        if options:
            lines += [".SH OPTIONS", *options]
        if sub.epilog:
            lines += [".SH NOTES", _escape(sub.epilog)]
        if path:
            lines += [".SH SEE ALSO", f"\\fB{_escape('-'.join((prog, *path[:-1])))}\\fR(1)"]
        pages.append(ManPage(name, "\n".join(lines) + "\n"))
    return pages


def write(pages: list[ManPage], directory: Path) -> list[Path]:
    """Write ``pages`` into ``directory`` atomically; remove pages of commands that are gone."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = {page.filename for page in pages}
    prefixes = {page.name.split("-")[0] for page in pages}
    for old in directory.glob("*.1"):
        if old.name not in wanted and old.name.split("-")[0] in prefixes:
            old.unlink()
    written = []
    for page in pages:
        path = directory / page.filename
        if not path.exists() or path.read_text(encoding="utf-8") != page.text:
            atomic.write_text(path, page.text)
        written.append(path)
    return written


def all_pages() -> list[ManPage]:
    """The pages of every command this repository installs (designate-dist, designate-dr)."""
    from designate_dist.cli import build_parser
    from designate_dr import cli as dr_cli
    return render("designate-dist", build_parser()) + render("designate-dr", dr_cli.build_parser())


def main(argv: list[str] | None = None) -> int:
    """``python -m designate_dist.manpages [DIR]``: (re)write the pages into DIR (default man/)."""
    import sys
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0]) if args else Path(__file__).resolve().parent.parent / "man"
    for path in write(all_pages(), directory):
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
