"""The distro version scheme sorts the way upgrades and rollbacks need."""
from __future__ import annotations

import subprocess

from oslotest import base
from packaging.version import Version

from designate_dist.errors import ConfigError
from designate_dist.versions import DistroVersion


def dpkg_lt(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0


class TestVersions(base.BaseTestCase):
    def test_forms(self) -> None:
        version = DistroVersion("22.0.1", 3)
        self.assertEqual("22.0.1.post3", version.pep440)
        self.assertEqual("1:22.0.1-3", version.debian)
        self.assertEqual("22.0.1-3", version.debian_noepoch)
        self.assertEqual("1:23.0.0~rc1-1", DistroVersion("23.0.0.0rc1", 1).debian)
        self.assertEqual("1:23.0.0~rc1-1", DistroVersion("23.0.0rc1", 1).debian)

    def test_pep440_order(self) -> None:
        ordered = ["22.0.1", DistroVersion("22.0.1", 1).pep440, DistroVersion("22.0.1", 2).pep440,
                   DistroVersion("22.0.1", 10).pep440, "22.0.2", DistroVersion("22.0.2", 1).pep440,
                   "23.0.0.0rc1", DistroVersion("23.0.0.0rc1", 1).pep440, "23.0.0",
                   DistroVersion("23.0.0", 1).pep440]
        self.assertEqual(ordered, sorted(ordered, key=Version))
        self.assertEqual(len(ordered), len({Version(v) for v in ordered}))

    def test_debian_order_with_dpkg(self) -> None:
        ordered = ["1:15.0.2-0+deb11u1",            # Debian's own python3-designate
                   "1:22.0.1",                       # the plain upstream release
                   DistroVersion("22.0.1", 1).debian, DistroVersion("22.0.1", 2).debian,
                   DistroVersion("22.0.1", 10).debian,
                   "1:22.0.2", DistroVersion("22.0.2", 1).debian,
                   DistroVersion("23.0.0.0rc1", 1).debian, "1:23.0.0",
                   DistroVersion("23.0.0", 1).debian]
        for lower, higher in zip(ordered, ordered[1:]):
            self.assertTrue(dpkg_lt(lower, higher), f"{lower} < {higher}")
        # without the epoch we would sort below Debian's own package
        self.assertTrue(dpkg_lt(DistroVersion("22.0.1", 1).debian_noepoch, "1:15.0.2-0+deb11u1"))

    def test_bad_versions(self) -> None:
        self.assertRaises(ConfigError, DistroVersion, "22.0.1.post1", 1)
        self.assertRaises(ConfigError, DistroVersion, "not-a-version", 1)
        self.assertRaises(ConfigError, DistroVersion, "22.0.1", 0)
