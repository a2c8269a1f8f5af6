"""quilt: the applied series as a quilt series that real quilt can push."""
from __future__ import annotations

import shutil
import subprocess

from oslotest import base

from tests.fixtures.cli import run_cli
from tests.fixtures.distro import DATA, DistroFixture, write_file


class TestQuiltExport(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.distro = self.useFixture(DistroFixture())
        text = self.distro.patches.make(write_file("designate/extra.py", "EXTRA = 1\n"),
                                        "Add extra module", "Upstream: 1.1.0 \"Add extra module\"")
        self.distro.add_patch("cherry-pick", "0001-extra.upstream", text)
        self.distro.add_patch("customs", "0001-teapot.patch",
                              (DATA / "patches" / "dep3-teapot.patch").read_text())

    def test_quilt_push_gives_the_patched_tree(self) -> None:
        outcome = run_cli("--distro", str(self.distro.root), "-q", "quilt")
        self.assertEqual(0, outcome.code, outcome.stderr)
        patches = self.distro.root / "patches"
        series = [line for line in (patches / "series").read_text().splitlines()
                  if line and not line.startswith("#")]
        self.assertEqual(["0001-cherry-pick-extra.patch", "0002-customs-teapot.patch"], series)
        # real quilt on the pristine upstream tree
        pristine = self.distro.base / "pristine"
        shutil.copytree(self.distro.base / "upstream-clean", pristine)
        env = {"QUILT_PATCHES": str(patches), "PATH": "/usr/bin:/bin", "HOME": str(self.distro.base)}
        proc = subprocess.run(["quilt", "push", "-a"], cwd=pristine, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(0, proc.returncode, proc.stdout)
        work = self.distro.work_tree
        for rel in ("designate/extra.py", "designate/api/middleware.py"):
            self.assertEqual((work / rel).read_text(), (pristine / rel).read_text())

    def test_export_is_stable(self) -> None:
        self.assertEqual(0, run_cli("--distro", str(self.distro.root), "-q", "quilt").code)
        first = {p.name: p.read_bytes() for p in (self.distro.root / "patches").iterdir()}
        shutil.rmtree(self.distro.root / ".work")
        self.assertEqual(0, run_cli("--distro", str(self.distro.root), "-q", "quilt").code)
        second = {p.name: p.read_bytes() for p in (self.distro.root / "patches").iterdir()}
        self.assertEqual(first, second)
