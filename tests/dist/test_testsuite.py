"""The upstream unit test stage on the tiny fixture upstream, with a real venv and real stestr.

The fixture's lock (tests/data/fixture-constraints.txt) pins pbr and stestr
only; its venv is cached in a cache shared by these tests
(DESIGNATE_DIST_TEST_CACHE), so only the first test of a fresh machine pays
for the pip install.
"""
from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import fixtures
import testtools
from oslotest import base

from designate_dist.errors import ConfigError
from designate_dist.testsuite import VENV_MARKER, junit_xml, parse_exclusions
from tests.fixtures.cache import shared_test_cache
from tests.fixtures.cli import run_cli
from tests.fixtures.distro import DATA, DistroFixture, git, replace_in, write_file

FIXTURE_LOCK = DATA / "fixture-constraints.txt"
MIDDLEWARE_TESTS = "designate.tests.test_middleware.TestMiddleware"


class TestExclusionFormat(base.BaseTestCase):
    def test_entries_need_a_reason(self) -> None:
        entries = parse_exclusions("# header\n\nfoo\\.bar  # flaky on 2 cores\nbaz # why\n", "ex.txt")
        self.assertEqual([(3, "foo\\.bar", "flaky on 2 cores"), (4, "baz", "why")],
                         [(e.line, e.regex, e.reason) for e in entries])
        for text in ("foo\\.bar\n", "foo\\.bar  #\n", "foo#notacomment\n"):
            error = self.assertRaises(ConfigError, parse_exclusions, "# c\n" + text, "ex.txt")
            self.assertIn("ex.txt:2: exclusion", str(error))
            self.assertIn("has no reason", str(error))

    def test_bad_regex_names_the_line(self) -> None:
        error = self.assertRaises(ConfigError, parse_exclusions, "foo(  # broken\n", "ex.txt")
        self.assertIn("ex.txt:1: 'foo(' is not a valid regex", str(error))

    def test_the_shipped_list_is_valid(self) -> None:
        shipped = Path(__file__).resolve().parents[2] / "build" / "test-exclusions.txt"
        parse_exclusions(shipped.read_text(), str(shipped))


class TestJunit(base.BaseTestCase):
    def test_counts_and_cases(self) -> None:
        from testtools.content import text_content
        tests = [{"id": "a.B.test_ok", "status": "success", "details": {}, "timestamps": (None, None)},
                 {"id": "a.B.test_bad", "status": "fail", "timestamps": (None, None),
                  "details": {"traceback": text_content("AssertionError: <1 & 2>")}},
                 {"id": "a.B.test_skip", "status": "skip", "timestamps": (None, None),
                  "details": {"reason": text_content("no bind9")}}]
        root = ET.fromstring(junit_xml(tests, "suite").split("\n", 1)[1])
        self.assertEqual(("3", "1", "1"), (root.get("tests"), root.get("failures"), root.get("skipped")))
        bad = root.find("testcase[@name='test_bad']")
        self.assertEqual("a.B", bad.get("classname"))
        self.assertIn("AssertionError: <1 & 2>", bad.find("failure").text)
        self.assertEqual("no bind9", root.find("testcase[@name='test_skip']/skipped").get("message"))


class StageTestCase(base.BaseTestCase):
    """A fixture distro whose lock is the fixture lock, with the shared cache."""

    def setUp(self) -> None:
        super().setUp()
        self.useFixture(fixtures.Timeout(900, gentle=True))
        self.distro = self.useFixture(DistroFixture())
        self.cache = shared_test_cache()
        self.useFixture(fixtures.EnvironmentVariable("DESIGNATE_DIST_CACHE", str(self.cache)))
        shutil.copyfile(FIXTURE_LOCK, self.distro.root / "build" / "constraints.txt")
        self.distro.commit("fixture lock")
        self.out = self.distro.base / "out"

    def exclusions(self, text: str) -> None:
        (self.distro.root / "build" / "test-exclusions.txt").write_text(text)
        self.distro.commit("exclusions")

    def customs(self, name: str, edit, subject: str) -> None:
        self.distro.add_patch("customs", name, self.distro.patches.make(edit, subject))
        self.distro.commit(f"add {name}")

    def build(self, *extra: str):
        return run_cli("--distro", str(self.distro.root), "build", "--output", str(self.out), *extra)

    def run_test_cmd(self, *extra: str):
        return run_cli("--distro", str(self.distro.root), "test", "--output", str(self.out), *extra)

    def manifest(self) -> dict:
        return json.loads((self.out / "1.0.0.post1" / "manifest.json").read_text())

    def assert_work_tree_clean(self) -> None:
        self.assertEqual("", git(self.distro.work_tree, "status", "--porcelain", "--ignored"))


class TestStage(StageTestCase):
    def test_build_runs_upstream_tests_and_records_them(self) -> None:
        outcome = self.build()
        self.assertEqual(0, outcome.code, outcome.stderr)
        tests = self.manifest()["tests"]
        self.assertTrue(tests["ran"])
        self.assertEqual((3, 3, 0, 0, 0), (tests["run"], tests["passed"], tests["failed"],
                                           tests["skipped"], tests["excluded"]))
        self.assertEqual([], tests["stale_exclusions"])
        self.assertIn("wall_time_s", tests)
        out = self.out / "1.0.0.post1" / "tests"
        junit = ET.parse(out / "junit.xml").getroot()
        self.assertEqual("3", junit.get("tests"))
        self.assertEqual({f"{MIDDLEWARE_TESTS}.test_error_body", f"{MIDDLEWARE_TESTS}.test_status_line",
                          f"{MIDDLEWARE_TESTS}.test_zone_name"},
                         {f"{c.get('classname')}.{c.get('name')}" for c in junit.iter("testcase")})
        self.assertEqual(b"\xb3", (out / "tests.subunit").read_bytes()[:1])  # subunit v2
        files = {a["file"] for a in self.manifest()["artifacts"]}
        self.assertLessEqual({"tests/tests.subunit", "tests/junit.xml", "tests/tests.log"}, files)
        self.assertIn("test: 3 run, 3 passed, 0 failed", outcome.stderr)
        # nothing of the run lands in the work tree (no .stestr, egg-info or __pycache__)
        self.assert_work_tree_clean()

    def test_broken_customs_patch_fails_the_build_with_exit_4(self) -> None:
        self.customs("0001-break-status.patch",
                     replace_in("designate/api/middleware.py", '404: "Not Found"', '404: "Gone"'),
                     "Break the status line")
        outcome = self.build()
        self.assertEqual(4, outcome.code, outcome.stderr)
        [line] = outcome.error_lines
        self.assertIn(f"1 upstream tests failed: {MIDDLEWARE_TESTS}.test_status_line (full log: ", line)
        log = Path(line.split("(full log: ", 1)[1].rstrip(")"))
        self.assertIn("AssertionError", log.read_text())
        self.assertFalse((self.out / "1.0.0.post1").exists())

    def test_patch_that_breaks_imports_fails_with_exit_4(self) -> None:
        self.customs("0001-syntax-error.patch",
                     replace_in("designate/api/middleware.py", "def status_line(code):",
                                "def status_line(code:"),
                     "Break the middleware module")
        outcome = self.run_test_cmd()
        self.assertEqual(4, outcome.code, outcome.stderr)
        [line] = outcome.error_lines
        self.assertIn("error: stestr could not load upstream's tests: ", line)
        self.assertIn("designate.tests.test_middleware", line)
        log = Path(line.split("(full log: ", 1)[1].rstrip(")"))
        self.assertIn("SyntaxError", log.read_text())

    def test_many_failures_are_cut_after_20(self) -> None:
        body = "import unittest\n\n\nclass TestBroken(unittest.TestCase):\n" + "".join(
            f"    def test_{n:02d}(self):\n        self.fail('broken {n}')\n\n" for n in range(25))
        self.customs("0001-broken-tests.patch", write_file("designate/tests/test_broken.py", body),
                     "Add 25 failing tests")
        outcome = self.run_test_cmd("--concurrency", "1")
        self.assertEqual(4, outcome.code, outcome.stderr)
        [line] = outcome.error_lines
        self.assertIn("error: 25 upstream tests failed: designate.tests.test_broken.TestBroken.test_00, ",
                      line)
        self.assertIn("TestBroken.test_19 and 5 more (full log: ", line)
        self.assertNotIn("test_20", line)
        junit = ET.parse(self.out / "junit.xml").getroot()
        self.assertEqual(("28", "25"), (junit.get("tests"), junit.get("failures")))

    def test_excluded_failing_test_passes_the_build(self) -> None:
        self.customs("0001-break-status.patch",
                     replace_in("designate/api/middleware.py", '404: "Not Found"', '404: "Gone"'),
                     "Break the status line")
        self.exclusions("# tests we do not run\n"
                        "test_middleware\\.TestMiddleware\\.test_status_line$  # our 404 reason differs\n")
        outcome = self.build()
        self.assertEqual(0, outcome.code, outcome.stderr)
        tests = self.manifest()["tests"]
        self.assertEqual((2, 2, 0, 1), (tests["run"], tests["passed"], tests["failed"], tests["excluded"]))
        self.assertEqual([], tests["stale_exclusions"])

    def test_stale_exclusion_is_reported_not_fatal(self) -> None:
        self.exclusions("test_zone_name$  # was broken by dnspython\n")
        outcome = self.build()
        self.assertEqual(0, outcome.code, outcome.stderr)
        tests = self.manifest()["tests"]
        self.assertEqual((2, 1), (tests["run"], tests["excluded"]))
        self.assertEqual([{"line": 1, "regex": "test_zone_name$", "reason": "was broken by dnspython",
                           "passing_tests": [f"{MIDDLEWARE_TESTS}.test_zone_name"]}],
                         tests["stale_exclusions"])
        self.assertIn("test: warning: stale exclusion at line 1 'test_zone_name$'", outcome.stderr)
        self.assertIn("stale exclusions", (self.out / "1.0.0.post1" / "tests" / "tests.log").read_text())

    def test_exclusion_without_reason_is_an_error(self) -> None:
        self.exclusions("# header\ntest_zone_name$\n")
        outcome = self.build()
        self.assertEqual(1, outcome.code, outcome.stderr)
        self.assertEqual([f"error: {self.distro.root}/build/test-exclusions.txt:2: exclusion "
                          "'test_zone_name$' has no reason (write `<test id regex>  # <reason>`)"],
                         outcome.error_lines)

    def test_exclusion_matching_no_test_is_an_error(self) -> None:
        self.exclusions("test_zone_name$  # fine\ntest_no_such_test  # removed upstream\n")
        outcome = self.run_test_cmd()
        self.assertEqual(1, outcome.code, outcome.stderr)
        [line] = outcome.error_lines
        self.assertIn("test-exclusions.txt: exclusion matches no test: line 2 'test_no_such_test'", line)

    def test_cached_venv_is_not_reinstalled(self) -> None:
        first = self.run_test_cmd("-q")
        self.assertEqual(0, first.code, first.stderr)
        self.assertEqual("3 passed, 0 failed, 0 skipped, 0 excluded", first.stdout.strip())
        [venv] = [p for p in (self.cache / "venvs").iterdir()
                  if (p / VENV_MARKER).is_file() and
                  json.loads((p / VENV_MARKER).read_text())["lock_sha256"] ==
                  __import__("hashlib").sha256(FIXTURE_LOCK.read_bytes()).hexdigest()]
        marker = (venv / VENV_MARKER).stat()
        site = next(venv.glob("lib/python3*/site-packages"))
        installed = sorted(p.name for p in site.iterdir())
        second = self.run_test_cmd()
        self.assertEqual(0, second.code, second.stderr)
        self.assertIn(f"test: venv {venv} (cached)", second.stderr)
        self.assertNotIn("creating venv", second.stderr)
        again = (venv / VENV_MARKER).stat()
        self.assertEqual((marker.st_ino, marker.st_mtime_ns), (again.st_ino, again.st_mtime_ns))
        self.assertEqual(installed, sorted(p.name for p in site.iterdir()))
        self.assert_work_tree_clean()
