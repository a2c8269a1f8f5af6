"""A full disk is reported as a full disk (exit 1), never as a bad archive (exit 5).

The real cases mount a small tmpfs (root with CAP_SYS_ADMIN, as in the CI
container) and fill it up; where mounting is not allowed they are skipped, and
the error mapping is still checked with a real ENOSPC from ``/dev/full``.
"""
from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import fixtures
from oslotest import base

from designate_dist.errors import DiskFull, os_failure
from tests.fixtures.cli import run_cli
from tests.fixtures.distro import DistroFixture


def mount_small_tmpfs(test: base.BaseTestCase, where: Path, size_kb: int) -> None:
    where.mkdir(parents=True)
    if os.geteuid() != 0:
        test.skipTest("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs", str(where)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        test.skipTest(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    test.addCleanup(subprocess.run, ["umount", "-l", str(where)], check=False)


def fill(where: Path, leave_kb: int) -> None:
    """Fill the file system of ``where`` until about ``leave_kb`` KiB (0: nothing) are free."""
    stat = os.statvfs(where)
    free = stat.f_bavail * stat.f_frsize
    with open(where / "filler", "wb", buffering=0) as handle:
        handle.write(b"\0" * max(0, free - leave_kb * 1024))
        if leave_kb == 0:
            try:
                while True:
                    handle.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc


class DiskFullTest(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.distro = self.useFixture(DistroFixture())
        self.small = self.distro.base / "small"

    def test_unpacking_onto_a_full_disk(self) -> None:
        mount_small_tmpfs(self, self.small, 1024)
        fill(self.small, 24)  # room for the lock file and a few files of the tree, not for all of it
        outcome = run_cli("--distro", str(self.distro.root), "--work-dir", str(self.small), "-q", "prepare")
        self.assertEqual(1, outcome.code, outcome.stderr)
        self.assertEqual(1, len(outcome.error_lines), outcome.stderr)
        line = outcome.error_lines[0]
        self.assertNotIn("not a readable tar archive", line)
        self.assertTrue(line.startswith(f"error: unpack designate-1.0.0.tar.gz: the disk is full ({self.small}/"),
                        line)
        self.assertIn("No space left on device (free some space and run again", line)
        # nothing half-unpacked is left on the small disk
        self.assertEqual(["filler"], sorted(p.name for p in self.small.iterdir() if p.name != "build.lock"))

    def test_copying_into_a_full_cache(self) -> None:
        mount_small_tmpfs(self, self.small, 1024)
        self.useFixture(fixtures.EnvironmentVariable("DESIGNATE_DIST_CACHE", str(self.small)))
        (self.small / "archives" / "sha256").mkdir(parents=True)
        fill(self.small, 0)
        outcome = run_cli("--distro", str(self.distro.root), "fetch")
        self.assertEqual(1, outcome.code, outcome.stderr)
        [line] = outcome.error_lines
        self.assertTrue(line.startswith(f"error: copy {self.distro.archive} into the cache: the disk is full ("),
                        line)
        self.assertEqual([], [p.name for p in self.small.rglob(".copy-*")])
        self.assertEqual([], list(self.small.rglob("*.tar.gz")))


class ErrorMappingTest(base.BaseTestCase):
    """os_failure() with OSErrors the system really raised."""

    def test_enospc_from_dev_full(self) -> None:
        try:
            with open("/dev/full", "wb") as handle:
                handle.write(b"x" * 8192)
                handle.flush()
        except OSError as exc:
            self.assertEqual(errno.ENOSPC, exc.errno)
            error = os_failure(exc, "write the state")
        else:
            self.skipTest("/dev/full did not refuse the write")
        self.assertIsInstance(error, DiskFull)
        self.assertEqual(1, error.exit_code)
        self.assertTrue(str(error).startswith("write the state: the disk is full"), str(error))

    def test_a_full_disk_anywhere_else_is_said_so_by_the_cli(self) -> None:
        distro = self.useFixture(DistroFixture())
        small = distro.base / "small"
        mount_small_tmpfs(self, small, 1024)
        fill(small, 0)
        # the lock file cannot even be written: the CLI's own net says what happened
        outcome = run_cli("--distro", str(distro.root), "--work-dir", str(small / "work"), "-q", "prepare")
        self.assertEqual(1, outcome.code, outcome.stderr)
        [line] = outcome.error_lines
        self.assertTrue(line.startswith("error: the disk is full"), line)
        self.assertIn("(free some space and run again", line)

    def test_other_errors_keep_their_own_message(self) -> None:
        try:
            open("/nonexistent-dir/x", "wb")
        except OSError as exc:
            error = os_failure(exc, "write the state")
        self.assertNotIsInstance(error, DiskFull)
        self.assertEqual("write the state: No such file or directory (/nonexistent-dir/x)", str(error))
        self.assertEqual(1, error.exit_code)
