"""A plain ``pip install .`` of designate-dist is enough to build: nothing comes from test-requirements."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from oslotest import base

from tests.fixtures.distro import DistroFixture, write_file

ROOT = Path(__file__).resolve().parents[2]

IMPORT_ALL = r"""
import ast, importlib, re, sys
from pathlib import Path
names = set()
for path in sorted(Path(sys.argv[1]).glob("*.py")):
    source = path.read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    # modules run with sys.executable -m X (the venv's own python); pip is the venv's
    names.update(m for m in re.findall(r'sys\.executable, "-m", "([\w.]+)"', source) if m != "pip")
for name in sorted(n for n in names if n != "__future__" and not n.startswith("designate_dr")):
    importlib.import_module(name)
    print(name)
"""


class TestPlainInstall(base.BaseTestCase):
    def run_in(self, venv: Path, *cmd: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
        return subprocess.run(list(cmd), cwd=cwd or venv, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def test_pip_install_alone_builds_and_tests(self) -> None:
        tmp = Path(self.useFixture(__import__("fixtures").TempDir()).path)
        venv = tmp / "venv"
        # Debian's python3, as tools/run and the packages use; never the test runner's venv
        python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        done = self.run_in(venv, str(venv / "bin" / "pip"), "install", "--quiet",
                           "--disable-pip-version-check", str(ROOT))
        self.assertEqual(0, done.returncode, done.stdout[-3000:])

        # every module the tool imports, at the top or inside a function (the test stage
        # reads subunit with testtools only when it runs), and every `python -m X` it runs
        done = self.run_in(venv, str(venv / "bin" / "python"), "-c", IMPORT_ALL,
                           str(ROOT / "designate_dist"), cwd=tmp)
        self.assertEqual(0, done.returncode, done.stdout[-3000:])
        self.assertIn("subunit", done.stdout)
        self.assertIn("build", done.stdout)

        # the man pages come with it (setup.cfg data_files)
        self.assertTrue((venv / "share" / "man" / "man1" / "designate-dist-build.1").is_file())
        done = self.run_in(venv, str(venv / "bin" / "designate-dist"), "test", "--help", cwd=tmp)
        self.assertEqual(0, done.returncode, done.stdout)
        self.assertIn("usage: designate-dist test", done.stdout)

        distro = self.useFixture(DistroFixture())
        custom = distro.patches.make(write_file("designate/extra.py", "EXTRA = True\n"), "Add extra")
        distro.add_patch("customs", "0001-extra.patch", custom)
        distro.commit("series")
        done = self.run_in(venv, str(venv / "bin" / "designate-dist"), "--distro", str(distro.root),
                           "-q", "build", "--skip-tests", cwd=tmp)
        self.assertEqual(0, done.returncode, done.stdout[-3000:])
        wheels = sorted(p.name for p in (distro.root / "dist" / "1.0.0.post1").glob("*.whl"))
        self.assertEqual(["designate-1.0.0.post1-py3-none-any.whl"], wheels)
