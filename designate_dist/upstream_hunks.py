"""Which hunks of a patch the new upstream release already has, and the diff without them.

A hunk whose added lines upstream added too (the same lines, maybe a few lines
away) still applies with an offset, or merges cleanly, or -- with fuzz --
lands next to upstream's copy: the block is then in the file twice, and Python
accepts a duplicate class or function without a word.  Such a hunk is
"already upstream": every run of lines it adds was added by upstream between
the release the patch was made on and the new one (more copies in the new
file than in the old), the lines it removes are gone there too, and the
replayed change still adds them.  The replayed diff is then filtered: one copy
of each such run is taken out of its added lines, leaving the rest of the patch.

Lines are compared exactly; blank lines at the edges of a run do not count,
and a run must say something (two non-blank lines, or one long one) so that a
stray ``pass`` or ``return`` upstream added elsewhere is never mistaken for ours.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from designate_dist.unidiff import parse_diff

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
#: A single added line shorter than this (stripped) is too common to be upstream's on sight.
MIN_SINGLE_LINE = 16

TextAt = Callable[[str], "str | None"]


@dataclass(frozen=True)
class UpstreamHunk:
    """A hunk of the patch whose added lines the new release already has."""

    file: str
    number: int                    # 1-based, within the file
    header: str                    # ``@@ -a,b +c,d @@``
    runs: tuple[tuple[str, ...], ...]  # the added runs found upstream (blank edges trimmed)

    def describe(self) -> str:
        lines = sum(len(run) for run in self.runs)
        return (f"hunk #{self.number} of {self.file} ({self.header}): its {lines} added "
                f"line{'s' if lines != 1 else ''} are there")


def _split_runs(body: tuple[str, ...], sign: str) -> list[tuple[str, ...]]:
    """Runs of consecutive ``sign`` lines (text without the sign), blank edges trimmed, empty runs dropped."""
    runs: list[tuple[str, ...]] = []
    current: list[str] = []
    for line in (*body, " "):
        if line.startswith(sign):
            current.append(line[1:])
            continue
        if line.startswith("\\"):
            continue
        while current and not current[0].strip():
            current.pop(0)
        while current and not current[-1].strip():
            current.pop()
        if current:
            runs.append(tuple(current))
        current = []
    return runs


def _significant(run: tuple[str, ...]) -> bool:
    filled = [line for line in run if line.strip()]
    return len(filled) >= 2 or (len(filled) == 1 and len(filled[0].strip()) >= MIN_SINGLE_LINE)


def count_block(run: tuple[str, ...], lines: list[str]) -> int:
    """How many times ``run`` occurs in ``lines`` as consecutive lines."""
    if not run:
        return 0
    size, first, found = len(run), run[0], 0
    for start in range(len(lines) - size + 1):
        if lines[start] == first and tuple(lines[start:start + size]) == run:
            found += 1
    return found


def _lines(text: str | None) -> list[str]:
    return text.split("\n") if text else []


def find_upstream_hunks(patch_diff: str, fresh_diff: str, old_text: TextAt, new_text: TextAt
                        ) -> list[UpstreamHunk]:
    """The hunks of ``patch_diff`` that upstream already has but ``fresh_diff`` adds again.

    ``old_text(path)``: the file the patch was made on; ``new_text(path)``: the
    file in the new release before the patch (None where there is none).
    """
    fresh_added = {}
    for file in parse_diff(fresh_diff):
        path = file.new or file.old
        if path:
            fresh_added[path] = [run for _, body in file.hunks for run in _added_blocks(body)]
    found: list[UpstreamHunk] = []
    for file in parse_diff(patch_diff):
        path = file.new or file.old
        if not path or file.old is None or path not in fresh_added:
            continue
        new_lines: list[str] | None = None
        old_lines: list[str] | None = None
        for number, ((a, b, c, d), body) in enumerate(file.hunks, start=1):
            runs = _split_runs(body, "+")
            if not runs or not all(_significant(run) for run in runs):
                continue
            if not all(any(count_block(run, list(block)) for block in fresh_added[path]) for run in runs):
                continue  # the replay did not add it again (the merge took it as upstream's)
            if new_lines is None:
                new_lines, old_lines = _lines(new_text(path)), _lines(old_text(file.old))
            assert old_lines is not None
            if not all(count_block(run, new_lines) > count_block(run, old_lines) for run in runs):
                continue
            if any(count_block(run, new_lines) >= count_block(run, old_lines)
                   for run in _split_runs(body, "-")):
                continue  # it also removes lines upstream kept: not all of it is upstream
            found.append(UpstreamHunk(path, number, f"@@ -{a},{b} +{c},{d} @@", tuple(runs)))
    return found


def _added_blocks(body: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Runs of consecutive added lines, untrimmed."""
    blocks: list[tuple[str, ...]] = []
    current: list[str] = []
    for line in (*body, " "):
        if line.startswith("+"):
            current.append(line[1:])
        elif not line.startswith("\\"):
            if current:
                blocks.append(tuple(current))
            current = []
    return blocks


def without_hunks(fresh_diff: str, hunks: list[UpstreamHunk]) -> str:
    """``fresh_diff`` with one added copy of every run of ``hunks`` taken out.

    Added lines left blank-only next to a removed run go with it; hunks left
    with no change and files left with no hunk are dropped.
    """
    todo: dict[str, list[tuple[str, ...]]] = {}
    for hunk in hunks:
        todo.setdefault(hunk.file, []).extend(hunk.runs)
    out: list[str] = []
    for head, path, file_hunks in _sections(fresh_diff):
        runs = todo.get(path or "", [])
        kept = []
        for header, body in file_hunks:
            body = _remove_runs(body, runs)
            if any(line[:1] in "+-" for line in body):
                kept.append((_recount(header, body), body))
        extended = any(line.startswith(("new file", "deleted file", "rename ", "old mode", "copy "))
                       for line in head)
        if kept or extended:
            out += head
            for header, body in kept:
                out.append(header)
                out += body
    return "\n".join(out) + "\n" if out else ""


def _sections(diff: str) -> list[tuple[list[str], str | None, list[tuple[str, list[str]]]]]:
    """``git diff`` text as (head lines, path, [(hunk header, body lines)]) per file."""
    sections: list[tuple[list[str], str | None, list[tuple[str, list[str]]]]] = []
    lines = diff.rstrip("\n").split("\n") if diff.strip() else []
    index = 0
    while index < len(lines):
        head = [lines[index]]
        index += 1
        while index < len(lines) and not lines[index].startswith(("@@ ", "diff --git ")):
            head.append(lines[index])
            index += 1
        path = next((line[6:] for line in head if line.startswith("+++ b/")), None) or \
            next((line[6:] for line in head if line.startswith("--- a/")), None)
        hunks: list[tuple[str, list[str]]] = []
        while index < len(lines) and lines[index].startswith("@@ "):
            header = lines[index]
            match = _HUNK.match(header)
            remove = int(match.group(2) or 1) if match else 0
            add = int(match.group(4) or 1) if match else 0
            index += 1
            body: list[str] = []
            while index < len(lines) and (remove > 0 or add > 0 or lines[index].startswith("\\")):
                line = lines[index]
                if line.startswith("-"):
                    remove -= 1
                elif line.startswith("+"):
                    add -= 1
                elif not line.startswith("\\"):
                    remove -= 1
                    add -= 1
                body.append(line)
                index += 1
            hunks.append((header, body))
        sections.append((head, path, hunks))
    return sections


def _remove_runs(body: list[str], runs: list[tuple[str, ...]]) -> list[str]:
    """Take one copy of each run (in ``runs``, consumed) out of the added lines of ``body``."""
    body = list(body)
    for run in list(runs):
        size = len(run)
        for start in range(len(body) - size + 1):
            window = body[start:start + size]
            if all(line.startswith("+") and line[1:] == want for line, want in zip(window, run)):
                low, high = start, start + size
                while low > 0 and body[low - 1].startswith("+") and not body[low - 1][1:].strip():
                    low -= 1
                while high < len(body) and body[high].startswith("+") and not body[high][1:].strip():
                    high += 1
                # blank added lines around the run go only when nothing else of ours is next to them
                before_ours = low > 0 and body[low - 1].startswith("+")
                after_ours = high < len(body) and body[high].startswith("+")
                if before_ours or after_ours:
                    low, high = start, start + size
                del body[low:high]
                runs.remove(run)
                break
    return body


def _recount(header: str, body: list[str]) -> str:
    match = _HUNK.match(header)
    if match is None:
        return header
    old = sum(1 for line in body if line[:1] in " -" or line == "")
    new = sum(1 for line in body if line[:1] in " +" or line == "")
    return f"@@ -{match.group(1)},{old} +{match.group(3)},{new} @@{match.group(5)}"
