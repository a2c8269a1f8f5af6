"""Stage: release the distribution: bump the revision, write the changelogs, commit, build, tag.

    release = check the repository -> plan (next version, changes since the last
              release) -> write pin + debian/changelog + CHANGELOG.md -> commit
              -> build -> check the manifest against HEAD -> tag

Release tags follow DEP-14: ``debian/<debian version>`` with ``:`` written
``%`` and ``~`` written ``_`` (``debian/1%22.0.1-2``).  A bare version tag
(``22.0.1-2``) is never made: pbr would take it for designate-dist's own version.

The next revision: the last release tag reachable from HEAD names a pin; on the
same upstream version the revision is one above it (or the pin's, if higher);
after a rebase (upstream moved) or on the first release it is the pin's own.

A release whose build fails after the commit is resumed by running ``release``
again: HEAD is then an untagged release commit of the pin's version, and
release goes on with the build, the check and the tag, without a second bump.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from designate_dist import changelog, lockfile, pipeline
from designate_dist import manifest as manifest_mod
from designate_dist.atomic import write_bytes, write_text
from designate_dist.distro import LOCK_FILE, PIN_FILE, SERIES_DIRS, Distro, Pin, load_distro, parse_pin, read_utf8
from designate_dist.errors import (
    ConfigError,
    DirtyWorkTree,
    DistError,
    GitError,
    ReleaseRefused,
    StaleBuild,
)
from designate_dist.gitrepo import DistroRepo
from designate_dist.series import PatchFile, PatchSeries, read_series
from designate_dist.versions import DEBIAN_EPOCH, DistroVersion

Progress = Callable[[str], None]
TAG_PREFIX = "debian/"
CHANGELOG_MD = Path("CHANGELOG.md")
DEBIAN_CHANGELOG = Path("debian") / "changelog"
NO_CHANGE = "rebuild, no series change"
_TAG = re.compile(r"^debian/(?P<epoch>\d+)%(?P<upstream>[0-9A-Za-z.+_]+)-(?P<revision>\d+)$")
_COMMIT_TITLE = "Release {pep440} ({debian})"


def _quiet(_: str) -> None:
    pass


def tag_name(version: DistroVersion) -> str:
    """The DEP-14 tag of ``version``: ``debian/1%22.0.1-2``."""
    return TAG_PREFIX + version.debian.replace(":", "%").replace("~", "_")


def _tag_order(tag: str) -> tuple[Version, int] | None:
    """A sort key of a release tag (upstream version, revision), None for other tags."""
    match = _TAG.match(tag)
    if not match or int(match.group("epoch")) != DEBIAN_EPOCH:
        return None
    try:
        return Version(match.group("upstream").replace("_", "")), int(match.group("revision"))
    except InvalidVersion:
        return None


@dataclass(frozen=True)
class Plan:
    """What ``release`` does, before it does anything."""

    version: DistroVersion
    tag: str
    previous_tag: str | None
    previous_version: str | None   # the Debian version of the last release
    changes: tuple[str, ...]
    maintainer: str
    date: int                      # the changelog date (SOURCE_DATE_EPOCH, else now)
    package: str
    debian_changelog: bool         # the distro has debian/ packaging to record the release in
    resume: bool                   # HEAD is already the (untagged) release commit

    @property
    def title(self) -> str:
        return _COMMIT_TITLE.format(pep440=self.version.pep440, debian=self.version.debian)

    @property
    def message(self) -> str:
        """The commit message, also the tag's: the title and the change list."""
        return self.title + "\n\n" + "".join(f"* {change}\n" for change in self.changes)

    def debian_entry(self) -> str:
        return changelog.changelog_entry(self.version, self.changes, self.maintainer, self.date, self.package)

    def markdown_entry(self) -> str:
        day = datetime.fromtimestamp(self.date, tz=UTC).strftime("%Y-%m-%d")
        return (f"## {self.version.pep440} ({self.version.debian}) — {day}\n\n"
                + "".join(f"- {change}\n" for change in self.changes))

    def as_json(self) -> dict[str, Any]:
        return {"version": {"pep440": self.version.pep440, "debian": self.version.debian,
                            "upstream": self.version.upstream, "revision": self.version.revision},
                "tag": self.tag, "previous_tag": self.previous_tag,
                "previous_version": self.previous_version, "changes": list(self.changes),
                "resume": self.resume, "date": self.date,
                "changelog": self.debian_entry() if self.debian_changelog else None,
                "markdown": self.markdown_entry()}


@dataclass(frozen=True)
class ReleaseResult:
    plan: Plan
    commit: str | None             # None on a dry run
    tag: str
    build_dir: Path | None
    dry_run: bool


# -- the repository -------------------------------------------------------------------
def _open_repo(distro: Distro) -> DistroRepo:
    if not (distro.root / ".git").exists():
        raise ReleaseRefused(f"{distro.root} is not a git repository: a release is a tagged commit",
                             hint="git init and commit the distribution first")
    return DistroRepo(distro.root)


def _ignored_outputs(distro: Distro, output: Path | None) -> list[str]:
    """Directories the tool itself writes into the repository (work trees, build outputs)."""
    outs = []
    for path in (distro.work_root, distro.output_root(output)):
        try:
            outs.append(path.resolve().relative_to(distro.root).as_posix().rstrip("/") + "/")
        except ValueError:
            continue
    return outs


def _check_clean(distro: Distro, repo: DistroRepo, output: Path | None) -> None:
    if repo.current_branch() is None:
        raise ReleaseRefused("HEAD is detached: a release is made on a branch",
                             hint="git switch <branch> first")
    skip = _ignored_outputs(distro, output)
    dirty = [p for p in repo.dirty_paths() if not any(p.strip('"').startswith(s) for s in skip)]
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise DirtyWorkTree(f"the distribution repository has uncommitted changes: {shown}",
                            hint="commit or remove them; a release is made from a clean tree")


def _last_release(repo: DistroRepo) -> str | None:
    """The highest release tag reachable from HEAD."""
    ordered = [(key, tag) for tag in repo.tags_merged(TAG_PREFIX + "*")
               if (key := _tag_order(tag)) is not None]
    return max(ordered)[1] if ordered else None


@dataclass(frozen=True)
class _Snapshot:
    """The pin, series and lock of one commit, materialised in a directory."""

    pin: Pin
    series: PatchSeries
    lock: dict[str, str]            # normalised name -> version

    @property
    def patches(self) -> dict[str, PatchFile]:
        """ref -> patch, in series order."""
        return {p.ref: p for p in self.series}


def _snapshot(root: Path, where: str) -> _Snapshot:
    pin_file = root / PIN_FILE
    if not pin_file.is_file():
        raise ConfigError(f"{where}: no {PIN_FILE}")
    pin = parse_pin(read_utf8(pin_file, f"{where}:{PIN_FILE}"), f"{where}:{PIN_FILE}")
    try:
        series = read_series(root)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return _Snapshot(pin, series, _read_lock(root / LOCK_FILE))


def _snapshot_at(repo: DistroRepo, rev: str) -> _Snapshot:
    files = repo.files_at(rev, [str(PIN_FILE), str(LOCK_FILE), *SERIES_DIRS])
    with tempfile.TemporaryDirectory(prefix="designate-dist-release-") as tmp:
        for rel, data in files.items():
            path = Path(tmp) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return _snapshot(Path(tmp), rev)


def _read_lock(path: Path) -> dict[str, str]:
    """``{canonical name: version}`` of a lock file; {} when the commit has none."""
    if not path.is_file():
        return {}
    return {name: version for name, (_, version) in lockfile.read_lock(path).pins.items()}


# -- what changed -----------------------------------------------------------------------
def describe_changes(old: _Snapshot | None, new: _Snapshot) -> list[str]:
    """The change list of a release: upstream, patches, dependency pins."""
    changes: list[str] = []
    if old is None:
        changes.append(f"first release, on upstream {new.pin.name} {new.pin.version}")
    elif old.pin.version != new.pin.version:
        changes.append(f"upstream {old.pin.version} → {new.pin.version}")
    elif (old.pin.source, old.pin.sha256, old.pin.commit) != (new.pin.source, new.pin.sha256, new.pin.commit):
        changes.append(f"upstream {new.pin.version} source changed ({new.pin.describe_source()})")
    before = old.patches if old else {}
    added = [p for ref, p in new.patches.items() if ref not in before]
    dropped = [p for ref, p in before.items() if ref not in new.patches]
    renamed: list[tuple[PatchFile, PatchFile]] = []
    for patch in list(added):
        twin = next((d for d in dropped if d.series == patch.series and d.diff == patch.diff), None)
        if twin is not None:
            renamed.append((twin, patch))
            added.remove(patch)
            dropped.remove(twin)
    for patch in added:
        changes.append(f"added {patch.ref}: {patch.subject}")
    for old_patch, patch in renamed:
        changes.append(f"renamed {old_patch.ref} → {patch.name}: {patch.subject}")
    for ref, patch in new.patches.items():
        if ref in before and before[ref].sha256 != patch.sha256:
            changes.append(f"refreshed {ref}: {patch.subject}")
    for patch in dropped:
        changes.append(f"dropped {patch.ref}: {patch.subject}")
    kept_old = [ref for ref in before if ref in new.patches]
    kept_new = [ref for ref in new.patches if ref in before]
    if kept_old != kept_new:
        changes.append("reordered the series: " + ", ".join(kept_new))
    if old is not None:
        for name in sorted(set(old.lock) | set(new.lock)):
            was, now = old.lock.get(name), new.lock.get(name)
            if was == now:
                continue
            if was is None:
                changes.append(f"dependency {name} {now} added")
            elif now is None:
                changes.append(f"dependency {name} {was} removed")
            else:
                changes.append(f"dependency {name} {was} → {now}")
    if old is not None and not changes:
        changes.append(NO_CHANGE)
    return changes


def _next_revision(previous: Pin | None, current: Pin) -> int:
    if previous is None or previous.version != current.version:
        return current.revision  # first release, or a rebase (which resets the revision to 1)
    return max(previous.revision + 1, current.revision)


def _changelog_date() -> int:
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(epoch) if epoch.isdigit() else int(time.time())


def _package_name(distro: Distro) -> str:
    control = distro.root / "debian" / "control"
    if control.is_file():
        match = re.search(r"(?m)^Source:\s*(\S+)", control.read_text(encoding="utf-8"))
        if match:
            return match.group(1)
    return distro.pin.name


def _has_packaging(distro: Distro) -> bool:
    return (distro.root / "debian" / "rules").is_file()


def _resumable(distro: Distro, repo: DistroRepo) -> bool:
    """HEAD is a release commit of the pin's version that has no tag yet."""
    version = distro.pin.distro_version
    title = _COMMIT_TITLE.format(pep440=version.pep440, debian=version.debian)
    return (repo.commit_message("HEAD").split("\n", 1)[0] == title
            and repo.tag_target(tag_name(version)) is None)


def plan_release(distro: Distro, *, output: Path | None = None) -> Plan:
    """Check the repository and work out the release; changes nothing."""
    return _plan(distro, output)[0]


def _plan(distro: Distro, output: Path | None) -> tuple[Plan, PatchSeries | None]:
    """The plan, and the series of the working files as it parsed them (None when resuming)."""
    repo = _open_repo(distro)
    _check_clean(distro, repo, output)
    common = dict(maintainer=distro.pin.maintainer, package=_package_name(distro),
                  debian_changelog=_has_packaging(distro))
    previous_tag = _last_release(repo)
    if _resumable(distro, repo):
        version = distro.pin.distro_version
        body = repo.commit_message("HEAD").split("\n\n", 1)
        changes = tuple(line[2:] for line in (body[1] if len(body) > 1 else "").splitlines()
                        if line.startswith("* "))
        return Plan(version=version, tag=tag_name(version), previous_tag=previous_tag,
                    previous_version=_previous_version(repo, previous_tag), changes=changes,
                    date=repo.commit_author("HEAD").when, resume=True, **common), None
    old = _snapshot_at(repo, previous_tag) if previous_tag else None
    new = _snapshot(distro.root, "HEAD")
    version = DistroVersion(distro.pin.version, _next_revision(old.pin if old else None, distro.pin))
    tag = tag_name(version)
    target = repo.tag_target(tag)
    if target is not None:
        raise ReleaseRefused(f"tag {tag} already exists (on {target[:12]}): "
                             f"{version.pep440} was released already",
                             hint="raise [distro] revision in build/upstream.toml, or rebase")
    return Plan(version=version, tag=tag, previous_tag=previous_tag,
                previous_version=old.pin.distro_version.debian if old else None,
                changes=tuple(describe_changes(old, new)), date=_changelog_date(), resume=False,
                **common), new.series


def _previous_version(repo: DistroRepo, tag: str | None) -> str | None:
    return _snapshot_at(repo, tag).pin.distro_version.debian if tag else None


# -- writing ------------------------------------------------------------------------------
def _write_release(distro: Distro, repo: DistroRepo, plan: Plan, env: dict[str, str]) -> str:
    """Write the pin and the changelogs and commit them; on any failure put everything back."""
    files = [PIN_FILE, CHANGELOG_MD] + ([DEBIAN_CHANGELOG] if plan.debian_changelog else [])
    before = {rel: (distro.root / rel).read_bytes() if (distro.root / rel).is_file() else None
              for rel in files}
    head = repo.head()
    try:
        if distro.pin.revision != plan.version.revision:
            distro.save_pin(replace(distro.pin, revision=plan.version.revision))
        if plan.debian_changelog:
            old = before[DEBIAN_CHANGELOG]
            write_text(distro.root / DEBIAN_CHANGELOG,
                       changelog.with_debian_entry(old.decode("utf-8") if old else None, plan.debian_entry(),
                                          plan.version))
        old_md = before[CHANGELOG_MD]
        write_text(distro.root / CHANGELOG_MD,
                   changelog.with_markdown_entry(old_md.decode("utf-8") if old_md else None, plan.markdown_entry(),
                                  plan.version))
        return repo.commit_paths([str(rel) for rel in files], plan.message, env)
    except BaseException:
        if repo.head() == head:
            try:
                repo.unstage([str(rel) for rel in files])
            except GitError:
                pass  # the index is locked or broken: git's own error is the one to report
        for rel, data in before.items():
            if data is None:
                (distro.root / rel).unlink(missing_ok=True)
            else:
                write_bytes(distro.root / rel, data)
        raise


def _maintainer_env(maintainer: str) -> dict[str, str]:
    from email.utils import parseaddr
    name, addr = parseaddr(maintainer)
    name, addr = name or "designate-dist", addr or "designate-dist@localhost"
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": addr,
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": addr}


# -- the build and its check -------------------------------------------------------------
def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def check_build(distro: Distro, output: Path | None, *, skip_tests: bool,
                series: PatchSeries | None = None) -> Path:
    """The build dir of the pin's version, if its manifest says it was made from HEAD's inputs.

    Raises :class:`StaleBuild` naming the inputs that differ (or what is missing).
    ``series``: the series as the caller parsed it (else it is read here).
    """
    version = distro.pin.distro_version
    out_dir = distro.output_root(output).resolve() / version.pep440
    shown = _shown(out_dir, distro.root)
    try:
        data = json.loads((out_dir / manifest_mod.MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise StaleBuild(f"there is no build of {version.pep440} in {shown} (no readable manifest.json)",
                         hint="build it: run release without --no-build, or designate-dist build") from None
    built = data.get("distro_version", {}).get("pep440")
    if built != version.pep440:
        raise StaleBuild(f"the build in {shown} is of {built}, not {version.pep440}", hint="rebuild")
    inputs = pipeline.inputs_of(distro, read_series(distro.root) if series is None else series,
                                skip_tests=skip_tests,
                                epoch=pipeline.source_date_epoch(distro))
    if data.get("inputs_digest") != pipeline.inputs_digest(inputs):
        recorded = data.get("inputs", {})
        differ = sorted(k for k in set(inputs) | set(recorded) if inputs.get(k) != recorded.get(k))
        raise StaleBuild(f"the build in {shown} was made from other inputs than HEAD "
                         f"({', '.join(differ) or 'inputs digest'} differ): rebuild")
    for artifact in data.get("artifacts", []):
        if manifest_mod.artifact_problem(out_dir, artifact):
            raise StaleBuild(f"the build in {shown} does not match its manifest: "
                             f"{artifact['file']} is missing or changed: rebuild")
    return out_dir


# -- the command ---------------------------------------------------------------------------
def release(distro: Distro, *, dry_run: bool = False, build: bool = True, output: Path | None = None,
            skip_tests: bool = False, concurrency: int | None = None,
            progress: Progress = _quiet) -> ReleaseResult:
    """Release the distribution (see the module docstring); ``dry_run`` only plans."""
    plan, series = _plan(distro, output)
    if dry_run:
        return ReleaseResult(plan, None, plan.tag, None, dry_run=True)
    repo = DistroRepo(distro.root)
    env = {} if repo.has_identity() else _maintainer_env(plan.maintainer)  # commit and tag
    if plan.resume:
        progress(f"release: resuming {plan.title}: HEAD {repo.head()[:12]} is its untagged commit")
        commit = repo.head()
    else:
        commit = _write_release(distro, repo, plan, env)
        progress(f"release: committed {plan.title} as {commit[:12]}")
    released = load_distro(distro.root, distro.work_root)
    if series is None:  # resuming: the plan did not read it
        series = read_series(released.root)
    resume_hint = (f"the release commit {commit[:12]} is made; fix the cause and run "
                   "`designate-dist release` again to build and tag it (no second bump)")
    try:
        if build:
            pipeline.build(released, output=output, skip_tests=skip_tests, series=series,
                           concurrency=concurrency, progress=progress)
        build_dir = check_build(released, output, skip_tests=skip_tests, series=series)
    except DistError as exc:
        exc.hint = f"{exc.hint}; {resume_hint}" if exc.hint else resume_hint
        raise
    if repo.head() != commit:
        raise GitError(f"HEAD moved from {commit[:12]} during the build; not tagging")
    repo.annotated_tag(plan.tag, commit, plan.message, env)
    progress(f"release: tagged {plan.tag}")
    return ReleaseResult(plan, commit, plan.tag, build_dir, dry_run=False)
