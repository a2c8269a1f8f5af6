"""The real thing: this repository's pinned Designate sdist, its real series, built end to end.

One build runs every stage (upstream's full unit test suite included); a second
build from a fresh work tree must give byte-identical wheels and debs.  Slow
(minutes): it is the test CI relies on to show the shipped distribution builds.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import fixtures
from oslotest import base

from designate_dist.deb import read_lock
from designate_dist.distro import load_distro
from designate_dist.series import read_series
from tests.fixtures.cache import shared_test_cache
from tests.fixtures.cli import run_cli

REPO = Path(__file__).resolve().parents[2]


class TestRealPinnedBuild(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.useFixture(fixtures.Timeout(3000, gentle=True))
        self.useFixture(fixtures.EnvironmentVariable("DESIGNATE_DIST_CACHE", str(shared_test_cache())))
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.distro = load_distro(REPO)

    def build(self, name: str, *extra: str):
        return run_cli("--distro", str(REPO), "--work-dir", str(self.tmp / f"work-{name}"),
                       "build", "--output", str(self.tmp / f"out-{name}"), *extra)

    def test_real_build_is_complete_and_reproducible(self) -> None:
        version = self.distro.pin.distro_version
        first = self.build("1")
        self.assertEqual(0, first.code, first.stderr[-3000:])
        out = self.tmp / "out-1" / version.pep440
        manifest = json.loads((out / "manifest.json").read_text())
        # every patch of the shipped series applied, in order
        series = read_series(REPO)
        self.assertEqual([(p.series, p.name, p.sha256) for p in series],
                         [(p["series"], p["file"], p["sha256"]) for p in manifest["patches"]])
        self.assertEqual(self.distro.pin.sha256, manifest["upstream"]["sha256"])
        # upstream's own suite ran on the patched tree and passed
        tests = manifest["tests"]
        self.assertTrue(tests["ran"])
        self.assertEqual(0, tests["failed"])
        self.assertGreater(tests["passed"], 2000)
        files = {a["file"] for a in manifest["artifacts"]}
        self.assertIn(f"designate-{version.pep440}-py3-none-any.whl", files)
        debs = sorted(f for f in files if f.endswith(".deb"))
        self.assertTrue(debs, files)
        info = subprocess.run(["dpkg-deb", "-f", str(out / debs[0]), "Version"], check=True,
                              text=True, stdout=subprocess.PIPE).stdout.strip()
        self.assertEqual(version.debian, info)
        # the wheel carries the distro version for pbr / importlib.metadata
        wheel = out / f"designate-{version.pep440}-py3-none-any.whl"
        meta = subprocess.run([sys.executable, "-m", "zipfile", "-l", str(wheel)], check=True,
                              text=True, stdout=subprocess.PIPE).stdout
        self.assertIn(f"designate-{version.pep440}.dist-info/METADATA", meta)
        # every file upstream's sdist ships under designate/ is in the wheel, data outside
        # Python packages too (the alembic migrations `designate-manage database sync` runs)
        with zipfile.ZipFile(wheel) as archive:
            in_wheel = set(archive.namelist())
        sdist = (shared_test_cache() / "archives" / "sha256" / self.distro.pin.sha256
                 / f"designate-{version.upstream}.tar.gz")
        with tarfile.open(sdist) as tar:
            member = tar.extractfile(f"designate-{version.upstream}/designate.egg-info/SOURCES.txt")
            sources = member.read().decode().split()
        shipped = {s for s in sources if s.startswith("designate/")}
        self.assertGreater(len(shipped), 500)
        self.assertEqual(set(), shipped - in_wheel)
        self.assertEqual({"migration_head": "f828412479ee"}, manifest["database"])

        # the shipped package: its venv has the patched Designate (our customs
        # filters are in it) and loads both DR plugins through Designate's entry points
        root = self.tmp / "deb-root"
        subprocess.run(["dpkg-deb", "-x", str(out / debs[0]), str(root)], check=True)
        ini = (root / "etc" / "designate" / "designate-api-uwsgi.ini").read_text()
        self.assertIn("module = designate.wsgi.api:application", ini)
        python = root / "opt" / "venvs" / "designate" / "bin" / "python"
        code = ("import importlib.metadata as m\n"
                "from designate.backend.base import Backend\n"
                "import designate.api.auth_errors, designate.api.zone_name_policy\n"
                "eps = {e.name: e for e in m.entry_points(group='designate.backend')}\n"
                "for name in ('pdns4_dr', 'bind9_dr'):\n"
                "    cls = eps[name].load()\n"
                "    print(name, cls.__name__, issubclass(cls, Backend))\n"
                "print(m.version('designate'))\n"
                # a region's drivers: designate[mysql,memcached], and tooz's memcached backend
                "import pymysql, pymemcache, tooz.drivers.memcached, sqlalchemy.dialects.mysql.pymysql\n"
                "print(m.version('PyMySQL'), m.version('pymemcache'))\n")
        loaded = subprocess.run([str(python), "-c", code], check=True, text=True,
                                stdout=subprocess.PIPE).stdout.split("\n")
        lock = dict(read_lock(REPO / "build" / "constraints.txt"))
        self.assertEqual(["pdns4_dr PDNS4DRBackend True", "bind9_dr Bind9DRBackend True",
                          version.pep440, f"{lock['PyMySQL']} {lock['pymemcache']}"], loaded[:4])
        # the wheel names them as extras, for installs from the wheel (the Ansible role's venv)
        with zipfile.ZipFile(wheel) as archive:
            metadata = archive.read(f"designate-{version.pep440}.dist-info/METADATA").decode()
        self.assertIn("Provides-Extra: mysql", metadata)
        self.assertIn("Provides-Extra: memcached", metadata)
        # the configuration sample, generated from the packaged Designate, and no eventlet
        # deprecation notice above designate-manage's own output (customs/0004)
        sample = (root / "etc" / "designate" / "designate.conf.sample").read_text().splitlines()
        for section in ("[DEFAULT]", "[storage:sqlalchemy]", "[service:api]", "[keystone_authtoken]"):
            self.assertIn(section, sample)
        manage = subprocess.run([str(python), str(python.parent / "designate-manage"), "--help"], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(0, manage.returncode, manage.stderr[-2000:])
        self.assertEqual("", manage.stderr)
        self.assertIn("usage:", manage.stdout)
        # the DR operations' command is on PATH and runs with the venv's libraries alone
        link = root / "usr" / "bin" / "designate-dr"
        self.assertEqual("/opt/venvs/designate/bin/designate-dr", os.readlink(link))
        self.assertFalse((root / "opt" / "venvs" / "designate" / "bin" / "designate-dist").exists())
        helped = subprocess.run([str(python), "-m", "designate_dr.cli", "failover", "--help"], check=True,
                                text=True, stdout=subprocess.PIPE).stdout
        self.assertIn("--apply-pools", helped)

        second = self.build("2", "--skip-tests")
        self.assertEqual(0, second.code, second.stderr[-3000:])
        again = json.loads((self.tmp / "out-2" / version.pep440 / "manifest.json").read_text())

        def binaries(data: dict) -> dict[str, str]:
            return {a["file"]: a["sha256"] for a in data["artifacts"]
                    if a["file"].endswith((".whl", ".deb"))}
        self.assertEqual(binaries(manifest), binaries(again))

    def test_patches_dir_is_in_sync_with_the_series(self) -> None:
        outcome = run_cli("--distro", str(REPO), "--work-dir", str(self.tmp / "work-q"), "-q",
                          "quilt", "--output", str(self.tmp / "patches"))
        self.assertEqual(0, outcome.code, outcome.stderr)
        generated = {p.name: p.read_text() for p in (self.tmp / "patches").iterdir()}
        committed = {p.name: p.read_text() for p in (REPO / "patches").iterdir()
                     if p.name != "README.md"}
        self.assertEqual(sorted(generated), sorted(committed),
                         "patches/ is stale: run `designate-dist quilt` and commit")
        for name, text in generated.items():
            self.assertEqual(text, committed[name], f"patches/{name} is stale: run `designate-dist quilt`")
