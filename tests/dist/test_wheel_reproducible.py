"""Our two wheels, built from two checkouts of one commit, are the same bytes; the installed one
reports the right version.

Two copies of this repository (its tracked files as they are on disk) become
the same commit, at ``one/`` and at ``two with space/``; the second's files are
group-writable, as a checkout under umask 002 makes them.  Each builds with
``designate-dist build --skip-tests`` in its own process, cache, work tree and
output, under umask 022 vs 002 and time zone UTC vs UTC+13:45 (Pacific/Chatham).
The Debian package is left out here (``debian/`` removed): test_real_build.py
builds it twice and compares.

The patched Designate wheel is then installed into a new virtualenv (with what
``import designate`` needs, at the lock's versions, from the package index) and
asked for its version as the services do
(customs/0003-version-upstream-release-and-revision.patch).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

from oslotest import base

from designate_dist.distro import load_distro
from designate_dist.fetch import fetch
from tests.fixtures.cache import shared_test_cache
from tests.fixtures.distro import git

REPO = Path(__file__).resolve().parents[2]
COMMIT_DATE = "@1700000000 +0000"


def checkout(dest: Path, *, group_writable: bool) -> Path:
    """This repository's tracked files at ``dest``, committed as one fixed commit."""
    for name in filter(None, git(REPO, "ls-files", "-z").split("\0")):
        source = REPO / name
        if source.is_file() and not name.startswith("debian/"):
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            mode = 0o755 if os.access(source, os.X_OK) else 0o644
            target.chmod(mode | (0o020 if group_writable else 0))
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "-c", "user.name=Builder", "-c", "user.email=builder@example.org", "commit", "-q",
        "-m", "designate-dist at test time",
        env={**os.environ, "GIT_AUTHOR_DATE": COMMIT_DATE, "GIT_COMMITTER_DATE": COMMIT_DATE})
    return dest


def build(root: Path, cache: Path, output: Path, *, umask: int, tz: str) -> Path:
    env = {k: v for k, v in os.environ.items() if k not in ("SOURCE_DATE_EPOCH", "DESIGNATE_DIST_DEBUG")}
    env.update({"DESIGNATE_DIST_CACHE": str(cache), "TZ": tz, "PYTHONPATH": str(REPO)})
    proc = subprocess.run([sys.executable, "-m", "designate_dist", "-q", "build", "--skip-tests",
                           "--output", str(output)], cwd=root, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          preexec_fn=lambda: os.umask(umask))
    if proc.returncode != 0:
        raise AssertionError(f"build in {root} failed:\n{proc.stderr[-3000:]}")
    return Path(proc.stdout.strip())


class TestWheelsFromTwoCheckouts(base.BaseTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls._tmp = tempfile.TemporaryDirectory(prefix="designate-dist-wheels-")
        cls.base = Path(cls._tmp.name)
        try:
            cls.distro = load_distro(REPO)
            archive = fetch(cls.distro, cache=shared_test_cache()).archive  # downloaded once, then cached
            cls.outputs = []
            for name, group_writable, umask, tz in (("one", False, 0o022, "UTC"),
                                                     ("two with space", True, 0o002, "Pacific/Chatham")):
                root = checkout(cls.base / name, group_writable=group_writable)
                cache = cls.base / f"cache {name}"
                kept = cache / archive.relative_to(shared_test_cache())
                kept.parent.mkdir(parents=True)
                shutil.copyfile(archive, kept)
                cls.outputs.append(build(root, cache, cls.base / f"out {name}", umask=umask, tz=tz))
        except BaseException:
            cls._tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls._tmp.cleanup()
        super().tearDownClass()

    def wheels(self, output: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(output.glob("*.whl"))}

    def test_the_same_commit_gives_the_same_wheel_bytes(self) -> None:
        first, second = (self.wheels(out) for out in self.outputs)
        pep440 = self.distro.pin.distro_version.pep440
        self.assertEqual([f"designate-{pep440}-py3-none-any.whl",
                          f"designate_dist-{pep440}-py3-none-any.whl"], sorted(first))
        self.assertEqual(sorted(first), sorted(second))
        for name in first:
            self.assertEqual(first[name], second[name], f"{name} differs between the two checkouts")

    def test_entries_have_fixed_modes_times_and_order(self) -> None:
        for path in sorted(self.outputs[1].glob("*.whl")):
            with zipfile.ZipFile(path) as archive:
                infos = archive.infolist()
            self.assertEqual({0o100644}, {i.external_attr >> 16 for i in infos}, path.name)
            self.assertEqual({(2023, 11, 14, 22, 13, 20)}, {i.date_time for i in infos}, path.name)
            names = [i.filename for i in infos]
            self.assertTrue(names[-1].endswith(".dist-info/RECORD"), names[-1])
            self.assertEqual(sorted(n for n in names if ".dist-info/" not in n),
                             [n for n in names if ".dist-info/" not in n])

    def test_the_installed_wheel_reports_the_upstream_release_and_the_revision(self) -> None:
        version = self.distro.pin.distro_version
        target = self.base / "venv"
        venv.EnvBuilder(with_pip=True).create(target)
        python = str(target / "bin" / "python")
        wheel = self.outputs[0] / f"designate-{version.pep440}-py3-none-any.whl"
        pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        # what `import designate` needs (its __init__ sets oslo defaults), at the lock's versions
        subprocess.run([*pip, "-c", str(self.distro.lock_file), "pbr", "oslo.concurrency", "oslo.log"],
                       check=True, cwd=self.base)
        subprocess.run([*pip, "--no-deps", str(wheel)], check=True, cwd=self.base)
        code = ("from designate import version\n"
                "info = version.version_info\n"
                "print(info.version_string(), info.release_string(), info.debian_string(), sep='|')\n"
                "print(version.version_string_with_package())\n"
                "import designate; print(designate.__file__)\n")
        proc = subprocess.run([python, "-c", code], text=True, cwd=self.base,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(0, proc.returncode, proc.stderr[-3000:])
        out = proc.stdout.splitlines()
        self.assertEqual(f"{version.upstream}|{version.pep440}|{version.debian}", out[0])
        self.assertEqual(f"{version.pep440} ({version.debian})", out[1])
        self.assertTrue(out[2].startswith(str(target)), out[2])  # the installed copy, not a tree
