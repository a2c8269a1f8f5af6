"""Unified diffs as data, and patch files as a head and a diff.

The one place that knows where a patch file's diff starts (:func:`split_head`),
which files a diff touches, its files and hunks (read by their line counts,
trailers ignored), and how to give a patch file a fresh diff keeping its header
and message (:func:`rewrite_patch`).  The series, the rebase, the patch queue and
cherry-pick all read diffs through it.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

_DIFF_START = re.compile(r"^(diff --git |--- (a/|/dev/null)|Index: )", re.M)
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def split_head(text: str) -> tuple[str, str]:
    """A patch file's text split into what comes before the diff and the diff."""
    match = _DIFF_START.search(text)
    if match is None:
        return text, ""
    return text[:match.start()], text[match.start():]


def diff_files(diff: str) -> list[str]:
    """The paths a unified diff touches, in order (both names of a rename)."""
    files: list[str] = []
    for line in diff.splitlines():
        if line.startswith("+++ ") or line.startswith("--- "):
            path = line[4:].split("\t")[0].strip()
            if path == "/dev/null":
                continue
            if path.startswith(("a/", "b/")):
                path = path[2:]
            if path not in files:
                files.append(path)
    return files


def rewrite_patch(original: str, mail: bool, fresh: str) -> str:
    """``original``'s header and message with the diff of ``fresh``.

    ``fresh`` is ``git format-patch`` output for a mail-format patch (its ``---``
    part, diffstat and diff, replaces the original's) or a plain diff.
    """
    head, _ = split_head(original)
    if mail:
        cut = head.rfind("\n---\n")
        fresh_head, fresh_diff = split_head(fresh)
        fresh_cut = fresh_head.rfind("\n---\n")
        tail = fresh[fresh_cut + 1:] if fresh_cut != -1 else fresh_diff
        if cut != -1:
            return head[:cut + 1] + tail
        return head + (fresh_diff if not head.endswith("\n---\n") else tail)
    _, fresh_diff = split_head(fresh)
    return head + fresh_diff


@dataclass(frozen=True)
class FileDiff:
    old: str | None
    new: str | None
    hunks: tuple[tuple[tuple[int, int, int, int], tuple[str, ...]], ...]
    extended: tuple[str, ...] = ()  # new file / deleted / rename / mode lines


def parse_diff(diff: str) -> tuple[FileDiff, ...]:
    """A unified diff as files and hunks (hunk bodies read by their counts, trailers ignored)."""
    files: list[FileDiff] = []
    lines = diff.split("\n")
    index = 0
    old = new = None
    hunks: list = []
    extended: list[str] = []
    started = False

    def flush() -> None:
        if started:
            files.append(FileDiff(old, new, tuple(hunks), tuple(extended)))

    while index < len(lines):
        line = lines[index]
        if line.startswith("diff --git "):
            flush()
            started, hunks, extended = True, [], []
            parts = line[len("diff --git "):].split(" b/", 1)
            old = parts[0].removeprefix("a/")
            new = parts[1] if len(parts) > 1 else old
        elif line.startswith("--- ") and index + 1 < len(lines) and lines[index + 1].startswith("+++ "):
            if not started or hunks:
                flush()
                started, hunks, extended = True, [], []
            old = _diff_path(line[4:])
            new = _diff_path(lines[index + 1][4:])
            index += 1
        elif line.startswith(("new file mode", "deleted file mode", "rename from", "rename to",
                              "old mode", "new mode", "copy from", "copy to", "Binary files")):
            extended.append(line)
        elif started and (match := _HUNK.match(line)):
            a, b = int(match.group(1)), int(match.group(2) or 1)
            c, d = int(match.group(3)), int(match.group(4) or 1)
            remove, add = b, d
            body: list[str] = []
            index += 1
            while index < len(lines) and (remove > 0 or add > 0 or lines[index].startswith("\\")):
                body_line = lines[index]
                if body_line.startswith("\\"):
                    body.append(body_line)
                elif body_line.startswith("-"):
                    remove -= 1
                    body.append(body_line)
                elif body_line.startswith("+"):
                    add -= 1
                    body.append(body_line)
                else:  # context (an empty line is a context line whose space was stripped)
                    remove -= 1
                    add -= 1
                    body.append(" " + body_line[1:] if body_line else " ")
                index += 1
            hunks.append(((a, b, c, d), tuple(body)))
            continue
        index += 1
    flush()
    return tuple(files)


def _diff_path(text: str) -> str | None:
    path = text.split("\t")[0].strip()
    if path == "/dev/null":
        return None
    return path[2:] if path.startswith(("a/", "b/")) else path


def same_hunks(first: str, second: str) -> bool:
    """True when two diffs make the same change at the same place with the same context."""
    return parse_diff(first) == parse_diff(second)


def changed_lines(diff: str) -> Counter:
    """The multiset of added and removed lines (sign + text), whatever the file names."""
    counter: Counter = Counter()
    for file in parse_diff(diff):
        for _, body in file.hunks:
            for line in body:
                if line[:1] in "+-":
                    counter[line] += 1
        for line in file.extended:
            if line.startswith(("new file", "deleted file")):
                counter[line.split(" mode")[0]] += 1
    return counter
