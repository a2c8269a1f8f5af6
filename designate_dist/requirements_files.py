"""Requirements files as data: each entry with its line, and the names a file lists twice.

After a rebase the same project can be named twice in one file -- our patch
adds it, and the new release now requires it itself (with another bound) --
and pip then takes whichever line it likes.  Two lines for one project are
fine only under different environment markers (``; python_version < "3.10"``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from designate_dist.lockfile import canonical

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)(?:;(.*))?$")


@dataclass(frozen=True)
class Entry:
    line: int      # 1-based
    name: str      # canonical (PEP 503)
    spec: str      # version specifier, spaces removed
    marker: str    # environment marker, spaces removed ("" when none)


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
                               re.sub(r"\s+", "", match.group(4) or "")))
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
