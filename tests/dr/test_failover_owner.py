"""``dr failover`` keeps pools.yaml's owner, group and mode, on the file and its backup.

Designate reads pools.yaml as its own user, often from a 0600/0640 file: a failover run
as root must not hand the file to root.  Real servers: a region 1 PowerDNS secondary
fed by a region 1 primary; region 2 (lost) is only in pools.yaml.
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import fixtures
from oslotest import base

from tests.fixtures import dns
from tests.fixtures.cli import run_cli
from tests.fixtures.designate_objects import designate_ready, make_backend, zone_object

UID, GID = 4242, 4343  # not root's, and no user or group of this machine needs to have them
ZONE = "owned.example."
# the system's temp dir, read at import: oslotest nests each test's temp files in a directory
# of its own (0700, root's), which the other user of the last test could not enter
SYSTEM_TMP = tempfile.gettempdir()


class TestFailoverKeepsOwner(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("needs root: the file belongs to another user")
        designate_ready()
        regions = self.useFixture(dns.Regions(2, secondaries=("pdns",)))
        r1, r2 = regions.primaries
        r1.add_zone(ZONE, 1_700_000_000)
        secondary = regions.pdns
        options = {"host": secondary.address, "port": str(secondary.port), **secondary.target_options(),
                   "region": "region1", "masters_region2": r2.master}
        make_backend("pdns4_dr", options, [r1.master]).create_zone(
            None, zone_object(ZONE, 1_700_000_000))
        lost = {"host": "127.0.0.9", "port": "5399", "api_endpoint": "http://127.0.0.9:5398",
                "api_token": "x", "region": "region2", "masters_region1": r1.master}
        lines = ["- name: default", "  nameservers:", f"  - host: {secondary.address}",
                 f"    port: {secondary.port}", "  targets:"]
        for opts, master in ((options, r1.master), (lost, r2.master)):
            host, port = master.split(":")
            lines += ["  - type: pdns4_dr", "    masters:", f"    - host: {host}", f"      port: {port}",
                      "    options:"] + [f"      {k}: '{v}'" for k, v in opts.items()]
        self.pools = Path(self.useFixture(fixtures.TempDir(rootdir=SYSTEM_TMP)).path) / "pools.yaml"
        self.pools.write_text("\n".join(lines) + "\n")

    def assertOwned(self, path: Path, mode: int) -> None:
        st = path.stat()
        self.assertEqual((UID, GID, mode), (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), path)

    def test_owner_group_and_mode_kept(self) -> None:
        os.chown(self.pools, UID, GID)
        self.pools.chmod(0o640)
        original = self.pools.read_bytes()

        outcome = run_cli("dr", "failover", "--lost", "region2", "--pools", str(self.pools), "--wait", "10")

        self.assertEqual(0, outcome.code, outcome.stdout + outcome.stderr)
        self.assertNotEqual(original, self.pools.read_bytes())
        [backup] = self.pools.parent.glob("pools.yaml.*.bak")
        self.assertEqual(original, backup.read_bytes())
        self.assertOwned(self.pools, 0o640)
        self.assertOwned(backup, 0o640)
        self.assertEqual([], list(self.pools.parent.glob(".pools.yaml.*")))  # no temp files left

    def test_owner_that_cannot_be_kept_writes_nothing(self) -> None:
        # a user who may write pools.yaml but not give a new file its owner: refused, nothing written
        os.chown(self.pools, GID, GID)
        self.pools.chmod(0o666)
        self.pools.parent.chmod(0o777)
        original = self.pools.read_bytes()

        def as_other_user() -> None:
            os.setgroups([])
            os.setgid(UID)
            os.setuid(UID)
        result = subprocess.run([sys.executable, "-m", "designate_dist", "dr", "failover", "--lost", "region2",
                                 "--pools", str(self.pools), "--wait", "10"], preexec_fn=as_other_user,
                                capture_output=True, text=True, cwd=Path(__file__).parents[2])

        self.assertEqual(1, result.returncode, result.stdout + result.stderr)
        self.assertRegex(result.stderr, rf"^error: cannot keep owner {GID}:{GID} \(run as root or as the file's "
                                        rf"owner\): {self.pools}\.\d+T\d+Z\.bak\n$")
        self.assertEqual(original, self.pools.read_bytes())
        self.assertEqual([self.pools], list(self.pools.parent.iterdir()))
