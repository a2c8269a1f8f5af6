"""The documentation stays true: its links resolve and the commands it names exist."""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

from oslotest import base

from designate_dist import manpages
from designate_dist.cli import build_parser
from designate_dist.manpages import walk

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
COMMAND = re.compile(r"designate-dist((?:[ \t]+[a-z][a-z0-9-]*)+)")
CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)   # commands are named in code, not in prose


def doc_files() -> list[Path]:
    return sorted([ROOT / "README.md", ROOT / "bench" / "README.md", *(ROOT / "docs").rglob("*.md")])


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def resolve(words: list[str]) -> tuple[str, ...] | None:
    """The command path that ``designate-dist WORDS...`` names, or None when it names none."""
    parser, path = build_parser(), []
    for word in words:
        choices = subcommands(parser)
        if not choices:
            break                       # the rest are the command's own arguments
        if word not in choices:
            return None                 # a group (dr: check|failover...) takes a known subcommand
        parser = choices[word]
        path.append(word)
    if subcommands(parser):
        return None
    return tuple(path) if path else None


class TestDocs(base.BaseTestCase):
    def test_relative_links_resolve(self) -> None:
        broken = []
        for doc in doc_files():
            for target in LINK.findall(doc.read_text(encoding="utf-8")):
                if re.match(r"[a-z]+:", target) or target.startswith("#"):
                    continue
                path = (doc.parent / target.split("#", 1)[0]).resolve()
                if not path.exists():
                    broken.append(f"{doc.relative_to(ROOT)}: {target}")
        self.assertEqual([], broken)

    def test_every_page_is_reachable_from_the_index(self) -> None:
        index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
        linked = {(ROOT / "docs" / target).resolve() for target in LINK.findall(index)}
        pages = {page.resolve() for page in (ROOT / "docs").rglob("*.md") if page.name != "index.md"}
        self.assertEqual(set(), {str(p.relative_to(ROOT)) for p in pages - linked})

    def test_designate_dr_commands_named_in_the_docs_exist(self) -> None:
        from designate_dr.cli import build_parser as dr_parser
        known = set(subcommands(dr_parser()))
        unknown = []
        for doc in doc_files():
            code = "\n".join(CODE.findall(doc.read_text(encoding="utf-8")))
            for match in re.finditer(r"designate-dr[ \t]+([a-z][a-z0-9-]*)", code):
                if match.group(1) not in known:
                    unknown.append(f"{doc.relative_to(ROOT)}: designate-dr {match.group(1)}")
        self.assertEqual([], unknown)

    def test_commands_named_in_the_docs_exist(self) -> None:
        unknown, seen = [], set()
        for doc in doc_files():
            code = "\n".join(CODE.findall(doc.read_text(encoding="utf-8")))
            for match in COMMAND.finditer(code):
                words = match.group(1).split()
                path = resolve(words)
                if path is None:
                    unknown.append(f"{doc.relative_to(ROOT)}: designate-dist {' '.join(words)}")
                else:
                    seen.add(path)
        self.assertEqual([], unknown)
        # each command's --help renders
        for path in seen:
            parser = build_parser()
            for word in path:
                parser = subcommands(parser)[word]
            self.assertIn("usage:", parser.format_help())

    def test_resolve_refuses_what_does_not_exist(self) -> None:
        self.assertIsNone(resolve(["frobnicate"]))
        self.assertIsNone(resolve(["dr", "chekc"]))
        self.assertIsNone(resolve(["dr"]))
        self.assertEqual(("dr", "check"), resolve(["dr", "check", "fast"]))
        self.assertEqual(("build",), resolve(["build", "now"]))


class TestManPages(base.BaseTestCase):
    def test_committed_pages_match_the_parsers(self) -> None:
        pages = {page.filename: page.text for page in manpages.all_pages()}
        committed = {path.name: path.read_text(encoding="utf-8") for path in (ROOT / "man").glob("*.1")}
        self.assertEqual(sorted(pages), sorted(committed),
                         "regenerate with: .venv/bin/python -m designate_dist.manpages")
        stale = [name for name in pages if pages[name] != committed[name]]
        self.assertEqual([], stale, "regenerate with: .venv/bin/python -m designate_dist.manpages")

    def test_every_command_has_a_page_that_groff_renders_cleanly(self) -> None:
        from designate_dr.cli import build_parser as dr_parser
        names = {"-".join(("designate-dist", *path)) for path, _, _ in walk(build_parser())}
        names |= {"-".join(("designate-dr", *path)) for path, _, _ in walk(dr_parser())}
        self.assertEqual(names, {page.name for page in manpages.all_pages()})
        self.assertIn("designate-dr-failover", names)
        self.assertIn("designate-dist-dr-check", names)
        groff = shutil.which("groff")
        self.assertIsNotNone(groff, "groff (Debian's groff-base) renders the man pages")
        for page in manpages.all_pages():
            done = subprocess.run([groff, "-man", "-ww", "-z"], input=page.text, text=True,
                                  capture_output=True)
            self.assertEqual(("", 0), (done.stderr, done.returncode), page.name)
