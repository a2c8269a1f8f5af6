"""Symbolic links made by patches never carry a file of the build host into a package.

Patches are real ``git format-patch`` output of commits that create, retarget or
rename links; ``prepare`` and ``build`` run through the CLI as a developer runs them.
"""
from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import fixtures
from oslotest import base

from designate_dist.deb import DebRequest, Wheelhouse, prepare_source
from designate_dist.errors import UnsafeTree
from designate_dist.versions import DistroVersion
from designate_dist.wheel import WheelRequest, build_wheel
from tests.fixtures.cli import run_cli
from tests.fixtures.distro import DistroFixture, copy_upstream, git, write_file

REPO = Path(__file__).resolve().parents[2]


def link(path: str, target: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        where = root / path
        where.parent.mkdir(parents=True, exist_ok=True)
        if where.is_symlink():
            where.unlink()
        os.symlink(target, where)
    return edit


class TestPatchesMakingLinks(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.distro = self.useFixture(DistroFixture())
        self.patches = self.distro.patches
        good = self.patches.make(write_file("designate/extra.py", "EXTRA = 1\n"), "Add extra")
        self.distro.add_patch("customs", "0001-extra.patch", good)

    def add(self, name: str, edit: Callable[[Path], None], subject: str) -> str:
        text = self.patches.make(edit, subject)
        self.assertIn("120000", text)  # a real git symlink patch
        self.distro.add_patch("customs", name, text)
        return text

    def prepare(self):
        self.distro.commit("series")
        return run_cli("--distro", str(self.distro.root), "-q", "prepare")

    def assert_refused(self, outcome, patch: str, path: str, target: str, last: str) -> None:
        self.assertEqual(3, outcome.code, outcome.stderr)
        self.assertEqual(1, len(outcome.error_lines), outcome.stderr)
        line = outcome.error_lines[0]
        self.assertTrue(line.startswith(
            f"error: customs/series: {patch} makes {path} a symbolic link to {target!r}, outside the tree "
            "(it would put a file of the build host into the packages) "
            f"(work tree {self.distro.work_tree} left at "), line)
        self.assertTrue(line.endswith(f"({last}))"), line)
        tree = self.distro.work_tree
        self.assertFalse(os.path.lexists(tree / path))
        self.assertEqual("", git(tree, "status", "--porcelain", "--untracked-files=all"))

    def test_absolute_link_to_a_host_file(self) -> None:
        self.add("0002-leak.patch", link("designate/leak.txt", "/etc/hostname"), "Leak")
        outcome = self.prepare()
        self.assert_refused(outcome, "0002-leak.patch", "designate/leak.txt", "/etc/hostname",
                            "customs/0001-extra.patch")
        self.assertEqual("Add extra", git(self.distro.work_tree, "log", "-1", "--format=%s").strip())

    def test_relative_link_climbing_out(self) -> None:
        self.add("0002-leak.patch", link("designate/api/leak.txt", "../../../../../../../etc/hostname"),
                 "Leak")
        outcome = self.prepare()
        self.assert_refused(outcome, "0002-leak.patch", "designate/api/leak.txt",
                            "../../../../../../../etc/hostname", "customs/0001-extra.patch")

    def test_link_into_the_git_directory(self) -> None:
        # inside the tree, but .git/config can hold a remote's credentials: never into a package
        self.add("0002-cfg.patch", link("designate/cfg.txt", "../.git/config"), "Config")
        outcome = self.prepare()
        self.assert_refused(outcome, "0002-cfg.patch", "designate/cfg.txt", "../.git/config",
                            "customs/0001-extra.patch")

    def test_link_through_an_earlier_patchs_link(self) -> None:
        # each link looks harmless alone: up -> .. is the top of the tree; up/.. is outside it
        self.add("0002-up.patch", link("designate/up", ".."), "Up")
        self.add("0003-out.patch", link("designate/out", "up/.."), "Out")
        outcome = self.prepare()
        self.assert_refused(outcome, "0003-out.patch", "designate/out", "up/..", "customs/0002-up.patch")
        self.assertEqual("Up", git(self.distro.work_tree, "log", "-1", "--format=%s").strip())

    def test_retargeting_an_in_tree_link(self) -> None:
        self.add("0002-readme.patch", link("designate/readme", "../README.rst"), "Readme link")
        text = self.add("0003-retarget.patch", link("designate/readme", "/etc/passwd"), "Retarget")
        self.assertNotIn("new file mode", text)
        outcome = self.prepare()
        self.assertEqual(3, outcome.code, outcome.stderr)
        self.assertIn("customs/series: 0003-retarget.patch makes designate/readme a symbolic link to "
                      "'/etc/passwd', outside the tree", outcome.error_lines[0])
        tree = self.distro.work_tree
        self.assertEqual("../README.rst", os.readlink(tree / "designate" / "readme"))

    def test_moving_an_in_tree_link_out_of_reach(self) -> None:
        self.add("0002-readme.patch", link("designate/api/readme", "../../README.rst"), "Readme link")
        git(self.patches.repo, "mv", "designate/api/readme", "readme")
        git(self.patches.repo, "commit", "-q", "-m", "Move the link up")
        text = git(self.patches.repo, "format-patch", "-1", "-M", "--stdout", "--no-signature", "HEAD")
        self.assertIn("rename from designate/api/readme", text)
        self.assertNotIn("120000", text)
        self.distro.add_patch("customs", "0003-move.patch", text)
        outcome = self.prepare()
        self.assertEqual(3, outcome.code, outcome.stderr)
        self.assertIn("customs/series: 0003-move.patch makes readme a symbolic link to "
                      "'../../README.rst', outside the tree", outcome.error_lines[0])

    def test_links_inside_the_tree_are_fine_and_build(self) -> None:
        self.add("0002-readme.patch", link("designate/readme.txt", "../README.rst"), "Readme link")
        outcome = self.prepare()
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertEqual("../README.rst", os.readlink(self.distro.work_tree / "designate" / "readme.txt"))
        built = run_cli("--distro", str(self.distro.root), "-q", "build", "--skip-tests")
        self.assertEqual(0, built.code, built.stderr)

    def test_build_refuses_a_leaving_link_that_got_into_the_tree_another_way(self) -> None:
        self.assertEqual(0, self.prepare().code)
        # an ignored file: prepare keeps it, and setuptools would still see it
        os.symlink("/etc/hostname", self.distro.work_tree / "designate" / "leak.pyc")
        outcome = run_cli("--distro", str(self.distro.root), "-q", "build", "--skip-tests")
        self.assertEqual(1, outcome.code, outcome.stderr)
        self.assertEqual(
            [f"error: the wheel of designate-1.0.0: {self.distro.work_tree}/designate/leak.pyc is a symbolic "
             f"link to '/etc/hostname', outside {self.distro.work_tree}; it would put a file of this machine "
             "into the package (remove the link, or make it a regular file)"], outcome.error_lines)
        self.assertFalse((self.distro.root / "dist" / "1.0.0.post1").exists())


class TestArtifactsNeverFollowLinksOut(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.base = Path(self.useFixture(fixtures.TempDir()).path)
        self.tree = copy_upstream(self.base / "upstream")
        (self.tree / "PKG-INFO").unlink()
        shutil.rmtree(self.tree / "designate.egg-info")

    def test_wheel_of_a_tree_with_a_leaving_link_is_refused(self) -> None:
        os.symlink("/etc/hostname", self.tree / "designate" / "leak.txt")
        out = self.base / "wheels"
        with self.assertRaises(UnsafeTree) as caught:
            build_wheel(WheelRequest(self.tree, "1.0.0.post1", 1_700_001_000, out))
        self.assertIn("designate/leak.txt is a symbolic link to '/etc/hostname'", str(caught.exception))
        self.assertEqual([], list(out.glob("*.whl")) if out.exists() else [])

    def test_wheel_of_a_tree_with_an_inside_link_builds(self) -> None:
        os.symlink("../README.rst", self.tree / "designate" / "readme.txt")
        wheel = build_wheel(WheelRequest(self.tree, "1.0.0.post1", 1_700_001_000, self.base / "wheels"))
        with zipfile.ZipFile(wheel) as whl:
            self.assertIn("designate/__init__.py", whl.namelist())

    def deb_request(self) -> DebRequest:
        wheel = self.base / "designate-1.0.0.post1-py3-none-any.whl"
        wheel.write_bytes(b"not read here")
        lock = self.base / "constraints.txt"
        lock.write_text("pbr==7.1.3\n")
        packaging = self.base / "debian"
        shutil.copytree(REPO / "debian", packaging, ignore=shutil.ignore_patterns("changelog"))
        return DebRequest(packaging_dir=packaging, work_tree=self.tree, wheels=(wheel,), lock_file=lock,
                          version=DistroVersion("1.0.0", 1),
                          maintainer="Distro Maintainer <distro@example.org>",
                          source_date_epoch=1_700_001_000, output_dir=self.base / "out",
                          cache_dir=self.base / "cache")

    def test_deb_refuses_a_config_link_out_of_etc_designate(self) -> None:
        etc = self.tree / "etc" / "designate"
        self.assertTrue(etc.is_dir())
        os.symlink("/etc/hostname", etc / "hostname.conf")
        scratch = self.base / "scratch"
        scratch.mkdir()
        with self.assertRaises(UnsafeTree) as caught:
            prepare_source(self.deb_request(), Wheelhouse(self.base / "wh", (), reused=True), scratch)
        self.assertIn("the deb's etc/designate: ", str(caught.exception))
        self.assertIn("hostname.conf is a symbolic link to '/etc/hostname'", str(caught.exception))
        self.assertEqual([], [p for p in scratch.rglob("hostname.conf")])

    def test_deb_keeps_a_link_inside_etc_designate_as_a_link(self) -> None:
        etc = self.tree / "etc" / "designate"
        first = sorted(p.name for p in etc.iterdir() if p.is_file())[0]
        os.symlink(first, etc / "alias.conf")
        scratch = self.base / "scratch"
        scratch.mkdir()
        source = prepare_source(self.deb_request(), Wheelhouse(self.base / "wh", (), reused=True), scratch)
        copied = source / "etc" / "designate" / "alias.conf"
        self.assertTrue(copied.is_symlink())
        self.assertEqual(first, os.readlink(copied))
