"""``tools/dr-lab``: its commands on a lab directory, without starting the two regions.

The full environment is exercised by ``test_region_drill``; here ``down`` stops real
processes recorded in a state.json (one that ignores SIGTERM, one child that left its
process group but carries the lab's marker), and bad input gives one ``error:`` line.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import fixtures
from oslotest import base

from tests.fixtures import lab
from tests.fixtures.processes import MARK, group_alive, marked_processes


def run_lab(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = lab.main(list(argv))
    return code, out.getvalue(), err.getvalue()


class TestLab(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.root = Path(self.useFixture(fixtures.TempDir()).path) / "lab"

    def write_state(self, groups: dict[str, int]) -> None:
        self.root.mkdir(exist_ok=True)
        (self.root / "state.json").write_text(json.dumps({
            "root": str(self.root), "venv": "/nonexistent", "pools": str(self.root / "pools.yaml"),
            "addresses": [], "process_groups": groups,
            "regions": {"region1": {"address": "127.0.0.2", "api": "http://127.0.0.2:1", "mdns": "127.0.0.2:2",
                                    "config": "/nonexistent", "database_socket": "", "services": {}}}}))

    def start(self, code: str) -> subprocess.Popen:
        """A process in its own group, marked as the lab's; returns once it printed 'ready'."""
        proc = subprocess.Popen([sys.executable, "-c", code + "\nprint('ready', flush=True)\ntime.sleep(600)"],
                                start_new_session=True, stdout=subprocess.PIPE, text=True,
                                env={**os.environ, MARK: str(self.root)})
        self.addCleanup(lambda: (proc.poll() is None and os.killpg(proc.pid, signal.SIGKILL), proc.wait()))
        self.assertEqual("ready\n", proc.stdout.readline())
        return proc

    def test_no_lab_is_one_error_line(self) -> None:
        for command in (("status",), ("down",), ("lose", "region1"), ("promote", "region1"),
                        ("service", "region1", "restart", "designate-worker")):
            code, out, err = run_lab(*command, "--dir", str(self.root))
            self.assertEqual((1, "", f"error: no lab in {self.root} (no state.json)\n"), (code, out, err), command)

    def test_unknown_region_or_service(self) -> None:
        self.write_state({})
        code, _, err = run_lab("lose", "region9", "--dir", str(self.root))
        self.assertEqual((1, f"error: no region 'region9' in {self.root}/state.json (regions: region1)\n"),
                         (code, err))
        code, _, err = run_lab("service", "region1", "start", "designate-sink", "--dir", str(self.root))
        self.assertEqual((1, f"error: no service designate-sink in region 'region1' of {self.root}\n"),
                         (code, err))
        (self.root / "state.json").write_text("{not json")
        code, _, err = run_lab("status", "--dir", str(self.root))
        self.assertEqual(1, code)
        self.assertTrue(err.startswith(f"error: {self.root}/state.json is not JSON: "), err)

    def test_down_stops_what_the_lab_started_and_removes_it(self) -> None:
        # a server that ignores SIGTERM (killed after the grace period), and a process that
        # left the lab's process groups but carries its marker
        stubborn = self.start("import signal, time\n"
                              "signal.signal(signal.SIGTERM, lambda *_: print('TERM ignored', flush=True))")
        escaped = self.start("import time")
        self.write_state({"region1/designate-worker": stubborn.pid})  # its own process group
        self.assertEqual(sorted([stubborn.pid, escaped.pid]), sorted(p for p, _ in marked_processes(self.root)))
        code, out, err = run_lab("status", "--dir", str(self.root))
        self.assertEqual(0, code, err)
        self.assertIn(f"up   region1/designate-worker (process group {stubborn.pid})", out)
        self.useFixture(fixtures.MonkeyPatch("tests.fixtures.processes.STOP_GRACE", 1.0))
        code, out, err = run_lab("down", "--dir", str(self.root))
        self.assertEqual((0, f"lab in {self.root} stopped and removed\n", ""), (code, out, err))
        # SIGTERM first; ignored, so SIGKILL after the grace (down reaps its own children: no status)
        self.assertEqual("TERM ignored\n", stubborn.stdout.readline())
        stubborn.wait(10)
        self.assertEqual(-signal.SIGKILL, escaped.wait(10))
        self.assertFalse(group_alive(stubborn.pid))
        self.assertEqual([], marked_processes(self.root))
        self.assertFalse(self.root.exists())
        code, _, err = run_lab("status", "--dir", str(self.root))
        self.assertEqual((1, f"error: no lab in {self.root} (no state.json)\n"), (code, err))
