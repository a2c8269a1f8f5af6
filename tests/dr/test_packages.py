"""designate_dr stands on its own: it imports nothing of designate_dist (issue 14 item 1).

The DR plugins and operations run in Designate's virtualenv, where the build tool is
not installed; ``designate-dr`` is their command.  ``designate-dist dr`` delegates to it
(one way: designate_dist may import designate_dr).
"""
from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

from oslotest import base

from tests.fixtures.cli import run_cli, run_dr

ROOT = Path(__file__).resolve().parents[2]

# every module of designate_dr imported, and designate-dr's help printed, with
# designate_dist made unimportable
_PROBE = r"""
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "designate_dist" or name.startswith("designate_dist."):
            raise ImportError(f"designate_dr imported {name}")
sys.meta_path.insert(0, Block())
import designate_dr
for info in pkgutil.walk_packages(designate_dr.__path__, "designate_dr."):
    importlib.import_module(info.name)
from designate_dr import cli
for argv in (["--help"], ["check", "--help"], ["failover", "--help"], ["failback", "--help"]):
    try:
        cli.main(argv)
    except SystemExit as exc:
        assert exc.code == 0, (argv, exc.code)
print("imported", len([m for m in sys.modules if m.startswith("designate_dr")]))
"""


class TestOneWay(base.BaseTestCase):
    def test_designate_dr_imports_nothing_of_designate_dist(self) -> None:
        done = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True,
                              timeout=300, check=False)
        self.assertEqual(0, done.returncode, done.stderr[-3000:])
        self.assertIn("imported", done.stdout)
        self.assertIn("designate-dr check", done.stdout)

    def test_designate_dr_is_a_console_script(self) -> None:
        scripts = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="console_scripts")}
        self.assertEqual("designate_dr.cli:main", scripts["designate-dr"])
        self.assertEqual("designate_dist.cli:main", scripts["designate-dist"])
        # and as an installed script (the deb links every designate-* script of its venv into /usr/bin)
        script = Path(sys.executable).parent / "designate-dr"
        done = subprocess.run([str(script), "failover", "--help"], capture_output=True, text=True,
                              timeout=120, check=False)
        self.assertEqual(0, done.returncode, done.stderr)
        self.assertIn("--designate-conf", done.stdout)

    def test_designate_dist_dr_delegates_with_the_same_error_lines(self) -> None:
        for argv, code in ((("failover", "--lost", "region1", "--pools", "/nonexistent/pools.yaml"), 1),
                           (("check", "--window", "0"), 2),
                           ((), 2)):
            own, delegated = run_dr(*argv), run_cli("dr", *argv)
            self.assertEqual(code, own.code, own.stderr)
            self.assertEqual(code, delegated.code, delegated.stderr)
            self.assertEqual(1, len(own.error_lines), own.stderr)
            self.assertEqual(own.error_lines[0].replace("designate-dr", "designate-dist dr"),
                             delegated.error_lines[0])
