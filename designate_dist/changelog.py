"""Changelog text: ``debian/changelog`` entries and ``CHANGELOG.md`` sections.

``release`` writes both (a released entry per version); the deb stage makes a
build entry for an unreleased version (:func:`merge_changelog`).  Pure text in,
text out: nothing here reads or writes a file.
"""
from __future__ import annotations

import email.utils
import re
import textwrap
from datetime import UTC, datetime

from designate_dist.versions import DistroVersion

DEB_DISTRIBUTION = "bookworm"


def changelog_entry(version: DistroVersion, items: list[str] | tuple[str, ...], maintainer: str,
                    when: int, package: str = "designate") -> str:
    """One ``debian/changelog`` entry: ``* item`` lines wrapped below 80 columns, dated ``when``."""
    date = email.utils.format_datetime(datetime.fromtimestamp(when, tz=UTC))
    bullets = "".join(textwrap.fill(item, width=79, initial_indent="  * ", subsequent_indent="    ",
                                    break_long_words=False, break_on_hyphens=False) + "\n"
                      for item in items)
    return (f"{package} ({version.debian}) {DEB_DISTRIBUTION}; urgency=medium\n\n"
            f"{bullets}\n -- {maintainer}  {date}\n")


def changelog(version: DistroVersion, maintainer: str, source_date_epoch: int,
              package: str = "designate") -> str:
    """The build entry of ``debian/changelog`` for an unreleased version, dated SOURCE_DATE_EPOCH."""
    return changelog_entry(version, [f"designate-dist build of upstream {version.upstream}, "
                                     f"distro revision {version.revision} ({version.pep440})."],
                           maintainer, source_date_epoch, package)


_CHANGELOG_HEAD = re.compile(r"^(?P<package>[a-z0-9][a-z0-9.+-]*) \((?P<version>[^()\s]+)\)")


def changelog_top_version(text: str) -> str | None:
    """The version of the newest entry of a ``debian/changelog`` text, or None."""
    for line in text.splitlines():
        if line.strip():
            match = _CHANGELOG_HEAD.match(line)
            return match.group("version") if match else None
    return None


def merge_changelog(existing: str | None, version: DistroVersion, maintainer: str,
                    source_date_epoch: int, package: str = "designate") -> str:
    """The ``debian/changelog`` to build ``version`` with.

    The released text when its newest entry is ``version`` (``designate-dist
    release`` wrote it); otherwise a build entry above the history (or alone).
    """
    if existing and changelog_top_version(existing) == version.debian:
        return existing
    entry = changelog(version, maintainer, source_date_epoch, package)
    if existing and existing.strip():
        return entry + "\n" + existing.lstrip("\n")
    return entry


def with_markdown_entry(existing: str | None, entry: str, version: DistroVersion) -> str:
    """CHANGELOG.md with ``entry`` on top; an earlier entry of the same (untagged) version goes."""
    header = "# Changelog\n\n"
    if not existing or not existing.strip():
        return header + entry
    lines = existing.splitlines(keepends=True)
    sections = [i for i, line in enumerate(lines) if line.startswith("## ")] + [len(lines)]
    at = sections[0]
    head = "".join(lines[:at])
    if head and not head.endswith("\n\n"):
        head = head.rstrip("\n") + "\n\n"
    if at < len(lines) and lines[at].startswith(f"## {version.pep440} ("):
        at = sections[1]  # a release of this version that never got its tag
    rest = "".join(lines[at:])
    return head + entry + ("\n" + rest if rest else "")


def with_debian_entry(existing: str | None, entry: str, version: DistroVersion) -> str:
    """debian/changelog with ``entry`` on top; an earlier entry of the same (untagged) version goes."""
    if not existing or not existing.strip():
        return entry
    text = existing.lstrip("\n")
    if changelog_top_version(text) == version.debian:
        trailer = re.search(r"(?m)^ -- .*\n?", text)
        text = text[trailer.end():].lstrip("\n") if trailer else ""
    return entry + ("\n" + text if text else "")
