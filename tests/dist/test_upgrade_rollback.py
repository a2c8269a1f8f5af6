"""Release, publish, upgrade and roll back, for real, as a release manager and an operator do.

A copy of this repository makes two releases with ``designate-dist release``:
22.0.1.post1, and 22.0.1.post2 whose new customs patch adds an alembic
migration (so the two builds' database migration heads differ).  Both are
published into one repository with ``designate-dist publish``.  Then
``ansible/upgrade.yml`` and ``ansible/rollback.yml`` run against localhost
(connection local) into a throwaway target: a virtualenv per version under a
temp dir, Designate's API under Debian's uWSGI started by start-stop-daemon,
a SQLite database, noauth.  Each step checks the API's version document, the
installed version and the database's migration revision; a second run of
each playbook must report no changes.

The same flow through the ``designate`` .deb and apt runs where the machine
allows it (root, apt, and CI=true or DESIGNATE_DIST_SYSTEM_TESTS=1): it installs
into /opt/venvs/designate and removes the package again at the end.

Slow (minutes): two real builds (without upstream's unit tests: the real-build
test runs those) and several virtualenv installs from the published wheels.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import fixtures
from oslotest import base

from designate_dist.deb import read_lock
from tests.fixtures.cache import shared_test_cache
from tests.fixtures.release import (
    ANSIBLE,
    BIN,
    MARKER_HEAD,
    UPSTREAM_HEAD,
    V1,
    V2,
    Released,
    Target,
)
from tests.fixtures.distro import git


def system_tests_allowed() -> bool:
    wanted = os.environ.get("CI") == "true" or os.environ.get("DESIGNATE_DIST_SYSTEM_TESTS") == "1"
    return wanted and os.geteuid() == 0 and shutil.which("apt-get") is not None


class TestUpgradeAndRollback(base.BaseTestCase):
    released: Released
    _tmp: tempfile.TemporaryDirectory

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls._env = dict(os.environ)
        os.environ["DESIGNATE_DIST_CACHE"] = str(shared_test_cache())
        cls._tmp = tempfile.TemporaryDirectory(prefix="designate-dist-upgrade-")
        # apt fetches file: sources as its sandbox user (_apt): the repository must be readable
        os.chmod(cls._tmp.name, 0o755)
        try:
            cls.released = Released(Path(cls._tmp.name))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        os.environ.clear()
        os.environ.update(cls._env)
        cls._tmp.cleanup()
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        self.useFixture(fixtures.Timeout(1800, gentle=True))
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)

    def api_paste(self) -> Path:
        return self.released.base / "work" / "designate-22.0.1" / "etc" / "designate" / "api-paste.ini"

    def test_releases_are_tagged_and_published(self) -> None:
        released = self.released
        tags = git(released.distro, "tag", "--list").split()
        self.assertEqual(["debian/1%22.0.1-1", "debian/1%22.0.1-2"], sorted(tags))
        index = json.loads((released.repo / "releases.json").read_text())
        heads = {r["pep440"]: r["migration_head"] for r in index["releases"]}
        self.assertEqual({V1: UPSTREAM_HEAD, V2: MARKER_HEAD}, heads)
        changelog = (released.distro / "debian" / "changelog").read_text()
        self.assertIn(released.marker_patch, changelog)
        parsed = subprocess.run(["dpkg-parsechangelog", "-l", str(released.distro / "debian" / "changelog"),
                                 "-S", "Version"], check=True, text=True, stdout=subprocess.PIPE)
        self.assertEqual("1:22.0.1-2", parsed.stdout.strip())

    def test_playbooks_pass_ansible_lint(self) -> None:
        proc = subprocess.run([str(BIN / "ansible-lint"), "--nocolor", "--offline"], cwd=ANSIBLE,
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env={**os.environ, "ANSIBLE_HOME": str(self.tmp / "ansible-home"),
                                   "PATH": f"{BIN}:{os.environ.get('PATH', '')}"})
        self.assertEqual(0, proc.returncode, proc.stdout[-3000:])

    def test_virtualenv_upgrade_and_rollback(self) -> None:
        target = Target(self.tmp, self.released.repo, "venv", self.api_paste())
        self.upgrade_and_rollback(target)
        # the rolled-back version's virtualenv is gone; the current one is the older release
        self.assertEqual([f"designate-{V1}"],
                         sorted(p.name for p in target.venv_root.glob("designate-*")))
        self.assertEqual(f"designate-{V1}", (target.venv_root / "current").resolve().name)

    @unittest.skipUnless(system_tests_allowed(),
                         "installs the .deb with apt: needs root and CI=true or DESIGNATE_DIST_SYSTEM_TESTS=1")
    def test_deb_upgrade_and_rollback(self) -> None:
        target = Target(self.tmp, self.released.repo, "deb", self.api_paste())
        self.addCleanup(self.remove_package)
        self.upgrade_and_rollback(target)
        pin = Path("/etc/apt/preferences.d/designate-dist").read_text()
        self.assertIn("Pin: version 1:22.0.1-1", pin)

    def remove_package(self) -> None:
        subprocess.run(["apt-get", "purge", "-y", "-qq", "designate"], check=False,
                       stdout=subprocess.DEVNULL, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        for path in ("/etc/apt/sources.list.d/designate-dist.list",
                     "/etc/apt/preferences.d/designate-dist", "/etc/apt/keyrings/designate-dist.asc"):
            Path(path).unlink(missing_ok=True)

    def upgrade_and_rollback(self, target: Target) -> None:
        self.addCleanup(target.stop_api)

        # first install, then the same run again: nothing to change
        code, stats, failures = target.play("upgrade.yml", V1)
        self.assertEqual(0, code, failures)
        self.assertGreater(stats["changed"], 0)
        self.assertIn("v2", target.api_versions())
        # uWSGI's http-socket closes after each response: the role's ini says so
        self.assertEqual("close", target.api_connection)
        self.assertEqual(V1, target.installed())
        self.assertEqual(UPSTREAM_HEAD, target.db_revision())
        # what a region needs: the drivers, mdns workers and the coordination URL in designate.conf
        lock = dict(read_lock(self.released.distro / "build" / "constraints.txt"))
        self.assertEqual(f"{lock['PyMySQL']} {lock['pymemcache']}", target.drivers())
        conf = Path(target.variables["designate_config_file"]).read_text()
        self.assertIn("[service:central]\nworkers = 1\n[service:worker]\nworkers = 1\n"
                      "[service:producer]\nworkers = 1\n[service:mdns]\nworkers = 1\n"
                      "[coordination]\nbackend_url = "
                      f"{target.variables['designate_coordination_url']}\n# END managed", conf)
        code, stats, failures = target.play("upgrade.yml", V1)
        self.assertEqual((0, 0), (code, stats["changed"]), failures)

        # the upgrade snapshots the database (the migration head moves), then migrates
        old_pid = target.api_pid()
        code, stats, failures = target.play("upgrade.yml", V2)
        self.assertEqual(0, code, failures)
        backups = Path(target.variables["designate_db_backup_dir"])
        snapshot = backups / f"designate-{V1}-to-{V2}.sqlite"
        self.assertEqual([snapshot], list(backups.iterdir()))
        self.assertEqual((0o700, 0o600), (backups.stat().st_mode & 0o777, snapshot.stat().st_mode & 0o777))
        self.assertEqual(V2, target.installed())
        self.assertEqual(MARKER_HEAD, target.db_revision())
        self.assertNotEqual(old_pid, target.api_pid())
        self.assertIn("v2", target.api_versions())

        # an older version is not an upgrade; an unknown version is named as such
        code, _, failures = target.play("upgrade.yml", V1)
        self.assertNotEqual(0, code)
        self.assertIn(f"{V1} is older than the installed {V2}: run rollback.yml", " ".join(failures))
        code, _, failures = target.play("upgrade.yml", "22.0.1.post9")
        self.assertNotEqual(0, code)
        self.assertIn(f"designate 22.0.1.post9 is not in file://{self.released.repo} "
                      f"(it has: {V1}, {V2})", " ".join(failures))

        # rolling back below the new migration needs the snapshot; nothing is touched without it
        serving = target.api_pid()
        code, _, failures = target.play("rollback.yml", V1)
        self.assertNotEqual(0, code)
        self.assertIn(f"the database migration head changes from {MARKER_HEAD} to {UPSTREAM_HEAD}",
                      " ".join(failures))
        self.assertEqual((V2, serving, MARKER_HEAD),
                         (target.installed(), target.api_pid(), target.db_revision()))

        code, stats, failures = target.play("rollback.yml", V1, designate_db_snapshot=str(snapshot))
        self.assertEqual(0, code, failures)
        self.assertEqual(V1, target.installed())
        self.assertEqual(UPSTREAM_HEAD, target.db_revision())
        self.assertNotEqual(serving, target.api_pid())
        self.assertIn("v2", target.api_versions())
        code, stats, failures = target.play("rollback.yml", V1, designate_db_snapshot=str(snapshot))
        self.assertEqual((0, 0), (code, stats["changed"]), failures)
        method = target.variables["designate_install_method"]
        print(f"upgrade/rollback ({method}): " + ", ".join(
            f"{name} {seconds:.1f}s" for name, seconds in target.timings), file=sys.stderr)
