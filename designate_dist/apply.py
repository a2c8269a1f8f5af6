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

from dataclasses import dataclass
from pathlib import Path

from designate_dist.distro import Distro
from designate_dist.errors import PatchApplyError
from designate_dist.gitrepo import Identity, WorkTree, explain_apply_failure
from designate_dist.links import leaving, may_change_links
from designate_dist.series import PatchFile, PatchSeries
from designate_dist.upstream_import import ImportResult, maintainer_identity, read_state, write_state


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


def apply_series(distro: Distro, imported: ImportResult, series: PatchSeries, *,
                 tree_path: Path | None = None) -> ApplyResult:
    """Apply ``series`` on top of the upstream import, reusing a tree that already has it."""
    tree = WorkTree(tree_path or imported.work_tree)
    state = read_state(tree)
    fingerprint = series.fingerprint()
    if (imported.reused and state.get("series") == fingerprint and state.get("head")
            and tree.head() == state["head"] and not state.get("failed")
            and not tree.dirty_paths()):
        applied = tuple(AppliedPatch(p, c) for p, c in zip(series, state.get("commits", [])))
        if len(applied) == len(series):
            return ApplyResult(tree.path, imported.upstream_commit, applied, tree.head(), reused=True)
    from designate_dist.upstream_import import BRANCH
    tree.reset_hard(imported.upstream_commit, BRANCH)
    applied: list[AppliedPatch] = []
    state.update({"series": fingerprint, "commits": [], "head": imported.upstream_commit,
                  "failed": None})
    write_state(tree, state)
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
                path, target = escaping[0]
                problem, files = (f"makes {path} a symbolic link to {target!r}, outside the tree "
                                  "(it would put a file of the build host into the packages)"), [path]
        if problem is not None:
            head = tree.head()
            state.update({"failed": patch.ref, "head": head})
            write_state(tree, state)
            last = applied[-1].patch.ref if applied else f"upstream/{distro.pin.version}"
            raise PatchApplyError(f"{patch.series}/series: {patch.name} {problem}",
                                  patch=patch.ref, files=files,
                                  hint=f"work tree {tree.path} left at {head[:12]} ({last})")
        author, committer = patch_identities(distro, patch, imported.import_time)
        commit = tree.commit_index(patch.message, author, committer)
        applied.append(AppliedPatch(patch, commit))
        state["commits"] = [a.commit for a in applied]
        state["head"] = commit
        # Per patch: atomic but not fsynced (a stale state after a crash only
        # means the series is re-applied: reuse checks the tree's head first).
        write_state(tree, state, durable=False)
    write_state(tree, state)
    return ApplyResult(tree.path, imported.upstream_commit, tuple(applied), tree.head(), reused=False)
