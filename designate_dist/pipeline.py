"""The order of the stages, written down once, and the commands built from them.

    prepare = fetch -> import -> apply
    build   = prepare -> test -> wheel -> deb -> manifest

Each stage lives in its own module and takes/returns frozen dataclasses; this
module only sequences them, holds the build lock and publishes the output
directory atomically.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from designate_dist import lockfile, locking, scratch, tool_version
from designate_dist import manifest as manifest_mod
from designate_dist.apply import ApplyResult, apply_series
from designate_dist.cache import cache_root
from designate_dist.deb import DebRequest, build_debs
from designate_dist.digest import sha256_of
from designate_dist.distro import Distro
from designate_dist.errors import BuildLocked
from designate_dist.fetch import FetchResult, fetch
from designate_dist.migrations import migration_head
from designate_dist.quilt import QuiltResult, export_quilt
from designate_dist.series import PatchSeries, read_series
from designate_dist.testsuite import TestReport, TestRequest, run_upstream_tests
from designate_dist.upstream_import import import_upstream
from designate_dist.wheel import WheelRequest, build_wheel

BUILD_STAGES = ("fetch", "import", "apply", "test", "wheel", "deb", "manifest")
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class PrepareResult:
    fetched: FetchResult
    series: PatchSeries
    applied: ApplyResult

    import_time: int

    @property
    def work_tree(self) -> Path:
        return self.applied.work_tree


@dataclass(frozen=True)
class BuildResult:
    output_dir: Path
    manifest: Path
    artifacts: tuple[Path, ...]
    reused: bool


def source_date_epoch(distro: Distro) -> int | None:
    """SOURCE_DATE_EPOCH: the environment's, else the distro repo's HEAD commit time.

    None when neither exists (not a git repository); the build then uses the
    upstream release's own date (the newest file in its archive).
    """
    if os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        import git
        return int(git.Repo(distro.root, search_parent_directories=False).head.commit.committed_date)
    except Exception:
        return None


@contextmanager
def build_lock(distro: Distro) -> Iterator[None]:
    """Refuse a second concurrent build in the same distribution repository.

    The lock file says who holds it and is removed on the way out (see
    :func:`designate_dist.locking.hold`).
    """
    def busy(holder: str) -> BuildLocked:
        return BuildLocked(f"another designate-dist build is running in {distro.root} "
                           f"({holder or 'another process'})", hint="wait for it to finish")

    with locking.hold(distro.work_root / "build.lock", wait=0, busy=busy, owner=f"pid {os.getpid()}",
                      remove=True):
        yield


def prepare(distro: Distro, *, force: bool = False, cache: Path | None = None,
            progress: Progress = _quiet) -> PrepareResult:
    """fetch -> import -> apply under the build lock; the series is validated before anything is touched."""
    with build_lock(distro):
        return prepare_held(distro, force=force, cache=cache, progress=progress)


def prepare_held(distro: Distro, *, force: bool = False, cache: Path | None = None,
                 series: PatchSeries | None = None, progress: Progress = _quiet) -> PrepareResult:
    """:func:`prepare` for a caller that already holds :func:`build_lock` (build, test, lock, quilt...).

    ``series``: the series as the caller parsed it (else it is read here).
    """
    if series is None:
        series = read_series(distro.root)
    progress(f"fetch: {distro.pin.describe_source()}")
    fetched = fetch(distro, cache=cache)
    progress(f"fetch: {fetched.archive} sha256 {fetched.sha256[:16]}... "
             f"({'cached' if fetched.cached else 'downloaded'})")
    imported = import_upstream(distro, fetched, force=force)
    progress(f"import: {imported.work_tree} ({'reused' if imported.reused else 'new'})")
    applied = apply_series(distro, imported, series)
    progress(f"apply: {len(applied.applied)} patches "
             f"({'already applied' if applied.reused else 'applied'}), HEAD {applied.head[:12]}")
    return PrepareResult(fetched, series, applied, imported.import_time)


def inputs_of(distro: Distro, series: PatchSeries, *, skip_tests: bool,
              epoch: int | None) -> dict[str, str]:
    """Hashes of every input that can change an artifact."""
    root = distro.root
    own = [root / "setup.cfg", root / "setup.py", root / "requirements.txt",
           root / "designate_dr", root / "designate_dist"]
    return {
        "pin": sha256_of(distro.pin_file),
        "series": series.fingerprint(),
        "lock": sha256_of(distro.lock_file) if distro.lock_file.is_file() else "",
        "exclusions": sha256_of(distro.exclusions_file) if distro.exclusions_file.is_file() else "",
        "debian": manifest_mod.tree_digest([root / "debian"], root),
        "own_package": manifest_mod.tree_digest([p for p in own if p.exists()], root),
        "tool": tool_version(),
        "skip_tests": str(skip_tests),
        "source_date_epoch": "upstream" if epoch is None else str(epoch),
    }


def inputs_digest(inputs: dict[str, str]) -> str:
    """The digest of :func:`inputs_of` recorded as the manifest's ``inputs_digest``."""
    import hashlib
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _up_to_date(final: Path, digest: str) -> bool:
    try:
        data = json.loads((final / manifest_mod.MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if data.get("inputs_digest") != digest:
        return False
    return not any(manifest_mod.artifact_problem(final, a) for a in data.get("artifacts", []))


def _publish_dir(staging: Path, final: Path) -> None:
    """Swap ``staging`` into ``final``: readers never see a half-written directory."""
    if final.exists():
        old = final.with_name(f".old-{scratch.owner_tag()}{final.name}")
        final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(final)


def build(distro: Distro, *, output: Path | None = None, skip_tests: bool = False,
          force: bool = False, rebuild: bool = False, cache: Path | None = None,
          concurrency: int | None = None, series: PatchSeries | None = None,
          progress: Progress = _quiet) -> BuildResult:
    """The whole build; see BUILD_STAGES.  Output goes to ``output/<distro-version>/``.

    ``series``: the series as the caller parsed it (release), else it is read here, once.
    """
    cache = cache or cache_root()
    out_root = distro.output_root(output).resolve()
    version = distro.pin.distro_version
    final = out_root / version.pep440
    with build_lock(distro):
        if series is None:
            series = read_series(distro.root)
        epoch_hint = source_date_epoch(distro)
        inputs = inputs_of(distro, series, skip_tests=skip_tests, epoch=epoch_hint)
        digest = inputs_digest(inputs)
        if not rebuild and not force and _up_to_date(final, digest):
            progress(f"build: {final} is up to date (inputs unchanged)")
            data = json.loads((final / manifest_mod.MANIFEST).read_text())
            return BuildResult(final, final / manifest_mod.MANIFEST,
                               tuple(final / a["file"] for a in data["artifacts"]), reused=True)
        prepared = prepare_held(distro, force=force, cache=cache, series=series, progress=progress)
        epoch = epoch_hint if epoch_hint is not None else prepared.import_time
        out_root.mkdir(parents=True, exist_ok=True)
        scratch.sweep(out_root, ".partial-", ".old-")
        staging = scratch.make_dir(out_root, ".partial-", f"{version.pep440}-")
        staging.chmod(0o755)
        try:
            result = _build_into(distro, prepared, staging, inputs, digest, epoch,
                                 skip_tests=skip_tests, cache=cache, concurrency=concurrency,
                                 progress=progress)
            _publish_dir(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    progress(f"build: wrote {final}")
    return BuildResult(final, final / manifest_mod.MANIFEST,
                       tuple(final / p.relative_to(staging) for p in result), reused=False)


def _build_into(distro: Distro, prepared: PrepareResult, staging: Path, inputs: dict[str, str],
                digest: str, epoch: int, *, skip_tests: bool, cache: Path,
                concurrency: int | None, progress: Progress) -> list[Path]:
    version = distro.pin.distro_version
    pin = distro.pin
    tests: dict = {"ran": False, "skipped_by_request": True}
    if not skip_tests:
        progress("test: upstream unit tests (stestr)")
        report = run_upstream_tests(TestRequest(
            work_tree=prepared.work_tree, lock_file=distro.lock_file,
            exclusions_file=distro.exclusions_file, output_dir=staging / "tests",
            cache_dir=cache, pbr_version=version.pep440, concurrency=concurrency,
            progress=progress))
        tests = {"ran": True, **report.as_manifest()}
    progress("wheel: patched upstream")
    wheels = [build_wheel(WheelRequest(prepared.work_tree, version.pep440, epoch, staging))]
    if (distro.root / "setup.cfg").is_file() and (distro.root / "designate_dr").is_dir():
        progress("wheel: designate-dist (DR backend plugins)")
        wheels.append(build_wheel(WheelRequest(distro.root, version.pep440, epoch, staging)))
    debs: list[Path] = []
    if (distro.root / "debian" / "rules").is_file():
        progress("deb: dpkg-buildpackage")
        result = build_debs(DebRequest(
            packaging_dir=distro.root / "debian", work_tree=prepared.work_tree,
            wheels=tuple(wheels), lock_file=distro.lock_file, version=version,
            maintainer=pin.maintainer, source_date_epoch=epoch, output_dir=staging,
            cache_dir=cache))
        debs = list(result.debs)
    artifacts = [*wheels, *debs]
    tests_dir = staging / "tests"
    if tests_dir.is_dir():
        artifacts += sorted(p for p in tests_dir.iterdir() if p.is_file())
    man = manifest_mod.Manifest(
        upstream={"name": pin.name, "version": pin.version, "source": pin.source,
                  "source_description": prepared.fetched.source, "sha256": prepared.fetched.sha256,
                  **({"commit": pin.commit} if pin.commit else {})},
        distro_version={"revision": str(pin.revision), "pep440": version.pep440,
                        "debian": version.debian},
        source_date_epoch=epoch, inputs_digest=digest, inputs=inputs,
        patches=[a.as_manifest() for a in prepared.applied.applied],
        artifacts=[manifest_mod.artifact_entry(p, staging) for p in artifacts],
        tests=tests, database={"migration_head": migration_head(prepared.work_tree)})
    man.write(staging)
    return artifacts + [staging / manifest_mod.MANIFEST]


def run_tests(distro: Distro, *, output: Path | None, concurrency: int | None, force: bool,
              progress: Progress = _quiet) -> TestReport:
    """prepare, then upstream's unit tests on the patched tree (``designate-dist test``).

    Outputs (subunit, JUnit XML, log) go to ``output`` (default:
    ``DISTRO/dist/tests-<pep440>/``); returns the :class:`~designate_dist.testsuite.TestReport`.
    """
    version = distro.pin.distro_version
    out = (output or distro.output_root() / f"tests-{version.pep440}").resolve()
    with build_lock(distro):
        prepared = prepare_held(distro, force=force, progress=progress)
        progress("test: upstream unit tests (stestr)")
        return run_upstream_tests(TestRequest(
            work_tree=prepared.work_tree, lock_file=distro.lock_file,
            exclusions_file=distro.exclusions_file, output_dir=out, cache_dir=cache_root(),
            pbr_version=version.pep440, concurrency=concurrency, progress=progress))


def relock(distro: Distro, *, force: bool, progress: Progress = _quiet) -> Path:
    """prepare, then regenerate the lock file from the patched tree's requirements (``lock``).

    Holds (``# hold: name==version  # reason``) are kept; see designate_dist.lockfile.
    """
    with build_lock(distro):
        prepared = prepare_held(distro, force=force, progress=progress)
        return lockfile.relock(prepared.work_tree, distro.lock_file, scratch_root=distro.work_root,
                               progress=progress)


def quilt(distro: Distro, *, output: Path | None = None, force: bool = False,
          progress: Progress = _quiet) -> QuiltResult:
    """prepare, then write the applied series as a quilt series (``designate-dist quilt``).

    Into ``output`` (default: ``DISTRO/patches``), under the build lock; returns
    the :class:`~designate_dist.quilt.QuiltResult`.
    """
    with build_lock(distro):
        prepared = prepare_held(distro, force=force, progress=progress)
        return export_quilt(prepared.applied, output or distro.root / "patches")
