"""Stage: upstream's own unit tests on the patched work tree, on pinned dependencies.

The way upstream's tox runs them, minus the network:

* a venv with ``pip install -c <lock> -r requirements.txt -r test-requirements.txt
  stestr`` (nothing that the lock does not pin), cached under
  ``<cache>/venvs/<key>`` where the key hashes the lock, those requirement files
  and the Python version: a rebuild reuses it as it is.  Venvs are not
  relocatable, so it is made in place under a file lock and only counts once
  its completion marker is written; a half-made one is removed and redone.
* the tree itself is not installed into the venv (the venv is shared by every
  work tree): it is on ``sys.path`` through stestr's ``top_dir`` and
  ``PYTHONPATH``, and its metadata (entry points, which stevedore needs) comes
  from ``setup.py egg_info --egg-base`` into a directory outside the tree.
* ``stestr run`` with the tree's ``.stestr.conf``, ``--concurrency`` (default:
  CPU count), upstream's tox setenv, and the exclusion list
  (``build/test-exclusions.txt``, see :func:`read_exclusions`).
* nothing is written into the work tree: the stestr repository and the last
  run's outputs live in ``<work_tree>.tests/``, bytecode under
  ``<cache>/pycache`` (PYTHONPYCACHEPREFIX).

Outputs in ``output_dir``: ``tests.subunit`` (subunit v2), ``junit.xml`` and
``tests.log`` (failures with their tracebacks, stale exclusions, stestr's
output).  A failing test raises :class:`TestsFailed` (exit 4).
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from designate_dist import locking, scratch
from designate_dist.atomic import write_json, write_text
from designate_dist.distro import read_utf8
from designate_dist.errors import BuildLocked, ConfigError, TestsFailed
from designate_dist.lockfile import (
    REQUIREMENT_FILES,
    TOOL_REQUIREMENTS,
    parse_freeze,
    read_lock,
    requirement_args,
    venv_python,
)
from designate_dist.runner import run

Progress = Callable[[str], None]

SUBUNIT_FILE = "tests.subunit"
JUNIT_FILE = "junit.xml"
LOG_FILE = "tests.log"
VENV_MARKER = ".designate-dist-venv.json"
#: How many failing test ids the error message names before "and N more".
SHOWN_FAILURES = 20

#: upstream Designate's tox.ini [testenv] setenv.  PYTHONDONTWRITEBYTECODE is
#: replaced by PYTHONPYCACHEPREFIX: bytecode is kept (and reused), but out of the tree.
UPSTREAM_SETENV = {
    "LANGUAGE": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "OS_LOG_CAPTURE": "true",
    "OS_STDOUT_CAPTURE": "true",
    "OS_STDERR_CAPTURE": "true",
    "OS_TEST_TIMEOUT": "180",
    "PYTHONWARNINGS": "default::DeprecationWarning,ignore::DeprecationWarning:distutils,"
                      "ignore::DeprecationWarning:site",
}

_PASSED = ("success", "xfail")
_FAILED = ("fail", "uxsuccess")
_V1_RESULT = re.compile(rb"^(?:success|successful|failure|error|skip|xfail|uxsuccess):?\s", re.M)


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class TestRequest:
    """What the stage needs; see the module docstring."""

    __test__ = False

    work_tree: Path
    lock_file: Path
    exclusions_file: Path
    output_dir: Path
    cache_dir: Path
    pbr_version: str
    concurrency: int | None = None
    progress: Progress = _quiet
    #: a progress line every this many finished tests
    progress_every: int = 250
    #: the interpreter the venv is made from (default: Debian's python3)
    python: str | None = None


@dataclass(frozen=True)
class Exclusion:
    """One entry of the exclusion list: a test id regex and why it is not run."""

    line: int
    regex: str
    reason: str


@dataclass(frozen=True)
class StaleExclusion:
    exclusion: Exclusion
    tests: tuple[str, ...]

    def as_manifest(self) -> dict[str, Any]:
        return {"line": self.exclusion.line, "regex": self.exclusion.regex,
                "reason": self.exclusion.reason, "passing_tests": list(self.tests)}


@dataclass(frozen=True)
class Venv:
    path: Path
    key: str
    reused: bool

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


@dataclass(frozen=True)
class TestReport:
    """The counts and files of one run of the stage."""

    __test__ = False

    run: int
    passed: int
    failed: int
    skipped: int
    excluded: int
    wall_time: float           # the whole stage: venv, metadata, run, stale check, reports
    run_time: float            # the main `stestr run` only
    concurrency: int
    failed_ids: tuple[str, ...]
    stale_exclusions: tuple[StaleExclusion, ...]
    venv: Venv
    output_dir: Path
    files: tuple[str, ...]
    log: Path                  # the kept copy of the log, outside any staging directory

    def as_manifest(self) -> dict[str, Any]:
        return {"run": self.run, "passed": self.passed, "failed": self.failed,
                "skipped": self.skipped, "excluded": self.excluded,
                "wall_time_s": round(self.wall_time, 1), "run_time_s": round(self.run_time, 1),
                "concurrency": self.concurrency, "failed_ids": list(self.failed_ids),
                "stale_exclusions": [s.as_manifest() for s in self.stale_exclusions],
                "venv_key": self.venv.key, "venv_reused": self.venv.reused,
                "files": list(self.files)}


# -- exclusions ---------------------------------------------------------------------------

def parse_exclusions(text: str, where: str) -> tuple[Exclusion, ...]:
    """Parse the exclusion list: ``<test id regex>  # <reason>`` a line, ``#`` comment lines.

    An entry without a reason or with a regex that does not compile is a
    :class:`ConfigError` naming the line.
    """
    entries: list[Exclusion] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        regex, sep, reason = re.split(r"(\s+#)", line, maxsplit=1) if re.search(r"\s#", line) \
            else (line, "", "")
        regex, reason = regex.strip(), reason.strip()
        if not sep or not reason:
            raise ConfigError(f"{where}:{number}: exclusion {regex!r} has no reason",
                              hint="write `<test id regex>  # <reason>`")
        try:
            re.compile(regex)
        except re.error as exc:
            raise ConfigError(f"{where}:{number}: {regex!r} is not a valid regex: {exc}") from None
        entries.append(Exclusion(number, regex, reason))
    return tuple(entries)


def read_exclusions(path: Path) -> tuple[Exclusion, ...]:
    """The exclusion list at ``path``; a missing file excludes nothing."""
    if not path.is_file():
        return ()
    return parse_exclusions(read_utf8(path, str(path)), str(path))


def match_exclusions(exclusions: tuple[Exclusion, ...], test_ids: list[str],
                     where: str) -> dict[Exclusion, list[str]]:
    """The tests each exclusion matches (``re.search``, as stestr does); none is an error."""
    matched: dict[Exclusion, list[str]] = {}
    for entry in exclusions:
        pattern = re.compile(entry.regex)
        matched[entry] = [test for test in test_ids if pattern.search(test)]
    empty = [e for e in exclusions if not matched[e]]
    if empty:
        shown = ", ".join(f"line {e.line} {e.regex!r}" for e in empty)
        raise ConfigError(f"{where}: exclusion matches no test: {shown}",
                          hint="remove it, or fix the regex against `stestr list`")
    return matched


# -- the venv -----------------------------------------------------------------------------

def python_version(python: str) -> str:
    return run([python, "-c", "import sys; print(sys.implementation.name, sys.version.split()[0])"],
               what="ask the venv interpreter for its version").stdout.strip()


def venv_key(lock_file: Path, work_tree: Path, version: str) -> str:
    """Hash of what decides the venv's contents: the lock, the requirement files, Python.

    The requirement files count too: a patch that adds a requirement needs a
    new venv even when the lock already pins it.
    """
    digest = hashlib.sha256()
    digest.update(lock_file.read_bytes() + b"\0" + version.encode() + b"\0")
    for name in REQUIREMENT_FILES:
        path = work_tree / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
    digest.update(" ".join(TOOL_REQUIREMENTS).encode())
    return digest.hexdigest()[:20]


def ensure_venv(lock_file: Path, work_tree: Path, cache_dir: Path, *, python: str | None = None,
                progress: Progress = _quiet) -> Venv:
    """The cached test venv for this lock and tree, made if missing (see the module docstring)."""
    lock = read_lock(lock_file)
    python = python or venv_python()
    version = python_version(python)
    key = venv_key(lock_file, work_tree, version)
    path = cache_dir / "venvs" / key
    # Another build making the same venv: wait for it, then reuse what it made.
    with locking.hold(cache_dir / "venvs" / f"{key}.lock", wait=None, busy=BuildLocked):
        if (path / VENV_MARKER).is_file():
            return Venv(path, key, reused=True)
        if path.exists():  # a half-made venv from an interrupted run
            shutil.rmtree(path)
        progress(f"test: creating venv {path} ({version}, {len(lock.pins)} pins)")
        try:
            run([python, "-m", "venv", str(path)], what="create the test venv")
            pip = [str(path / "bin" / "python"), "-m", "pip", "--disable-pip-version-check",
                   "--no-input"]
            run([*pip, "install", "-q", "-c", str(lock_file), *requirement_args(work_tree),
                 *TOOL_REQUIREMENTS], cwd=work_tree,
                what="install the pinned test requirements")
            frozen = parse_freeze(run([*pip, "freeze", "--exclude-editable"],
                                      what="list the test venv").stdout)
            unpinned = sorted(f"{name}=={version}" for key_, (name, version) in frozen.items()
                              if lock.version_of(name) != version)
            if unpinned:
                raise ConfigError(f"{lock_file} does not pin {len(unpinned)} installed packages: "
                                  f"{', '.join(unpinned[:10])}", hint="run `designate-dist lock`")
            write_json(path / VENV_MARKER, {"key": key, "python": version,
                                            "lock_sha256": hashlib.sha256(lock_file.read_bytes()).hexdigest(),
                                            "packages": len(frozen), "created": int(time.time())})
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
    return Venv(path, key, reused=False)


# -- running stestr ------------------------------------------------------------------------

def suite_env(venv: Venv, work_tree: Path, meta_dir: Path, request: TestRequest) -> dict[str, str]:
    """The environment of the test processes: upstream's setenv on a clean base."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE",
                        "PIP_CONSTRAINT", "PIP_REQUIRE_VIRTUALENV")
           and not k.startswith(("OS_", "STESTR_", "SUBUNIT_"))}
    env["PATH"] = os.pathsep.join([str(venv.path / "bin"), env.get("PATH", "/usr/bin:/bin")])
    env.update(UPSTREAM_SETENV)
    env.update({"VIRTUAL_ENV": str(venv.path), "PBR_VERSION": request.pbr_version,
                "SKIP_GENERATE_AUTHORS": "1", "SKIP_WRITE_GIT_CHANGELOG": "1",
                "SKIP_GENERATE_RENO": "1",
                "PYTHONPATH": os.pathsep.join([str(work_tree), str(meta_dir)]),
                "PYTHONPYCACHEPREFIX": str(request.cache_dir / "pycache")})
    return env


class _ProgressTail(threading.Thread):
    """Counts finished tests in the stream stestr is writing, for a line every N tests.

    stestr writes the run into its repository as it goes (subunit v1, a temp
    file renamed at the end); only the new bytes are read on each poll.
    """

    def __init__(self, repo: Path, progress: Progress, every: int, total: int | None) -> None:
        super().__init__(daemon=True)
        self.repo, self.progress, self.every, self.total = repo, progress, max(every, 1), total
        self.known = set(os.listdir(repo)) if repo.is_dir() else set()
        self.stop = threading.Event()
        self.done = 0
        self.start_time = time.monotonic()

    def run(self) -> None:
        handle, rest, shown = None, b"", 0
        try:
            while not self.stop.wait(2.0):
                if handle is None:
                    fresh = [n for n in (os.listdir(self.repo) if self.repo.is_dir() else [])
                             if n.startswith("tmp") and n not in self.known]
                    if not fresh:
                        continue
                    try:
                        handle = open(self.repo / fresh[0], "rb")
                    except OSError:
                        continue
                data = rest + handle.read()
                complete, _, rest = data.rpartition(b"\n")
                self.done += len(_V1_RESULT.findall(complete + b"\n")) if complete else 0
                while self.done >= shown + self.every:
                    shown += self.every
                    of = f"/{self.total}" if self.total else ""
                    self.progress(f"test: {shown}{of} tests done "
                                  f"({time.monotonic() - self.start_time:.0f} s)")
        finally:
            if handle:
                handle.close()


def _run_ids(stestr_dir: Path) -> set[int]:
    return {int(p.name) for p in stestr_dir.iterdir() if p.name.isdigit()} if stestr_dir.is_dir() \
        else set()


def _new_run(stestr_dir: Path, before: set[int]) -> Path | None:
    """The run stestr stored since ``before``; None when it stored none (the tests did not load)."""
    new = _run_ids(stestr_dir) - before
    return stestr_dir / str(max(new)) if new else None


def _load_error(output: str) -> str:
    """The line that says why stestr could not load the tests."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if "Failed to import test module" in line or "ImportError" in line or "SyntaxError" in line:
            return line
    return lines[-1] if lines else "no output"


def read_run(v1_stream: Path, v2_out: Path | None = None) -> list[dict[str, Any]]:
    """The tests of a stestr repository run (subunit v1), optionally re-written as subunit v2."""
    import subunit
    import testtools

    tests: list[dict[str, Any]] = []
    targets: list[Any] = [testtools.StreamToDict(tests.append)]
    out = open(v2_out, "wb") if v2_out else None
    try:
        if out:
            targets.append(subunit.StreamResultToBytes(out))
        result = testtools.ExtendedToStreamDecorator(testtools.CopyStreamResult(targets))
        with open(v1_stream, "rb") as stream:
            result.startTestRun()
            try:
                subunit.ProtocolTestCase(stream, passthrough=io.BytesIO()).run(result)
            finally:
                result.stopTestRun()
    finally:
        if out:
            out.close()
    return [t for t in tests if t["status"] not in ("exists", None)]


def _details_text(test: dict[str, Any]) -> str:
    parts = []
    for name, content in test.get("details", {}).items():
        if content.content_type.type != "text":
            continue
        try:
            text = content.as_text()
        except Exception:  # an undecodable attachment must not hide the others
            continue
        if text.strip():
            parts.append(f"{name}:\n{text.rstrip()}")
    return "\n".join(parts)


def _duration(test: dict[str, Any]) -> float:
    start, stop = test.get("timestamps", (None, None))
    return (stop - start).total_seconds() if start and stop else 0.0


def junit_xml(tests: list[dict[str, Any]], name: str) -> str:
    """A JUnit XML report (one <testsuite>) of parsed tests."""
    failures = sum(t["status"] in _FAILED or t["status"] == "inprogress" for t in tests)
    skipped = sum(t["status"] == "skip" for t in tests)
    suite = ET.Element("testsuite", name=name, tests=str(len(tests)), failures=str(failures),
                       errors="0", skipped=str(skipped),
                       time=f"{sum(_duration(t) for t in tests):.3f}")
    for test in sorted(tests, key=lambda t: t["id"]):
        test_id = test["id"]
        classname, _, method = test_id.rpartition(".")
        case = ET.SubElement(suite, "testcase", classname=classname, name=method or test_id,
                             time=f"{_duration(test):.3f}")
        details = _details_text(test)
        if test["status"] in _FAILED or test["status"] == "inprogress":
            failure = ET.SubElement(case, "failure", message=f"{test['status']}: {test_id}")
            failure.text = details
        elif test["status"] == "skip":
            reason = test.get("details", {}).get("reason")
            ET.SubElement(case, "skipped", message=reason.as_text() if reason else "")
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def _log_text(request: TestRequest, venv: Venv, command: list[str], report_counts: dict[str, Any],
              tests: list[dict[str, Any]], stale: tuple[StaleExclusion, ...],
              stestr_output: str, notes: list[str]) -> str:
    lines = ["designate-dist: upstream unit tests", f"work tree: {request.work_tree}",
             f"venv: {venv.path} ({'reused' if venv.reused else 'created'})",
             f"command: {' '.join(command)}",
             "counts: " + ", ".join(f"{k} {v}" for k, v in report_counts.items()), *notes, ""]
    bad = [t for t in tests if t["status"] in _FAILED or t["status"] == "inprogress"]
    if bad:
        lines.append(f"== {len(bad)} failed tests")
        for test in sorted(bad, key=lambda t: t["id"]):
            lines += [f"--- {test['status']}: {test['id']}", _details_text(test), ""]
    if stale:
        lines.append("== stale exclusions (the excluded tests pass now; remove the entries)")
        for entry in stale:
            lines.append(f"line {entry.exclusion.line}: {entry.exclusion.regex}  "
                         f"# {entry.exclusion.reason}  ({len(entry.tests)} passing tests)")
        lines.append("")
    lines += ["== stestr output (tail)", *stestr_output.splitlines()[-200:], ""]
    return "\n".join(lines)


def run_upstream_tests(request: TestRequest) -> TestReport:
    """Run upstream's unit tests on ``request.work_tree``; raises TestsFailed if any fails."""
    started = time.monotonic()
    progress = request.progress
    work_tree = request.work_tree.resolve()
    if not (work_tree / ".stestr.conf").is_file():
        raise ConfigError(f"{work_tree} has no .stestr.conf: cannot run upstream's tests")
    exclusions = read_exclusions(request.exclusions_file)
    venv = ensure_venv(request.lock_file, work_tree, request.cache_dir, python=request.python,
                       progress=progress)
    if venv.reused:
        progress(f"test: venv {venv.path} (cached)")
    state = work_tree.parent / f"{work_tree.name}.tests"
    repo, meta, last = state / "stestr", state / "meta", state / "last"
    shutil.rmtree(meta, ignore_errors=True)
    meta.mkdir(parents=True)
    env = suite_env(venv, work_tree, meta, request)
    # entry points (stevedore plugins) and the version, without installing the tree
    run([str(venv.python), "setup.py", "-q", "egg_info", "--egg-base", str(meta)],
        cwd=work_tree, env=env, what="write the tree's metadata (egg_info)")
    stestr = [str(venv.path / "bin" / "stestr"), "--repo-url", str(repo)]
    concurrency = request.concurrency or os.cpu_count() or 1
    notes: list[str] = []
    matched: dict[Exclusion, list[str]] = {}
    total: int | None = None
    exclude_args: list[str] = []
    if not (repo / ".stestr" / "format").is_file():  # stestr keeps its files in <url>/.stestr
        shutil.rmtree(repo, ignore_errors=True)
        repo.mkdir(parents=True)
        run([*stestr, "init"], cwd=work_tree, env=env, what="create the stestr repository")
    if exclusions:
        listed = run([*stestr, "list"], cwd=work_tree, env=env, check=False)
        if listed.returncode == 0:
            ids = [line.strip() for line in listed.stdout.splitlines() if line.strip()]
            matched = match_exclusions(exclusions, ids, str(request.exclusions_file))
            excluded_ids = {t for found in matched.values() for t in found}
            total = len(ids) - len(excluded_ids)
        else:  # an import error: the run below reports it as a failing test
            notes.append("note: `stestr list` failed; exclusions were not checked against the tests:\n"
                         + "\n".join(listed.stderr.splitlines()[-20:]))
        state.mkdir(parents=True, exist_ok=True)
        exclude_list = state / "exclude-list.txt"
        exclude_list.write_text("".join(e.regex + "\n" for e in exclusions))
        exclude_args = ["--exclude-list", str(exclude_list)]
    command = [*stestr, "run", "--concurrency", str(concurrency), *exclude_args]
    progress(f"test: stestr run --concurrency {concurrency}"
             + (f" ({len(exclusions)} exclusions)" if exclusions else ""))
    runs_before = _run_ids(repo / ".stestr")
    tail = _ProgressTail(repo / ".stestr", progress, request.progress_every, total)
    tail.start()
    run_started = time.monotonic()
    try:
        outcome = run(command, cwd=work_tree, env=env, check=False)
    finally:
        tail.stop.set()
        tail.join()
    run_time = time.monotonic() - run_started

    request.output_dir.mkdir(parents=True, exist_ok=True)
    scratch.sweep(request.output_dir, f".{SUBUNIT_FILE}.")
    fd, tmp_name = scratch.make_file(request.output_dir, f".{SUBUNIT_FILE}.")
    os.close(fd)
    try:
        stored = _new_run(repo / ".stestr", runs_before)
        tests = read_run(stored, Path(tmp_name)) if stored else []
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, request.output_dir / SUBUNIT_FILE)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    statuses = [t["status"] for t in tests]
    failed_ids = tuple(sorted(t["id"] for t in tests if t["status"] in _FAILED
                              or t["status"] == "inprogress"))
    stale = _stale_exclusions(stestr, work_tree, env, state, matched, concurrency, progress)
    counts = {"run": len(tests), "passed": sum(s in _PASSED for s in statuses),
              "failed": len(failed_ids), "skipped": statuses.count("skip"),
              "excluded": len({t for found in matched.values() for t in found})}
    if not tests:
        notes.append(f"error: stestr ran no tests (exit {outcome.returncode})")
    elif outcome.returncode != 0 and not failed_ids:
        notes.append(f"error: stestr exited {outcome.returncode} although no test failed")
    write_text(request.output_dir / JUNIT_FILE,
               junit_xml(tests, f"{work_tree.name} (upstream unit tests)"))
    log_text = _log_text(request, venv, command, counts, tests, stale,
                         outcome.stdout + outcome.stderr, notes)
    write_text(request.output_dir / LOG_FILE, log_text)
    # a copy outside the output directory: a failed build removes its staging directory
    shutil.rmtree(last, ignore_errors=True)
    last.mkdir(parents=True)
    for name in (SUBUNIT_FILE, JUNIT_FILE, LOG_FILE):
        shutil.copyfile(request.output_dir / name, last / name)
    log = last / LOG_FILE
    report = TestReport(**counts, wall_time=time.monotonic() - started, run_time=run_time,
                        concurrency=concurrency, failed_ids=failed_ids, stale_exclusions=stale,
                        venv=venv, output_dir=request.output_dir,
                        files=(SUBUNIT_FILE, JUNIT_FILE, LOG_FILE), log=log)
    for entry in stale:
        progress(f"test: warning: stale exclusion at line {entry.exclusion.line} "
                 f"{entry.exclusion.regex!r}: its {len(entry.tests)} tests pass now")
    progress(f"test: {report.run} run, {report.passed} passed, {report.failed} failed, "
             f"{report.skipped} skipped, {report.excluded} excluded in {run_time:.0f} s")
    if failed_ids:
        shown = ", ".join(failed_ids[:SHOWN_FAILURES])
        more = f" and {len(failed_ids) - SHOWN_FAILURES} more" if len(failed_ids) > SHOWN_FAILURES else ""
        raise TestsFailed(f"{len(failed_ids)} upstream tests failed: {shown}{more} (full log: {log})")
    if stored is None:
        raise TestsFailed(f"stestr could not load upstream's tests: "
                          f"{_load_error(outcome.stdout + outcome.stderr)} (full log: {log})")
    if not tests or outcome.returncode != 0:
        raise TestsFailed(f"stestr run failed (exit {outcome.returncode}, {len(tests)} tests ran) "
                          f"(full log: {log})")
    return report


def _stale_exclusions(stestr: list[str], work_tree: Path, env: dict[str, str], state: Path,
                      matched: dict[Exclusion, list[str]], concurrency: int,
                      progress: Progress) -> tuple[StaleExclusion, ...]:
    """Run the excluded tests on their own: an entry whose tests all pass is stale."""
    ids = sorted({t for found in matched.values() for t in found})
    if not ids:
        return ()
    progress(f"test: checking {len(ids)} excluded tests for stale exclusions")
    load_list = state / "excluded-tests.txt"
    load_list.write_text("".join(t + "\n" for t in ids))
    repo = state / "stestr-excluded"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    run([*stestr[:-1], str(repo), "init"], cwd=work_tree, env=env, what="create a stestr repository")
    run([*stestr[:-1], str(repo), "run", "--concurrency", str(min(concurrency, len(ids))),
         "--load-list", str(load_list)], cwd=work_tree, env=env, check=False)
    stored = _new_run(repo / ".stestr", set())
    if stored is None:
        return ()
    status = {t["id"]: t["status"] for t in read_run(stored)}
    stale = []
    for entry, tests in matched.items():
        if tests and all(status.get(t) == "success" for t in tests):
            stale.append(StaleExclusion(entry, tuple(tests)))
    return tuple(stale)
