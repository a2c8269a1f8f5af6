"""Requirements files as data: entries with their lines, names listed twice, and what a rebase says of them.

After a rebase the same project can be named twice in one file -- our patch
adds it, and the new release now requires it itself (with another bound) --
and pip then takes whichever line it likes.  Two lines for one project are
fine only under different environment markers (``; python_version < "3.10"``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from designate_dist.lockfile import canonical
from designate_dist.series import PatchFile
from designate_dist.unidiff import parse_diff

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)(?:;(.*))?$")


@dataclass(frozen=True)
class Entry:
    line: int      # 1-based
    name: str      # canonical (PEP 503)
    spec: str      # version specifier, spaces removed
    marker: str    # environment marker, spaces removed ("" when none)
    extras: str = ""  # "[mysql]", spaces removed

    @property
    def requirement(self) -> str:
        """Extras, specifier and marker as one string (what the requirements diff compares)."""
        return self.extras + self.spec + (f";{self.marker}" if self.marker else "")


def is_requirements_file(path: str) -> bool:
    """``requirements.txt``, ``test-requirements.txt``, ``doc/requirements.txt``..."""
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".txt") and "requirements" in name


def entries(text: str | None) -> list[Entry]:
    """The requirement lines of a requirements file (comments, options and URLs left out)."""
    found = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = re.split(r"\s#", raw, maxsplit=1)[0].strip()
        if not line or line.startswith(("#", "-")) or "://" in line:
            continue
        match = _NAME.match(line)
        if match:
            found.append(Entry(number, canonical(match.group(1)), re.sub(r"\s+", "", match.group(3)),
                               re.sub(r"\s+", "", match.group(4) or ""), re.sub(r"\s+", "", match.group(2) or "")))
    return found


def named_twice(text: str | None) -> dict[str, list[Entry]]:
    """``{name: entries}`` for every project named more than once under the same marker."""
    seen: dict[tuple[str, str], list[Entry]] = {}
    for entry in entries(text):
        seen.setdefault((entry.name, entry.marker), []).append(entry)
    return {name: found for (name, _), found in seen.items() if len(found) > 1}


def describe_twice(path: str, name: str, found: list[Entry]) -> str:
    where = ", ".join(f"line {e.line}: {e.name}{e.spec or ' (any)'}" for e in found)
    return f"{path} names {name} {len(found)} times ({where})"


# -- what the rebase says about requirements ------------------------------------------------
def parse_requirements(text: str | None) -> dict[str, str]:
    """``{canonical name: extras, specifier and marker}`` of a requirements file (the last line wins)."""
    return {entry.name: entry.requirement for entry in entries(text)}


@dataclass(frozen=True)
class RequirementsDiff:
    added: dict[str, str]
    removed: dict[str, str]
    changed: dict[str, tuple[str, str]]

    def as_json(self) -> dict:
        return {"added": self.added, "removed": self.removed,
                "changed": {k: {"old": o, "new": n} for k, (o, n) in self.changed.items()}}

    def lines(self) -> list[str]:
        out = [f"  + {name}{spec}" for name, spec in sorted(self.added.items())]
        out += [f"  - {name}{spec}" for name, spec in sorted(self.removed.items())]
        out += [f"  ~ {name}: {old or '(any)'} -> {new or '(any)'}"
                for name, (old, new) in sorted(self.changed.items())]
        return out


def requirements_diff(old: str | None, new: str | None) -> RequirementsDiff:
    before, after = parse_requirements(old), parse_requirements(new)
    return RequirementsDiff(
        added={k: v for k, v in sorted(after.items()) if k not in before},
        removed={k: v for k, v in sorted(before.items()) if k not in after},
        changed={k: (before[k], after[k]) for k in sorted(before) if k in after and before[k] != after[k]})


def requirements_note(patch: PatchFile, new_requirements: dict[str, str],
                      diff: RequirementsDiff, version: str) -> str | None:
    """Whether a patch to requirements.txt is still needed on the new release."""
    wanted: dict[str, str] = {}
    dropped: set[str] = set()
    notes: list[str] = []
    for file in parse_diff(patch.diff):
        if (file.new or file.old or "").rsplit("/", 1)[-1] != "requirements.txt":
            continue
        for _, body in file.hunks:
            for line in body:
                if line.startswith("+"):
                    wanted.update(parse_requirements(line[1:]))
                elif line.startswith("-"):
                    dropped.update(parse_requirements(line[1:]))
    changed_by_us = dropped & set(wanted)
    dropped -= set(wanted)
    if not wanted and not dropped:
        return None
    satisfied = all(new_requirements.get(name) == spec for name, spec in wanted.items()) and \
        all(name not in new_requirements for name in dropped)
    if satisfied:
        return f"requirements patch no longer needed: {version} already has " + \
            ", ".join([f"{n}{s}" for n, s in sorted(wanted.items())] +
                      [f"no {n}" for n in sorted(dropped)])
    # a requirement we add that the new release added too: pip would see it twice
    notes += [f"upstream now requires {n} itself ({n}{diff.added[n] or ' (any)'}; ours {n}{spec or ' (any)'})"
              for n, spec in sorted(wanted.items()) if n in diff.added and n not in changed_by_us]
    moved = sorted(n for n in set(wanted) | dropped if n in diff.changed or n in diff.removed)
    if moved:
        notes.append("upstream changed " + ", ".join(
            f"{n} ({diff.changed[n][0] or '(any)'} -> {diff.changed[n][1] or '(any)'})"
            if n in diff.changed else f"{n} (removed)" for n in moved) + ": check this requirements patch")
    return "; ".join(notes) or None
