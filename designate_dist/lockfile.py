"""The lock file (``build/constraints.txt``): every dependency pinned as ``name==version``.

It plays the role of upstream's upper-constraints, which we cannot reach: the
test venv is installed with ``pip install -c <lock>`` and nothing outside it.

Format (one entry a line, comments start with ``#``)::

    # hold: dnspython==2.8.0  # 2.9.x breaks two upstream zone import tests
    alembic==1.20.1
    ...

A ``# hold: name==version  # reason`` line is a pin that ``designate-dist
lock`` keeps when it regenerates the file; every other pin is re-resolved to
the newest version the requirements allow.  Holds need a reason, like test
exclusions, so that they are dropped when the reason goes away.
"""
from __future__ import annotations

import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from designate_dist.atomic import write_text
from designate_dist.distro import read_utf8
from designate_dist.errors import ConfigError
from designate_dist.runner import run
from designate_dist.scratch import scratch_dir

#: The test runner is always installed in the test venv, so it is always locked.
TOOL_REQUIREMENTS = ("stestr",)
REQUIREMENT_FILES = ("requirements.txt", "test-requirements.txt")

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)==(?P<version>[A-Za-z0-9.+!_-]+)$")
_HOLD = re.compile(r"^#\s*hold:\s*(?P<pin>\S+)\s*(?:#\s*(?P<reason>.*))?$")

HEADER = """\
# Lock file: every dependency of the patched Designate (runtime requirements,
# upstream test-requirements and the stestr test runner), pinned as name==version.
# It plays the role of upstream's upper-constraints: the test venv is installed
# with `pip install -c` this file, and a package it does not pin is an error.
# Regenerate with: designate-dist lock (hold lines are kept, every other pin is
# re-resolved to the newest version the requirements allow).
# A hold is written `# hold: name==version  # reason`.
"""


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Hold:
    name: str
    version: str
    reason: str

    @property
    def line(self) -> str:
        return f"# hold: {self.name}=={self.version}  # {self.reason}"


@dataclass(frozen=True)
class Lock:
    """A parsed lock file: pins by canonical name, and the holds to keep."""

    pins: dict[str, tuple[str, str]]    # canonical name -> (name as written, version)
    holds: tuple[Hold, ...]

    def version_of(self, name: str) -> str | None:
        pin = self.pins.get(canonical(name))
        return pin[1] if pin else None

    def render(self) -> str:
        lines = [HEADER.rstrip("\n")]
        if self.holds:
            lines.append("#")
            lines += [hold.line for hold in self.holds]
        lines += [f"{name}=={version}" for name, version in
                  sorted(self.pins.values(), key=lambda pin: canonical(pin[0]))]
        return "\n".join(lines) + "\n"


def parse_lock(text: str, where: str = "build/constraints.txt") -> Lock:
    """Parse and validate lock file text; errors name the line."""
    pins: dict[str, tuple[str, str]] = {}
    holds: list[Hold] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            hold = _HOLD.match(line)
            if hold:
                pin = _PIN.match(hold["pin"])
                if not pin:
                    raise ConfigError(f"{where}:{number}: a hold must be `# hold: name==version  # reason`,"
                                      f" not {raw.strip()!r}")
                if not (hold["reason"] or "").strip():
                    raise ConfigError(f"{where}:{number}: the hold of {hold['pin']} has no reason",
                                      hint="write `# hold: name==version  # reason`")
                holds.append(Hold(pin["name"], pin["version"], hold["reason"].strip()))
            continue
        entry = line.split(" #", 1)[0].strip()
        pin = _PIN.match(entry)
        if not pin:
            raise ConfigError(f"{where}:{number}: not a `name==version` pin: {raw.strip()!r}")
        key = canonical(pin["name"])
        if key in pins:
            raise ConfigError(f"{where}:{number}: {pin['name']} is pinned twice")
        pins[key] = (pin["name"], pin["version"])
    for hold in holds:
        if canonical(hold.name) in pins and pins[canonical(hold.name)][1] != hold.version:
            raise ConfigError(f"{where}: {hold.name} is held at {hold.version} but pinned at "
                              f"{pins[canonical(hold.name)][1]}")
    return Lock(pins, tuple(holds))


def read_lock(path: Path) -> Lock:
    if not path.is_file():
        raise ConfigError(f"the lock file {path} does not exist", hint="run `designate-dist lock`")
    return parse_lock(read_utf8(path, str(path)), str(path))


def venv_python() -> str:
    """The interpreter test venvs are made from: Debian's python3 when present.

    The default ``python3`` on PATH may be a pyenv shim or another venv's
    interpreter; a venv made from those breaks when they change.
    """
    system = Path("/usr/bin/python3")
    return str(system) if system.is_file() else sys.executable


def parse_freeze(text: str) -> dict[str, tuple[str, str]]:
    """``pip freeze`` output -> pins by canonical name (editable and URL entries skipped)."""
    pins: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        pin = _PIN.match(line.strip())
        if pin:
            pins[canonical(pin["name"])] = (pin["name"], pin["version"])
    return pins


def requirement_args(work_tree: Path) -> list[str]:
    """``-r`` arguments for the requirement files the tree has (test-requirements is optional)."""
    args: list[str] = []
    for name in REQUIREMENT_FILES:
        if (work_tree / name).is_file():
            args += ["-r", str(work_tree / name)]
    if not args:
        raise ConfigError(f"{work_tree} has no requirements.txt")
    return args


def relock(work_tree: Path, lock_file: Path, *, python: str | None = None, scratch_root: Path | None = None,
           progress: Callable[[str], None] = lambda _: None) -> Path:
    """Regenerate ``lock_file`` from the requirements of ``work_tree``; returns its path.

    A fresh throw-away venv gets the tree's requirements (plus the test runner)
    with the current holds as constraints; its ``pip freeze`` becomes the lock,
    sorted, written atomically.  The tree itself is not installed.  The venv (a few hundred
    MB) goes below ``scratch_root/.scratch`` when given (:func:`designate_dist.scratch.scratch_dir`:
    a killed run's venv is swept by the next run), else to the system's temporary directory.
    """
    work_tree = work_tree.resolve()
    holds = read_lock(lock_file).holds if lock_file.is_file() else ()
    python = python or venv_python()
    place = (scratch_dir(scratch_root, "lock") if scratch_root is not None
             else tempfile.TemporaryDirectory(prefix="designate-dist-lock-"))
    with place as tmp:
        venv = Path(tmp) / "venv"
        progress(f"lock: fresh venv ({python})")
        run([python, "-m", "venv", str(venv)], what="create a venv for the lock")
        holds_file = Path(tmp) / "holds.txt"
        holds_file.write_text("".join(f"{h.name}=={h.version}\n" for h in holds))
        progress("lock: installing the requirements of the tree (newest allowed versions)")
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--no-input"]
        run([*pip, "install", "-q", "-c", str(holds_file), *requirement_args(work_tree),
             *TOOL_REQUIREMENTS], cwd=work_tree, what="install the requirements for the lock")
        frozen = parse_freeze(run([*pip, "freeze", "--exclude-editable"],
                                  what="freeze the lock venv").stdout)
        shutil.rmtree(venv, ignore_errors=True)
    for hold in holds:
        got = frozen.get(canonical(hold.name))
        if got and got[1] != hold.version:
            raise ConfigError(f"{hold.name} is held at {hold.version} but pip installed {got[1]}")
    kept = tuple(h for h in holds if canonical(h.name) in frozen)
    for hold in holds:
        if hold not in kept:
            progress(f"lock: dropped the hold of {hold.name} (no longer required)")
    lock = Lock(frozen, kept)
    write_text(lock_file, lock.render())
    progress(f"lock: wrote {lock_file} ({len(frozen)} pins)")
    return lock_file
