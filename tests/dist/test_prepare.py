"""prepare: import upstream into a git work tree and apply the series, as a developer runs it."""
from __future__ import annotations

import subprocess

from oslotest import base

from designate_dist.gitrepo import WorkTree
from tests.fixtures.cli import run_cli
from tests.fixtures.distro import DATA, DistroFixture, git, replace_in, write_file

UPSTREAM_FIX = """Fix zone name validation message

The message now names the offending zone.

Upstream: 1.1.0 "Fix zone name validation message"
Change-Id: I0123456789abcdef0123456789abcdef01234567
"""


class TestPrepare(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.distro = self.useFixture(DistroFixture())
        self.patches = self.distro.patches

    def prepare(self, *extra: str):
        return run_cli("--distro", str(self.distro.root), "-q", "prepare", *extra)

    def add_standard_series(self) -> None:
        upstream = self.patches.make(
            replace_in("designate/api/middleware.py", '"zone name must end with a dot"',
                       '"zone name %s must end with a dot" % name'),
            UPSTREAM_FIX.split("\n", 1)[0], UPSTREAM_FIX.split("\n", 2)[2],
            author=("Upstream Dev", "dev@openstack.example"), date=1_690_000_000)
        self.distro.add_patch("cherry-pick", "0001-fix-zone-message.upstream", upstream)
        custom = self.patches.make(
            write_file("designate/api/json_errors.py", "JSON = 'application/json'\n"),
            "Add JSON error content type")
        self.distro.add_patch("customs", "0001-json-errors.patch", custom)
        plain = (DATA / "patches" / "dep3-teapot.patch").read_text()  # a quilt/DEP-3 style diff
        self.distro.add_patch("customs", "0002-teapot.patch", plain)
        self.distro.commit("series")

    def test_prepare_imports_and_applies_one_commit_per_patch(self) -> None:
        self.add_standard_series()
        outcome = self.prepare()
        self.assertEqual(0, outcome.code, outcome.stderr)
        tree = self.distro.work_tree
        self.assertEqual(str(tree), outcome.stdout.strip())
        log = git(tree, "log", "--format=%an <%ae>|%at|%s", "upstream/1.0.0..HEAD").splitlines()
        self.assertEqual([
            "Plain Person <plain@example.org>|1700000000|Say 418",
            "Test Author <author@example.org>|1700000500|Add JSON error content type",
            "Upstream Dev <dev@openstack.example>|1690000000|Fix zone name validation message",
        ], log)
        message = git(tree, "log", "-1", "--format=%B", "HEAD~2")
        self.assertIn('Upstream: 1.1.0 "Fix zone name validation message"', message)
        self.assertIn("Change-Id: I0123456789abcdef0123456789abcdef01234567", message)
        self.assertIn("418", (tree / "designate/api/middleware.py").read_text())
        # pbr metadata from the sdist is gone, upstream's ignored files are kept
        self.assertFalse((tree / "PKG-INFO").exists())
        self.assertFalse((tree / "designate.egg-info").exists())
        self.assertIn("ChangeLog", git(tree, "ls-files"))
        self.assertEqual([], WorkTree(tree).dirty_paths())

    def test_same_inputs_give_same_commits(self) -> None:
        self.add_standard_series()
        self.assertEqual(0, self.prepare().code)
        first = git(self.distro.work_tree, "rev-parse", "HEAD")
        subprocess.run(["rm", "-rf", str(self.distro.root / ".work")], check=True)
        self.assertEqual(0, self.prepare().code)
        self.assertEqual(first, git(self.distro.work_tree, "rev-parse", "HEAD"))

    def test_prepare_twice_reuses_the_tree(self) -> None:
        self.add_standard_series()
        self.assertEqual(0, self.prepare().code)
        head = git(self.distro.work_tree, "rev-parse", "HEAD")
        outcome = run_cli("--distro", str(self.distro.root), "prepare")
        self.assertEqual(0, outcome.code)
        self.assertIn("already applied", outcome.stderr)
        self.assertEqual(head, git(self.distro.work_tree, "rev-parse", "HEAD"))

    def test_patch_that_does_not_apply_names_series_patch_file_and_hunk(self) -> None:
        self.add_standard_series()
        broken = self.patches.make(
            replace_in("designate/api/middleware.py", "400: \"Bad Request\",",
                       "400: \"Bad Request (really)\","),
            "Reword 400", keep=False)
        broken = broken.replace('-        400: "Bad Request",', '-        400: "Bad Requesting",')
        self.distro.add_patch("customs", "0003-reword.patch", broken)
        outcome = self.prepare()
        self.assertEqual(3, outcome.code)
        self.assertEqual(1, len(outcome.error_lines), outcome.stderr)
        line = outcome.error_lines[0]
        self.assertIn("customs/series: 0003-reword.patch does not apply: "
                      "designate/api/middleware.py, hunk #1 (@@ -14,7 +14,7 @@)", line)
        self.assertIn(f"work tree {self.distro.work_tree} left at", line)
        tree = self.distro.work_tree
        self.assertEqual("Say 418", git(tree, "log", "-1", "--format=%s").strip())
        self.assertEqual([], WorkTree(tree).dirty_paths())

    def test_upstream_patch_without_provenance_is_rejected_before_anything(self) -> None:
        text = self.patches.make(write_file("designate/new.py", "X = 1\n"), "Add new module")
        self.distro.add_patch("cherry-pick", "0001-new.upstream", text)
        outcome = self.prepare()
        self.assertEqual(1, outcome.code)
        self.assertEqual(["error: cherry-pick/0001-new.upstream: no upstream provenance: add an "
                          "'Upstream:' line naming the upstream release and commit or Change-Id"],
                         outcome.error_lines)
        self.assertFalse(self.distro.work_tree.exists())

    def test_series_entry_without_file(self) -> None:
        (self.distro.root / "customs" / "series").write_text("# ours\n0001-gone.patch\n")
        outcome = self.prepare()
        self.assertEqual(1, outcome.code)
        self.assertEqual(["error: customs/series: line 2: 0001-gone.patch: no such file in customs/"],
                         outcome.error_lines)

    def test_file_not_in_series(self) -> None:
        text = self.patches.make(write_file("designate/x.py", "X = 1\n"), "Add x")
        self.distro.add_patch("customs", "0001-x.patch", text, listed=False)
        outcome = self.prepare()
        self.assertEqual(1, outcome.code)
        self.assertIn("error: customs/0001-x.patch is not listed in customs/series", outcome.stderr)

    def test_malformed_series_entry(self) -> None:
        (self.distro.root / "customs" / "series").write_text("0001-x.patch -p1\n")
        outcome = self.prepare()
        self.assertEqual(1, outcome.code)
        self.assertIn("error: customs/series: line 1: malformed entry '0001-x.patch -p1'",
                      outcome.stderr)

    def test_wrong_suffix_for_directory(self) -> None:
        text = self.patches.make(write_file("designate/x.py", "X = 1\n"), "Add x")
        self.distro.add_patch("customs", "0001-x.upstream", text)
        outcome = self.prepare()
        self.assertEqual(1, outcome.code)
        self.assertIn("a customs patch must end in .patch", outcome.stderr)

    def test_dirty_work_tree_is_refused_and_kept(self) -> None:
        self.add_standard_series()
        self.assertEqual(0, self.prepare().code)
        edited = self.distro.work_tree / "designate" / "manage.py"
        edited.write_text(edited.read_text() + "# my local work\n")
        outcome = self.prepare()
        self.assertEqual(1, outcome.code)
        self.assertIn("has uncommitted changes: designate/manage.py", outcome.stderr)
        self.assertIn("# my local work", edited.read_text())
        self.assertEqual(0, self.prepare("--force").code)
        self.assertNotIn("# my local work", edited.read_text())

    def test_extra_commits_in_work_tree_are_not_thrown_away(self) -> None:
        self.add_standard_series()
        self.assertEqual(0, self.prepare().code)
        tree = self.distro.work_tree
        (tree / "designate" / "mine.py").write_text("MINE = 1\n")
        git(tree, "add", "-A")
        git(tree, "commit", "-q", "-m", "my work")
        # the series changes, so prepare would have to reset the tree
        text = self.patches.make(write_file("designate/y.py", "Y = 1\n"), "Add y")
        self.distro.add_patch("customs", "0003-y.patch", text)
        outcome = self.prepare()
        self.assertEqual(1, outcome.code)
        self.assertIn("has commits that are not from the series", outcome.stderr)
        self.assertEqual("my work", git(tree, "log", "-1", "--format=%s").strip())
        self.assertEqual(0, self.prepare("--force").code)
        self.assertEqual("Add y", git(tree, "log", "-1", "--format=%s").strip())
