"""``patches add``: a change committed in the prepared work tree becomes the next numbered patch.

The developer's short way (no patch-queue branch): ``prepare``, edit and commit
in ``.work/designate-<version>``, ``patches add``.  Real git, a real series
(the rebase fixture's, customs/ up to 0008), and ``prepare`` applying the
result again from the files.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import fixtures
from oslotest import base

from designate_dist.series import next_patch_name, read_series
from tests.fixtures.cli import run_cli
from tests.fixtures.distro import git, write_file
from tests.fixtures.rebase import RebaseFixture


def files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for d in ("customs", "cherry-pick") for p in sorted((root / d).iterdir())}


class TestPatchesAdd(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.fx = self.useFixture(RebaseFixture(with_conflict=False))
        self.root = self.fx.root
        self.tree = self.fx.work_tree

    def cli(self, *args: str):
        return run_cli("--distro", str(self.root), *args)

    def prepare(self) -> None:
        outcome = self.cli("-q", "prepare")
        self.assertEqual(0, outcome.code, outcome.stderr)

    def commit(self, path: str, text: str, message: str) -> str:
        write_file(path, text)(self.tree)
        git(self.tree, "add", path)
        git(self.tree, "commit", "-q", "-m", message)
        return git(self.tree, "rev-parse", "HEAD").strip()

    def test_new_commits_become_the_next_customs_patches_and_apply_again(self) -> None:
        self.prepare()
        first = self.commit("designate/api/coffee.py", "STATUS = 418\n", "Brew coffee: the teapot's sibling")
        second = self.commit("designate/api/tea.py", "STATUS = 200\n", "api: tea\n\nWith a body.")
        developer_tree = git(self.tree, "rev-parse", "HEAD^{tree}").strip()
        outcome = self.cli("patches", "add")
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertEqual([f"added    customs/0009-brew-coffee-the-teapot-s-sibling.patch ({first[:12]})",
                          f"added    customs/0010-api-tea.patch ({second[:12]})"],
                         outcome.stdout.splitlines())
        series = (self.root / "customs" / "series").read_text()
        self.assertTrue(series.startswith("# ours\n"))
        self.assertTrue(series.endswith("0008-requirements.patch\n"
                                        "0009-brew-coffee-the-teapot-s-sibling.patch\n0010-api-tea.patch\n"))
        patch = (self.root / "customs" / "0010-api-tea.patch").read_text()
        self.assertIn("Subject: [PATCH] api: tea\n\nWith a body.\n", patch)
        self.assertIn("+STATUS = 200", patch)
        self.assertEqual("custom", read_series(self.root).patches[-1].kind)
        # prepare applies the series again from the files: the developer's tree, the build's commits
        self.prepare()
        self.assertEqual(developer_tree, git(self.tree, "rev-parse", "HEAD^{tree}").strip())
        self.assertNotEqual(second, git(self.tree, "rev-parse", "HEAD").strip())
        self.assertEqual(len(read_series(self.root)),
                         len(git(self.tree, "rev-list", f"upstream/{self.fx.version}..HEAD").split()))

    def test_one_named_commit_into_cherry_pick(self) -> None:
        self.prepare()
        self.commit("designate/api/coffee.py", "STATUS = 418\n", "Brew coffee")
        self.commit("designate/api/tea.py", "STATUS = 200\n", "Backport: tea")
        outcome = self.cli("patches", "add", "HEAD", "--series", "cherry-pick")
        self.assertEqual(0, outcome.code, outcome.stderr)
        [line] = outcome.stdout.splitlines()
        self.assertTrue(line.startswith("added    cherry-pick/0004-backport-tea.patch ("), line)
        self.assertTrue((self.root / "cherry-pick" / "series").read_text().endswith(
            "0003-zone-serial.upstream\n0004-backport-tea.patch\n"))
        self.assertEqual("backport", [p for p in read_series(self.root)
                                      if p.name == "0004-backport-tea.patch"][0].kind)

    def test_refusals_write_nothing(self) -> None:
        before = files(self.root)
        outcome = self.cli("patches", "add")
        self.assertEqual(1, outcome.code)
        self.assertEqual([f"error: no work tree at {self.tree} (run `designate-dist prepare`, commit "
                          "your change there, then add it)"], outcome.error_lines)
        self.prepare()
        outcome = self.cli("patches", "add")
        self.assertEqual([f"error: no commits above the applied series in {self.tree} (commit your "
                          "change there (git commit) first)"], outcome.error_lines)
        upstream = git(self.tree, "rev-parse", f"upstream/{self.fx.version}").strip()
        outcome = self.cli("patches", "add", upstream[:12])
        self.assertEqual(1, outcome.code)
        self.assertTrue(outcome.error_lines[0].startswith(
            f"error: {upstream[:12]} is not a commit above the applied series in {self.tree}"))
        self.commit("designate/api/coffee.py", "STATUS = 418\n", "Brew coffee")
        (self.tree / "designate/api/coffee.py").write_text("STATUS = 419\n")
        outcome = self.cli("patches", "add")
        self.assertEqual([f"error: {self.tree} has uncommitted changes: designate/api/coffee.py "
                          "(commit them first (git commit), then add the commit)"], outcome.error_lines)
        self.assertEqual(before, files(self.root))
        outcome = self.cli("patches", "export", "HEAD")
        self.assertEqual(2, outcome.code)


class TestNextPatchName(base.BaseTestCase):
    def test_numbers_and_slugs(self) -> None:
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.assertEqual("0001-api-json-errors.patch", next_patch_name(tmp, "api: JSON errors!"))
        for name in ("0001-a.patch", "0007-b.upstream", "series", "README"):
            (tmp / name).write_text("")
        self.assertEqual("0008-change.upstream", next_patch_name(tmp, "???", suffix=".upstream"))
        self.assertEqual("0010-x.patch", next_patch_name(tmp, "x", taken={"0009-y.patch"}))
