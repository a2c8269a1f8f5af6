"""Debian version ordering, as ``dpkg --compare-versions`` orders versions.

The repository indexes list every version of a package in this order (not in
directory order), so that two copies of the same repository give the same bytes.
"""
from __future__ import annotations

import re

#: A Debian version as a .deb's control fields may hold it: ``[epoch:]upstream[-revision]``.
DEB_VERSION = re.compile(r"^([0-9]+:)?[A-Za-z0-9][A-Za-z0-9.+~-]*$")


def _order(char: str) -> int:
    if not char or char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    if char == "~":
        return -1
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: non-digit runs by _order, digit runs numerically."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i] if i < len(a) else "")
            bc = _order(b[j] if j < len(b) else "")
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        start_i, start_j = i, j
        while i < len(a) and a[i].isdigit():
            i += 1
        while j < len(b) and b[j].isdigit():
            j += 1
        na, nb = int(a[start_i:i] or 0), int(b[start_j:j] or 0)
        if na != nb:
            return -1 if na < nb else 1
    return 0


def _split_version(version: str) -> tuple[int, str, str]:
    epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch or 0), upstream, revision


def compare_debian_versions(a: str, b: str) -> int:
    """Like ``dpkg --compare-versions``: negative, zero or positive."""
    ea, ua, ra = _split_version(a)
    eb, ub, rb = _split_version(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


def without_epoch(version: str) -> str:
    """``1:22.0.1-2`` -> ``22.0.1-2`` (how a .deb file is named)."""
    return version.split(":", 1)[1] if ":" in version else version
