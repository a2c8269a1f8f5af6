"""build: from a distro repository to a versioned wheel and a manifest, as CI runs it."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

from oslotest import base

from designate_dist.distro import load_distro
from designate_dist.pipeline import build_lock
from tests.fixtures.cli import run_cli
from tests.fixtures.distro import DistroFixture, replace_in, sha256, write_file


class TestBuild(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.distro = self.useFixture(DistroFixture())
        custom = self.distro.patches.make(write_file("designate/extra.py", "EXTRA = True\n"),
                                          "Add extra module")
        self.distro.add_patch("customs", "0001-extra.patch", custom)
        self.distro.commit("series")

    def build(self, *extra: str):
        return run_cli("--distro", str(self.distro.root), "-q", "build", "--skip-tests", *extra)

    def test_build_writes_wheel_and_manifest(self) -> None:
        outcome = self.build()
        self.assertEqual(0, outcome.code, outcome.stderr)
        out = self.distro.root / "dist" / "1.0.0.post1"
        self.assertEqual(str(out), outcome.stdout.strip())
        manifest = json.loads((out / "manifest.json").read_text())
        self.assertEqual({"name": "designate", "version": "1.0.0", "source": "file",
                          "source_description": f"file {self.distro.archive.parent}",
                          "sha256": sha256(self.distro.archive)},
                         manifest["upstream"])
        self.assertEqual({"revision": "1", "pep440": "1.0.0.post1", "debian": "1:1.0.0-1"},
                         manifest["distro_version"])
        self.assertEqual(1700001000, manifest["source_date_epoch"])
        self.assertEqual({"ran": False, "skipped_by_request": True}, manifest["tests"])
        [patch] = manifest["patches"]
        self.assertEqual(("customs", "0001-extra.patch", "custom"),
                         (patch["series"], patch["file"], patch["kind"]))
        self.assertEqual(40, len(patch["commit"]))
        files = sorted(a["file"] for a in manifest["artifacts"])
        self.assertEqual(["designate-1.0.0.post1-py3-none-any.whl"], files)
        wheel = out / files[0]
        self.assertEqual(wheel.stat().st_size, manifest["artifacts"][0]["size"])
        self.assertEqual([], [p.name for p in out.parent.iterdir() if p.name.startswith(".")])

    def test_wheel_installs_and_reports_the_distro_version(self) -> None:
        self.assertEqual(0, self.build().code)
        wheel = next((self.distro.root / "dist" / "1.0.0.post1").glob("*.whl"))
        venv = self.distro.base / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", "--no-index",
                        str(wheel)], check=True)
        out = subprocess.run([str(venv / "bin" / "designate-manage")], check=True, text=True,
                             stdout=subprocess.PIPE).stdout
        self.assertEqual("designate-manage 1.0.0.post1\n", out)
        extra = subprocess.run([str(venv / "bin" / "python"), "-c",
                                "import designate.extra as e; print(e.EXTRA)"],
                               check=True, text=True, stdout=subprocess.PIPE).stdout
        self.assertEqual("True\n", extra)

    def test_two_clean_builds_are_byte_identical(self) -> None:
        first = self.distro.base / "out1"
        second = self.distro.base / "out2"
        self.assertEqual(0, self.build("--output", str(first)).code)
        shutil.rmtree(self.distro.root / ".work")
        self.assertEqual(0, self.build("--output", str(second)).code)
        one = json.loads((first / "1.0.0.post1" / "manifest.json").read_text())["artifacts"]
        two = json.loads((second / "1.0.0.post1" / "manifest.json").read_text())["artifacts"]
        self.assertEqual(one, two)

    def test_noop_rebuild_reuses_the_output(self) -> None:
        self.assertEqual(0, self.build().code)
        again = run_cli("--distro", str(self.distro.root), "build", "--skip-tests")
        self.assertEqual(0, again.code)
        self.assertIn("is up to date (inputs unchanged)", again.stderr)
        # a changed patch is a changed input
        custom = self.distro.root / "customs" / "0001-extra.patch"
        custom.write_text(custom.read_text().replace("EXTRA = True", "EXTRA = False"))
        changed = run_cli("--distro", str(self.distro.root), "build", "--skip-tests")
        self.assertEqual(0, changed.code, changed.stderr)
        self.assertNotIn("up to date", changed.stderr)

    def test_failed_build_leaves_no_artifact_directory(self) -> None:
        broken = self.distro.patches.make(replace_in("setup.cfg", "[files]", "[files"),
                                          "Break setup.cfg")
        self.distro.add_patch("customs", "0002-break.patch", broken)
        outcome = self.build()
        self.assertEqual(1, outcome.code)
        self.assertEqual(1, len(outcome.error_lines), outcome.stderr)
        self.assertIn("build the wheel of designate-1.0.0 failed", outcome.error_lines[0])
        dist = self.distro.root / "dist"
        self.assertEqual([], sorted(p.name for p in dist.iterdir()) if dist.exists() else [])

    def test_concurrent_build_is_refused(self) -> None:
        with build_lock(load_distro(self.distro.root)):
            outcome = self.build()
        self.assertEqual(1, outcome.code)
        self.assertRegex(outcome.error_lines[0],
                         r"^error: another designate-dist build is running in .* \(pid \d+\)")


class TestCommandLine(base.BaseTestCase):
    def test_unknown_command_is_a_usage_error(self) -> None:
        outcome = run_cli("frobnicate")
        self.assertEqual(2, outcome.code)
        self.assertEqual(1, len(outcome.error_lines))

    def test_no_command(self) -> None:
        outcome = run_cli()
        self.assertEqual(2, outcome.code)
        self.assertEqual(["error: designate-dist: a command is required (see --help)"],
                         outcome.error_lines)

    def test_every_command_has_help(self) -> None:
        for command in ("fetch", "prepare", "build", "test", "lock"):
            try:
                run_cli(command, "--help")
            except SystemExit as exc:
                self.assertEqual(0, exc.code)
            else:
                self.fail(f"{command} --help did not exit")

    def test_missing_tool_is_one_line(self) -> None:
        from designate_dist.errors import ToolNotFound
        from designate_dist.runner import run
        error = self.assertRaises(ToolNotFound, run, ["no-such-tool-xyz", "--version"],
                                  what="check the tool")
        self.assertEqual("no-such-tool-xyz is not installed (needed to check the tool)", str(error))
