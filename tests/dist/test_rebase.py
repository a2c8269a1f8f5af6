"""rebase and patches import/export, as a developer runs them on a new upstream release.

The fixture (tests/fixtures/rebase.py) pins release 1.0.0 with a series holding
a patch of every kind, and has release 1.1.0 in its mirror.  ``--continue``
and ``--abort`` run in a fresh process (``python -m designate_dist``), as they
would from a new shell.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import fixtures
import testtools.content
from oslotest import base

from designate_dist.distro import load_distro
from designate_dist.gitrepo import Identity, WorkTree
from designate_dist.series import read_series
from tests.fixtures.cache import shared_test_cache
from tests.fixtures.cli import REPO, run_cli, run_fresh
from tests.fixtures.distro import git, replace_in, write_file
from tests.fixtures.rebase import NEW_VERSION, RebaseFixture

DESIGNATE_23_0_0 = "9ef0be54042b3dcaab297e3a5798048134def469b5ed6302c8f6283b0914de83"


def snapshot(root: Path, skip: tuple[str, ...] = (".work/rebase", ".work/build.lock")) -> dict[str, str]:
    """sha256 of every file below ``root`` (git's own files included)."""
    result = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(rel == s or rel.startswith(s + "/") for s in skip):
            continue
        if path.is_file() and not path.is_symlink():
            result[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return result


def resolve_conflict(tree: Path) -> None:
    """What the developer does: keep upstream's wording and name the zone, then git add."""
    path = tree / "designate/api/middleware.py"
    text = path.read_text()
    resolved = re.sub(r"<<<<<<< [^\n]*\n.*?>>>>>>> [^\n]*\n",
                      '        raise ValueError("zone name %s must be fully qualified (end with a dot)" % name)\n',
                      text, flags=re.S)
    path.write_text(resolved)
    git(tree, "add", "designate/api/middleware.py")


class RebaseCase(base.BaseTestCase):
    with_conflict = True

    def setUp(self) -> None:
        super().setUp()
        self.fx = self.useFixture(RebaseFixture(with_conflict=self.with_conflict))
        self.root = self.fx.root
        self.rebase_tree = self.root / ".work" / "rebase" / f"designate-{NEW_VERSION}"

    def statuses(self, report: dict) -> dict[str, str]:
        return {f"{p['series']}/{p['file']}": p["status"] for p in report["patches"]}

    def assert_finished(self, report: dict) -> None:
        """The repository after a finished rebase onto 1.1.0, and prepare on it."""
        self.assertTrue(report["finished"])
        pin = load_distro(self.root).pin
        self.assertEqual((NEW_VERSION, self.fx.new_sha256, 1), (pin.version, pin.sha256, pin.revision))
        series = read_series(self.root)  # still a valid series
        refs = [p.ref for p in series]
        self.assertNotIn("cherry-pick/0001-zone-ttl.upstream", refs)
        self.assertFalse((self.root / "cherry-pick/0001-zone-ttl.upstream").exists())
        # partly upstream: only the remaining change is left in the file, header and message kept
        partly = (self.root / "cherry-pick/0002-zone-checks.patch").read_text()
        self.assertIn("+    result = value + 500", partly)
        self.assertNotIn("value + 200", partly)
        self.assertIn("Change-Id: I2222222222222222222222222222222222222222", partly)
        # refreshed with fresh context: the offset patch now says where the hunk is
        self.assertIn("@@ -36,7 +36,7 @@", (self.root / "customs/0002-offset.patch").read_text())
        self.assertIn('     """Step four of pool (documented)."""',
                      (self.root / "customs/0004-fuzz.patch").read_text())
        self.assertFalse((self.root / ".work/rebase/state.json").exists())
        prepared = run_cli("--distro", str(self.root), "-q", "prepare")
        self.assertEqual(0, prepared.code, prepared.stderr)
        tree = Path(prepared.stdout.strip())
        self.assertEqual(self.root / ".work" / f"designate-{NEW_VERSION}", tree)
        self.assertIn("STATUS = 418", (tree / "designate/api/teapot.py").read_text())
        self.assertFalse((tree / "designate/sample/legacy.py").exists())
        self.assertFalse((tree / "designate/sample/old_name.py").exists())
        moved = (tree / "designate/sample/new_name.py").read_text()
        self.assertIn("result = value + 55", moved)   # upstream's 1.1.0 edit
        self.assertIn("result = result * 10", moved)  # our rename patch's edit
        zones = (tree / "designate/sample/zones.py").read_text()
        for line in ("value + 100", "value + 200", "value + 300", "value + 500"):
            self.assertIn(line, zones)
        self.assertEqual(len(series), len(git(tree, "rev-list", f"upstream/{NEW_VERSION}..HEAD").split()))


class TestRebaseTriage(RebaseCase):
    def test_dry_run_classifies_every_patch_and_touches_nothing(self) -> None:
        self.assertEqual(0, run_cli("--distro", str(self.root), "-q", "prepare").code)
        before = snapshot(self.root, skip=())
        outcome = run_cli(*self.fx.rebase_args(), "--dry-run", "--json")
        self.assertEqual(before, snapshot(self.root, skip=()))  # not one byte changed, .git included
        self.assertEqual(3, outcome.code, outcome.stderr)  # a conflict in a dry run: exit 3, report printed
        self.assertEqual(["error: dry run onto 1.1.0: 1 patch conflicts: customs/0003-conflict.patch"],
                         outcome.error_lines)
        report = json.loads(outcome.stdout)
        self.assertEqual(NEW_VERSION, report["onto"])
        for patch in report["patches"]:
            self.assertLessEqual({"series", "file", "status"}, set(patch))
        self.assertEqual(self.fx.expected, self.statuses(report))
        by_ref = {f"{p['series']}/{p['file']}": p for p in report["patches"]}
        self.assertIn("reverse-applies", by_ref["cherry-pick/0001-zone-ttl.upstream"]["note"])
        partly = by_ref["cherry-pick/0002-zone-checks.patch"]
        self.assertIn("2 of 4 changed lines already in 1.1.0", partly["note"])
        self.assertIn("+    result = value + 500", partly["remaining_diff"])
        self.assertNotIn("value + 200", partly["remaining_diff"])
        self.assertEqual("offset 5 lines", by_ref["customs/0002-offset.patch"]["note"])
        self.assertEqual("3-way merge", by_ref["customs/0004-fuzz.patch"]["note"])  # never fuzz
        self.assertEqual(["designate/api/middleware.py"], by_ref["customs/0003-conflict.patch"]["files"])
        # the .upstream patch upstream did not release yet: a warning
        self.assertIn("cherry-pick/0003-zone-serial.upstream: .upstream patch not found upstream in 1.1.0",
                      report["warnings"])
        # requirements diff, and the customs requirements patch it makes unnecessary
        self.assertEqual({"added": {"dnspython": ">=2.6.0"}, "removed": {"oslo-config": ">=6.8.0"},
                          "changed": {"pbr": {"old": ">=3.1.1", "new": ">=5.5.0"}}}, report["requirements"])
        # the requirement it adds is in 1.1.0's requirements.txt already: never added a second time
        self.assertIn("already in 1.1.0: hunk #1 of requirements.txt", by_ref["customs/0008-requirements.patch"]["note"])

    def test_dry_run_table(self) -> None:
        outcome = run_cli(*self.fx.rebase_args(), "--dry-run", "-q")
        self.assertEqual(3, outcome.code)
        lines = outcome.stdout.splitlines()
        self.assertEqual(["PATCH", "KIND", "STATUS", "NOTE"], lines[0].split())
        row = next(line for line in lines if line.startswith("customs/0002-offset.patch"))
        self.assertEqual(["customs/0002-offset.patch", "custom", "refreshed", "offset", "5", "lines"],
                         row.split())
        self.assertIn("dry run: 1.0.0 -> 1.1.0: 11 patches (5 clean, 2 refreshed, 2 upstream, "
                      "1 partly-upstream, 1 conflict)", lines)
        self.assertIn("  + dnspython>=2.6.0", lines)

    def test_conflict_stops_then_continue_from_a_fresh_process(self) -> None:
        outcome = run_cli(*self.fx.rebase_args())
        self.assertEqual(3, outcome.code)
        self.assertEqual(
            [f"error: rebase onto 1.1.0 stopped: customs/0003-conflict.patch conflicts in "
             f"designate/api/middleware.py (resolve the conflicts in {self.rebase_tree}, `git add` the files, "
             "then run `designate-dist rebase --continue`; or `designate-dist rebase --abort`)"],
            outcome.error_lines)
        # the tree is mid-rebase: earlier patches committed, the conflict in the files, nothing else
        text = (self.rebase_tree / "designate/api/middleware.py").read_text()
        self.assertIn("<<<<<<< ", text)
        self.assertIn(">>>>>>> ", text)
        self.assertEqual("UU designate/api/middleware.py",
                         git(self.rebase_tree, "status", "--porcelain").strip())
        self.assertEqual(["Records: step five is bigger", "Clean change", "Bump zone serials monotonically",
                          "Check zone names and serials"],
                         git(self.rebase_tree, "log", "--format=%s", f"upstream/{NEW_VERSION}..HEAD").splitlines())
        # nothing in the repository changed yet
        self.assertEqual("1.0.0", load_distro(self.root).pin.version)
        self.assertEqual("", git(self.root, "status", "--porcelain", "--", "build", "cherry-pick", "customs"))
        # a second rebase is refused while this one is stopped
        again = run_cli(*self.fx.rebase_args())
        self.assertEqual(1, again.code)
        self.assertIn("a rebase onto 1.1.0 is already in progress", again.stderr)
        # --status from a new shell says where the rebase stands (5 triaged: 4 commits, 1 upstream)
        status = run_fresh("--distro", str(self.root), "rebase", "--status", "--json")
        self.assertEqual(0, status.returncode, status.stderr)
        self.assertEqual({"in_progress": True, "from": "1.0.0", "onto": "1.1.0",
                          "work_tree": str(self.rebase_tree), "done": 5,
                          "stopped_at": "customs/0003-conflict.patch",
                          "files": ["designate/api/middleware.py"]}, json.loads(status.stdout))
        # --continue with the conflict unresolved: still exit 3, naming the file
        early = run_fresh("--distro", str(self.root), "rebase", "--continue")
        self.assertEqual(3, early.returncode)
        self.assertIn("error: customs/0003-conflict.patch still has unresolved conflicts in "
                      "designate/api/middleware.py", early.stderr)

        resolve_conflict(self.rebase_tree)
        done = run_fresh("--distro", str(self.root), "rebase", "--continue", "--json")
        self.assertEqual(0, done.returncode, done.stderr)
        report = json.loads(done.stdout)
        expected = dict(self.fx.expected, **{"customs/0003-conflict.patch": "resolved"})
        self.assertEqual(expected, self.statuses(report))
        # the resolution is exported back into the patch file, its header kept
        resolved = (self.root / "customs/0003-conflict.patch").read_text()
        self.assertIn("Subject: [PATCH] Name the zone in the validation message", resolved)
        self.assertIn('-        raise ValueError("zone names must be fully qualified (end with a dot)")', resolved)
        self.assertIn('+        raise ValueError("zone name %s must be fully qualified (end with a dot)" % name)',
                      resolved)
        self.assert_finished(report)
        self.assertEqual("no rebase in progress\n",
                         run_fresh("--distro", str(self.root), "rebase", "--status").stdout)

    def test_continue_with_a_commit_made_by_the_developer(self) -> None:
        self.assertEqual(3, run_cli(*self.fx.rebase_args()).code)
        resolve_conflict(self.rebase_tree)
        git(self.rebase_tree, "commit", "-q", "--no-edit")
        # from inside the tree, where the developer is: the distro is found up from there
        done = run_fresh("-q", "rebase", "--continue", "--json", cwd=self.rebase_tree)
        self.assertEqual(0, done.returncode, done.stderr)
        self.assertEqual("resolved", self.statuses(json.loads(done.stdout))["customs/0003-conflict.patch"])

    def test_abort_from_a_fresh_process_restores_everything(self) -> None:
        self.assertEqual(0, run_cli("--distro", str(self.root), "-q", "prepare").code)
        before = snapshot(self.root)
        self.assertEqual(3, run_cli(*self.fx.rebase_args()).code)
        # the developer started resolving, then gives up
        (self.rebase_tree / "designate/api/middleware.py").write_text("half done\n")
        aborted = run_fresh("--distro", str(self.root), "rebase", "--abort")
        self.assertEqual(0, aborted.returncode, aborted.stderr)
        self.assertEqual("rebase aborted", aborted.stdout.strip())
        self.assertEqual(before, snapshot(self.root))
        self.assertFalse(self.rebase_tree.exists())
        self.assertFalse((self.root / ".work/rebase/state.json").exists())
        again = run_fresh("--distro", str(self.root), "rebase", "--abort")
        self.assertEqual(1, again.returncode)
        self.assertEqual("error: no rebase in progress", again.stderr.strip())

    def test_abort_after_continue_stopped_again_restores_rewritten_files(self) -> None:
        # a second conflict after the first: abort must also undo what --continue exported
        self.fx.add_patch("customs", "0009-second-conflict.patch", self.fx.patches.make(
            replace_in("requirements.txt", "pbr>=3.1.1 ", "pbr>=4.0.0 "), "Require a newer pbr", keep=False))
        self.fx.commit("one more patch")
        before = snapshot(self.root)
        self.assertEqual(3, run_cli(*self.fx.rebase_args()).code)
        resolve_conflict(self.rebase_tree)
        second = run_fresh("--distro", str(self.root), "rebase", "--continue")
        self.assertEqual(3, second.returncode, second.stderr)
        self.assertIn("customs/0009-second-conflict.patch conflicts in requirements.txt",
                      second.stderr)
        self.assertEqual(0, run_fresh("--distro", str(self.root), "rebase", "--abort").returncode)
        self.assertEqual(before, snapshot(self.root))

    def test_refused_while_a_build_holds_the_lock(self) -> None:
        lock_dir = self.root / ".work"
        lock_dir.mkdir(exist_ok=True)
        with open(lock_dir / "build.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            handle.write("pid 4242")
            handle.flush()
            outcome = run_cli(*self.fx.rebase_args())
        self.assertEqual(1, outcome.code)
        self.assertIn("another designate-dist build is running", outcome.stderr)
        self.assertEqual("1.0.0", load_distro(self.root).pin.version)

    def test_usage_errors(self) -> None:
        no_hash = run_cli("--distro", str(self.root), "rebase", "--onto", NEW_VERSION)
        self.assertEqual(2, no_hash.code)
        self.assertIn("--sha256 is required for a file source", no_hash.stderr)
        same = run_cli("--distro", str(self.root), "rebase", "--onto", "1.0.0", "--sha256", "0" * 64)
        self.assertEqual(2, same.code)
        bad = run_cli("--distro", str(self.root), "rebase", "--onto", NEW_VERSION, "--sha256", "0" * 64)
        self.assertEqual(5, bad.code)
        self.assertIn("sha256 mismatch", bad.stderr)
        self.assertFalse((self.root / ".work/rebase/state.json").exists())
        self.assertEqual("1.0.0", load_distro(self.root).pin.version)
        nothing = run_cli("--distro", str(self.root), "rebase", "--continue")
        self.assertEqual(["error: no rebase in progress (start one with `designate-dist rebase --onto VERSION`)"],
                         nothing.error_lines)


class TestRebaseWithoutConflict(RebaseCase):
    with_conflict = False

    def test_rebase_finishes_in_one_go(self) -> None:
        outcome = run_cli(*self.fx.rebase_args(), "--json")
        self.assertEqual(0, outcome.code, outcome.stderr)
        report = json.loads(outcome.stdout)
        self.assertEqual(self.fx.expected, self.statuses(report))
        self.assertEqual(NEW_VERSION, report["onto"])
        # clean patches keep their bytes
        self.assertEqual("", git(self.root, "status", "--porcelain", "customs/0001-clean.patch",
                                 "customs/0005-new-file.patch", "customs/0006-delete-file.patch",
                                 "customs/0007-rename.patch", "cherry-pick/0003-zone-serial.upstream"))
        self.assert_finished(report)

    def test_a_plain_dep3_patch_is_refreshed_with_its_header_kept(self) -> None:
        mail = self.fx.patches.make(
            replace_in("designate/sample/records.py", "result = value + 6\n", "result = value + 6000\n"),
            "Records: step six", keep=False)
        header = ("Description: Records: step six is bigger\n Our records need it.\n"
                  "Author: Plain Person <plain@example.org>\nForwarded: not-needed\n\n")
        self.fx.add_patch("customs", "0009-dep3.patch", header + mail[mail.index("diff --git"):])
        self.fx.commit("a DEP-3 patch")
        outcome = run_cli(*self.fx.rebase_args(), "-q", "--json")
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertEqual("refreshed", self.statuses(json.loads(outcome.stdout))["customs/0009-dep3.patch"])
        text = (self.root / "customs/0009-dep3.patch").read_text()
        self.assertTrue(text.startswith(header + "diff --git a/designate/sample/records.py"), text)
        self.assertIn("@@ -43,7 +43,7 @@", text)
        self.assert_finished(json.loads(outcome.stdout))

    def test_rebase_with_a_git_source(self) -> None:
        url, _, new_commit = self.fx.git_upstream()
        outcome = run_cli("--distro", str(self.root), "-q", "rebase", "--onto", NEW_VERSION, "--source", "git",
                          "--commit", new_commit, "--json")
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertEqual(self.fx.expected, self.statuses(json.loads(outcome.stdout)))
        pin = load_distro(self.root).pin
        self.assertEqual(("git", url, NEW_VERSION, new_commit, NEW_VERSION, 1),
                         (pin.source, pin.url, pin.tag, pin.commit, pin.version, pin.revision))
        wrong = run_cli("--distro", str(self.root), "rebase", "--onto", "1.2.0", "--source", "git",
                        "--tag", NEW_VERSION, "--commit", "0" * 40)
        self.assertEqual(5, wrong.code)
        # issue 13.1: the tag names another version than the one pinned; refused before any clone
        self.assertIn(f"git tag '{NEW_VERSION}' is designate {NEW_VERSION}, not the pinned version 1.2.0",
                      wrong.stderr)

    def test_rebase_of_a_patch_upstream_merged_in_a_modified_form(self) -> None:
        # a backport whose upstream version differs (a conflict) but the ChangeLog names it: dropped, warned
        self.fx.add_patch("cherry-pick", "0004-tidy-records.patch", self.fx.patches.make(
            replace_in("designate/api/middleware.py", '"zone name must end with a dot"',
                       '"zone names must be fully qualified"'),
            "Tidy records", "Backport, adapted.", keep=False))
        self.fx.commit("backport")
        outcome = run_cli(*self.fx.rebase_args(), "--dry-run", "--json")
        report = json.loads(outcome.stdout)
        entry = next(p for p in report["patches"] if p["file"] == "0004-tidy-records.patch")
        self.assertEqual("upstream", entry["status"])
        self.assertIn("merged upstream in a modified form (subject in 1.1.0 ChangeLog)", entry["note"])
        self.assertTrue(any("0004-tidy-records.patch" in w for w in report["warnings"]))


class TestPatchQueue(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.fx = self.useFixture(RebaseFixture(with_conflict=False))
        self.root = self.fx.root

    def test_import_edit_add_export_round_trip(self) -> None:
        imported = run_cli("--distro", str(self.root), "-q", "patches", "import")
        self.assertEqual(0, imported.code, imported.stderr)
        tree = Path(imported.stdout.strip())
        self.assertEqual("patch-queue", git(tree, "branch", "--show-current").strip())
        before = snapshot(self.root, skip=(".work", ".git"))
        # export with no change: nothing changes
        unchanged = run_cli("--distro", str(self.root), "patches", "export")
        self.assertEqual(0, unchanged.code, unchanged.stderr)
        self.assertEqual(before, snapshot(self.root, skip=(".work", ".git")))
        self.assertTrue(all(line.startswith("kept ") for line in unchanged.stdout.splitlines()))
        # edit a commit in the middle (fixup + autosquash), drop one, add one on top
        clean_commit = git(tree, "log", "--format=%H", "--grep=^Clean change", "-1").strip()
        replace_in("designate/sample/clean.py", "result = value + 2000\n", "result = value + 2001\n")(tree)
        git(tree, "commit", "-q", "-a", f"--fixup={clean_commit}")
        git(tree, "rebase", "-q", "-i", "--autosquash", f"upstream/{self.fx.version}",
            env={"GIT_SEQUENCE_EDITOR": "sed -i -e '/Remove the legacy module/d'"})
        write_file("designate/api/coffee.py", "STATUS = 418\n")(tree)
        git(tree, "add", "designate/api/coffee.py")
        git(tree, "commit", "-q", "-m", "Brew coffee: the teapot's sibling")
        exported = run_cli("--distro", str(self.root), "patches", "export")
        self.assertEqual(0, exported.code, exported.stderr)
        lines = exported.stdout.splitlines()
        self.assertIn("updated  customs/0001-clean.patch", lines)
        self.assertIn("new      customs/0009-brew-coffee-the-teapot-s-sibling.patch", lines)
        self.assertIn("removed  customs/0006-delete-file.patch", lines)
        self.assertIn("kept     cherry-pick/0002-zone-checks.patch", lines)
        after = snapshot(self.root, skip=(".work", ".git"))
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        self.assertEqual({"customs/0001-clean.patch", "customs/0006-delete-file.patch", "customs/series",
                          "customs/0009-brew-coffee-the-teapot-s-sibling.patch"}, changed)
        clean = (self.root / "customs/0001-clean.patch").read_text()
        self.assertIn("Subject: [PATCH] Clean change", clean)
        self.assertIn("+    result = value + 2001", clean)
        series = (self.root / "customs/series").read_text()
        self.assertTrue(series.startswith("# ours\n"))
        self.assertNotIn("0006-delete-file.patch", series)
        self.assertTrue(series.endswith("0008-requirements.patch\n0009-brew-coffee-the-teapot-s-sibling.patch\n"))
        # the files now give exactly the tree the developer made
        queue_tree = git(tree, "rev-parse", "HEAD^{tree}").strip()
        prepared = run_cli("--distro", str(self.root), "-q", "prepare")
        self.assertEqual(0, prepared.code, prepared.stderr)
        self.assertEqual(queue_tree, git(tree, "rev-parse", "HEAD^{tree}").strip())
        self.assertEqual(len(read_series(self.root)),
                         len(git(tree, "rev-list", f"upstream/{self.fx.version}..HEAD").split()))

    def test_export_refuses_uncommitted_work(self) -> None:
        self.assertEqual(0, run_cli("--distro", str(self.root), "-q", "patches", "import").code)
        (self.fx.work_tree / "designate/sample/clean.py").write_text("changed\n")
        outcome = run_cli("--distro", str(self.root), "patches", "export")
        self.assertEqual(1, outcome.code)
        self.assertIn("has uncommitted changes: designate/sample/clean.py", outcome.stderr)

    def test_export_without_import(self) -> None:
        outcome = run_cli("--distro", str(self.root), "patches", "export")
        self.assertEqual(1, outcome.code)
        self.assertIn("run `designate-dist patches import` first", outcome.stderr)


def table_of(report: dict) -> str:
    """The text table of a --json report (the same rows ``rebase`` prints without --json)."""
    rows = [("PATCH", "STATUS", "NOTE")] + [(f"{p['series']}/{p['file']}", p["status"], p.get("note", ""))
                                            for p in report["patches"]]
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]}".rstrip() for r in rows]
    lines += [f"warning: {w}" for w in report.get("warnings", [])]
    return f"dry run: {report['from']} -> {report['onto']}\n" + "\n".join(lines)


class TestCommitIndex(base.BaseTestCase):
    """commit_index writes its commit itself: the same object ``git commit`` makes, and a clean state."""

    def commit_both_ways(self, author: Identity) -> tuple[str, str]:
        ids = []
        for fast in (True, False):
            path = Path(self.useFixture(fixtures.TempDir()).path) / "tree"
            tree = WorkTree.init(path, "patched")
            who = Identity("Distro Maintainer", "distro@example.org", 1_700_000_000)
            (path / "a.txt").write_text("one\n")
            tree.commit_all("Import\n", who, who)
            (path / "a.txt").write_text("two\n")
            git(path, "add", "a.txt")
            if not fast:
                self.useFixture(fixtures.MonkeyPatch("designate_dist.gitrepo._plain_ident", lambda who: False))
            ids.append(tree.commit_index("Subject\n\nBody: ünïcode\nChange-Id: I1\n", author, who))
            self.assertEqual([], tree.dirty_paths())
            self.assertEqual(ids[-1], git(path, "rev-parse", "patched").strip())
            self.assertEqual("commit: Subject", git(path, "reflog", "-1", "--format=%gs", "patched").strip())
            git(path, "fsck", "--strict")
        return ids[0], ids[1]

    def test_same_commit_as_git_commit(self) -> None:
        fast, slow = self.commit_both_ways(Identity("Ëlla Dev", "ella@example.org", 1_690_000_000))
        self.assertEqual(slow, fast)

    def test_identities_git_would_clean_go_through_git(self) -> None:
        fast, slow = self.commit_both_ways(Identity("Dev, Jr.", "dev@example.org", 1_690_000_000))
        self.assertEqual(slow, fast)


class TestRebaseShippedSeriesOnto23(base.BaseTestCase):
    """The shipped series, dry run onto Designate 23.0.0 from PyPI; the report is kept."""

    def test_dry_run_onto_23_0_0(self) -> None:
        self.useFixture(fixtures.Timeout(900, gentle=True))
        self.useFixture(fixtures.EnvironmentVariable("DESIGNATE_DIST_CACHE", str(shared_test_cache())))
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        before = snapshot(REPO / "build") | snapshot(REPO / "cherry-pick") | snapshot(REPO / "customs")
        outcome = run_cli("--distro", str(REPO), "--work-dir", str(tmp / "work"), "rebase", "--onto", "23.0.0",
                          "--source", "pypi", "--sha256", DESIGNATE_23_0_0, "--dry-run", "--json")
        self.assertIn(outcome.code, (0, 3), outcome.stderr[-3000:])
        report = json.loads(outcome.stdout)
        table = table_of(report)
        # kept where DESIGNATE_DIST_REPORT_DIR says (CI keeps it); by default only in the
        # test's details, never in the repository
        out_dir = Path(os.environ.get("DESIGNATE_DIST_REPORT_DIR") or tmp / "reports")
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "rebase-dry-run-23.0.0.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        (out_dir / "rebase-dry-run-23.0.0.txt").write_text(table + "\n")
        self.addDetail("rebase-report", testtools.content.text_content(table))
        self.assertEqual(before, snapshot(REPO / "build") | snapshot(REPO / "cherry-pick")
                         | snapshot(REPO / "customs"))
        self.assertEqual("23.0.0", report["onto"])
        series = read_series(REPO)
        self.assertEqual([(p.series, p.name) for p in series],
                         [(p["series"], p["file"]) for p in report["patches"]])
        statuses = {"clean", "refreshed", "upstream", "partly-upstream", "conflict"}
        by_ref = {f"{p['series']}/{p['file']}": p for p in report["patches"]}
        for patch in series:
            self.assertIn(by_ref[patch.ref]["status"], statuses, patch.ref)
            # an .upstream patch taken from 23.0.0 (its Upstream: line says so) must come out upstream
            upstream_line = next((line for line in patch.body.splitlines() if line.startswith("Upstream:")), "")
            if patch.kind == "upstream" and re.search(r"\b23\.0\.0\b", upstream_line):
                self.assertEqual("upstream", by_ref[patch.ref]["status"], f"{patch.ref}: {by_ref[patch.ref]}")
