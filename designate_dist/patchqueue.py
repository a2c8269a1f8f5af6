"""The patch queue: the series as commits on a branch of the work tree, and back (like ``gbp pq``).

``import_queue`` prepares the work tree (fetch, import, apply) and puts the
applied series on the branch ``patch-queue``, recording which commit came from
which patch file.  The developer edits (``git commit --amend``, ``git rebase
-i``), reorders and adds commits there.  ``export_queue`` writes the branch
back: a commit still from the import keeps its file byte for byte; a commit
whose message matches a patch of the series (same message, else same subject)
rewrites that file (same name, kind and header, fresh diff); any other commit
becomes a new ``NNNN-subject.patch`` in ``customs/`` (or the series asked
for); a patch whose commit is gone is removed.  Series files are rewritten in
the new commit order, their leading comments kept.

``add_commits`` is the short way for one new change: commits made on top of
the applied series in the work tree (``prepare``, commit, ``patches add``)
become the next numbered patches of ``customs/`` (or ``cherry-pick/``) and
their series entries, without a patch-queue branch.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from designate_dist.atomic import write_json, write_text
from designate_dist.distro import SERIES_DIRS, Distro
from designate_dist.errors import DirtyWorkTree, DistError, SeriesError
from designate_dist.gitrepo import WorkTree
from designate_dist.pipeline import build_lock, prepare_held
from designate_dist.series import (
    SERIES_FILE,
    PatchFile,
    next_patch_name,
    read_series,
    series_with_entry,
)
from designate_dist.tree_state import read_tree_state, write_tree_state
from designate_dist.unidiff import rewrite_patch, same_hunks

Progress = Callable[[str], None]
BRANCH = "patch-queue"
STATE_FILE = "designate-dist-pq.json"


def _quiet(_: str) -> None:
    pass


class PatchQueueError(DistError):
    """No patch queue to export, or the branch cannot be exported as a series."""


@dataclass(frozen=True)
class QueueImport:
    work_tree: Path
    branch: str
    commits: tuple[str, ...]


@dataclass(frozen=True)
class ExportedPatch:
    series: str
    file: str
    status: str   # kept | updated | new | removed
    commit: str | None

    def line(self) -> str:
        return f"{self.status:<8} {self.series}/{self.file}"


@dataclass(frozen=True)
class QueueExport:
    patches: tuple[ExportedPatch, ...]

    def lines(self) -> list[str]:
        return [p.line() for p in self.patches]


def _state_path(tree: WorkTree) -> Path:
    return tree.git_dir / STATE_FILE


def import_queue(distro: Distro, *, force: bool = False, progress: Progress = _quiet) -> QueueImport:
    """Prepare the work tree and put the applied series on the ``patch-queue`` branch (under the build lock)."""
    with build_lock(distro):
        prepared = prepare_held(distro, force=force, progress=progress)
        tree = WorkTree(prepared.work_tree)
        tree.create_branch_here(BRANCH)
        entries = [{"series": a.patch.series, "file": a.patch.name, "commit": a.commit,
                    "sha256": a.patch.sha256} for a in prepared.applied.applied]
        write_json(_state_path(tree), {"base": prepared.applied.upstream_commit, "patches": entries})
    return QueueImport(tree.path, BRANCH, tuple(e["commit"] for e in entries))


def _series_header(series_file: Path) -> str:
    """The leading comment and blank lines of a series file."""
    head = []
    if series_file.is_file():
        for line in series_file.read_text(encoding="utf-8").splitlines(keepends=True):
            if line.split("#", 1)[0].strip():
                break
            head.append(line)
    return "".join(head)


def export_queue(distro: Distro, *, new_series: str = "customs",
                 progress: Progress = _quiet) -> QueueExport:
    """Write the ``patch-queue`` commits back into the series files and patch files (under the build lock)."""
    with build_lock(distro):
        return _export_queue(distro, new_series=new_series, progress=progress)


def _export_queue(distro: Distro, *, new_series: str, progress: Progress) -> QueueExport:
    if new_series not in SERIES_DIRS:
        raise SeriesError(f"unknown series {new_series!r} (one of {', '.join(SERIES_DIRS)})")
    if not (distro.work_tree / ".git").exists():
        raise PatchQueueError(f"no work tree at {distro.work_tree}",
                              hint="run `designate-dist patches import` first")
    tree = WorkTree(distro.work_tree)
    try:
        state = json.loads(_state_path(tree).read_text())
    except (OSError, ValueError):
        raise PatchQueueError(f"no patch queue in {tree.path}",
                              hint="run `designate-dist patches import` first") from None
    if tree.is_rebasing():
        raise DirtyWorkTree(f"{tree.path} is in the middle of a rebase or merge",
                            hint="finish it (git rebase --continue) before exporting")
    dirty = tree.dirty_paths()
    if dirty:
        raise DirtyWorkTree(f"{tree.path} has uncommitted changes: {', '.join(dirty[:5])}",
                            hint="commit them on the patch-queue branch (or discard them) first")
    series = read_series(distro.root)
    by_ref: dict[str, PatchFile] = {p.ref: p for p in series}
    imported = {e["commit"]: e for e in state["patches"]
                if f"{e['series']}/{e['file']}" in by_ref and by_ref[f"{e['series']}/{e['file']}"].sha256
                == e["sha256"]}
    commits = tree.commits_between(state["base"], "HEAD")
    progress(f"patches: exporting {len(commits)} commits from {tree.path}")
    used: set[str] = set()
    order: dict[str, list[str]] = {s: [] for s in SERIES_DIRS}
    writes: dict[Path, str] = {}
    results: list[ExportedPatch] = []
    new_names: set[str] = set()
    for commit in commits:
        entry = imported.get(commit)
        patch = by_ref.get(f"{entry['series']}/{entry['file']}") if entry else None
        if patch is not None and patch.ref not in used:
            used.add(patch.ref)
            order[patch.series].append(patch.name)
            results.append(ExportedPatch(patch.series, patch.name, "kept", commit))
            continue
        message = tree.commit_message(commit).strip()
        subject = message.split("\n", 1)[0].strip()
        patch = next((p for p in series if p.ref not in used and p.message.strip() == message), None) or \
            next((p for p in series if p.ref not in used and p.subject == subject), None)
        if patch is not None:
            used.add(patch.ref)
            order[patch.series].append(patch.name)
            original = patch.path.read_text(encoding="utf-8")
            if patch.message.strip() == message and same_hunks(patch.diff, tree.commit_diff(commit)):
                results.append(ExportedPatch(patch.series, patch.name, "kept", commit))  # only moved
                continue
            if patch.mail:
                fresh = tree.format_patch(commit)
                text = rewrite_patch(original, True, fresh) if patch.message.strip() == message else fresh
            else:
                text = rewrite_patch(original, False, tree.commit_diff(commit))
            status = "kept" if text == original else "updated"
            if status == "updated":
                writes[patch.path] = text
            results.append(ExportedPatch(patch.series, patch.name, status, commit))
            continue
        directory = distro.series_dir(new_series)
        name = next_patch_name(directory, subject, taken=new_names)
        new_names.add(name)
        order[new_series].append(name)
        writes[directory / name] = tree.format_patch(commit)
        results.append(ExportedPatch(new_series, name, "new", commit))
    if order["cherry-pick"] and order["customs"]:
        positions = {(r.series, r.file): i for i, r in enumerate(results)}
        last_cherry = max(positions["cherry-pick", n] for n in order["cherry-pick"])
        first_custom = min(positions["customs", n] for n in order["customs"])
        if last_cherry > first_custom:
            raise SeriesError("the patch-queue branch puts a cherry-pick/ patch after a customs/ patch; "
                              "cherry-pick/ is always applied first",
                              hint="reorder the commits (git rebase -i) and export again")
    removed = [p for p in series if p.ref not in used]
    for path, text in writes.items():
        write_text(path, text)
    for name in SERIES_DIRS:
        series_file = distro.series_dir(name) / SERIES_FILE
        old_names = [p.name for p in series if p.series == name]
        if order[name] != old_names:
            write_text(series_file, _series_header(series_file) + "".join(f"{n}\n" for n in order[name]))
    for patch in removed:
        patch.path.unlink(missing_ok=True)
        results.append(ExportedPatch(patch.series, patch.name, "removed", None))
    entries = [{"series": r.series, "file": r.file, "commit": r.commit,
                "sha256": hashlib.sha256((distro.series_dir(r.series) / r.file).read_bytes()).hexdigest()}
               for r in results if r.status != "removed"]
    write_json(_state_path(tree), {"base": state["base"], "patches": entries})
    # The work tree's commits now match the files; the next prepare re-applies them from the files.
    write_tree_state(tree.git_dir, read_tree_state(tree.git_dir).series_rewritten(tree.head()))
    return QueueExport(tuple(results))


@dataclass(frozen=True)
class AddedPatch:
    series: str
    file: str
    commit: str

    def line(self) -> str:
        return f"added    {self.series}/{self.file} ({self.commit[:12]})"


def add_commits(distro: Distro, revs: list[str] | tuple[str, ...] = (), *, series: str = "customs",
                progress: Progress = _quiet) -> tuple[AddedPatch, ...]:
    """Write commits of the work tree made on top of the applied series as new patch files.

    ``revs`` (default: every commit above the applied series, oldest first) become
    ``NNNN-<subject>.patch`` in ``series`` with their series entries; the files and
    the series file are written only when every commit was checked.  The next
    ``prepare`` applies the series again from the files (the work tree's own
    commits carry the developer's committer and date, not the build's).  Under the build lock.
    """
    with build_lock(distro):
        return _add_commits(distro, revs, series=series, progress=progress)


def _add_commits(distro: Distro, revs: list[str] | tuple[str, ...], *, series: str,
                 progress: Progress) -> tuple[AddedPatch, ...]:
    if series not in SERIES_DIRS:
        raise SeriesError(f"unknown series {series!r} (one of {', '.join(SERIES_DIRS)})")
    if not (distro.work_tree / ".git").exists():
        raise PatchQueueError(f"no work tree at {distro.work_tree}",
                              hint="run `designate-dist prepare`, commit your change there, then add it")
    tree = WorkTree(distro.work_tree)
    base = read_tree_state(tree.git_dir).applied_head
    if not base:
        raise PatchQueueError(f"{tree.path} does not hold the applied series",
                              hint="run `designate-dist prepare` first")
    if tree.is_rebasing():
        raise DirtyWorkTree(f"{tree.path} is in the middle of a rebase or merge",
                            hint="finish it before adding its commits")
    dirty = tree.dirty_paths()
    if dirty:
        raise DirtyWorkTree(f"{tree.path} has uncommitted changes: {', '.join(dirty[:5])}",
                            hint="commit them first (git commit), then add the commit")
    above = tree.commits_between(base, "HEAD")
    if revs:
        wanted = []
        for rev in revs:
            commit = tree.resolve(rev)
            if commit is None or commit not in above:
                raise PatchQueueError(f"{rev} is not a commit above the applied series in {tree.path}",
                                      hint=f"`git log {base[:12]}..HEAD` there lists those")
            if commit not in wanted:
                wanted.append(commit)
        commits = [c for c in above if c in wanted]  # in history order, whatever the argument order
    else:
        commits = above
    if not commits:
        raise PatchQueueError(f"no commits above the applied series in {tree.path}",
                              hint="commit your change there (git commit) first")
    read_series(distro.root)  # the series as it is must be valid before it grows
    directory = distro.series_dir(series)
    added: list[AddedPatch] = []
    texts: dict[str, str] = {}
    for commit in commits:
        subject = tree.commit_message(commit).strip().split("\n", 1)[0]
        name = next_patch_name(directory, subject, taken=texts)
        texts[name] = tree.format_patch(commit)
        added.append(AddedPatch(series, name, commit))
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        write_text(directory / name, text)
    write_text(directory / SERIES_FILE, series_with_entry(directory / SERIES_FILE, *texts))
    for patch in added:
        progress(f"patches: {patch.series}/{patch.file} from {patch.commit[:12]}")
    write_tree_state(tree.git_dir, read_tree_state(tree.git_dir).series_rewritten(tree.head()))
    return tuple(added)
