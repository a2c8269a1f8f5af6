"""Stage: build the Debian package, a self-contained virtualenv made by dh-virtualenv.

Debian 12's own OpenStack libraries are too old for Designate 22 (oslo.service
3.0.0, Designate needs >= 4.2), so the package ``designate`` carries a
virtualenv at ``/opt/venvs/designate`` with every dependency at the version of
the lock file, and depends only on Debian's Python 3.11 and C libraries.

The virtualenv is filled from local directories only (``pip --no-index``):

* the *wheelhouse*: every ``name==version`` of the lock file as a wheel, made
  once with ``pip wheel`` into ``<cache>/wheelhouse/<sha256 of the lock>/`` and
  published atomically, then reused by every build with the same lock;
* our own wheels (the patched Designate and designate-dist's DR plugins).

Designate is installed with the extras :data:`DESIGNATE_EXTRAS` (our customs
patch declares them): the drivers a region runs with, PyMySQL for
``mysql+pymysql://`` and pymemcache for tooz's ``memcached://`` coordination.
Upstream lists them only as test requirements; ``debian/rules`` fails the
build when they do not import from the built virtualenv.

So the build needs no network once the wheelhouse exists, and two builds of the
same inputs give the same bytes (``debian/normalize-venv`` removes byte code and
build paths; SOURCE_DATE_EPOCH fixes the changelog date and the file times).

The packaging (``debian/`` of the distribution repository) is copied into a
scratch directory, where the Maintainer is set and ``debian/changelog`` made
(:func:`merge_changelog`): a released changelog whose top entry is the version
being built is used as it is; otherwise a build entry dated SOURCE_DATE_EPOCH
goes above the existing entries.  The distribution repository is never written to.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from designate_dist import lockfile, scratch
from designate_dist.atomic import write_text
from designate_dist.changelog import merge_changelog
from designate_dist.errors import CommandFailed, ConfigError, ToolNotFound
from designate_dist.links import check_tree
from designate_dist.runner import debian_env, run
from designate_dist.versions import DistroVersion

#: Debian's tools the stage runs, and the package that provides each.
REQUIRED_TOOLS: Mapping[str, str] = {
    "dpkg-buildpackage": "dpkg-dev",
    "dh": "debhelper",
    "dh_virtualenv": "dh-virtualenv",
    "dpkg-deb": "dpkg",
}
#: Our own projects: they come from our wheels, never from the lock's wheelhouse.
OWN_PROJECTS = frozenset({"designate", "designate-dist"})
#: Extras of the patched Designate the package installs: the database and coordination drivers.
DESIGNATE_EXTRAS = ("mysql", "memcached")
_MAINTAINER = re.compile(r"^[^<>\n]+ <[^<>@\s]+@[^<>\s]+>$")


@dataclass(frozen=True)
class DebRequest:
    packaging_dir: Path          # the distribution's debian/
    work_tree: Path              # the patched upstream tree (for etc/designate)
    wheels: tuple[Path, ...]     # [0] the patched Designate, [1] designate-dist (plugins)
    lock_file: Path              # every dependency as name==version
    version: DistroVersion
    maintainer: str              # "Name <email>"
    source_date_epoch: int
    output_dir: Path             # the .deb files are copied here
    cache_dir: Path              # wheelhouse and scratch builds
    #: Where to look for Debian's tools (default: the PATH of debian_env()).
    tool_path: str | None = None


@dataclass(frozen=True)
class Wheelhouse:
    path: Path
    wheels: tuple[Path, ...]
    reused: bool


@dataclass(frozen=True)
class DebResult:
    debs: tuple[Path, ...]
    wheelhouse: Wheelhouse


def read_lock(lock_file: Path) -> list[tuple[str, str]]:
    """The ``(name, version)`` pins of the lock file, in its order, our own projects left out."""
    return [pin for name, pin in lockfile.read_lock(lock_file).pins.items() if name not in OWN_PROJECTS]


def lock_key(lock_file: Path) -> str:
    return hashlib.sha256(lock_file.read_bytes()).hexdigest()


def ensure_wheelhouse(lock_file: Path, cache_dir: Path, source_date_epoch: int) -> Wheelhouse:
    """Every pin of the lock file as a wheel, built once per lock and then reused."""
    pins = read_lock(lock_file)
    root = cache_dir / "wheelhouse"
    final = root / lock_key(lock_file)
    scratch.sweep(root, ".partial-")  # a killed build's half-made wheelhouse
    if (final / "SHA256SUMS").is_file():
        return Wheelhouse(final, tuple(sorted(final.glob("*.whl"))), reused=True)
    tmp = scratch.make_dir(root, ".partial-", f"{final.name[:16]}-")
    try:
        requirements = tmp / "requirements.txt"
        requirements.write_text("".join(f"{name}=={version}\n" for name, version in pins))
        run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
             "--disable-pip-version-check", "--wheel-dir", str(tmp), "-r", str(requirements)],
            extra_env={"SOURCE_DATE_EPOCH": str(source_date_epoch), "PYTHONHASHSEED": "0",
                       "LC_ALL": "C.UTF-8", "TZ": "UTC"},
            what=f"download/build the wheels of {lock_file.name}")
        requirements.unlink()
        wheels = sorted(tmp.glob("*.whl"))
        if len(wheels) != len(pins):
            raise CommandFailed(f"pip wheel of {lock_file.name} gave {len(wheels)} wheels "
                                f"for {len(pins)} pins")
        sums = "".join(f"{hashlib.sha256(w.read_bytes()).hexdigest()}  {w.name}\n" for w in wheels)
        write_text(tmp / "SHA256SUMS", sums)
        tmp.chmod(0o755)
        try:
            tmp.rename(final)
        except OSError:
            if not (final / "SHA256SUMS").is_file():  # lost a race to a complete copy: fine
                raise
            shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Wheelhouse(final, tuple(sorted(final.glob("*.whl"))), reused=False)


def _requirement(wheel: Path, extras: tuple[str, ...] = ()) -> str:
    """``name[extras]==version`` of a wheel file name (``name-version-...whl``)."""
    parts = wheel.name.split("-")
    if not wheel.name.endswith(".whl") or len(parts) < 5:
        raise ConfigError(f"{wheel}: not a wheel file name")
    wanted = f"[{','.join(extras)}]" if extras else ""
    return f"{parts[0]}{wanted}=={parts[1]}"


def _find_tools(tool_path: str) -> None:
    for tool, package in REQUIRED_TOOLS.items():
        if shutil.which(tool, path=tool_path) is None:
            raise ToolNotFound(f"{tool} is not installed: the deb stage needs it",
                               hint=f"apt-get install {package}")


def prepare_source(request: DebRequest, wheelhouse: Wheelhouse, scratch: Path) -> Path:
    """The scratch source tree that dpkg-buildpackage builds (see debian/rules)."""
    if not _MAINTAINER.match(request.maintainer):
        raise ConfigError(f"maintainer {request.maintainer!r} is not 'Name <email>'")
    if not request.wheels:
        raise ConfigError("the deb stage needs at least the patched Designate wheel")
    source = scratch / f"designate-{request.version.debian_upstream}"
    shutil.copytree(request.packaging_dir, source / "debian", symlinks=True)
    control = source / "debian" / "control"
    text = control.read_text()
    control.write_text(re.sub(r"(?m)^Maintainer:.*$", lambda _: f"Maintainer: {request.maintainer}",
                              text, count=1))
    target = source / "debian" / "changelog"
    existing = target.read_text(encoding="utf-8") if target.is_file() else None
    target.write_text(merge_changelog(existing, request.version, request.maintainer,
                                      request.source_date_epoch), encoding="utf-8")
    wheels_dir = source / "wheels"
    wheels_dir.mkdir()
    for wheel in request.wheels:
        shutil.copyfile(wheel, wheels_dir / wheel.name)
    (source / "requirements.txt").write_text(_requirement(request.wheels[0], DESIGNATE_EXTRAS) + "\n")
    (source / "plugins.txt").write_text("".join(_requirement(w) + "\n" for w in request.wheels[1:]))
    (source / "constraints.txt").write_text(
        "".join(f"{n}=={v}\n" for n, v in read_lock(request.lock_file)))
    (source / "wheelhouse").symlink_to(wheelhouse.path)
    etc = request.work_tree / "etc" / "designate"
    if etc.is_dir():
        # Links are copied as links, never followed; one leading out of etc/designate is refused.
        check_tree(etc, "the deb's etc/designate")
        shutil.copytree(etc, source / "etc" / "designate", symlinks=True)
    return source


#: Lines of the build log that only say that something below them failed.
_NOISE = re.compile(r"^(make(\[\d+\])?: \*\*\*|dpkg-buildpackage: error: debian/rules|"
                    r"dh: error: |dh_virtualenv: error: |Traceback |subprocess\.CalledProcessError)")


def failure_reason(log: str) -> str:
    """The line of a failed build's output that says what went wrong."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    meaningful = [line for line in lines if not _NOISE.match(line)]
    errors = [line for line in meaningful if line.startswith(("ERROR:", "error:"))]
    return (errors or meaningful or lines or ["no output"])[-1]


def build_env(source_date_epoch: int, tool_path: str | None = None) -> dict[str, str]:
    env = debian_env()
    if tool_path is not None:
        env["PATH"] = tool_path
    for name in ("PYTHONPATH", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS",
                 "MAKEFLAGS", "DEB_BUILD_OPTIONS", "DH_VERBOSE"):
        env.pop(name, None)
    env.update({"SOURCE_DATE_EPOCH": str(source_date_epoch), "LC_ALL": "C.UTF-8", "TZ": "UTC",
                "PYTHONHASHSEED": "0", "DEB_BUILD_OPTIONS": "nocheck"})
    return env


def build_debs(request: DebRequest) -> DebResult:
    """Build the virtualenv package and copy the .deb file(s) into ``output_dir``."""
    env = build_env(request.source_date_epoch, request.tool_path)
    _find_tools(env["PATH"])
    if not (request.packaging_dir / "rules").is_file():
        raise ConfigError(f"{request.packaging_dir}: no rules file (not a debian/ packaging directory)")
    wheelhouse = ensure_wheelhouse(request.lock_file, request.cache_dir, request.source_date_epoch)
    builds = request.cache_dir / "deb-build"
    # A killed build's copy (~140 MB) goes; the path stays as short as it was: the virtualenv
    # is made below it and pip writes a /bin/sh trampoline for a #! line over 127 bytes.
    scratch.sweep(builds, "")
    build_dir = scratch.make_dir(builds, "", f"{request.version.pep440}-", short=True)
    try:
        source = prepare_source(request, wheelhouse, build_dir)
        try:
            run(["dpkg-buildpackage", "-b", "-us", "-uc"], cwd=source, env=env,
                what="dpkg-buildpackage (the designate virtualenv package)")
        except CommandFailed as exc:
            log = builds / f"{request.version.pep440}-failed.log"
            write_text(log, exc.stdout + "\n--- stderr ---\n" + exc.stderr)
            raise CommandFailed(f"dpkg-buildpackage failed (exit {exc.returncode}): "
                                f"{failure_reason(exc.stderr or exc.stdout)}",
                                cmd=exc.cmd, returncode=exc.returncode,
                                stdout=exc.stdout, stderr=exc.stderr,
                                hint=f"full build log: {log}") from exc
        built = sorted(build_dir.glob("*.deb"))
        if not built:
            raise CommandFailed("dpkg-buildpackage succeeded but made no .deb file")
        request.output_dir.mkdir(parents=True, exist_ok=True)
        debs = []
        for deb in built:
            final = request.output_dir / deb.name
            tmp = request.output_dir / f".{deb.name}.tmp"
            shutil.copyfile(deb, tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, final)
            debs.append(final)
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    return DebResult(tuple(debs), wheelhouse)
