"""The one door to external programs.

Every subprocess the tool starts goes through :func:`run`: an argument list
(never a shell string), the command line logged, output captured, a missing
binary turned into :class:`ToolNotFound` and a non-zero exit into
:class:`CommandFailed` carrying the tail of stderr.

A command and everything it starts (``dpkg-buildpackage`` and its ``dh`` and
``pip``, ``python -m build`` and its backend) die with the tool: each runs in
a process group of its own under a small guard (``setpriv --pdeathsig`` +
``sh``) that kills the group when the tool dies, even by ``kill -9``; a
timeout, Ctrl-C or any exception in the tool kills the group as well.
"""
from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from designate_dist.errors import CommandFailed, ToolNotFound

LOG = logging.getLogger(__name__)

#: Environment variables whose values are never written to a log.
_SECRET_MARKERS = ("KEY", "SECRET", "TOKEN", "PASSWORD")


@dataclass(frozen=True)
class Completed:
    """What a finished command left behind."""

    cmd: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


#: The guard: stdin handed on, the command in the background so that a TERM (sent by the
#: kernel when the tool dies, see setpriv --pdeathsig) is handled at once: it kills the group.
_GUARD_SCRIPT = 'exec 3<&0; trap "kill -KILL 0" TERM; "$@" <&3 3<&- & exec 3<&-; wait $!'
_SETPRIV = shutil.which("setpriv", path="/usr/bin:/bin")
_SH = shutil.which("sh", path="/bin:/usr/bin")


def _guarded(argv: list[str]) -> tuple[list[str], dict]:
    """``argv`` under the guard in a new process group, or as it is where setpriv is missing."""
    if _SETPRIV is None or _SH is None:
        return argv, {}
    return ([_SETPRIV, "--pdeathsig", "TERM", "--", _SH, "-c", _GUARD_SCRIPT, "designate-dist-guard",
             *argv], {"process_group": 0})


def _kill_group(proc: subprocess.Popen, grouped: bool) -> None:
    """Stop the command and everything it started: TERM, a moment, then KILL."""
    def signal_all(sig: int) -> None:
        try:
            if grouped:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        except (ProcessLookupError, PermissionError):
            pass
    signal_all(signal.SIGTERM)
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        pass
    signal_all(signal.SIGKILL)  # the guard is gone after TERM; what it started may not be
    proc.wait()


def _tail(text: str, lines: int = 15) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def run(cmd: Sequence[str | os.PathLike[str]], *, cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None, extra_env: Mapping[str, str] | None = None,
        check: bool = True, input: str | None = None, timeout: float | None = None,
        capture: bool = True, what: str | None = None) -> Completed:
    """Run ``cmd`` and return its :class:`Completed` result.

    :param env: the whole environment (default: this process's).
    :param extra_env: variables added on top of ``env``.
    :param check: raise :class:`CommandFailed` on a non-zero exit.
    :param capture: capture stdout/stderr (else they go to ours).
    :param what: a short description used in the error message.
    """
    argv = [os.fspath(part) for part in cmd]
    if not argv:
        raise ValueError("empty command")
    full_env = dict(os.environ if env is None else env)
    if extra_env:
        full_env.update(extra_env)
    exe = argv[0]
    if os.sep not in exe and shutil.which(exe, path=full_env.get("PATH")) is None:
        raise ToolNotFound(f"{exe} is not installed (needed to {what or 'run ' + exe})",
                           hint=f"install the package that provides {exe}")
    if os.sep in exe and not os.access(os.path.join(cwd or ".", exe), os.X_OK):  # the guard would say 127
        raise ToolNotFound(f"{exe} is not installed or not executable (needed to {what or 'run it'})")
    LOG.debug("run: %s (cwd=%s)", shlex.join(argv), cwd or ".")
    command, group = _guarded(argv)
    try:
        proc = subprocess.Popen(command, cwd=cwd, env=full_env, text=True,
                                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE if capture else None,
                                stderr=subprocess.PIPE if capture else None, **group)
    except FileNotFoundError as exc:
        raise ToolNotFound(f"{exe} is not installed or not executable: {exc.strerror}") from exc
    try:
        stdout, stderr = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        _kill_group(proc, bool(group))
        raise CommandFailed(f"{what or Path(exe).name} timed out after {timeout:.0f}s",
                            cmd=argv) from exc
    except BaseException:  # Ctrl-C, or any error while waiting: nothing keeps running
        _kill_group(proc, bool(group))
        raise
    result = Completed(tuple(argv), proc.returncode, stdout or "", stderr or "")
    if check and proc.returncode != 0:
        tail = _tail(result.stderr) or _tail(result.stdout)
        LOG.debug("failed (%d): %s\n%s", proc.returncode, shlex.join(argv), tail)
        last = tail.splitlines()[-1] if tail else "no output"
        raise CommandFailed(
            f"{what or Path(exe).name} failed (exit {proc.returncode}): {last}",
            cmd=argv, returncode=proc.returncode, stdout=result.stdout, stderr=result.stderr)
    return result


def which(tool: str) -> str | None:
    """Where ``tool`` is on PATH, or None."""
    return shutil.which(tool)


def debian_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment whose PATH puts Debian's own python3 first.

    Debian's build tools (dpkg-buildpackage, dh, dh-virtualenv) must run with
    the system interpreter, not a pyenv shim or a virtualenv's python.
    """
    env = dict(os.environ if base is None else base)
    parts = [p for p in env.get("PATH", "").split(os.pathsep)
             if p and ".pyenv" not in p and not (Path(p).parent / "pyvenv.cfg").exists()]
    front = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    env["PATH"] = os.pathsep.join(front + [p for p in parts if p not in front])
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONHOME", None)
    return env
