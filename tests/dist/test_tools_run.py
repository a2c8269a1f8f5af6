"""tools/run's set-up leaves the host as it found it: its policy-rc.d is put back.

``ensure_apt`` is taken from the real script and run by bash with ``apt-get`` and
``dpkg-query`` stand-ins on PATH (installing packages for real is not a test), and
with the policy file in a scratch directory instead of /usr/sbin.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import fixtures
from oslotest import base

TOOLS_RUN = Path(__file__).resolve().parents[2] / "tools" / "run"
OURS = "#!/bin/sh\nexit 101\n"

DRIVER = """
set -euo pipefail
log() { :; }
APT_PACKAGES=(some-missing-package)
POLICY_RC_D=$1
eval "$(sed -n '/^ensure_apt() {/,/^}/p' "$2")"
ensure_apt
"""


class PolicyRcTest(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("ensure_apt needs root (or sudo) to write policy-rc.d")
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.policy = self.tmp / "policy-rc.d"
        self.seen = self.tmp / "seen-by-apt"
        bin_dir = self.tmp / "bin"
        bin_dir.mkdir()
        (bin_dir / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")
        # apt-get records what policy-rc.d says while it runs, and fails when asked to
        (bin_dir / "apt-get").write_text(
            f"#!/bin/sh\ncat '{self.policy}' > '{self.seen}'\n"
            'case "$1" in install) exit "${FAKE_APT_STATUS:-0}";; esac\nexit 0\n')
        for tool in bin_dir.iterdir():
            tool.chmod(0o755)
        self.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def run_ensure_apt(self, apt_status: int = 0) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", DRIVER, "driver", str(self.policy), str(TOOLS_RUN)],
                              env={**self.env, "FAKE_APT_STATUS": str(apt_status)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def test_an_existing_policy_is_put_back_byte_for_byte(self) -> None:
        original = "#!/bin/sh\n# the image's own policy\nexit 101\n"
        self.policy.write_text(original)
        self.policy.chmod(0o750)
        done = self.run_ensure_apt()
        self.assertEqual(0, done.returncode, done.stderr)
        self.assertEqual(OURS, self.seen.read_text())  # ours was in place during the installation
        self.assertEqual(original, self.policy.read_text())
        self.assertEqual(0o750, self.policy.stat().st_mode & 0o7777)
        self.assertEqual(["bin", "policy-rc.d", "seen-by-apt"], sorted(p.name for p in self.tmp.iterdir()))

    def test_a_policy_we_placed_is_removed(self) -> None:
        done = self.run_ensure_apt()
        self.assertEqual(0, done.returncode, done.stderr)
        self.assertEqual(OURS, self.seen.read_text())
        self.assertFalse(self.policy.exists())

    def test_a_failed_installation_still_puts_the_policy_back(self) -> None:
        self.policy.write_text("#!/bin/sh\nexit 0\n")
        done = self.run_ensure_apt(apt_status=100)
        self.assertEqual(100, done.returncode, done.stderr)
        self.assertEqual("#!/bin/sh\nexit 0\n", self.policy.read_text())
        self.assertEqual(["bin", "policy-rc.d", "seen-by-apt"], sorted(p.name for p in self.tmp.iterdir()))

    def test_a_policy_that_is_a_link_stays_a_link(self) -> None:
        target = self.tmp / "elsewhere"
        target.write_text("#!/bin/sh\nexit 101\n")
        self.policy.symlink_to(target)
        done = self.run_ensure_apt()
        self.assertEqual(0, done.returncode, done.stderr)
        self.assertTrue(self.policy.is_symlink())
        self.assertEqual(str(target), os.readlink(self.policy))
        self.assertEqual("#!/bin/sh\nexit 101\n", target.read_text())
