"""release: bump, changelogs, commit, build, manifest check and tag, as a maintainer releases.

Every release here is real: a git repository made by DistroFixture, real
builds (``--skip-tests``; the fixture has no debian/rules, so no deb stage),
real tags.  The change list is checked through ``release --dry-run --json``,
which needs no build.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import fixtures
from oslotest import base

from designate_dist import pipeline
from designate_dist.distro import load_distro
from designate_dist.release import check_build, tag_name
from designate_dist.series import read_series
from designate_dist.versions import DistroVersion
from tests.fixtures.cli import run_cli
from tests.fixtures.distro import (
    DistroFixture,
    copy_upstream,
    git,
    make_sdist,
    replace_in,
    sha256,
    write_file,
)

REPO = Path(__file__).resolve().parents[2]
RELEASER = {"GIT_AUTHOR_NAME": "Release Manager", "GIT_AUTHOR_EMAIL": "rm@example.org",
            "GIT_COMMITTER_NAME": "Release Manager", "GIT_COMMITTER_EMAIL": "rm@example.org"}
FIRST = "Release 1.0.0.post1 (1:1.0.0-1)\n\n* first release, on upstream designate 1.0.0\n" \
        "* added customs/0001-extra.patch: Add extra module\n"


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file below ``root``, git's own included (but the index's stat cache)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.relative_to(root).as_posix() != ".git/index"}


class ReleaseCase(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        for name, value in RELEASER.items():
            self.useFixture(fixtures.EnvironmentVariable(name, value))
        self.distro = self.useFixture(DistroFixture())
        self.root = self.distro.root
        extra = self.distro.patches.make(write_file("designate/extra.py", "EXTRA = True\n"),
                                         "Add extra module")
        self.distro.add_patch("customs", "0001-extra.patch", extra)
        self.distro.commit("series")

    def release(self, *args: str):
        return run_cli("--distro", str(self.root), "-q", "release", "--skip-tests", *args)

    def plan(self) -> dict:
        outcome = run_cli("--distro", str(self.root), "release", "--dry-run", "--json")
        self.assertEqual(0, outcome.code, outcome.stderr)
        return json.loads(outcome.stdout)

    def git(self, *args: str) -> str:
        return git(self.root, *args).strip()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def tags(self) -> list[str]:
        return self.git("tag", "--list").split()

    def tag_commit(self, tag: str) -> str:
        return self.git("rev-parse", f"refs/tags/{tag}^{{commit}}")

    def pin_revision(self) -> int:
        return load_distro(self.root).pin.revision

    def add_customs(self, name: str, subject: str, path: str, text: str) -> None:
        patch = self.distro.patches.make(write_file(path, text), subject)
        self.distro.add_patch("customs", name, patch)
        self.distro.commit(f"add {name}")


class TestRelease(ReleaseCase):
    def test_first_release_commits_builds_checks_and_tags(self) -> None:
        outcome = self.release()
        self.assertEqual(0, outcome.code, outcome.stderr)
        out = self.root / "dist" / "1.0.0.post1"
        self.assertEqual(["debian/1%1.0.0-1", str(out)], outcome.stdout.splitlines())
        self.assertEqual(["debian/1%1.0.0-1"], self.tags())
        self.assertEqual(self.head(), self.tag_commit("debian/1%1.0.0-1"))
        self.assertEqual(FIRST, self.git("log", "-1", "--format=%B") + "\n")
        self.assertEqual("Release Manager <rm@example.org>", self.git("log", "-1", "--format=%an <%ae>"))
        self.assertEqual(FIRST.strip(), self.git("tag", "--list", "--format=%(contents)",
                                                 "debian/1%1.0.0-1"))
        self.assertEqual(["CHANGELOG.md"], self.git("show", "--format=", "--name-only", "HEAD").split())
        self.assertEqual("# Changelog\n\n## 1.0.0.post1 (1:1.0.0-1) — 2023-11-14\n\n"
                         "- first release, on upstream designate 1.0.0\n"
                         "- added customs/0001-extra.patch: Add extra module\n",
                         (self.root / "CHANGELOG.md").read_text())
        self.assertEqual("", self.git("status", "--porcelain", "--untracked-files=no"))
        # the manifest is the one of HEAD's inputs, computed afresh
        distro = load_distro(self.root)
        manifest = json.loads((out / "manifest.json").read_text())
        self.assertEqual("1.0.0.post1", manifest["distro_version"]["pep440"])
        inputs = pipeline.inputs_of(distro, read_series(self.root), skip_tests=True,
                                    epoch=pipeline.source_date_epoch(distro))
        self.assertEqual(pipeline.inputs_digest(inputs), manifest["inputs_digest"])
        self.assertEqual(out, check_build(distro, None, skip_tests=True))

    def test_second_release_bumps_the_revision_and_lists_the_new_patch(self) -> None:
        self.assertEqual(0, self.release().code)
        first = self.head()
        self.add_customs("0002-teapot.patch", "API answers 418 to teapots", "designate/teapot.py",
                         "STATUS = 418\n")
        outcome = self.release()
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertEqual("debian/1%1.0.0-2", outcome.stdout.splitlines()[0])
        self.assertEqual(2, self.pin_revision())
        self.assertEqual(sorted(["debian/1%1.0.0-1", "debian/1%1.0.0-2"]), sorted(self.tags()))
        self.assertEqual(first, self.tag_commit("debian/1%1.0.0-1"))
        self.assertEqual("Release 1.0.0.post2 (1:1.0.0-2)\n\n"
                         "* added customs/0002-teapot.patch: API answers 418 to teapots\n",
                         self.git("log", "-1", "--format=%B") + "\n")
        self.assertEqual(sorted(["CHANGELOG.md", "build/upstream.toml"]),
                         sorted(self.git("show", "--format=", "--name-only", "HEAD").split()))
        changelog = (self.root / "CHANGELOG.md").read_text()
        self.assertTrue(changelog.startswith(
            "# Changelog\n\n## 1.0.0.post2 (1:1.0.0-2) — 2023-11-14\n\n"
            "- added customs/0002-teapot.patch: API answers 418 to teapots\n\n"
            "## 1.0.0.post1 (1:1.0.0-1) — 2023-11-14\n"), changelog)
        manifest = json.loads((self.root / "dist" / "1.0.0.post2" / "manifest.json").read_text())
        self.assertEqual(["0001-extra.patch", "0002-teapot.patch"], [p["file"] for p in manifest["patches"]])

    def test_a_rebase_resets_the_revision(self) -> None:
        self.distro.revision = 3
        self.distro.write_pin(sha=sha256(self.distro.archive))
        self.distro.commit("revision 3")
        self.assertEqual("debian/1%1.0.0-3", self.release().stdout.splitlines()[0])
        # upstream 1.0.1 lands in the mirror; the rebase pins it at revision 1
        tree = copy_upstream(self.distro.base / "upstream-1.0.1", "1.0.1")
        archive = make_sdist(tree, self.distro.archive.parent, version="1.0.1")
        self.distro.version, self.distro.revision = "1.0.1", 1
        self.distro.write_pin(sha=sha256(archive))
        self.distro.commit("rebase onto 1.0.1")
        plan = self.plan()
        self.assertEqual(("1.0.1.post1", "debian/1%1.0.1-1", "debian/1%1.0.0-3", "1:1.0.0-3"),
                         (plan["version"]["pep440"], plan["tag"], plan["previous_tag"],
                          plan["previous_version"]))
        self.assertEqual(["upstream 1.0.0 → 1.0.1"], plan["changes"])
        outcome = self.release()
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertEqual(["debian/1%1.0.1-1", str(self.root / "dist" / "1.0.1.post1")],
                         outcome.stdout.splitlines())
        self.assertEqual(1, self.pin_revision())


    def test_a_release_reads_the_series_once(self) -> None:
        # the plan parses HEAD's series; the build, its prepare and the build check take it from there
        from designate_dist import series as series_mod
        parsed: list[str] = []
        real = series_mod.parse_patch

        def counting(path, series, kind):
            parsed.append(f"{series}/{path.name}")
            return real(path, series, kind)

        self.useFixture(fixtures.MonkeyPatch("designate_dist.series.parse_patch", counting))
        outcome = self.release()
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertEqual(["customs/0001-extra.patch"], parsed)


class TestChanges(ReleaseCase):
    """What the changelog lists, against the last release, through --dry-run (no build)."""

    def setUp(self) -> None:
        super().setUp()
        self.assertEqual(0, self.release().code)
        self.released = self.head()

    def back_to_release(self) -> None:
        self.git("reset", "-q", "--hard", self.released)

    def test_nothing_changed_is_a_rebuild(self) -> None:
        self.distro.commit("an unrelated commit")
        plan = self.plan()
        self.assertEqual(["rebuild, no series change"], plan["changes"])
        self.assertEqual(("1.0.0.post2", "debian/1%1.0.0-2"), (plan["version"]["pep440"], plan["tag"]))

    def test_refreshed_dropped_renamed_and_dependencies(self) -> None:
        patch = self.root / "customs" / "0001-extra.patch"
        patch.write_text(patch.read_text().replace("EXTRA = True", "EXTRA = False"))
        (self.root / "build" / "constraints.txt").write_text("pbr==7.2.0\nsix==1.16.0\n")
        self.distro.commit("refresh, new pins")
        self.assertEqual(["refreshed customs/0001-extra.patch: Add extra module",
                          "dependency pbr 7.1.3 → 7.2.0", "dependency six 1.16.0 added"],
                         self.plan()["changes"])

        self.back_to_release()
        patch.unlink()
        (self.root / "customs" / "series").write_text("# ours\n")
        (self.root / "build" / "constraints.txt").write_text("")
        self.distro.commit("drop")
        self.assertEqual(["dropped customs/0001-extra.patch: Add extra module",
                          "dependency pbr 7.1.3 removed"], self.plan()["changes"])

        self.back_to_release()
        patch.rename(self.root / "customs" / "0005-extra-module.patch")
        (self.root / "customs" / "series").write_text("# ours\n0005-extra-module.patch\n")
        self.distro.commit("rename")
        self.assertEqual(["renamed customs/0001-extra.patch → 0005-extra-module.patch: Add extra module"],
                         self.plan()["changes"])

    def test_reordered_series(self) -> None:
        self.add_customs("0002-teapot.patch", "API answers 418 to teapots", "designate/teapot.py",
                         "STATUS = 418\n")
        self.assertEqual(0, self.release().code)
        (self.root / "customs" / "series").write_text("# ours\n0002-teapot.patch\n0001-extra.patch\n")
        self.distro.commit("teapot first")
        plan = self.plan()
        self.assertEqual(("debian/1%1.0.0-3", "debian/1%1.0.0-2"), (plan["tag"], plan["previous_tag"]))
        self.assertEqual(["reordered the series: customs/0002-teapot.patch, customs/0001-extra.patch"],
                         plan["changes"])

    def test_dry_run_prints_the_plan_and_changes_nothing(self) -> None:
        self.add_customs("0002-teapot.patch", "API answers 418 to teapots", "designate/teapot.py",
                         "STATUS = 418\n")
        git(self.root, "tag", "1.0.0-7")  # a bare version tag is not a release tag (pbr's)
        before, head, status = snapshot(self.root), self.head(), self.git("status", "--porcelain")
        outcome = run_cli("--distro", str(self.root), "release", "--dry-run")
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertEqual(
            "would release 1.0.0.post2 (1:1.0.0-2) as tag debian/1%1.0.0-2, after debian/1%1.0.0-1\n\n"
            "designate (1:1.0.0-2) bookworm; urgency=medium\n\n"
            "  * added customs/0002-teapot.patch: API answers 418 to teapots\n\n"
            " -- Distro Maintainer <distro@example.org>  Tue, 14 Nov 2023 22:30:00 +0000\n",
            outcome.stdout)
        self.assertEqual((before, head, status),
                         (snapshot(self.root), self.head(), self.git("status", "--porcelain")))


class TestRefusals(ReleaseCase):
    """Each refusal is one line, exit 1, and nothing changes."""

    def refused(self, expected: str) -> None:
        before, head = snapshot(self.root) if (self.root / ".git").exists() else None, None
        if before is not None:
            head = self.head()
        outcome = self.release()
        self.assertEqual(1, outcome.code, outcome.stderr)
        self.assertEqual([expected], outcome.error_lines)
        if before is not None:
            self.assertEqual((before, head), (snapshot(self.root), self.head()))
        self.assertFalse((self.root / "dist").exists())

    def test_dirty_tree(self) -> None:
        with open(self.root / "customs" / "series", "a") as handle:
            handle.write("# a comment\n")
        (self.root / "notes.txt").write_text("todo\n")
        self.refused("error: the distribution repository has uncommitted changes: customs/series, "
                     "notes.txt (commit or remove them; a release is made from a clean tree)")

    def test_existing_tag(self) -> None:
        self.git("checkout", "-q", "-b", "elsewhere")
        self.distro.commit("released from another branch")
        self.git("tag", "-a", "-m", "x", "debian/1%1.0.0-1")
        other = self.tag_commit("debian/1%1.0.0-1")
        self.git("checkout", "-q", "main")
        self.refused(f"error: tag debian/1%1.0.0-1 already exists (on {other[:12]}): 1.0.0.post1 was "
                     "released already (raise [distro] revision in build/upstream.toml, or rebase)")

    def test_detached_head(self) -> None:
        self.git("checkout", "-q", "--detach")
        self.refused("error: HEAD is detached: a release is made on a branch (git switch <branch> first)")

    def test_not_a_git_repository(self) -> None:
        shutil.rmtree(self.root / ".git")
        self.refused(f"error: {self.root} is not a git repository: a release is a tagged commit "
                     "(git init and commit the distribution first)")
        self.assertFalse((self.root / "CHANGELOG.md").exists())

    def test_a_failed_commit_puts_the_files_back(self) -> None:
        self.assertEqual(0, self.release().code)
        self.distro.commit("more")
        before, head = snapshot(self.root), self.head()
        lock = self.root / ".git" / "index.lock"
        lock.write_text("")  # another git process holds the index
        outcome = self.release()
        lock.unlink()
        self.assertEqual(1, outcome.code)
        self.assertRegex(outcome.error_lines[0], r"^error: git commit failed: ")
        self.assertEqual((before, head), (snapshot(self.root), self.head()))
        self.assertEqual("", self.git("status", "--porcelain", "--untracked-files=no"))


class TestIdentity(ReleaseCase):
    def test_without_a_git_identity_the_maintainer_commits_and_tags(self) -> None:
        for name in RELEASER:
            self.useFixture(fixtures.EnvironmentVariable(name))
        for name in ("EMAIL", "GIT_CONFIG_SYSTEM"):
            self.useFixture(fixtures.EnvironmentVariable(name))
        self.useFixture(fixtures.EnvironmentVariable("GIT_CONFIG_GLOBAL", "/dev/null"))
        self.useFixture(fixtures.EnvironmentVariable("GIT_CONFIG_NOSYSTEM", "1"))
        outcome = self.release()
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertEqual("Distro Maintainer <distro@example.org>",
                         self.git("log", "-1", "--format=%an <%ae>|%cn <%ce>").split("|")[1])
        self.assertEqual("Distro Maintainer <distro@example.org>",
                         self.git("tag", "--list", "--format=%(taggername) %(taggeremail)",
                                  "debian/1%1.0.0-1"))


class TestBuildCheckAndResume(ReleaseCase):
    def release_commits(self) -> list[str]:
        return [s for s in self.git("log", "--format=%s").splitlines() if s.startswith("Release ")]

    def test_no_build_refuses_a_stale_build_then_resumes(self) -> None:
        self.distro.revision = 2
        self.distro.write_pin(sha=sha256(self.distro.archive))
        self.distro.commit("revision 2")
        built = run_cli("--distro", str(self.root), "-q", "build", "--skip-tests")
        self.assertEqual(0, built.code, built.stderr)
        patch = self.root / "customs" / "0001-extra.patch"
        patch.write_text(patch.read_text().replace("EXTRA = True", "EXTRA = 2"))
        self.distro.commit("refresh after the build")
        outcome = self.release("--no-build")
        self.assertEqual(1, outcome.code)
        [line] = outcome.error_lines
        commit = self.head()
        self.assertEqual("error: the build in dist/1.0.0.post2 was made from other inputs than HEAD "
                         f"(series differ): rebuild (the release commit {commit[:12]} is made; fix the "
                         "cause and run `designate-dist release` again to build and tag it "
                         "(no second bump))", line)
        self.assertEqual(["Release 1.0.0.post2 (1:1.0.0-2)"], self.release_commits())
        self.assertEqual([], self.tags())
        # the maintainer builds HEAD, and release --no-build picks the commit up again
        self.assertEqual(0, run_cli("--distro", str(self.root), "-q", "build", "--skip-tests").code)
        again = self.release("--no-build")
        self.assertEqual(0, again.code, again.stderr)
        self.assertEqual(["debian/1%1.0.0-2"], self.tags())
        self.assertEqual(commit, self.tag_commit("debian/1%1.0.0-2"))
        self.assertEqual(["Release 1.0.0.post2 (1:1.0.0-2)"], self.release_commits())

    def test_a_failed_build_is_resumed_without_a_second_bump(self) -> None:
        self.assertEqual(0, self.release().code)
        self.add_customs("0002-teapot.patch", "API answers 418 to teapots", "designate/teapot.py",
                         "STATUS = 418\n")
        # the build fails after the commit: the output root is a file
        blocker = self.distro.base / "out"
        blocker.write_text("not a directory\n")
        failed = self.release("--output", str(blocker))
        self.assertEqual(1, failed.code)
        self.assertEqual(1, len(failed.error_lines), failed.stderr)
        commit = self.head()
        self.assertEqual("Release 1.0.0.post2 (1:1.0.0-2)", self.git("log", "-1", "--format=%s"))
        self.assertEqual(["debian/1%1.0.0-1"], self.tags())
        blocker.unlink()
        outcome = run_cli("--distro", str(self.root), "release", "--skip-tests", "--output", str(blocker))
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertIn(f"release: resuming Release 1.0.0.post2 (1:1.0.0-2): HEAD {commit[:12]} "
                      "is its untagged commit", outcome.stderr)
        self.assertEqual(["debian/1%1.0.0-2", str(blocker / "1.0.0.post2")], outcome.stdout.splitlines())
        self.assertEqual(commit, self.head())
        self.assertEqual(commit, self.tag_commit("debian/1%1.0.0-2"))
        self.assertEqual(2, self.pin_revision())
        self.assertEqual("Release 1.0.0.post2 (1:1.0.0-2)\n\n"
                         "* added customs/0002-teapot.patch: API answers 418 to teapots",
                         self.git("tag", "--list", "--format=%(contents)", "debian/1%1.0.0-2").strip())
        self.assertEqual(["Release 1.0.0.post2 (1:1.0.0-2)", "Release 1.0.0.post1 (1:1.0.0-1)"],
                         self.release_commits())

    def test_a_fix_committed_after_a_failed_release_keeps_the_version(self) -> None:
        self.assertEqual(0, self.release().code)
        broken = self.distro.patches.make(replace_in("setup.cfg", "[files]", "[files"),
                                          "Tidy setup.cfg", keep=False)
        self.distro.add_patch("customs", "0002-tidy.patch", broken)
        self.distro.commit("add a patch that breaks the build")
        failed = self.release()
        self.assertEqual(1, failed.code)
        self.assertIn("build the wheel of designate-1.0.0 failed", failed.error_lines[0])
        self.assertIn("run `designate-dist release` again to build and tag it", failed.error_lines[0])
        # the maintainer fixes the patch in a new commit on top of the release commit
        fixed = self.distro.patches.make(write_file("designate/tidy.py", "TIDY = 1\n"), "Tidy setup.cfg")
        (self.root / "customs" / "0002-tidy.patch").write_text(fixed)
        self.distro.commit("fix the tidy patch")
        outcome = self.release()
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertEqual("debian/1%1.0.0-2", outcome.stdout.splitlines()[0])
        self.assertEqual(2, self.pin_revision())
        self.assertEqual(["Release 1.0.0.post2 (1:1.0.0-2)", "Release 1.0.0.post2 (1:1.0.0-2)",
                          "Release 1.0.0.post1 (1:1.0.0-1)"], self.release_commits())
        changelog = (self.root / "CHANGELOG.md").read_text()
        self.assertEqual(1, changelog.count("## 1.0.0.post2 "), changelog)
        self.assertIn("## 1.0.0.post2 (1:1.0.0-2) — 2023-11-14\n\n"
                      "- added customs/0002-tidy.patch: Tidy setup.cfg\n\n## 1.0.0.post1 ", changelog)


class TestDebianChangelog(ReleaseCase):
    """A distro with debian/ packaging: the release entry goes on top of debian/changelog."""

    OLD = ("designate (1:0.9.0-1) bookworm; urgency=medium\n\n  * Hand-made package.\n\n"
           " -- Distro Maintainer <distro@example.org>  Mon, 13 Nov 2023 10:00:00 +0000\n")

    def test_release_entry_parses_and_keeps_history(self) -> None:
        shutil.rmtree(self.root / "debian")
        shutil.copytree(REPO / "debian", self.root / "debian")
        (self.root / "debian" / "changelog").write_text(self.OLD)
        self.add_customs("0002-long.patch", "Make the zone name policy also check zone imports and "
                         "zone transfers requested by other projects", "designate/long.py", "X = 1\n")
        # --no-build: the commit is made, then refused (no build), which is all this test needs
        outcome = self.release("--no-build")
        self.assertEqual(1, outcome.code)
        self.assertIn("there is no build of 1.0.0.post1 in dist/1.0.0.post1", outcome.error_lines[0])
        changelog = self.root / "debian" / "changelog"
        self.assertIn("debian/changelog", self.git("show", "--format=", "--name-only", "HEAD").split())
        parsed = subprocess.run(["dpkg-parsechangelog", "-l", str(changelog), "--all",
                                 "--format", "rfc822"], check=True, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual("", parsed.stderr)
        self.assertEqual(["Version: 1:1.0.0-1", "Version: 1:0.9.0-1"],
                         [line for line in parsed.stdout.splitlines() if line.startswith("Version:")])
        self.assertIn("Maintainer: Distro Maintainer <distro@example.org>", parsed.stdout)
        self.assertIn("Date: Tue, 14 Nov 2023 22:30:00 +0000", parsed.stdout)
        text = changelog.read_text()
        self.assertTrue(text.endswith("\n" + self.OLD), text)
        self.assertEqual([], [line for line in text.splitlines() if len(line) >= 80])
        self.assertIn("  * added customs/0002-long.patch: Make the zone name policy also check zone\n"
                      "    imports and zone transfers requested by other projects\n", text)
        # no build; a fix on top of the release commit: the next release replaces the untagged entry
        self.distro.commit("an empty fix on top of the release commit")
        self.assertEqual(1, self.release("--no-build").code)
        self.assertEqual(text, changelog.read_text())
        long_patch = self.root / "customs" / "0002-long.patch"
        long_patch.write_text(long_patch.read_text().replace("X = 1", "X = 2"))
        self.distro.commit("a real fix")
        self.assertEqual(1, self.release("--no-build").code)
        self.assertEqual(text, changelog.read_text())  # the entry lists what changed since no release
        self.assertEqual(["Release 1.0.0.post1 (1:1.0.0-1)"] * 3,
                         [s for s in self.git("log", "--format=%s").splitlines() if s.startswith("Release")])


class TestCommandLine(base.BaseTestCase):
    def test_usage_errors(self) -> None:
        outcome = run_cli("release", "--concurrency", "0")
        self.assertEqual((2, ["error: designate-dist release: argument --concurrency: must be >= 1"]),
                         (outcome.code, outcome.error_lines))

    def test_not_a_distribution_repository(self) -> None:
        empty = self.useFixture(fixtures.TempDir()).path
        outcome = run_cli("--distro", empty, "release", "--dry-run")
        self.assertEqual(1, outcome.code)
        self.assertEqual([f"error: {empty} is not a distribution repository: build/upstream.toml not found "
                          "(pass --distro DIR)"], outcome.error_lines)


class TestTagName(base.BaseTestCase):
    def test_dep14(self) -> None:
        self.assertEqual("debian/1%22.0.1-2", tag_name(DistroVersion("22.0.1", 2)))
        self.assertEqual("debian/1%23.0.0_rc1-1", tag_name(DistroVersion("23.0.0.0rc1", 1)))
