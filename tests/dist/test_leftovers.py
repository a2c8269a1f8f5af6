"""Crash leftovers are swept by the next run; commands that change the work tree take the build lock.

A "killed run" is a real process that makes its scratch through designate_dist.scratch
and is then killed with -9, so the leftovers carry a dead owner exactly as a
killed build's do.  Scratch of a live process (this test's own) and of another
host sharing the directory must survive every sweep.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from oslotest import base

from designate_dist import scratch
from designate_dist.distro import load_distro
from designate_dist.pipeline import build_lock
from designate_dist.scratch import HOST
from tests.fixtures.cli import run_cli
from tests.fixtures.distro import DistroFixture, write_file

REPO = Path(__file__).resolve().parents[2]

KILLED_RUN = """
import json, os, sys
from pathlib import Path
from designate_dist import scratch
made = []
for parent, kind, label, is_dir, short in json.loads(sys.argv[1]):
    if is_dir:
        path = scratch.make_dir(Path(parent), kind, label, short=short)
        (path / "half-written").write_bytes(b"x" * 4096)
    else:
        fd, path = scratch.make_file(Path(parent), kind, label, suffix=".tmp" if kind.endswith(".") else "")
        os.write(fd, b"half")
    made.append(str(path))
print(json.dumps(made), flush=True)
sys.stdin.read()  # wait here until killed
"""


def killed_run(places: list[tuple]) -> list[Path]:
    """Make scratch in ``places`` (parent, kind, label, is_dir[, short]) from a process then killed with -9."""
    spec = [(str(place[0]), *place[1:4], place[4] if len(place) > 4 else False) for place in places]
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, json.dumps(spec)],
                            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    made = json.loads(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdin.close()
    proc.stdout.close()
    return [Path(p) for p in made]


class WithOnePatch(base.BaseTestCase):
    """A fixture distro whose series holds one custom patch."""

    def setUp(self) -> None:
        super().setUp()
        self.distro = self.useFixture(DistroFixture())
        custom = self.distro.patches.make(write_file("designate/extra.py", "EXTRA = 1\n"), "Add extra")
        self.distro.add_patch("customs", "0001-extra.patch", custom)
        self.distro.commit("series")


class TestSweep(WithOnePatch):

    def survivors(self, parent: Path) -> list[Path]:
        """A live owner's scratch (this process) and another host's, in ``parent``: never swept."""
        mine = scratch.make_dir(parent, ".partial-", "mine-")
        self.addCleanup(lambda: os.path.isdir(mine) and os.rmdir(mine))
        other = parent / f".partial-pid1@not-{HOST}_x"
        other.mkdir()
        return [mine, other]

    def test_build_sweeps_what_a_killed_build_and_import_and_fetch_left(self) -> None:
        dist, work, cache = self.distro.root / "dist", self.distro.root / ".work", self.distro.cache
        left = killed_run([(dist, ".partial-", "1.0.0.post1-", True),
                           (dist, ".old-", "1.0.0.post1", True),
                           (work, ".import-", "designate-1.0.0-", True),
                           (cache, ".copy-", "", False),
                           (cache, ".download-", "", True),
                           (cache, ".clone-", "", True)])
        self.assertTrue(all(p.exists() for p in left))
        keep = self.survivors(dist)
        outcome = run_cli("--distro", str(self.distro.root), "-q", "build", "--skip-tests")
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertEqual([], [str(p) for p in left if os.path.lexists(p)])
        self.assertTrue(all(p.exists() for p in keep))

    def test_a_noop_prepare_still_sweeps_the_work_directory(self) -> None:
        self.assertEqual(0, run_cli("--distro", str(self.distro.root), "-q", "prepare").code)
        work = self.distro.root / ".work"
        [left] = killed_run([(work, ".import-", "designate-1.0.0-", True)])
        outcome = run_cli("--distro", str(self.distro.root), "prepare")
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertIn("already applied", outcome.stderr)
        self.assertFalse(left.exists())

    def test_publish_sweeps_a_killed_publishers_half_copied_files(self) -> None:
        from designate_dist.publish import publish
        from tests.fixtures.publish import Builds
        builds = Builds(self.distro.base / "builds")
        repo = self.distro.base / "repo"
        left = killed_run([(repo / "pool", ".designate_1.0.0-1_all.deb.", "", False),
                           (repo / "wheels", ".designate-1.0.0.post1-py3-none-any.whl.", "", False)])
        self.assertTrue(all(p.name.endswith(".tmp") and p.exists() for p in left))
        live_fd, live = scratch.make_file(repo / "pool", ".other.deb.", suffix=".tmp")
        os.close(live_fd)
        publish(builds.request(repo, 1))
        self.assertEqual([], [str(p) for p in left if p.exists()])
        self.assertTrue(live.exists())
        self.assertTrue((repo / "wheels" / "designate-1.0.0.post1-py3-none-any.whl").is_file())

    def test_the_deb_stage_sweeps_its_build_and_wheelhouse_scratch(self) -> None:
        from designate_dist.deb import DebRequest, build_debs, lock_key
        from designate_dist.errors import CommandFailed
        from designate_dist.versions import DistroVersion
        base = self.distro.base
        cache = base / "deb-cache"
        builds, wheelhouse = cache / "deb-build", cache / "wheelhouse"
        lock = base / "constraints.txt"
        lock.write_text("pbr==7.1.3\n")
        (wheelhouse / lock_key(lock)).mkdir(parents=True)
        (wheelhouse / lock_key(lock) / "SHA256SUMS").write_text("")  # a wheelhouse made before: reused
        left = killed_run([(builds, "", "1.0.0.post1-", True, True),
                           (wheelhouse, ".partial-", "abc-", True)])
        self.assertNotIn("pid", left[0].name)  # short: the owner is in a file, the path stays short
        self.assertTrue((left[0] / scratch.OWNER_FILE).is_file())
        live = scratch.make_dir(builds, "", "1.0.0.post1-", short=True)
        self.addCleanup(shutil.rmtree, live, True)
        (builds / "1.0.0.post1-unknown-owner").mkdir()
        (builds / "0.9.0.post1-failed.log").write_text("the log of an earlier failed build stays\n")
        # packaging that dpkg-buildpackage refuses at once: the stage's sweeps ran before it
        packaging = base / "packaging"
        packaging.mkdir()
        (packaging / "rules").write_text("#!/usr/bin/make -f\n%:\n\tfalse\n")
        (packaging / "control").write_text("Source: designate\nMaintainer: x <x@example.org>\n")
        wheel = base / "designate-1.0.0.post1-py3-none-any.whl"
        wheel.write_bytes(b"not read")
        request = DebRequest(packaging_dir=packaging, work_tree=self.distro.upstream_tree, wheels=(wheel,),
                             lock_file=lock, version=DistroVersion("1.0.0", 1),
                             maintainer="Distro Maintainer <distro@example.org>",
                             source_date_epoch=1_700_001_000, output_dir=base / "out", cache_dir=cache)
        self.assertRaises(CommandFailed, build_debs, request)
        self.assertEqual([], [str(p) for p in left if p.exists()])
        self.assertTrue(live.is_dir() and (builds / "1.0.0.post1-unknown-owner").is_dir())
        self.assertEqual("the log of an earlier failed build stays\n",
                         (builds / "0.9.0.post1-failed.log").read_text())
        self.assertEqual(sorted(["0.9.0.post1-failed.log", "1.0.0.post1-failed.log", "1.0.0.post1-unknown-owner",
                                 live.name]),
                         sorted(p.name for p in builds.iterdir()))


class TestBuildLock(WithOnePatch):
    """prepare, quilt and patches change the work tree (and patches/ or the series): never during a build."""

    def assert_locked(self, *argv: str) -> None:
        with build_lock(load_distro(self.distro.root)):
            outcome = run_cli("--distro", str(self.distro.root), *argv)
        self.assertEqual(1, outcome.code, outcome.stderr)
        self.assertEqual(1, len(outcome.error_lines), outcome.stderr)
        self.assertRegex(outcome.error_lines[0],
                         r"^error: another designate-dist build is running in .* \(pid \d+\) \(wait for it")

    def test_prepare_waits_for_no_one(self) -> None:
        self.assert_locked("prepare")
        self.assertFalse(self.distro.work_tree.exists())

    def test_quilt(self) -> None:
        before = sorted(p.name for p in (self.distro.root / "patches").iterdir())
        self.assert_locked("quilt")
        self.assertEqual(before, sorted(p.name for p in (self.distro.root / "patches").iterdir()))

    def test_patches_import_and_export(self) -> None:
        self.assert_locked("patches", "import")
        self.assertFalse(self.distro.work_tree.exists())
        self.assertEqual(0, run_cli("--distro", str(self.distro.root), "-q", "patches", "import").code)
        series = (self.distro.root / "customs" / "series").read_bytes()
        self.assert_locked("patches", "export")
        self.assertEqual(series, (self.distro.root / "customs" / "series").read_bytes())

    def test_patches_add(self) -> None:
        self.assertEqual(0, run_cli("--distro", str(self.distro.root), "-q", "prepare").code)
        tree = self.distro.work_tree
        (tree / "designate" / "mine.py").write_text("MINE = 1\n")
        from tests.fixtures.distro import git
        git(tree, "add", "-A")
        git(tree, "commit", "-q", "-m", "Add mine")
        series = (self.distro.root / "customs" / "series").read_bytes()
        self.assert_locked("patches", "add")
        self.assertEqual(series, (self.distro.root / "customs" / "series").read_bytes())
        self.assertEqual(0, run_cli("--distro", str(self.distro.root), "-q", "patches", "add").code)
        self.assertNotEqual(series, (self.distro.root / "customs" / "series").read_bytes())

    def test_the_lock_is_free_again_afterwards(self) -> None:
        self.assert_locked("prepare")
        self.assertEqual(0, run_cli("--distro", str(self.distro.root), "-q", "prepare").code)
        self.assertEqual(0, run_cli("--distro", str(self.distro.root), "-q", "quilt").code)
