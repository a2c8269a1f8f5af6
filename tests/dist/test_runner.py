"""runner.run: what a command starts dies with the tool, even when the tool is killed with -9.

The "tool" is a real Python process that calls run() on a shell which starts a
grandchild (as dpkg-buildpackage starts dh and pip); the test kills that process
and watches the grandchild go.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fixtures
from oslotest import base

from designate_dist.errors import CommandFailed, ToolNotFound
from designate_dist.runner import run

REPO = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_for(condition, what: str, deadline: float = 60.0) -> None:
    """Poll ``condition`` until it holds (a generous bound for a loaded machine, not a timing check)."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"still waiting for {what} after {deadline:.0f}s")
        time.sleep(0.05)


class TestProcessGroup(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.pids: list[int] = []
        self.addCleanup(self.kill_leftovers)

    def kill_leftovers(self) -> None:
        for pid in self.pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

    def read_pid(self, name: str) -> int:
        path = self.tmp / name
        wait_for(lambda: path.is_file() and path.read_text().strip().isdigit(), name)
        pid = int(path.read_text())
        self.pids.append(pid)
        return pid

    def spawn_tool(self) -> subprocess.Popen:
        """A tool process whose run() starts a shell that starts a long sleep (the grandchild)."""
        script = ("import sys; from designate_dist.runner import run; "
                  "run(['sh', '-c', 'sleep 600 & echo $! > grandchild; echo $$ > child; wait'], "
                  "cwd=sys.argv[1])")
        tool = subprocess.Popen([sys.executable, "-c", script, str(self.tmp)], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pids.append(tool.pid)
        self.addCleanup(tool.wait)
        return tool

    def test_kill_9_of_the_tool_kills_child_and_grandchild(self) -> None:
        tool = self.spawn_tool()
        child, grandchild = self.read_pid("child"), self.read_pid("grandchild")
        self.assertTrue(alive(child) and alive(grandchild))
        os.kill(tool.pid, signal.SIGKILL)
        tool.wait()
        wait_for(lambda: not alive(grandchild), "the grandchild to die")
        wait_for(lambda: not alive(child), "the child to die")

    def test_sigterm_of_the_tool_kills_them_too(self) -> None:
        tool = self.spawn_tool()
        child, grandchild = self.read_pid("child"), self.read_pid("grandchild")
        os.kill(tool.pid, signal.SIGTERM)
        tool.wait()
        wait_for(lambda: not (alive(grandchild) or alive(child)), "child and grandchild to die")

    def test_a_timeout_kills_the_whole_group(self) -> None:
        with self.assertRaises(CommandFailed) as caught:
            run(["sh", "-c", "sleep 600 & echo $! > grandchild; wait"], cwd=self.tmp, timeout=2,
                what="sleep")
        self.assertEqual("sleep timed out after 2s", str(caught.exception))
        grandchild = self.read_pid("grandchild")
        wait_for(lambda: not alive(grandchild), "the grandchild to die")

    def test_input_output_and_exit_status_are_the_commands(self) -> None:
        self.assertEqual("hello\n", run(["cat"], input="hello\n").stdout)
        done = run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
        self.assertEqual((3, "out\n", "err\n"), (done.returncode, done.stdout, done.stderr))
        with self.assertRaises(CommandFailed) as caught:
            run(["sh", "-c", "echo why >&2; exit 4"], what="the step")
        self.assertEqual("the step failed (exit 4): why", str(caught.exception))
        self.assertEqual("", run(["cat"]).stdout)  # stdin is empty, never the tool's terminal

    def test_missing_tools(self) -> None:
        with self.assertRaises(ToolNotFound):
            run(["designate-dist-no-such-tool"])
        with self.assertRaises(ToolNotFound):
            run([str(self.tmp / "no-such-program")])
        script = self.tmp / "tool.sh"
        script.write_text("#!/bin/sh\necho ran\n")
        script.chmod(0o755)
        self.assertEqual("ran\n", run(["./tool.sh"], cwd=self.tmp).stdout)  # relative to cwd, as before
