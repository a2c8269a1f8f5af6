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
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path

import fixtures
from oslotest import base

from tests.dist.test_real_build import test_cache
from tests.fixtures.cli import run_cli

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
BIN = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin"
UPSTREAM_HEAD = "f828412479ee"
MARKER_HEAD = "d15a0000c0de"
V1, V2 = "22.0.1.post1", "22.0.1.post2"
MIGRATION = f'''"""designate-dist release test: a marker table

Revision ID: {MARKER_HEAD}
Revises: {UPSTREAM_HEAD}
"""
from alembic import op
import sqlalchemy as sa

revision = '{MARKER_HEAD}'
down_revision = '{UPSTREAM_HEAD}'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('designate_dist_marker',
                    sa.Column('id', sa.Integer, primary_key=True))
'''
GIT_ID = ["-c", "user.name=Release Manager", "-c", "user.email=release@example.org"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *GIT_ID, *args], cwd=cwd, check=True, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def system_tests_allowed() -> bool:
    wanted = os.environ.get("CI") == "true" or os.environ.get("DESIGNATE_DIST_SYSTEM_TESTS") == "1"
    return wanted and os.geteuid() == 0 and shutil.which("apt-get") is not None


def migration_patch(scratch: Path) -> str:
    """A real ``git format-patch`` of a new alembic migration file."""
    scratch.mkdir()
    git(scratch, "init", "-q")
    git(scratch, "commit", "-q", "--allow-empty", "-m", "base")
    path = scratch / "designate/storage/sqlalchemy/alembic/versions" / f"{MARKER_HEAD}_marker.py"
    path.parent.mkdir(parents=True)
    path.write_text(MIGRATION)
    git(scratch, "add", ".")
    git(scratch, "commit", "-q", "-m", "storage: a marker table (release test)\n\n"
        "Adds one alembic migration, so that this release's database\n"
        "migration head differs from the previous release's.")
    return git(scratch, "format-patch", "-1", "--stdout", "--no-signature", "HEAD")


class Released:
    """Two releases of a copy of this repository, published into one repository."""

    def __init__(self, base_dir: Path) -> None:
        self.base = base_dir
        self.distro = base_dir / "distro"
        self.out = base_dir / "out"
        self.repo = base_dir / "repo"
        files = git(REPO, "ls-files", "-z").split("\0")
        for name in filter(None, files):
            source = REPO / name
            if source.is_file():
                (self.distro / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, self.distro / name)
        git(self.distro, "init", "-q", "-b", "main")
        git(self.distro, "add", "-A")
        git(self.distro, "commit", "-q", "-m", "designate-dist at test time")
        self.release()
        patch = migration_patch(base_dir / "patch-scratch")
        (self.distro / "customs" / "0003-storage-marker-table.patch").write_text(patch)
        with open(self.distro / "customs" / "series", "a") as series:
            series.write("0003-storage-marker-table.patch\n")
        git(self.distro, "add", "-A")
        git(self.distro, "commit", "-q", "-m", "customs: a marker table migration")
        self.release()
        for version in (V1, V2):
            self.cli("publish", "--repo", str(self.repo), "--build", str(self.out / version))

    def cli(self, *args: str) -> str:
        outcome = run_cli("--distro", str(self.distro), "--work-dir", str(self.base / "work"),
                          *args)
        if outcome.code != 0:
            raise AssertionError(f"designate-dist {' '.join(args)} exited {outcome.code}:\n"
                                 f"{outcome.stderr[-3000:]}")
        return outcome.stdout

    def release(self) -> None:
        env = {**os.environ, "GIT_AUTHOR_NAME": "Release Manager",
               "GIT_AUTHOR_EMAIL": "release@example.org",
               "GIT_COMMITTER_NAME": "Release Manager", "GIT_COMMITTER_EMAIL": "release@example.org"}
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            self.cli("release", "--skip-tests", "--output", str(self.out))
        finally:
            os.environ.clear()
            os.environ.update(saved)


class Target:
    """A throwaway Designate host on localhost: its config, database and the playbook runs."""

    def __init__(self, base_dir: Path, repo: Path, method: str, api_paste: Path) -> None:
        self.base = base_dir
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/"
        config = base_dir / "etc"
        config.mkdir(parents=True)
        shutil.copy(api_paste, config / "api-paste.ini")
        self.db = base_dir / "db" / "designate.sqlite"
        self.db.parent.mkdir()
        (config / "designate.conf").write_text(
            "[DEFAULT]\ntransport_url = fake:/\n"
            f"[service:api]\napi_base_uri = {self.api_url}\nauth_strategy = noauth\n"
            f"[storage:sqlalchemy]\nconnection = sqlite:///{self.db}\n"
            f"[oslo_concurrency]\nlock_path = {base_dir / 'lock'}\n")
        self.venv_root = base_dir / "venvs"
        self.run_dir = base_dir / "run"
        self.prefix = (Path("/opt/venvs/designate") if method == "deb"
                       else self.venv_root / "current")
        self.variables = {
            "designate_repo_url": f"file://{repo}", "designate_install_method": method,
            "designate_venv_root": str(self.venv_root), "designate_service_manager": "process",
            "designate_services": ["designate-api"],
            "designate_config_file": str(config / "designate.conf"),
            "designate_config_dir": str(config), "designate_run_dir": str(self.run_dir),
            "designate_log_dir": str(base_dir / "log"),
            "designate_api_listen": f"127.0.0.1:{self.port}", "designate_api_url": self.api_url,
            "designate_api_processes": 1, "designate_db_sqlite_path": str(self.db),
            "designate_health_retries": 60}
        self.timings: list[tuple[str, float]] = []

    def play(self, playbook: str, version: str, **extra: str) -> tuple[int, dict, list[str]]:
        """Run a playbook; return its exit code, the host's stats and the failure messages."""
        started = time.monotonic()
        try:
            return self._play(playbook, version, **extra)
        finally:
            self.timings.append((f"{playbook} {version}", time.monotonic() - started))

    def _play(self, playbook: str, version: str, **extra: str) -> tuple[int, dict, list[str]]:
        variables = self.base / "vars.json"
        variables.write_text(json.dumps({**self.variables, "designate_version": version, **extra}))
        env = {**os.environ, "ANSIBLE_HOME": str(self.base / "ansible-home"), "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_FORCE_COLOR": "0", "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
        proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                               "-e", "designate_hosts=localhost", "-e", f"@{variables}", playbook],
                              cwd=ANSIBLE, env=env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
        recap = re.search(r"^localhost\s*:\s*(.*)$", proc.stdout, re.M)
        if not recap:
            raise AssertionError(f"{playbook}: no PLAY RECAP (exit {proc.returncode}):\n"
                                 f"{proc.stdout[-3000:]}")
        stats = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", recap.group(1))}
        failures = [json.loads(line.split(" => ", 1)[1]).get("msg", line)
                    for line in proc.stdout.splitlines()
                    if line.startswith("fatal: [localhost]") and " => {" in line]
        if proc.returncode != 0 and not failures:
            failures = [proc.stdout[-3000:]]
        return proc.returncode, stats, failures

    def api_versions(self) -> list[str]:
        with urllib.request.urlopen(self.api_url, timeout=10) as reply:
            return [v["id"] for v in json.load(reply)["versions"]]

    def api_pid(self) -> int:
        return int((self.run_dir / "designate-api.pid").read_text())

    def installed(self) -> str:
        code = "import importlib.metadata as m; print(m.version('designate'))"
        return subprocess.run([str(self.prefix / "bin" / "python"), "-c", code], check=True,
                              text=True, stdout=subprocess.PIPE).stdout.strip()

    def db_revision(self) -> str:
        out = subprocess.run([str(self.prefix / "bin" / "designate-manage"), "--config-file",
                              self.variables["designate_config_file"], "database", "version"],
                             text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
        return out.split("Current:")[-1].split()[0] if "Current:" in out else out

    def stop_api(self) -> None:
        subprocess.run(["start-stop-daemon", "--stop", "--quiet", "--pidfile",
                        str(self.run_dir / "designate-api.pid"), "--remove-pidfile",
                        "--retry", "TERM/20/KILL/5"], check=False)


class TestUpgradeAndRollback(base.BaseTestCase):
    released: Released
    _tmp: tempfile.TemporaryDirectory

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls._env = dict(os.environ)
        os.environ["DESIGNATE_DIST_CACHE"] = str(test_cache())
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
        self.assertIn("customs/0003-storage-marker-table.patch", changelog)
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
                     "/etc/apt/preferences.d/designate-dist"):
            Path(path).unlink(missing_ok=True)

    def upgrade_and_rollback(self, target: Target) -> None:
        self.addCleanup(target.stop_api)

        # first install, then the same run again: nothing to change
        code, stats, failures = target.play("upgrade.yml", V1)
        self.assertEqual(0, code, failures)
        self.assertGreater(stats["changed"], 0)
        self.assertIn("v2", target.api_versions())
        self.assertEqual(V1, target.installed())
        self.assertEqual(UPSTREAM_HEAD, target.db_revision())
        code, stats, failures = target.play("upgrade.yml", V1)
        self.assertEqual((0, 0), (code, stats["changed"]), failures)

        # the operator snapshots the database, then upgrades: the migration runs
        snapshot = self.tmp / "designate-before-post2.sqlite"
        shutil.copy2(target.db, snapshot)
        old_pid = target.api_pid()
        code, stats, failures = target.play("upgrade.yml", V2)
        self.assertEqual(0, code, failures)
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
