"""Distro versions: upstream release + distro revision N, in PEP 440 and Debian forms.

Scheme (documented in the README):

* wheel (PEP 440): ``<upstream>.post<N>``, e.g. ``22.0.1.post3``.  A post-release
  sorts above the plain upstream release and every lower revision, and below
  the next upstream release (``22.0.2``, ``23.0.0.0rc1``...).
* Debian: ``1:<upstream>-<N>``, e.g. ``1:22.0.1-3``.  Epoch 1 is the epoch of
  Debian's own designate packages (``1:15.0.2-0+deb11u1``): without it our
  builds would sort below them.  Upstream pre-releases (``23.0.0.0rc1``) map to
  ``23.0.0~rc1`` so that they sort below the final release.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from designate_dist.errors import ConfigError

DEBIAN_EPOCH = 1


def same_version(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are the same PEP 440 version (``22.0.1`` == ``v22.0.1.0``); else as text."""
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


@dataclass(frozen=True, order=False)
class DistroVersion:
    """An upstream release plus a distro revision."""

    upstream: str
    revision: int

    def __post_init__(self) -> None:
        try:
            parsed = Version(self.upstream)
        except InvalidVersion as exc:
            raise ConfigError(f"upstream version {self.upstream!r} is not a PEP 440 version") from exc
        if parsed.is_postrelease or parsed.is_devrelease or parsed.local:
            raise ConfigError(f"upstream version {self.upstream!r} must be a release or pre-release")
        if not isinstance(self.revision, int) or self.revision < 1:
            raise ConfigError(f"distro revision must be an integer >= 1, not {self.revision!r}")

    @property
    def pep440(self) -> str:
        """The wheel's version, given to pbr through PBR_VERSION."""
        return f"{self.upstream}.post{self.revision}"

    @property
    def debian_upstream(self) -> str:
        """The upstream part of the Debian version (pre-releases use ``~``)."""
        parsed = Version(self.upstream)
        release = ".".join(str(p) for p in parsed.release)
        if parsed.pre:
            letter, number = parsed.pre
            # 23.0.0.0rc1 (pbr's form) and 23.0.0rc1 both become 23.0.0~rc1.
            release = re.sub(r"(\.0)$", "", release) if len(parsed.release) > 3 else release
            return f"{release}~{letter}{number}"
        return release

    @property
    def debian(self) -> str:
        """The full Debian version with epoch, for debian/changelog."""
        return f"{DEBIAN_EPOCH}:{self.debian_upstream}-{self.revision}"

    @property
    def debian_noepoch(self) -> str:
        """The Debian version as it appears in .deb file names (no epoch)."""
        return f"{self.debian_upstream}-{self.revision}"

    def __str__(self) -> str:
        return self.pep440
