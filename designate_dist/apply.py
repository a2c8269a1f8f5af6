"""Stage: apply the patch series to the imported work tree, one commit per patch.

``.upstream`` and other mail-format patches keep their author, date and
message verbatim; plain diffs are committed as the distro maintainer with
their DEP-3 description as message.  Committer identity and date are fixed
(the maintainer, at the author date) so the same inputs always give the same
commit ids.  A patch that does not apply, or that makes a symbolic link leading
out of the tree, stops the stage with exit code 3; the work tree is left clean
at the last good commit.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from designate_dist.distro import Distro
from designate_dist.errors import PatchApplyError
from designate_dist.gitrepo import ApplyFailure, Identity, WorkTree, explain_apply_failure
from designate_dist.links import leaving, leaving_in_tree, may_change_links
from designate_dist.series import PatchFile, PatchSeries
from designate_dist.tree_apply import HunkFailed, TreePatcher, Unsupported
from designate_dist.tree_state import TreeState, read_tree_state, write_tree_state
from designate_dist.upstream_import import BRANCH, ImportResult, maintainer_identity

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppliedPatch:
    patch: PatchFile
    commit: str

    def as_manifest(self) -> dict:
        return {"series": self.patch.series, "file": self.patch.name, "kind": self.patch.kind,
                "sha256": self.patch.sha256, "commit": self.commit}


@dataclass(frozen=True)
class ApplyResult:
    work_tree: Path
    upstream_commit: str
    applied: tuple[AppliedPatch, ...]
    head: str
    reused: bool


def patch_identities(distro: Distro, patch: PatchFile, default_time: int) -> tuple[Identity, Identity]:
    """The author and committer of the commit made from ``patch``."""
    when = patch.date if patch.date is not None else default_time
    committer = maintainer_identity(distro.pin, when)
    if patch.author is not None:
        author = Identity(patch.author.name, patch.author.email, when)
    else:
        author = committer
    return author, committer


@dataclass(frozen=True)
class SeriesCommits:
    """A series written as commits: one per applied patch, and the patch that failed (if one did)."""

    commits: tuple[str, ...]
    head: str
    failed: PatchFile | None = None
    failure: ApplyFailure | None = None


def commit_series(tree: WorkTree, base: str, series: Iterable[PatchFile],
                  identities: Callable[[PatchFile], tuple[Identity, Identity]]) -> SeriesCommits:
    """The series as commits on ``base``, written as objects: the work tree and index are not touched.

    Each patch is applied in this process (:mod:`designate_dist.tree_apply`, the
    tree ``git apply --index`` gives); a patch it leaves to git, or a hunk that
    does not apply, goes to ``git apply --cached`` in a scratch index, which
    applies it or names the file and hunk.  Commits are the objects ``git
    commit`` would write, so ids are the same as one process per step gives.
    """
    with tree.batched_objects():  # one pack for the series, not a file per object
        return _commit_series(tree, base, series, identities)


def _commit_series(tree: WorkTree, base: str, series: Iterable[PatchFile],
                   identities: Callable[[PatchFile], tuple[Identity, Identity]]) -> SeriesCommits:
    patcher = TreePatcher(tree.read_object, tree.write_object)
    head, root = base, tree.tree_of(base)
    commits: list[str] = []
    for patch in series:
        try:
            new_root = patcher.apply(root, patch.path.read_bytes())
        except (Unsupported, HunkFailed) as why:
            LOG.debug("%s: left to git apply (%s)", patch.ref, why)
            applied, stderr = tree.apply_to_tree(root, patch.path)
            if applied is None:
                return SeriesCommits(tuple(commits), head, patch, explain_apply_failure(stderr, patch.diff))
            new_root = applied
        author, committer = identities(patch)
        head = tree.commit_tree(new_root, head, patch.message, author, committer)
        root = new_root
        commits.append(head)
    return SeriesCommits(tuple(commits), head)


def apply_series(distro: Distro, imported: ImportResult, series: PatchSeries, *,
                 tree_path: Path | None = None) -> ApplyResult:
    """Apply ``series`` on top of the upstream import, reusing a tree that already has it.

    The commits are written first (:func:`commit_series`), then the work tree
    is checked out once at the last one that applied.
    """
    tree = WorkTree(tree_path or imported.work_tree)
    state = read_tree_state(tree.git_dir)
    if imported.reused and state.holds(series.fingerprint(), len(series), tree.head()) and not tree.dirty_paths():
        applied = tuple(AppliedPatch(p, c) for p, c in zip(series, state.commits))
        return ApplyResult(tree.path, imported.upstream_commit, applied, tree.head(), reused=True)
    if not tree.can_write_objects():
        return _apply_series_with_git(distro, imported, series, tree, state)
    state = replace(state, series=series.fingerprint(), commits=(), head=imported.upstream_commit, failed=None)
    write_tree_state(tree.git_dir, state)
    built = commit_series(tree, imported.upstream_commit, series,
                          lambda patch: patch_identities(distro, patch, imported.import_time))
    unsafe = _first_leaving_link(tree, series, built)
    if unsafe is not None:  # the series stops before the patch that made it
        index, path, target = unsafe
        commits = built.commits[:index]
        built = SeriesCommits(commits, commits[-1] if commits else imported.upstream_commit, series.patches[index])
    tree.reset_hard(built.head, BRANCH)
    applied = tuple(AppliedPatch(p, c) for p, c in zip(series, built.commits))
    state = replace(state, commits=built.commits, head=built.head)
    if built.failed is not None:
        write_tree_state(tree.git_dir, replace(state, failed=built.failed.ref))
        last = applied[-1].patch.ref if applied else f"upstream/{distro.pin.version}"
        if built.failure is not None:
            problem, files = f"does not apply: {built.failure.describe()}", [built.failure.file]
        else:
            assert unsafe is not None
            problem, files = _leaving_link_problem(path, target), [path]
        raise PatchApplyError(f"{built.failed.series}/series: {built.failed.name} {problem}",
                              patch=built.failed.ref, files=files,
                              hint=f"work tree {tree.path} left at {built.head[:12]} ({last})")
    write_tree_state(tree.git_dir, state)
    return ApplyResult(tree.path, imported.upstream_commit, applied, built.head, reused=False)


def _leaving_link_problem(path: str, target: str) -> str:
    return (f"makes {path} a symbolic link to {target!r}, outside the tree "
            "(it would put a file of the build host into the packages)")


def _first_leaving_link(tree: WorkTree, series: PatchSeries,
                        built: SeriesCommits) -> tuple[int, str, str] | None:
    """``(index of the patch, link, target)`` of the first patch whose tree has a link leading out of it.

    Only a patch that can create, retarget, rename or copy a link is looked at.
    """
    for index, (patch, commit) in enumerate(zip(series, built.commits)):
        if may_change_links(patch.diff):
            escaping = leaving_in_tree(tree.read_object, tree.tree_of(commit))
            if escaping:
                return index, *escaping[0]
    return None


def _apply_series_with_git(distro: Distro, imported: ImportResult, series: PatchSeries, tree: WorkTree,
                           state: TreeState) -> ApplyResult:
    """One ``git apply --index`` and one commit per patch: for repositories we cannot write objects to."""
    tree.reset_hard(imported.upstream_commit, BRANCH)
    applied: list[AppliedPatch] = []
    state = replace(state, series=series.fingerprint(), commits=(), head=imported.upstream_commit, failed=None)
    write_tree_state(tree.git_dir, state)
    for patch in series:
        error = tree.apply(patch.path)
        problem, files = None, []
        if error is not None:
            failure = explain_apply_failure(error, patch.diff)
            problem, files = f"does not apply: {failure.describe()}", [failure.file]
        elif may_change_links(patch.diff):
            escaping = leaving(tree.path, tree.tracked_symlinks())
            if escaping:
                tree.discard_merge()  # the patch applied: take it out again
                problem, files = _leaving_link_problem(*escaping[0]), [escaping[0][0]]
        if problem is not None:
            head = tree.head()
            write_tree_state(tree.git_dir, replace(state, failed=patch.ref, head=head))
            last = applied[-1].patch.ref if applied else f"upstream/{distro.pin.version}"
            raise PatchApplyError(f"{patch.series}/series: {patch.name} {problem}",
                                  patch=patch.ref, files=files,
                                  hint=f"work tree {tree.path} left at {head[:12]} ({last})")
        author, committer = patch_identities(distro, patch, imported.import_time)
        commit = tree.commit_index(patch.message, author, committer)
        applied.append(AppliedPatch(patch, commit))
        state = replace(state, commits=tuple(a.commit for a in applied), head=commit)
        write_tree_state(tree.git_dir, state, durable=False)
    write_tree_state(tree.git_dir, state)
    return ApplyResult(tree.path, imported.upstream_commit, tuple(applied), tree.head(), reused=False)
