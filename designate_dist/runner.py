"""The one door to external programs.

Every subprocess the tool starts goes through :func:`run`: an argument list
(never a shell string), the command line logged, output captured, a missing
binary turned into :class:`ToolNotFound` and a non-zero exit into
:class:`CommandFailed` carrying the tail of stderr.
"""
from __future__ import annotations

import logging
import os
import shlex
import shutil
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
    LOG.debug("run: %s (cwd=%s)", shlex.join(argv), cwd or ".")
    try:
        proc = subprocess.run(argv, cwd=cwd, env=full_env, input=input, text=True,
                              stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.PIPE if capture else None,
                              timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise ToolNotFound(f"{exe} is not installed or not executable: {exc.strerror}") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(f"{what or Path(exe).name} timed out after {timeout:.0f}s",
                            cmd=argv) from exc
    result = Completed(tuple(argv), proc.returncode, proc.stdout or "", proc.stderr or "")
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
