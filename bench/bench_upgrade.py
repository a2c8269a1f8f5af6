#!/usr/bin/env python3
"""upgrade/rollback: ansible/upgrade.yml and rollback.yml vs the hand-kept script they replace.

    python bench/bench_upgrade.py [--repo DIR]

Both paths do the same work on localhost, one after the other, each in its own
temp dir with its own SQLite database and API port (the ``venv`` method, the
API under Debian's uWSGI, started by start-stop-daemon):

1. install 22.0.1.post1: a virtualenv from the repository's index with the
   release's lock, ``designate-manage database sync``, start the API, wait for it;
2. the same again (the playbook: a no-change run; the script: pip install again);
3. upgrade to 22.0.1.post2: a new virtualenv, the migration, restart, wait;
4. roll back to 22.0.1.post1 with the database snapshot taken before step 3:
   stop, restore, remove the post2 virtualenv, switch back, start, wait.

The baseline is the shell script an operator would otherwise keep, written
here as the same commands run from Python (no checks, no refusals, no
idempotence).  Without ``--repo`` the two releases are first made and published
from this repository (tests/fixtures/release.py; minutes, not timed).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.release import V1, V2, Released, Target  # noqa: E402

PIP_ENV = {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


class Script:
    """The hand-kept upgrade script: the commands, nothing else."""

    def __init__(self, target: Target, repo: Path) -> None:
        self.t = target
        self.repo = repo
        self.ini = target.run_dir / "designate-api-uwsgi.ini"
        self.pidfile = target.run_dir / "designate-api.pid"

    def run(self, *cmd: str | Path, env: dict[str, str] | None = None) -> None:
        subprocess.run([str(c) for c in cmd], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})

    def venv(self, version: str) -> Path:
        return self.t.venv_root / f"designate-{version}"

    def install(self, version: str) -> None:
        venv = self.venv(version)
        if not venv.exists():
            self.run("/usr/bin/python3", "-m", "venv", venv)
        index = f"file://{self.repo}/simple"
        self.run(venv / "bin" / "pip", "install", "--index-url", index, "-c",
                 f"file://{self.repo}/constraints/{version}.txt", f"designate=={version}", env=PIP_ENV)
        self.run(venv / "bin" / "pip", "install", "--no-deps", "--index-url", index,
                 f"designate-dist=={version}", env=PIP_ENV)
        self.run("ln", "-sfn", venv, self.t.venv_root / "current")

    def sync(self) -> None:
        self.run(self.t.prefix / "bin" / "designate-manage", "--config-file",
                 self.t.variables["designate_config_file"], "database", "sync")

    def start(self) -> None:
        self.t.run_dir.mkdir(parents=True, exist_ok=True)
        v = self.t.variables
        self.ini.write_text(
            "[uwsgi]\nplugins-dir = /usr/lib/uwsgi/plugins\nplugin = python3\n"
            f"virtualenv = {self.t.prefix}\nmodule = designate.wsgi.api:application\n"
            f"env = OS_DESIGNATE_CONFIG_DIR={v['designate_config_dir']}\n"
            f"http-socket = {v['designate_api_listen']}\nmaster = true\nprocesses = 1\n"
            "enable-threads = true\nlazy-apps = true\nneed-app = true\ndie-on-term = true\n")
        self.run("start-stop-daemon", "--start", "--quiet", "--background", "--make-pidfile",
                 "--pidfile", self.pidfile, "--startas", "/usr/bin/uwsgi", "--", "--ini", self.ini)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.t.api_url, timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)

    def stop(self) -> None:
        self.run("start-stop-daemon", "--stop", "--quiet", "--pidfile", self.pidfile,
                 "--remove-pidfile", "--retry", "TERM/30/KILL/5")

    def steps(self, snapshot: Path) -> list[tuple[str, callable]]:
        def first() -> None:
            self.install(V1)
            self.sync()
            self.start()

        def upgrade() -> None:
            shutil.copy2(self.t.db, snapshot)
            self.install(V2)
            self.sync()
            self.stop()
            self.start()

        def rollback() -> None:
            self.stop()
            shutil.copy2(snapshot, self.t.db)
            shutil.rmtree(self.venv(V2))
            self.install(V1)
            self.start()
        return [("install " + V1, first), ("again (no change)", lambda: self.install(V1)),
                ("upgrade to " + V2, upgrade), ("rollback to " + V1, rollback)]


def playbook_steps(target: Target) -> list[tuple[str, callable]]:
    def play(playbook: str, version: str, **extra: str) -> None:
        code, _, failures = target.play(playbook, version, **extra)
        if code != 0:
            raise SystemExit(f"{playbook} {version} failed: {failures}")

    # the playbook takes the snapshot itself (designate_db_backup_dir)
    snapshot = Path(target.variables["designate_db_backup_dir"]) / f"designate-{V1}-to-{V2}.sqlite"
    return [("install " + V1, lambda: play("upgrade.yml", V1)),
            ("again (no change)", lambda: play("upgrade.yml", V1)),
            ("upgrade to " + V2, lambda: play("upgrade.yml", V2)),
            ("rollback to " + V1, lambda: play("rollback.yml", V1,
                                                designate_db_snapshot=str(snapshot)))]


def timed(steps: list[tuple[str, callable]]) -> dict[str, float]:
    seconds = {}
    for name, action in steps:
        start = time.perf_counter()
        action()
        seconds[name] = time.perf_counter() - start
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, help="a repository holding both releases "
                        f"({V1}, {V2}); default: make and publish them first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-upgrade-") as tmp:
        base = Path(tmp)
        os.chmod(base, 0o755)
        if args.repo:
            repo = args.repo.resolve()
            api_paste = REPO / ".work" / "designate-22.0.1" / "etc" / "designate" / "api-paste.ini"
        else:
            print("making and publishing the two releases (not timed)...", file=sys.stderr)
            released = Released(base / "released")
            repo = released.repo
            api_paste = released.base / "work" / "designate-22.0.1" / "etc" / "designate" / "api-paste.ini"
        results = {}
        for label in ("script", "playbooks"):
            target = Target(base / label, repo, "venv", api_paste)
            snapshot = base / f"{label}-snapshot.sqlite"
            steps = Script(target, repo).steps(snapshot) if label == "script" else \
                playbook_steps(target)
            try:
                results[label] = timed(steps)
            finally:
                target.stop_api()
    print(f"upgrade/rollback on localhost (venv method, API under uWSGI), repository {repo}")
    print(f"{'step':24} {'script s':>9} {'playbooks s':>12} {'ratio':>6}")
    for name, seconds in results["script"].items():
        ours = results["playbooks"][name]
        print(f"{name:24} {seconds:9.1f} {ours:12.1f} {ours / seconds:6.2f}")
    total_script, total_ours = sum(results["script"].values()), sum(results["playbooks"].values())
    print(f"{'total':24} {total_script:9.1f} {total_ours:12.1f} {total_ours / total_script:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
