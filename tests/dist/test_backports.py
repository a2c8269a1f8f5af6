"""backports and cherry-pick, as a maintainer runs them against upstream's git history.

The fixture (tests/fixtures/upstream_git.py) builds a small upstream repository
(release tag on a stable branch with cherry-picked backports; master with a
security fix, a devstack-only commit, a conflicting commit, a commit we carry
under another subject, a merge) and a distro pinned to its release by git.
"""
from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

from oslotest import base

from designate_dist.distro import load_distro
from designate_dist.gitrepo import WorkTree
from designate_dist.series import read_series
from tests.fixtures.cli import run_cli
from tests.fixtures.distro import git, make_sdist, sha256
from tests.fixtures.upstream_git import EXPECTED, UpstreamGitFixture


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file of the distro repository (its .git included, its .work not)."""
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*"))
            if path.is_file() and not path.relative_to(root).as_posix().startswith(".work/")}


class BackportsCase(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.up = self.useFixture(UpstreamGitFixture())
        self.root = self.up.root

    def cli(self, *argv: str):
        return run_cli("--distro", str(self.root), *argv)

    def report(self, *extra: str) -> tuple[int, dict]:
        outcome = self.cli("backports", "--upstream", str(self.up.repo), "--json", *extra)
        return outcome.code, json.loads(outcome.stdout)


class TestBackportsReport(BackportsCase):
    def test_every_commit_is_classified(self) -> None:
        code, data = self.report("--to", "master")
        by_commit = {entry["commit"]: entry for entry in data["commits"]}
        self.assertNotIn(self.up.commits["merge"], by_commit, "merge commits are not listed")
        self.assertEqual(len(EXPECTED), len(by_commit))
        for name, (kind, applies, carried_by) in EXPECTED.items():
            entry = by_commit[self.up.commits[name]]
            self.assertEqual((kind, applies), (entry["kind"], entry["applies"]), name)
            if carried_by is None:
                self.assertIsNone(entry["carried_by"], name)
            else:
                self.assertTrue(entry["carried_by"].startswith(carried_by), (name, entry["carried_by"]))
        self.assertEqual(["designate/sample/zones.py"], by_commit[self.up.commits["conflicting"]]["files"])
        self.assertEqual("same patch-id", by_commit[self.up.commits["ttl"]]["evidence"])
        self.assertEqual(["master"], by_commit[self.up.commits["fix"]]["on"])
        self.assertEqual(["stable/1.0"], by_commit[self.up.commits["stable_fix"]]["on"])
        self.assertEqual([self.up.commits["security"]], data["summary"]["alarms"])
        self.assertEqual(1, code, "a security fix that applies and is not carried raises the alarm")

    def test_table_sorts_security_first_and_names_the_alarm(self) -> None:
        outcome = self.cli("-q", "backports", "--upstream", str(self.up.repo), "--to", "master")
        self.assertEqual(1, outcome.code)
        rows = outcome.stdout.splitlines()[1:12]
        kinds = [row.split()[1] for row in rows]
        self.assertEqual(["security", "fix", "fix", "fix", "fix", "fix", "feature", "feature", "feature",
                          "tests-docs", "ci"], kinds)
        self.assertEqual([f"error: 1 security fix(es) apply to 1.0.0 and are not carried: "
                          f"{self.up.commits['security'][:8]} (Fix cross-tenant zone ownership bypass)"],
                         outcome.error_lines)

    def test_stable_branch_alone_is_found_and_carried(self) -> None:
        code, data = self.report()
        self.assertEqual(0, code)
        self.assertEqual("stable/1.0", data["branch"])
        self.assertEqual([self.up.commits["stable_fix"]], [c["commit"] for c in data["commits"]])
        self.assertEqual("commit " + self.up.commits["stable_fix"][:10], data["commits"][0]["evidence"])

    def test_report_writes_nothing(self) -> None:
        before = snapshot(self.root)
        self.report("--to", "master")
        self.assertEqual(before, snapshot(self.root))


class TestCherryPick(BackportsCase):
    def pick(self, name: str, *extra: str):
        return self.cli("-q", "cherry-pick", self.up.commits[name], "--upstream", str(self.up.repo), *extra)

    def test_clean_pick_is_verbatim_and_clears_the_alarm(self) -> None:
        outcome = self.pick("security")
        self.assertEqual(0, outcome.code, outcome.stderr)
        name = "0003-fix-cross-tenant-zone-ownership-bypass.upstream"
        self.assertEqual(f"cherry-pick/{name}\n", outcome.stdout)
        text = (self.root / "cherry-pick" / name).read_text()
        sha = self.up.commits["security"]
        verbatim = git(self.up.repo, "format-patch", "-1", "--stdout", "--no-signature", "--full-index", sha)
        head, _, rest = verbatim.partition("\n\n")
        self.assertEqual(f"{head}\nUpstream: commit {sha} (master)\n\n{rest}", text)
        self.assertEqual(name, (self.root / "cherry-pick" / "series").read_text().splitlines()[-1])
        patch = read_series(self.root).patches[2]
        message = git(self.up.repo, "log", "-1", "--format=%B", sha)
        self.assertEqual(("upstream", "Test Author", message.rstrip("\n") + "\n"),
                         (patch.kind, patch.author.name, patch.message))
        prepared = self.cli("-q", "prepare")
        self.assertEqual(0, prepared.code, prepared.stderr)
        tree = Path(prepared.stdout.strip())
        self.assertEqual(message, git(tree, "log", "-1", "--format=%B", "HEAD~1"),
                         "the commit in the work tree has upstream's message, verbatim")
        code, data = self.report("--to", "master")
        self.assertEqual(0, code)
        entry = next(c for c in data["commits"] if c["commit"] == sha)
        self.assertEqual(f"cherry-pick/{name}", entry["carried_by"])

    def test_conflict_stops_and_continue_writes_an_adapted_patch(self) -> None:
        outcome = self.pick("conflicting")
        self.assertEqual(3, outcome.code)
        short = self.up.commits["conflicting"][:8]
        self.assertEqual(1, len(outcome.error_lines))
        self.assertTrue(outcome.error_lines[0].startswith(
            f"error: cherry-pick of {short} stopped: conflicts in designate/sample/zones.py"))
        self.assertEqual(["0001-fix-record-rounding.upstream", "0002-bump-the-minimum-ttl.patch"],
                         [p.name for p in read_series(self.root) if p.series == "cherry-pick"])
        again = self.pick("security")
        self.assertEqual(1, again.code)
        self.assertIn("already in progress", again.error_lines[0])
        tree = self.up.distro.work_tree
        zones = tree / "designate/sample/zones.py"
        backup = tree / "designate/sample/zones.py.orig"
        backup.write_text(zones.read_text())  # a merge tool's backup, conflict and all
        zones.write_text(re.sub(r"<<<<<<< [^\n]*\n.*?>>>>>>> [^\n]*\n",
                                "    return (serial + 1) % 2**32\n", zones.read_text(), flags=re.S))
        unresolved = self.cli("-q", "cherry-pick", "--continue")
        self.assertEqual(3, unresolved.code, "still unmerged until `git add`")
        git(tree, "add", "designate/sample/zones.py")
        refused = self.cli("-q", "cherry-pick", "--continue")
        self.assertEqual(3, refused.code)
        self.assertIn("conflict markers left in designate/sample/zones.py.orig", refused.error_lines[0])
        backup.unlink()
        (tree / "NOTES.txt").write_text("mine, not the patch's\n")  # untracked, never swept in
        done = self.cli("-q", "cherry-pick", "--continue", "--note", "22.x has no next_serial")
        self.assertEqual(0, done.code, done.stderr)
        name = "0003-fix-zone-serial-overflow.patch"
        self.assertEqual(f"cherry-pick/{name}\n", done.stdout)
        text = (self.root / "cherry-pick" / name).read_text()
        sha = self.up.commits["conflicting"]
        self.assertIn(f"\nUpstream: commit {sha} (master), adapted\n", text)
        self.assertIn(f"(cherry picked from commit {sha})\nConflicts:\n\tdesignate/sample/zones.py\n", text)
        self.assertIn("Backport-Note: 22.x has no next_serial (adapted to designate 1.0.0;\n"
                      " changed from upstream's: designate/sample/zones.py)\n---\n", text)
        self.assertIn("+    return (serial + 1) % 2**32", text)
        self.assertNotIn("NOTES.txt", text)
        patch = read_series(self.root).patches[2]
        self.assertEqual(("backport", "Test Author", (sha,)),
                         (patch.kind, patch.author.name, patch.upstream_commits))
        self.assertEqual(0, self.cli("-q", "prepare").code)
        code, data = self.report("--to", "master")
        entry = next(c for c in data["commits"] if c["commit"] == sha)
        self.assertEqual((f"cherry-pick/{name}", "carried"), (entry["carried_by"], entry["applies"]))

    def test_abort_restores_everything_byte_for_byte(self) -> None:
        self.assertEqual(0, self.cli("-q", "prepare").code)
        tree = WorkTree(self.up.distro.work_tree)
        head, state = tree.head(), (tree.git_dir / "designate-dist.json").read_bytes()
        before = snapshot(self.root)
        self.assertEqual(3, self.pick("conflicting").code)
        outcome = self.cli("-q", "cherry-pick", "--abort")
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertEqual(before, snapshot(self.root))
        self.assertEqual((head, state, []), (tree.head(), (tree.git_dir / "designate-dist.json").read_bytes(),
                                             tree.dirty_paths()))
        self.assertIsNone(tree.resolve("refs/designate-dist/cherry-pick"))
        self.assertEqual(0, self.cli("-q", "prepare").code, "the work tree is reused as it was")
        self.assertEqual(head, tree.head())
        self.assertEqual(1, self.cli("cherry-pick", "--abort").code, "nothing left to abort")


class TestBadInput(BackportsCase):
    """One `error:` line, exit 1 (2 for usage), nothing written."""

    def assert_refused(self, argv: tuple[str, ...], code: int, message: str) -> None:
        before = snapshot(self.root)
        outcome = self.cli(*argv)
        self.assertEqual(code, outcome.code, outcome.stderr)
        self.assertEqual(1, len(outcome.error_lines), outcome.stderr)
        self.assertIn(message, outcome.error_lines[0])
        self.assertEqual(before, snapshot(self.root))
        self.assertFalse((self.root / ".work" / "cherry-pick" / "state.json").exists())

    def test_repo_is_not_a_git_repository(self) -> None:
        plain = self.up.distro.base / "plain"
        plain.mkdir()
        for command in ("backports", "cherry-pick"):
            argv = (command, "--upstream", str(plain)) + (("HEAD",) if command == "cherry-pick" else ())
            self.assert_refused(argv, 1, f"{plain} is not a git repository")
        missing = self.up.distro.base / "missing"
        self.assert_refused(("backports", "--upstream", str(missing)), 1, "no such directory")

    def test_pinned_tag_missing(self) -> None:
        other = self.up.distro.base / "other"
        other.mkdir()
        git(other, "init", "-q")
        git(other, "commit", "-q", "--allow-empty", "-m", "empty")
        self.assert_refused(("backports", "--upstream", str(other)), 1,
                            f"{other} has no tag 1.0.0 (the pinned release)")

    def test_unknown_commit_and_refs(self) -> None:
        repo = str(self.up.repo)
        self.assert_refused(("cherry-pick", "1234567", "--upstream", repo), 1, "no commit '1234567'")
        self.assert_refused(("backports", "--upstream", repo, "--to", "nowhere"), 1, "no commit 'nowhere'")
        self.assert_refused(("backports", "--upstream", repo, "--branch", "master"), 2,
                            "--branch master does not contain tag 1.0.0")

    def test_option_injection_is_refused(self) -> None:
        repo = str(self.up.repo)
        self.assert_refused(("cherry-pick", "--upstream", repo, "--", "--upload-pack=touch /tmp/x"), 1,
                            "is not a commit, tag or branch name")
        self.assert_refused(("backports", "--upstream", repo, "--to=--output=/tmp/x"), 1,
                            "is not a commit, tag or branch name")
        self.assert_refused(("backports", "--upstream=--upload-pack=touch /tmp/x"), 2,
                            "not a repository path or URL")

    def test_merge_commit_is_refused(self) -> None:
        self.assert_refused(("cherry-pick", self.up.commits["merge"], "--upstream", str(self.up.repo)), 2,
                            "is a merge commit")

    def test_already_carried_or_released(self) -> None:
        repo = str(self.up.repo)
        self.assert_refused(("cherry-pick", self.up.commits["ttl"], "--upstream", repo), 2,
                            "is already carried by cherry-pick/0002-bump-the-minimum-ttl.patch (same patch-id)")
        self.assert_refused(("cherry-pick", self.up.commits["stable_pool_fix"], "--upstream", repo), 2,
                            "is already in 1.0.0")

    def test_dirty_work_tree(self) -> None:
        self.assertEqual(0, self.cli("-q", "prepare").code)
        (self.up.distro.work_tree / "designate" / "api" / "middleware.py").write_text("# mine\n")
        self.assert_refused(("cherry-pick", self.up.commits["security"], "--upstream", str(self.up.repo)), 1,
                            "has uncommitted changes: designate/api/middleware.py")

    def test_usage(self) -> None:
        self.assert_refused(("cherry-pick", "--upstream", str(self.up.repo)), 2, "COMMIT and --upstream REPO")
        self.assert_refused(("cherry-pick", "--continue", "HEAD"), 2, "COMMIT not allowed here")
        self.assert_refused(("cherry-pick", "--continue", "--abort"), 2, "not allowed with argument")
        self.assert_refused(("backports",), 2, "--upstream")
        self.assert_refused(("cherry-pick", "--continue"), 1, "no cherry-pick in progress")


class TestGitSource(BackportsCase):
    """A git pin builds like an sdist of the same release, and rebase reads its history."""

    def test_git_source_builds_the_same_wheel_as_the_sdist(self) -> None:
        def build(output: str, *extra: str) -> Path:
            outcome = self.cli("-q", "build", "--skip-tests", "--output", str(self.up.distro.base / output),
                               *extra)
            self.assertEqual(0, outcome.code, outcome.stderr)
            wheels = sorted(Path(outcome.stdout.strip()).glob("designate-1.0.0*.whl"))
            self.assertEqual(1, len(wheels))
            return wheels[0]

        def members(wheel: Path) -> dict[str, tuple]:
            # pbr.json names the patched work tree's HEAD, whose import commit names the source
            with zipfile.ZipFile(wheel) as archive:
                return {i.filename: (i.date_time, i.external_attr, archive.read(i))
                        for i in archive.infolist() if not i.filename.endswith(("pbr.json", "RECORD"))}

        from_git = build("out-git")
        self.assertEqual(sha256(from_git), sha256(build("out-git-again", "--rebuild")), "reproducible")
        release = self.up.distro.base / "release-tree"
        git(self.up.repo, "worktree", "add", "-q", "--detach", str(release), "1.0.0")
        (release / ".git").unlink()
        (release / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: designate\nVersion: 1.0.0\n")
        archive = make_sdist(release, self.up.distro.base / "sdist")
        self.up.distro.write_pin(sha=sha256(archive), source="file")
        pin = (self.root / "build" / "upstream.toml").read_text()
        (self.root / "build" / "upstream.toml").write_text(
            pin.replace(f'path = "{self.up.distro.archive.parent}"', f'path = "{archive.parent}"'))
        from_sdist = build("out-sdist", "--force")
        self.assertEqual(from_git.name, from_sdist.name)
        self.assertEqual(members(from_git), members(from_sdist))

    def test_relative_local_url_is_taken_from_the_distro(self) -> None:
        pin = (self.root / "build" / "upstream.toml").read_text()
        (self.root / "build" / "upstream.toml").write_text(
            pin.replace(f'url = "{self.up.repo}"', 'url = "../upstream-git"'))
        outcome = self.cli("-q", "prepare")
        self.assertEqual(0, outcome.code, outcome.stderr)

    def test_rebase_finds_the_patch_in_the_new_release_by_history(self) -> None:
        git(self.up.repo, "tag", "-a", "1.0.1", "-m", "1.0.1", self.up.commits["stable_fix"])
        outcome = self.cli("-q", "rebase", "--onto", "1.0.1", "--commit", self.up.commits["stable_fix"],
                           "--json")
        self.assertEqual(0, outcome.code, outcome.stderr)
        report = json.loads(outcome.stdout)
        first = report["patches"][0]
        self.assertEqual(("cherry-pick", "0001-fix-record-rounding.upstream", "upstream"),
                         (first["series"], first["file"], first["status"]))
        stable_fix = self.up.commits["stable_fix"]
        self.assertIn(f"commit {stable_fix[:10]} is in 1.0.1 ({stable_fix[:8]})", first["note"])
        self.assertEqual("1.0.1", load_distro(self.root).pin.version)
