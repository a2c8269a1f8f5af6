"""Classes of rebase cases, each built as a small scenario of its own (tests/fixtures/rebase.py).

Every test makes a release 1.0.0, a release 1.1.0 and a series, runs
``designate-dist rebase`` as a developer would, and checks the report, the
rebased tree and the rewritten patch files.
"""
from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import fixtures
from oslotest import base

from designate_dist.distro import load_distro
from tests.fixtures.cli import REPO, run_cli, run_fresh
from tests.fixtures.distro import git, replace_in, write_file
from tests.fixtures.rebase import Patch, ScenarioFixture, delete_file, edits


def functions(prefix: str, count: int) -> str:
    out = []
    for number in range(count):
        out += [f"def {prefix}_{number}(value):", f"    return value + {number}", "", ""]
    return "\n".join(out)


MODELS = "designate/sample/models.py"
POOL = 'class Pool:\n    """A pool of servers."""\n\n    servers = ()\n\n\n'
MODELS_1_0 = ('"""Models."""\n\n\nclass Zone:\n    name = None\n\n\nclass Record:\n    data = None\n\n\n'
              + functions("helper", 6) + "def last():\n    return 1\n")
FILES = {"designate/sample/__init__.py": "", MODELS: MODELS_1_0}
OUR_OWN_HUNK = replace_in(MODELS, "    return 1\n", "    return 2\n")


class ScenarioCase(base.BaseTestCase):
    def scenario(self, upstream, patches: list[Patch], files: dict[str, str] | None = None) -> ScenarioFixture:
        self.fx = self.useFixture(ScenarioFixture(files if files is not None else FILES, upstream, patches))
        self.root = self.fx.root
        return self.fx

    def dry_run(self) -> dict[str, dict]:
        outcome = run_cli(*self.fx.rebase_args("--dry-run", "--json"))
        self.assertIn(outcome.code, (0, 3), outcome.stderr)
        report = json.loads(outcome.stdout)
        self.assertTrue(report["finished"])  # the triage went through every patch
        return {f"{p['series']}/{p['file']}": p for p in report["patches"]}

    def rebase(self, *extra: str, code: int = 0) -> dict:
        outcome = run_cli(*self.fx.rebase_args("--json", *extra))
        self.assertEqual(code, outcome.code, outcome.stderr)
        return json.loads(outcome.stdout)

    def prepared_tree(self) -> Path:
        prepared = run_cli("--distro", str(self.root), "-q", "prepare")
        self.assertEqual(0, prepared.code, prepared.stderr)
        return Path(prepared.stdout.strip())


class TestHunkAlreadyUpstream(ScenarioCase):
    """A hunk whose added lines upstream added too is never applied a second time (issue 13.2)."""

    def check_pool_once(self, report: dict) -> None:
        tree = self.prepared_tree()
        text = (tree / MODELS).read_text()
        self.assertEqual(1, text.count("class Pool:"), text)
        self.assertIn("    return 2\n", text)  # our own hunk is kept
        patch = (self.root / "customs/0001-pool.patch").read_text()
        self.assertNotIn("class Pool", patch)
        self.assertIn("+    return 2", patch)
        self.assertIn("Subject: [PATCH] Add pools", patch)

    def test_upstream_added_the_block_a_few_lines_away(self) -> None:
        # upstream put the class after Record; our patch puts it before: the hunk applies with an offset
        self.scenario(replace_in(MODELS, "    data = None\n\n\n", "    data = None\n\n\n" + POOL),
                      [Patch("customs", "0001-pool.patch",
                             edits(replace_in(MODELS, "class Record:\n", POOL + "class Record:\n"), OUR_OWN_HUNK),
                             "Add pools")])
        entry = self.dry_run()["customs/0001-pool.patch"]
        self.assertEqual("partly-upstream", entry["status"])
        self.assertEqual("already in 1.1.0: hunk #1 of designate/sample/models.py (@@ -5,6 +5,12 @@): "
                         "its 4 added lines are there", entry["note"])
        self.assertIn("+    return 2", entry["remaining_diff"])
        self.assertNotIn("class Pool", entry["remaining_diff"])
        report = self.rebase()
        self.check_pool_once(report)

    def test_upstream_added_the_block_and_changed_its_context(self) -> None:
        # the old code fuzzed this in next to upstream's copy
        self.scenario(edits(replace_in(MODELS, "class Record:\n", POOL + "class Record:\n"),
                            replace_in(MODELS, "    name = None\n", "    name = ''\n")),
                      [Patch("customs", "0001-pool.patch",
                             edits(replace_in(MODELS, "class Record:\n", POOL + "class Record:\n"), OUR_OWN_HUNK),
                             "Add pools")])
        entry = self.dry_run()["customs/0001-pool.patch"]
        self.assertEqual("partly-upstream", entry["status"])
        self.assertNotIn("fuzz", entry["note"])
        self.check_pool_once(self.rebase())

    def test_a_patch_made_only_of_upstream_hunks_is_dropped(self) -> None:
        self.scenario(replace_in(MODELS, "    data = None\n\n\n", "    data = None\n\n\n" + POOL),
                      [Patch("customs", "0001-pool.patch",
                             replace_in(MODELS, "class Record:\n", POOL + "class Record:\n"), "Add pools"),
                       Patch("customs", "0002-last.patch", OUR_OWN_HUNK, "Return two")])
        statuses = self.dry_run()
        self.assertEqual("upstream", statuses["customs/0001-pool.patch"]["status"])
        self.assertIn("hunk #1 of designate/sample/models.py", statuses["customs/0001-pool.patch"]["note"])
        self.assertEqual("clean", statuses["customs/0002-last.patch"]["status"])
        self.rebase()
        self.assertFalse((self.root / "customs/0001-pool.patch").exists())
        self.assertEqual(1, (self.prepared_tree() / MODELS).read_text().count("class Pool:"))

    def test_common_lines_upstream_added_elsewhere_are_still_ours(self) -> None:
        # upstream added a short `pass` line elsewhere; ours adds the same short line, and a copy of a
        # function 1.0.0 already had (1.1.0 has no more copies of it than 1.0.0): both are ours to add
        extra = "def helper_0(value):\n    return value + 0\n"
        self.scenario(replace_in(MODELS, "def last():\n    return 1\n", "def last():\n    return 1\n\n\n"
                                 "def first():\n    pass\n"),
                      [Patch("customs", "0001-ours.patch",
                             edits(replace_in(MODELS, "class Zone:\n    name = None\n",
                                              "class Zone:\n    name = None\n    pass\n"),
                                   replace_in(MODELS, "def helper_4(value):\n", extra + "\n\ndef helper_4(value):\n")),
                             "Our pass and helper")])
        entry = self.dry_run()["customs/0001-ours.patch"]
        self.assertIn(entry["status"], ("clean", "refreshed"), entry)
        self.rebase()
        text = (self.prepared_tree() / MODELS).read_text()
        self.assertEqual(2, text.count("    pass\n"))
        self.assertEqual(2, text.count(extra))

    def test_a_changed_context_line_goes_through_the_three_way_merge_not_fuzz(self) -> None:
        self.scenario(replace_in(MODELS, "    return value + 5\n", "    return value + 55\n"),
                      [Patch("customs", "0001-last.patch", OUR_OWN_HUNK, "Return two")])
        entry = self.dry_run()["customs/0001-last.patch"]
        self.assertEqual(("refreshed", "3-way merge"), (entry["status"], entry["note"]))
        self.rebase()
        self.assertIn("     return value + 55", (self.root / "customs/0001-last.patch").read_text())


def take_ours(path: Path) -> None:
    """Resolve every conflict in ``path`` by keeping the patch's side (after =======)."""
    text = path.read_text()
    path.write_text(re.sub(r"<<<<<<< [^\n]*\n.*?\n=======\n(.*?)>>>>>>> [^\n]*\n", r"\1", text, flags=re.S))


class ConflictCase(ScenarioCase):
    """A series whose second patch conflicts: 1.1.0 changed the line it changes."""

    def setUp(self) -> None:
        super().setUp()
        self.scenario(replace_in(MODELS, "    data = None\n", "    data = 'upstream'\n"),
                      [Patch("customs", "0001-last.patch", OUR_OWN_HUNK, "Return two"),
                       Patch("customs", "0002-data.patch", replace_in(MODELS, "    data = None\n", "    data = 'ours'\n"),
                             "Our data")])
        outcome = run_cli(*self.fx.rebase_args())
        self.assertEqual(3, outcome.code, outcome.stderr)
        self.tree = self.fx.rebase_tree

    def cont(self, *extra: str) -> subprocess.CompletedProcess:
        return run_fresh("--distro", str(self.root), "rebase", "--continue", *extra)


class TestContinueTakesOnlyTheResolution(ConflictCase):
    """--continue commits tracked changes and `git add`ed files, never a stray file (issue 13.3)."""

    def test_a_merge_tool_backup_with_markers_is_refused_then_left_out(self) -> None:
        models = self.tree / MODELS
        backup = self.tree / (MODELS + ".orig")
        backup.write_text(models.read_text())  # what `git mergetool` leaves behind
        take_ours(models)
        git(self.tree, "add", MODELS)
        refused = self.cont()
        self.assertEqual(3, refused.returncode, refused.stderr)
        self.assertEqual(f"error: customs/0002-data.patch: conflict markers left in {MODELS}.orig "
                         "(remove them and `git add` the file (delete a merge tool's backup files), then run "
                         "`designate-dist rebase --continue` again)", refused.stderr.strip().splitlines()[-1])
        backup.unlink()
        (self.tree / "NOTES.txt").write_text("my notes, not part of the patch\n")
        done = self.cont()
        self.assertEqual(0, done.returncode, done.stderr)
        self.assertIn("rebase: left out of customs/0002-data.patch (untracked; `git add` what belongs to it): "
                      "NOTES.txt", done.stderr)
        patch = (self.root / "customs/0002-data.patch").read_text()
        self.assertIn("+    data = 'ours'", patch)
        self.assertNotIn("NOTES.txt", patch)
        self.assertNotIn(".orig", patch)

    def test_markers_left_in_another_tracked_file_are_refused(self) -> None:
        take_ours(self.tree / MODELS)
        git(self.tree, "add", MODELS)
        # a tracked file the developer touched (not git added) with a conflict pasted in
        readme = self.tree / "README.rst"
        readme.write_text(readme.read_text() + "<<<<<<< HEAD\nmine\n=======\ntheirs\n>>>>>>> other\n")
        refused = self.cont()
        self.assertEqual(3, refused.returncode, refused.stderr)
        self.assertIn("error: customs/0002-data.patch: conflict markers left in README.rst", refused.stderr)
        git(self.tree, "checkout", "HEAD", "--", "README.rst")
        self.assertEqual(0, self.cont().returncode)

    def test_a_file_the_developer_git_added_is_part_of_the_patch(self) -> None:
        take_ours(self.tree / MODELS)
        write_file("designate/sample/data.py", "DATA = 'ours'\n")(self.tree)
        git(self.tree, "add", MODELS, "designate/sample/data.py")
        done = self.cont("--json")
        self.assertEqual(0, done.returncode, done.stderr)
        self.assertIn("+DATA = 'ours'", (self.root / "customs/0002-data.patch").read_text())

    def test_a_commit_of_the_developer_with_markers_is_refused(self) -> None:
        git(self.tree, "add", MODELS)  # markers and all
        git(self.tree, "commit", "-q", "--no-edit")
        refused = self.cont()
        self.assertEqual(3, refused.returncode, refused.stderr)
        self.assertIn(f"error: customs/0002-data.patch: conflict markers left in {MODELS} "
                      "(fix them and amend the commit (`git commit --amend`)", refused.stderr)
        self.assertEqual("1.0.0", load_distro(self.root).pin.version)


LEGACY = "designate/sample/legacy.py"


class TestModifyDelete(ScenarioCase):
    """A patch changing a file the new release deleted is named as such, never silently re-added (13.4)."""

    def setUp(self) -> None:
        super().setUp()
        files = dict(FILES, **{LEGACY: '"""Legacy."""\n\n\n' + functions("legacy", 4)})
        self.scenario(delete_file(LEGACY),
                      [Patch("customs", "0001-legacy.patch", replace_in(LEGACY, "value + 2\n", "value + 20\n"),
                             "Legacy: step two"),
                       Patch("customs", "0002-last.patch", OUR_OWN_HUNK, "Return two")], files=files)

    def test_named_in_the_table_the_stop_message_and_the_hint(self) -> None:
        entry = self.dry_run()["customs/0001-legacy.patch"]
        self.assertEqual("conflict", entry["status"])
        self.assertEqual(f"conflicts in {LEGACY}; modify/delete: {LEGACY} was deleted in 1.1.0", entry["note"])
        outcome = run_cli(*self.fx.rebase_args())
        self.assertEqual(3, outcome.code)
        self.assertEqual(
            [f"error: rebase onto 1.1.0 stopped: customs/0001-legacy.patch conflicts in {LEGACY}; modify/delete: "
             f"{LEGACY} was deleted in 1.1.0 (resolve the conflicts in {self.fx.rebase_tree}, `git add` the files; "
             f"{LEGACY} was deleted upstream: to drop our change to it, `git rm {LEGACY}` (a `git add` adds it "
             "back), then run `designate-dist rebase --continue`; or `designate-dist rebase --abort`)"],
            outcome.error_lines)

    def test_following_the_hint_drops_our_change(self) -> None:
        self.assertEqual(3, run_cli(*self.fx.rebase_args()).code)
        git(self.fx.rebase_tree, "rm", "-q", LEGACY)
        done = run_fresh("--distro", str(self.root), "rebase", "--continue", "--json")
        self.assertEqual(0, done.returncode, done.stderr)
        by_ref = {f"{p['series']}/{p['file']}": p for p in json.loads(done.stdout)["patches"]}
        self.assertEqual("upstream", by_ref["customs/0001-legacy.patch"]["status"])
        self.assertFalse((self.root / "customs/0001-legacy.patch").exists())
        self.assertFalse((self.prepared_tree() / LEGACY).exists())

    def test_a_resolution_that_adds_the_file_back_is_warned_about(self) -> None:
        self.assertEqual(3, run_cli(*self.fx.rebase_args()).code)
        git(self.fx.rebase_tree, "add", LEGACY)  # the printed instruction, followed blindly
        done = run_fresh("--distro", str(self.root), "rebase", "--continue")
        self.assertEqual(0, done.returncode, done.stderr)
        warning = (f"customs/0001-legacy.patch: the resolution adds back {LEGACY}, deleted in 1.1.0; "
                   "if that is not meant, `git rm` it and amend")
        self.assertIn(f"warning: {warning}", done.stderr)   # --continue's own output
        self.assertIn(f"warning: {warning}", done.stdout)   # and the report



class TestDeleteModify(ScenarioCase):
    def test_a_patch_deleting_a_file_upstream_changed(self) -> None:
        files = dict(FILES, **{LEGACY: '"""Legacy."""\n\n\n' + functions("legacy", 4)})
        self.scenario(replace_in(LEGACY, "value + 2\n", "value + 22\n"),
                      [Patch("customs", "0001-drop-legacy.patch", delete_file(LEGACY), "Drop legacy")], files=files)
        entry = self.dry_run()["customs/0001-drop-legacy.patch"]
        self.assertEqual("conflict", entry["status"])
        self.assertIn(f"delete/modify: the patch deletes {LEGACY}, which 1.1.0 changed", entry["note"])


REQUIREMENTS_1_0 = "pbr>=3.1.1 # Apache-2.0\nrequests>=2.23.0 # Apache-2.0\n"
TEST_REQUIREMENTS_1_0 = "stestr>=3.0.0 # Apache-2.0\n"


class TestRequirementsNamedTwice(ScenarioCase):
    """A requirement both we and the new release add is flagged, never silently listed twice (13.5)."""

    def setUp(self) -> None:
        super().setUp()
        files = dict(FILES, **{"requirements.txt": REQUIREMENTS_1_0, "test-requirements.txt": TEST_REQUIREMENTS_1_0})
        self.scenario(
            edits(write_file("requirements.txt", "pbr>=3.1.1 # Apache-2.0\ndnspython>=2.6.0 # ISC\n"
                                                 "requests>=2.23.0 # Apache-2.0\n"),
                  write_file("test-requirements.txt", "fixtures>=4.0 # Apache-2.0\nstestr>=3.0.0 # Apache-2.0\n")),
            [Patch("customs", "0001-dnspython.patch",
                   replace_in("requirements.txt", "requests>=2.23.0 # Apache-2.0\n",
                              "requests>=2.23.0 # Apache-2.0\nDNSPython>=2.4.0 # ISC\n"), "Require dnspython"),
             Patch("customs", "0002-fixtures.patch",
                   replace_in("test-requirements.txt", "stestr>=3.0.0 # Apache-2.0\n",
                              "stestr>=3.0.0 # Apache-2.0\n\n# ours\nfixtures>=3.0.0\n"), "Test with fixtures"),
             Patch("customs", "0003-markers.patch",
                   replace_in("requirements.txt", "pbr>=3.1.1 # Apache-2.0\n",
                              'six>=1.0; python_version<"3"\nsix>=1.16; python_version>="3"\npbr>=3.1.1 # Apache-2.0\n'),
                   "Six under two markers")], files=files)

    def test_flagged_in_the_report(self) -> None:
        report = self.rebase()
        by_ref = {f"{p['series']}/{p['file']}": p for p in report["patches"]}
        dns = by_ref["customs/0001-dnspython.patch"]
        self.assertIn("upstream now requires dnspython itself (dnspython>=2.6.0; ours dnspython>=2.4.0)", dns["note"])
        self.assertIn("requirements.txt names dnspython 2 times (line 2: dnspython>=2.6.0, line 4: dnspython>=2.4.0)",
                      dns["note"])
        fixtures_patch = by_ref["customs/0002-fixtures.patch"]
        self.assertIn("test-requirements.txt names fixtures 2 times", fixtures_patch["note"])
        self.assertTrue(any(w.startswith("customs/0002-fixtures.patch: ") and "fixtures 2 times" in w
                            for w in report["warnings"]), report["warnings"])
        # the same project under two markers is not a duplicate
        self.assertNotIn("six", by_ref["customs/0003-markers.patch"]["note"])
        self.assertFalse(any("six" in w for w in report["warnings"]))


def run_with_closed_stdout(*argv: str) -> subprocess.CompletedProcess:
    """``designate-dist argv | head -0``: the reader of stdout is gone before the first line."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "designate_dist", *argv], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    finally:
        os.close(write_end)


class TestWhileStopped(ConflictCase):
    def test_a_dry_run_runs_in_a_scratch_tree_and_changes_nothing(self) -> None:
        state = (self.root / ".work/rebase/state.json").read_bytes()
        tree_head = git(self.tree, "rev-parse", "HEAD")
        status = git(self.tree, "status", "--porcelain")
        outcome = run_cli(*self.fx.rebase_args("--dry-run", "--json"))
        self.assertEqual(3, outcome.code, outcome.stderr)
        report = json.loads(outcome.stdout)
        self.assertTrue(report["dry_run"])
        self.assertTrue(report["finished"])
        self.assertEqual(["clean", "conflict"], [p["status"] for p in report["patches"]])
        self.assertEqual(state, (self.root / ".work/rebase/state.json").read_bytes())
        self.assertEqual((tree_head, status), (git(self.tree, "rev-parse", "HEAD"),
                                               git(self.tree, "status", "--porcelain")))
        self.assertFalse((self.root / ".work/.scratch").exists())

    def test_a_failed_continue_with_json_prints_an_error_object(self) -> None:
        refused = self.cont("--json")
        self.assertEqual(3, refused.returncode)
        self.assertEqual({"error": {"message": f"customs/0002-data.patch still has unresolved conflicts in {MODELS}",
                                    "exit_code": 3, "patch": "customs/0002-data.patch", "files": [MODELS],
                                    "hint": f"resolve them in {self.tree} and `git add` them, then run "
                                            "`designate-dist rebase --continue` again"}},
                         json.loads(refused.stdout))
        self.assertIn("error: customs/0002-data.patch still has unresolved conflicts", refused.stderr)

    def test_status_into_a_closed_pipe_exits_quietly(self) -> None:
        outcome = run_with_closed_stdout("--distro", str(self.root), "rebase", "--status")
        self.assertEqual((0, ""), (outcome.returncode, outcome.stderr))
        # a command that fails keeps its own exit code and error line
        outcome = run_with_closed_stdout("--distro", str(self.root), "rebase", "--continue")
        self.assertEqual(3, outcome.returncode)
        self.assertEqual(1, len(outcome.stderr.splitlines()), outcome.stderr)
        self.assertTrue(outcome.stderr.startswith("error: customs/0002-data.patch still has unresolved"))

    def test_abort_leaves_nothing_behind(self) -> None:
        self.assertEqual(0, self.cont_abort().returncode)
        self.assertEqual([], sorted(p.name for p in (self.root / ".work").iterdir()
                                    if p.name != f"designate-{self.fx.version}"))

    def cont_abort(self) -> subprocess.CompletedProcess:
        return run_fresh("--distro", str(self.root), "rebase", "--abort")


class TestSmallerOnes(ScenarioCase):
    def test_json_error_when_no_rebase_is_in_progress(self) -> None:
        self.scenario(OUR_OWN_HUNK, [])
        outcome = run_cli("--distro", str(self.root), "rebase", "--continue", "--json")
        self.assertEqual(1, outcome.code)
        self.assertEqual({"error": {"message": "no rebase in progress", "exit_code": 1,
                                    "hint": "start one with `designate-dist rebase --onto VERSION`"}},
                         json.loads(outcome.stdout))

    def test_plurals_in_notes_and_summary(self) -> None:
        self.scenario(replace_in(MODELS, '"""Models."""\n', '"""Models."""\nimport os\n'),
                      [Patch("customs", "0001-last.patch", OUR_OWN_HUNK, "Return two")])
        outcome = run_cli(*self.fx.rebase_args("--dry-run", "-q"))
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertIn("customs/0001-last.patch  custom  refreshed  offset 1 line\n", outcome.stdout)
        self.assertIn("dry run: 1.0.0 -> 1.1.0: 1 patch (1 refreshed)\n", outcome.stdout)

    def test_finish_regenerates_patches_and_says_what_next(self) -> None:
        self.scenario(replace_in(MODELS, '"""Models."""\n', '"""Models."""\nimport os\n'),
                      [Patch("customs", "0001-last.patch", OUR_OWN_HUNK, "Return two")])
        self.assertEqual(0, run_cli("--distro", str(self.root), "-q", "quilt").code)
        self.fx.commit("patches/ generated")
        outcome = run_cli(*self.fx.rebase_args())
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertIn("next:\n  - patches/ regenerated (1 patch)\n", outcome.stdout)
        self.assertIn("  - build and test 1.1.0: `designate-dist build`", outcome.stdout)
        self.assertIn("@@ -34,4 +34,4 @@", (self.root / "patches/0001-customs-last.patch").read_text())
        # patches/ is exactly what `quilt` makes from the rebased series
        regenerated = {p.name: p.read_bytes() for p in (self.root / "patches").iterdir()}
        self.assertEqual(0, run_cli("--distro", str(self.root), "-q", "quilt").code)
        self.assertEqual(regenerated, {p.name: p.read_bytes() for p in (self.root / "patches").iterdir()})
        # and nothing of the rebase is left in the work dir (1.0.0's tree is the one `quilt` prepared)
        self.assertEqual(["designate-1.0.0", "designate-1.1.0"],
                         sorted(p.name for p in (self.root / ".work").iterdir()))

    def test_a_killed_rebase_leaves_scratch_that_the_next_run_cleans(self) -> None:
        self.scenario(OUR_OWN_HUNK, [Patch("customs", "0001-last.patch", OUR_OWN_HUNK, "Return two")])
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                              stdout=subprocess.PIPE, check=True)
        stale = self.root / ".work/.scratch" / f"rebase-{gone.stdout.strip()}-abcd1234"
        (stale / "old").mkdir(parents=True)
        (stale / "old" / "big").write_bytes(b"x" * 4096)
        outcome = run_cli(*self.fx.rebase_args("--dry-run", "-q"))
        self.assertIn(outcome.code, (0, 3), outcome.stderr)
        self.assertFalse((self.root / ".work/.scratch").exists())
        self.assertFalse(any(Path(tempfile.gettempdir()).glob(f"designate-dist-rebase-*{os.getpid()}*")))


class _IndexJSON(http.server.BaseHTTPRequestHandler):
    """A package index's JSON API that knows one release: designate 1.1.0."""

    digest = "ab" * 32

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path != "/designate/1.1.0/json":
            self.send_error(404)
            return
        body = json.dumps({"urls": [
            {"packagetype": "bdist_wheel", "filename": "designate-1.1.0-py3-none-any.whl",
             "digests": {"sha256": "cd" * 32}},
            {"packagetype": "sdist", "filename": "designate-1.1.0.tar.gz", "digests": {"sha256": self.digest}},
        ]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class TestSha256Argument(ScenarioCase):
    """--sha256 is checked before anything is fetched; a missing one says where to get it (13.1, 18)."""

    def setUp(self) -> None:
        super().setUp()
        self.scenario(OUR_OWN_HUNK, [Patch("customs", "0001-last.patch", OUR_OWN_HUNK, "Return two")])

    def test_not_64_hex_digits_is_a_usage_error_before_any_download(self) -> None:
        for bad in ("abc", "g" * 64, "a" * 63, self.fx.new_sha256 + "0"):
            outcome = run_cli("--distro", str(self.root), "rebase", "--onto", "1.1.0", "--sha256", bad)
            self.assertEqual(2, outcome.code, bad)
            self.assertEqual([f"error: designate-dist rebase: argument --sha256: {bad!r} is not a sha256 "
                              "(64 hex digits)"], outcome.error_lines)
        self.assertFalse(any(self.fx.cache.rglob("designate-1.1.0*")))
        self.assertFalse((self.root / ".work/rebase").exists())
        upper = run_cli("--distro", str(self.root), "-q", "rebase", "--onto", "1.1.0", "--dry-run",
                        "--sha256", self.fx.new_sha256.upper())
        self.assertEqual(0, upper.code, upper.stderr)  # case does not matter

    def test_missing_for_a_pypi_source_shows_the_published_digest_to_confirm(self) -> None:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _IndexJSON)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.useFixture(fixtures.EnvironmentVariable("DESIGNATE_DIST_INDEX_JSON",
                                                     f"http://127.0.0.1:{server.server_address[1]}"))
        outcome = run_cli("--distro", str(self.root), "rebase", "--onto", "1.1.0", "--source", "pypi")
        self.assertEqual(2, outcome.code)
        digest = "ab" * 32
        self.assertEqual([f"error: rebase --onto 1.1.0: --sha256 is required for a pypi source (the new archive "
                          f"is verified like the pin) (the package index publishes sha256 {digest} for "
                          "designate-1.1.0.tar.gz: confirm it from a second source (never take it on the index's "
                          f"word alone), then pass --sha256 {digest})"], outcome.error_lines)
        self.assertEqual("1.0.0", load_distro(self.root).pin.version)  # nothing taken on trust
        # an index that does not answer: still says how to get the hash
        server.shutdown()
        server.server_close()
        offline = run_cli("--distro", str(self.root), "rebase", "--onto", "1.1.0", "--source", "pypi")
        self.assertEqual(2, offline.code)
        self.assertIn("take the sha256 of designate-1.1.0.tar.gz from the release's files on the package index "
                      "or from a copy you trust (`sha256sum designate-1.1.0.tar.gz`)", offline.stderr)


class TestEveryWayGivesTheSameTriage(base.BaseTestCase):
    """The replay without a checkout (in process, merge-tree) and the one in the work tree agree."""

    def test_in_process_and_in_the_work_tree(self) -> None:
        from tests.fixtures.rebase import RebaseFixture
        fx = self.useFixture(RebaseFixture())
        reports = []
        for patches in ((), (("designate_dist.gitrepo.WorkTree.merge_tree", lambda self, ours, theirs: None),
                             ("designate_dist.gitrepo.WorkTree.can_write_objects", lambda self: False))):
            for target, value in patches:
                self.useFixture(fixtures.MonkeyPatch(target, value))
            outcome = run_cli(*fx.rebase_args(), "--dry-run", "--json")
            self.assertEqual(3, outcome.code, outcome.stderr)
            report = json.loads(outcome.stdout)
            reports.append({f"{p['series']}/{p['file']}": (p["status"], p.get("remaining_diff"))
                            for p in report["patches"]})
        self.assertEqual(fx.expected, {ref: status for ref, (status, _) in reports[0].items()})
        self.assertEqual(reports[0], reports[1])


class TestKilledRealRebase(ScenarioCase):
    def test_its_leftovers_go_with_the_next_run(self) -> None:
        self.scenario(OUR_OWN_HUNK, [Patch("customs", "0001-last.patch", OUR_OWN_HUNK, "Return two")])
        # killed while importing, and killed after importing but before saving its state
        half_import = self.root / ".work/rebase/.designate-1.1.0.import-x1y2z3"
        (half_import / "unpack").mkdir(parents=True)
        (self.root / ".work/rebase/designate-1.1.0").mkdir()
        self.rebase()
        self.assertFalse((self.root / ".work/rebase").exists())
        self.assertEqual(["designate-1.1.0"], sorted(p.name for p in (self.root / ".work").iterdir()))
