"""Stage: rebase the patch series onto a new upstream release, with triage.

    rebase = fetch old + new -> import new -> replay the old series commit by commit
             -> classify every patch -> (conflict: stop, state saved) -> rewrite files + pin

The old series is first applied on the old release (our own ``apply`` stage, in
a scratch tree) and its commits are fetched into the new release's tree, so
every patch can be replayed with a real three-way merge: the blobs it was made
against are there.  Each patch is classified:

``clean``            applies as is (same hunks, same line numbers);
``refreshed``        applies only with an offset, fuzz or a three-way merge: the
                     file is rewritten with fresh context, header and message kept;
``upstream``         its change is already in the new release (it reverse-applies,
                     or the three-way merge gives no change): dropped;
``partly-upstream``  the merge keeps only part of its changed lines: upstream
                     merged a different version; the file keeps the remaining diff;
``conflict``         the three-way merge leaves conflicts: stop (exit 3), state saved;
``resolved``         a conflict the developer resolved (``rebase --continue``).

How a patch is replayed and classified is :mod:`designate_dist.rebase_triage`; the
statuses and the report are :mod:`designate_dist.rebase_outcome`; the saved state of a
stopped rebase is :mod:`designate_dist.rebase_state`.

Nothing in the distribution repository changes until the whole series is
through: then the patch files, the series files and the pin are rewritten
(each atomically).  The state of a stopped rebase is JSON in
``<work-dir>/rebase/state.json``, so ``--continue`` and ``--abort`` work from a
new shell; it keeps a copy of every file the rebase may rewrite, so ``--abort``
puts back exactly what was there.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from designate_dist import tree_cache
from designate_dist.apply import commit_series, patch_identities
from designate_dist.atomic import write_text
from designate_dist.distro import SERIES_DIRS, Distro, Pin, load_distro
from designate_dist.errors import PatchApplyError, UsageError
from designate_dist.fetch import fetch
from designate_dist.gitrepo import WorkTree
from designate_dist.pipeline import build_lock
from designate_dist.published_digest import sha256_hint
from designate_dist.rebase_next import after_finish
from designate_dist.rebase_outcome import CONFLICT, RESOLVED, REWRITTEN, UPSTREAM, PatchOutcome, RebaseReport
from designate_dist.rebase_state import (
    STATE_DIR,
    Backup,
    RebaseState,
    RebaseStateError,
    RebaseStatus,
    backup_files,
    drop_state,
    read_state,
    rebase_status,
    restore_files,
    write_state,
)
from designate_dist.rebase_triage import Replay
from designate_dist.requirements_files import parse_requirements, requirements_diff
from designate_dist.scratch import scratch_dir
from designate_dist.series import SERIES_FILE, PatchSeries, read_series
from designate_dist.tree_state import read_tree_state, write_tree_state
from designate_dist.unidiff import rewrite_patch
from designate_dist.upstream_import import import_upstream

Progress = Callable[[str], None]
OLD_REF = "refs/designate-dist/rebase-old"
OLD_UPSTREAM_REF = "refs/designate-dist/rebase-old-upstream"


def _quiet(_: str) -> None:
    pass


class RebaseConflict(PatchApplyError):
    """A patch conflicts with the new release; the rebase is stopped, its state saved (exit 3)."""

    report: RebaseReport | None = None


@dataclass(frozen=True)
class RebaseRequest:
    """Where to rebase to: the new release and how to fetch and verify it."""

    version: str
    sha256: str | None = None
    source: str | None = None
    path: str | None = None
    url: str | None = None
    tag: str | None = None
    commit: str | None = None
    dry_run: bool = False

    def new_pin(self, old: Pin) -> Pin:
        source = self.source or old.source
        same = source == old.source
        pin = replace(old, version=self.version, source=source, revision=1,
                      sha256=(self.sha256 or "").lower(),
                      path=self.path or (old.path if same else None),
                      url=self.url or (old.url if same else None),
                      tag=self.tag or (self.version if source == "git" else None),
                      commit=(self.commit or "").lower() or None)
        if source in ("pypi", "file") and not pin.sha256:
            hint = None
            if source == "pypi":
                hint = sha256_hint(pin.name, self.version)
            raise UsageError(f"rebase --onto {self.version}: --sha256 is required for a {source} source "
                             "(the new archive is verified like the pin)", hint=hint)
        if source == "git" and (not pin.url or not pin.commit):
            raise UsageError(f"rebase --onto {self.version}: a git source needs --url (or the pin's) "
                             "and --commit")
        if source == "file" and not pin.path:
            raise UsageError(f"rebase --onto {self.version}: a file source needs --path")
        if source != "git":
            pin = replace(pin, url=None, tag=None, commit=None)
        if source != "file":
            pin = replace(pin, path=None)
        return pin


def _old_series(distro: Distro, series: PatchSeries, tree: WorkTree, scratch: Path, progress: Progress,
                cache: Path | None) -> tuple[str, list[str]]:
    """The old series as commits on the old release, written into ``tree``'s repository.

    Returns (the old release's commit, the series' commits).  The old release's
    objects come from the tree cache (imported once in a scratch tree when the
    cache does not have them yet); the commits are the ones ``prepare`` makes,
    written without a work tree.
    """
    fetched = fetch(distro, cache=cache)
    cached = tree_cache.lookup(distro.pin, fetched)
    if cached is None:
        progress(f"rebase: importing {distro.pin.version} (once: the cache keeps it)")
        imported = import_upstream(distro, fetched, force=True, path=scratch / "old")
        cached = tree_cache.lookup(distro.pin, fetched)
        if cached is None:  # a cache that cannot keep it: the objects come from the scratch import
            tree.fetch_ref(imported.work_tree, imported.upstream_commit, OLD_UPSTREAM_REF)
            base, import_time = imported.upstream_commit, imported.import_time
    if cached is not None:
        tree_cache.load(tree, cached, ref=OLD_UPSTREAM_REF)
        base, import_time = cached.commit, cached.import_time
    built = commit_series(tree, base, series, lambda patch: patch_identities(distro, patch, import_time))
    if built.failed is not None:
        assert built.failure is not None
        raise PatchApplyError(f"{built.failed.ref} does not apply on {distro.pin.version} either: "
                              f"{built.failure.describe()}", patch=built.failed.ref, files=[built.failure.file],
                              hint="the series must apply on the pinned release first: see `designate-dist prepare`")
    tree.set_ref(OLD_REF, built.head)
    return base, list(built.commits)


def _check_can_start(distro: Distro, request: RebaseRequest) -> None:
    # A dry run changes nothing and works in a scratch tree: it may run while a rebase is stopped.
    state = None if request.dry_run else read_state(distro)
    if state is not None:
        raise RebaseStateError(f"a rebase onto {state.onto} is already in progress",
                               hint="`designate-dist rebase --continue` or `designate-dist rebase --abort`")
    if request.version == distro.pin.version:
        raise UsageError(f"rebase --onto {request.version}: the pin is already at {request.version}")


def rebase(distro: Distro, request: RebaseRequest, *, progress: Progress = _quiet,
           cache: Path | None = None) -> RebaseReport:
    """Start a rebase onto ``request.version``; raise :class:`RebaseConflict` when it stops.

    A real rebase holds the build lock: no build reads the pin or the series while they change.
    """
    if request.dry_run:
        return _rebase(distro, request, progress=progress, cache=cache)
    with build_lock(distro):
        report = _rebase(distro, request, progress=progress, cache=cache)
    return after_finish(distro, report, progress)


def _rebase(distro: Distro, request: RebaseRequest, *, progress: Progress,
            cache: Path | None) -> RebaseReport:
    _check_can_start(distro, request)
    new_pin = request.new_pin(distro.pin)
    series = read_series(distro.root)
    new_distro = distro.with_pin(new_pin)
    progress(f"rebase: fetch {new_pin.describe_source()}")
    fetched = fetch(new_distro, cache=cache)
    with scratch_dir(distro.work_root, "rebase") as scratch:
        if request.dry_run:
            target = scratch / "new"
        else:
            target = distro.work_root / STATE_DIR / f"{new_pin.name}-{new_pin.version}"
            # Leftovers of a rebase killed before it saved its state: nothing to keep (and under
            # the build lock, nobody else is importing here).
            for leftover in [target, *target.parent.glob(".*.import-*")]:
                if leftover.exists():
                    shutil.rmtree(leftover)
            backup = backup_files(distro)
        # No checkout yet: the commits are written first, the files follow once (or never, for a dry run).
        imported = import_upstream(new_distro, fetched, force=True, path=target, pin=new_pin, checkout=False)
        tree = WorkTree(imported.work_tree)
        progress(f"rebase: the series on {distro.pin.version}")
        old_upstream, old_commits = _old_series(distro, series, tree, scratch, progress, cache)
        new_req_text = tree.blob_text(imported.upstream_commit, "requirements.txt")
        run = Replay(distro=distro, new_pin=new_pin, tree=tree, series=series, old_commits=old_commits,
                   new_upstream=imported.upstream_commit, import_time=imported.import_time,
                   changelog_old=tree.blob_text(old_upstream, "ChangeLog") or "",
                   changelog_new=tree.blob_text(imported.upstream_commit, "ChangeLog") or "",
                   requirements=requirements_diff(tree.blob_text(old_upstream, "requirements.txt"),
                                                  new_req_text),
                   new_requirements=parse_requirements(new_req_text), dry_run=request.dry_run,
                   progress=progress, ahead=None if imported.checked_out else imported.upstream_commit)
        progress(f"rebase: replaying {len(series)} patches onto {new_pin.version}")
        run.triage(0)
        if request.dry_run:
            return run.report(finished=True)  # the triage went through every patch
    return _stop_or_finish(run, backup)


def _stop_or_finish(run: Replay, backup: Backup) -> RebaseReport:
    distro = run.distro
    if run.outcomes and run.outcomes[-1].status == CONFLICT:
        write_state(distro, run.saved(backup))
        stopped = run.outcomes[-1]
        files = ", ".join(stopped.files)
        deleted = "".join(f"; modify/delete: {p} was deleted in {run.new_pin.version}"
                          for p in stopped.deleted_upstream)
        error = RebaseConflict(
            f"rebase onto {run.new_pin.version} stopped: {stopped.ref} conflicts in {files}{deleted}",
            patch=stopped.ref, files=list(stopped.files),
            hint=f"resolve the conflicts in {run.tree.path}, `git add` the files"
                 + _drop_hint(stopped, stopped.files)
                 + ", then run `designate-dist rebase --continue`; or `designate-dist rebase --abort`")
        error.report = run.report(finished=False)
        raise error
    write_state(distro, run.saved(backup))  # a crash while finishing can still be aborted
    _finish(run)
    return run.report(finished=True)


def _finish(run: Replay) -> None:
    """Write the rebased series and the new pin, move the tree into place, drop the state."""
    distro = run.distro
    dropped: dict[str, set[str]] = {s: set() for s in SERIES_DIRS}
    by_ref = {p.ref: p for p in run.series}
    for outcome in run.outcomes:
        patch = by_ref[outcome.ref]
        if outcome.status == UPSTREAM:
            dropped[patch.series].add(patch.name)
        elif outcome.status in REWRITTEN and outcome.commit:
            fresh = (run.tree.format_patch(outcome.commit) if patch.mail
                     else run.tree.commit_diff(outcome.commit))
            original = patch.path.read_text(encoding="utf-8")
            write_text(patch.path, rewrite_patch(original, patch.mail, fresh))
    for series, names in dropped.items():
        if not names:
            continue
        series_file = distro.series_dir(series) / SERIES_FILE
        kept = [line for line in series_file.read_text(encoding="utf-8").splitlines(keepends=True)
                if line.split("#", 1)[0].strip() not in names]
        write_text(series_file, "".join(kept))
        for name in names:
            (distro.series_dir(series) / name).unlink(missing_ok=True)
    distro.save_pin(run.new_pin)
    # The tree becomes the new pin's work tree; prepare re-applies the rewritten files on it.
    final = run.new_distro.work_tree
    write_tree_state(run.tree.git_dir, read_tree_state(run.tree.git_dir).series_rewritten(run.tree.head()))
    if run.tree.path != final:
        if final.exists():
            aside = final.with_name(f".{final.name}.replaced")
            shutil.rmtree(aside, ignore_errors=True)
            final.rename(aside)
            shutil.rmtree(aside, ignore_errors=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        run.tree.path.rename(final)
        run.tree = WorkTree(final)
    drop_state(distro)


def rebase_continue(distro: Distro, *, progress: Progress = _quiet) -> RebaseReport:
    """Take the developer's resolution of the stopped patch and go on."""
    with build_lock(distro):
        report = _rebase_continue(distro, progress=progress)
    return after_finish(distro, report, progress)


def _drop_hint(stopped: PatchOutcome, files: list[str] | tuple[str, ...]) -> str:
    """How to drop our change to files the new release deleted (modify/delete conflicts)."""
    gone = [f for f in files if f in stopped.deleted_upstream]
    if not gone:
        return ""
    return (f"; {', '.join(gone)} {'was' if len(gone) == 1 else 'were'} deleted upstream: to drop our change "
            f"to {'it' if len(gone) == 1 else 'them'}, `git rm {' '.join(gone)}` (a `git add` adds "
            f"{'it' if len(gone) == 1 else 'them'} back)")


def _refuse_markers(stopped: PatchOutcome, tree: WorkTree, marked: list[str], fix: str) -> None:
    """Refuse a resolution while a file of it, or an untracked file, still holds conflict markers."""
    marked = marked + [p for p in tree.resolution_marker_files(staged=False) if p not in marked]
    if marked:
        raise RebaseConflict(f"{stopped.ref}: conflict markers left in {', '.join(marked)}",
                             patch=stopped.ref, files=marked,
                             hint=f"{fix} (delete a merge tool's backup files), then run "
                                  "`designate-dist rebase --continue` again")


def _rebase_continue(distro: Distro, *, progress: Progress) -> RebaseReport:
    state = read_state(distro)
    if state is None:
        raise RebaseStateError("no rebase in progress", hint="start one with `designate-dist rebase --onto VERSION`")
    series = read_series(distro.root)
    if series.fingerprint() != state.series_fingerprint:
        raise RebaseStateError("the series changed since the rebase started",
                               hint="`designate-dist rebase --abort` and start again")
    run = Replay.resume(distro, state, series, progress)
    tree = run.tree
    stopped = run.outcomes[-1]
    index = len(run.outcomes) - 1
    patch = run.series.patches[index]
    unmerged = tree.unmerged_paths()
    if unmerged:
        raise RebaseConflict(f"{stopped.ref} still has unresolved conflicts in {', '.join(unmerged)}",
                             patch=stopped.ref, files=unmerged,
                             hint=f"resolve them in {tree.path} and `git add` them"
                                  + _drop_hint(stopped, unmerged)
                                  + ", then run `designate-dist rebase --continue` again")
    head = tree.head()
    if head != state.head:
        added = tree.commits_between(state.head, head)
        if len(added) != 1:
            raise RebaseStateError(f"{tree.path} has {len(added)} new commits since the rebase stopped; "
                                   "expected the one resolving " + stopped.ref,
                                   hint="squash them into one commit, then run `designate-dist rebase --continue`")
        commit = added[0]
        _refuse_markers(stopped, tree, tree.commit_marker_files(commit),
                        "fix them and amend the commit (`git commit --amend`)")
    else:
        # Only what git tracks and what the developer `git add`ed: never a merge tool's backup.
        tree.stage_tracked()
        _refuse_markers(stopped, tree, tree.staged_marker_files(), "remove them and `git add` the file")
        commit = run.commit_staged(patch) if tree.has_staged_changes() else None
        (tree.git_dir / "MERGE_MSG").unlink(missing_ok=True)
    left_out = tree.untracked_paths()
    if left_out:
        progress(f"rebase: left out of {stopped.ref} (untracked; `git add` what belongs to it): "
                 + ", ".join(left_out))
    warning = None
    if commit is None:
        outcome = PatchOutcome(stopped.series, stopped.file, stopped.kind, UPSTREAM,
                               note="the resolution leaves no change: dropped")
    else:
        readded = [path for path in tree.added_paths(commit)
                   if tree.blob_text(f"{run.old_commits[index]}^", path) is not None]
        if readded:
            warning = (f"{stopped.ref}: the resolution adds back {', '.join(readded)}, deleted in "
                       f"{run.new_pin.version}; if that is not meant, `git rm` it and amend")
        outcome = PatchOutcome(stopped.series, stopped.file, stopped.kind, RESOLVED,
                               note="conflicts in " + ", ".join(stopped.files) + " resolved"
                               + (f"; adds back {', '.join(readded)} (deleted in {run.new_pin.version})"
                                  if readded else ""),
                               commit=commit, warning=warning)
    run.outcomes[-1] = run.with_notes(patch, outcome)
    progress(f"rebase: {stopped.ref}: {run.outcomes[-1].status}")
    if warning:
        progress(f"warning: {warning}")
    run.triage(index + 1)
    return _stop_or_finish(run, state.backup)


def rebase_abort(distro: Distro) -> list[str]:
    """Put the repository back exactly as before the rebase; return the files restored."""
    with build_lock(distro):
        return _rebase_abort(distro)


def _rebase_abort(distro: Distro) -> list[str]:
    state = read_state(distro)
    if state is None:
        raise RebaseStateError("no rebase in progress")
    restored = restore_files(distro, state.backup)
    if state.tree.exists() and state.tree.parent == distro.work_root / STATE_DIR:
        shutil.rmtree(state.tree)
    drop_state(distro)
    return restored


__all__ = ["RebaseConflict", "RebaseReport", "RebaseRequest", "RebaseState", "RebaseStateError", "RebaseStatus",
           "PatchOutcome", "load_distro", "rebase", "rebase_abort", "rebase_continue", "rebase_status",
           "requirements_diff"]
