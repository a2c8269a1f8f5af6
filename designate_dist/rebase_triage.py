"""Replaying the series on a new release, patch by patch, and classifying what became of each.

The old series is applied on the old release first (``rebase._old_series``), so every
patch has a commit made against the blobs it was written for.  Each is then
replayed on the new release: applied in process, else applied backwards (the
new release has it), else merged three-way as trees; the work tree is used only
when that cannot say, or when a real rebase stops at a conflict, which the
developer resolves in the files.  Evidence from the new release's ChangeLog (or
upstream's history) says why a patch is no longer needed.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from packaging.version import InvalidVersion, Version

from designate_dist.apply import patch_identities
from designate_dist.cache import cache_root
from designate_dist.distro import Distro, Pin
from designate_dist.errors import PatchApplyError
from designate_dist.gitrepo import DELETE_MODIFY, MODIFY_DELETE, WorkTree, kinds_of_conflicts
from designate_dist.history import release_evidence
from designate_dist.rebase_outcome import (
    CLEAN,
    CONFLICT,
    PARTLY_UPSTREAM,
    REFRESHED,
    RESOLVED,
    UPSTREAM,
    PatchOutcome,
    RebaseReport,
)
from designate_dist.rebase_state import Backup, RebaseState
from designate_dist.requirements_files import (
    RequirementsDiff,
    describe_twice,
    is_requirements_file,
    named_twice,
    requirements_note,
)
from designate_dist.series import KIND_UPSTREAM, PatchFile, PatchSeries
from designate_dist.text import plural
from designate_dist.tree_apply import HunkFailed, TreePatcher, Unsupported
from designate_dist.unidiff import changed_lines, diff_files, same_hunks
from designate_dist.upstream_hunks import UpstreamHunk, find_upstream_hunks, without_hunks
from designate_dist.upstream_import import maintainer_identity

Progress = Callable[[str], None]
_OFFSET = re.compile(r"^Hunk #\d+ succeeded at \d+ \(offset (-?\d+) lines?\)", re.M)
_VERSIONISH = re.compile(r"\b(\d+\.\d+(?:\.\d+)*)\b")


def _quiet(_: str) -> None:
    pass


@dataclass
class Replay:
    """One rebase between its start and its end (possibly across processes): the series replayed
    patch by patch on the new release, and what became of each."""

    distro: Distro
    new_pin: Pin
    tree: WorkTree
    series: PatchSeries
    old_commits: list[str]
    new_upstream: str
    import_time: int
    changelog_old: str
    changelog_new: str
    requirements: RequirementsDiff
    new_requirements: dict[str, str]
    dry_run: bool
    outcomes: list[PatchOutcome] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    progress: Progress = _quiet
    #: The last commit written without a checkout (None: the branch, index and files are at it).
    ahead: str | None = None
    patcher: TreePatcher | None = None
    merged_in_work_tree: bool = False  # the last patch's three-way merge was made in the files

    @property
    def new_distro(self) -> Distro:
        return self.distro.with_pin(self.new_pin)

    # evidence in the new release's ChangeLog: what was merged between the two releases
    def changelog_evidence(self, patch: PatchFile) -> str | None:
        # A git source has history: commit ids, Change-Ids and patch-ids (designate_dist.history).
        found = release_evidence(self.distro.pin, self.new_pin, patch, root=self.distro.root, cache=cache_root())
        if found:
            return found
        new, old = self.changelog_new, self.changelog_old
        for change_id in patch.change_ids:
            if change_id in new and change_id not in old:
                return f"Change-Id {change_id[:9]} in {self.new_pin.version} ChangeLog"
        for sha in patch.cherry_picked_from:
            if sha[:10] in new and sha[:10] not in old:
                return f"commit {sha[:10]} in {self.new_pin.version} ChangeLog"
        subject = f"* {patch.subject}\n"
        if subject in new and subject not in old:
            return f"subject in {self.new_pin.version} ChangeLog"
        if patch.kind == KIND_UPSTREAM:
            for line in patch.body.splitlines():
                if line.startswith("Upstream:"):
                    for found in _VERSIONISH.findall(line):
                        try:
                            if Version(found) <= Version(self.new_pin.version) and \
                                    Version(found) > Version(self.distro.pin.version):
                                return f"Upstream: line names {found}"
                        except InvalidVersion:
                            continue
        return None

    def head(self) -> str:
        return self.ahead or self.tree.head()

    def sync(self) -> None:
        """Move the branch, index and files to the commits written without a checkout."""
        if self.ahead is not None:
            self.tree.move_to(self.ahead)
            self.ahead = None

    def triage(self, start: int) -> None:
        for index in range(start, len(self.series)):
            patch = self.series.patches[index]
            outcome = self.triage_one(patch, self.old_commits[index])
            if outcome.status == CONFLICT and not self.dry_run:
                self.outcomes.append(outcome)
                return
            if outcome.status == CONFLICT and self.merged_in_work_tree:
                self.tree.discard_merge()
            outcome = self.with_notes(patch, outcome)
            self.outcomes.append(outcome)
            self.progress(f"rebase: {patch.ref}: {outcome.status}"
                          + (f" ({outcome.note})" if outcome.note else ""))
        if not self.dry_run:
            self.sync()

    def with_notes(self, patch: PatchFile, outcome: PatchOutcome) -> PatchOutcome:
        notes = [outcome.note] if outcome.note else []
        warning = outcome.warning
        req = requirements_note(patch, self.new_requirements, self.requirements, self.new_pin.version)
        if req and outcome.status != UPSTREAM:
            notes.append(req)
            warning = warning or f"{patch.ref}: {req}"
        for twice in self._named_twice(patch, outcome.commit) if outcome.commit else []:
            notes.append(twice)
            warning = f"{warning}; {twice}" if warning else f"{patch.ref}: {twice}"
        if patch.kind == KIND_UPSTREAM and outcome.status in (CLEAN, REFRESHED, RESOLVED):
            text = f"{patch.ref}: .upstream patch not found upstream in {self.new_pin.version}"
            notes.append(f"warning: not found upstream in {self.new_pin.version}")
            warning = warning or text
        if warning:
            self.warnings.append(warning)
        return replace(outcome, note="; ".join(notes), warning=warning)

    def _named_twice(self, patch: PatchFile, commit: str) -> list[str]:
        """Requirements named twice in a requirements file the patch changes (and not before it)."""
        found = []
        for path in patch.touched_files():
            if not is_requirements_file(path):
                continue
            before = named_twice(self.tree.blob_text(f"{commit}^", path))
            for name, entries in named_twice(self.tree.blob_text(commit, path)).items():
                if len(entries) > len(before.get(name, ())):
                    found.append(describe_twice(path, name, entries))
        return found

    def commit_staged(self, patch: PatchFile) -> str:
        """Commit what is staged as ``patch``'s commit (its author, the maintainer as committer)."""
        author, committer = patch_identities(self.new_distro, patch, self.import_time)
        return self.tree.commit_index(patch.message, author, committer)

    def triage_one(self, patch: PatchFile, old_commit: str) -> PatchOutcome:
        """Replay one patch and say what became of it.

        First without a process or a checkout: the patch applied in process, else
        applied backwards in process (upstream has it), else a three-way merge of
        trees (``git merge-tree``).  The work tree is used only when that cannot
        say (a patch shape left to git, an old git) or when a real rebase stops
        at a conflict, which the developer resolves in the files.
        """
        tree = self.tree
        base = dict(series=patch.series, file=patch.name, kind=patch.kind)
        evidence = self.changelog_evidence(patch)
        suffix = f"; {evidence}" if evidence else ""
        version = self.new_pin.version
        self.merged_in_work_tree = False
        quick, why = self._apply_in_process(patch, old_commit, base)
        if quick is not None:
            return quick
        if why == "failed":
            reverses = self._reverses_in_process(patch)
            if reverses:
                return PatchOutcome(**base, status=UPSTREAM, note=f"already in {version}: reverse-applies{suffix}")
            if reverses is False:
                merged = self._merge_in_process(patch, old_commit, base, evidence)
                if merged is not None:
                    return merged
        self.sync()  # what follows works in the index and files
        parent = tree.head()
        applied, report = tree.apply_verbose(patch.path)  # all or nothing; offsets, never fuzz
        if applied:
            commit = self.commit_staged(patch)
            fresh = tree.commit_diff(commit)
            found = self._upstream_hunks(patch, old_commit, parent, fresh)
            if found:
                return self._without_upstream_hunks(patch, base, parent, fresh, found, suffix)
            if same_hunks(patch.diff, fresh):
                return PatchOutcome(**base, status=CLEAN, commit=commit)
            offsets = sorted({abs(int(o)) for o in _OFFSET.findall(report)})
            how = (f"offset {', '.join(map(str, offsets))} {plural(offsets[-1], 'line')}"
                   if offsets else "new context")
            return PatchOutcome(**base, status=REFRESHED, note=how, commit=commit)
        if tree.check_apply(patch.path, reverse=True) is None:
            return PatchOutcome(**base, status=UPSTREAM, note=f"already in {version}: reverse-applies{suffix}")
        # No fuzz, ever: a hunk fuzzed in lands next to upstream's copy of the same lines.  The
        # three-way merge knows what the patch changed against the blobs it was made on.
        conflicts = tree.merge_commit_into_index(old_commit)
        self.merged_in_work_tree = True
        if conflicts:
            outcome = self._conflict(patch, base, conflicts, tree.conflict_kinds(conflicts), evidence)
            if outcome.status == UPSTREAM:
                tree.discard_merge()
            return outcome
        if not tree.has_staged_changes():
            tree.discard_merge()
            return PatchOutcome(**base, status=UPSTREAM,
                                note=f"already in {version}: the 3-way merge leaves no change{suffix}")
        commit = self.commit_staged(patch)
        fresh = tree.commit_diff(commit)
        found = self._upstream_hunks(patch, old_commit, parent, fresh)
        if found:
            return self._without_upstream_hunks(patch, base, parent, fresh, found, suffix)
        return self._merged(patch, base, commit, fresh, suffix)

    def _conflict(self, patch: PatchFile, base: dict, conflicts: list[str], kinds: dict[str, str],
                  evidence: str | None) -> PatchOutcome:
        """A three-way merge with conflicts: a conflict, or a backport upstream merged its own way."""
        version = self.new_pin.version
        if evidence and patch.series == "cherry-pick":
            note = (f"merged upstream in a modified form ({evidence}); the old change conflicts with "
                    f"{version} in {', '.join(conflicts)}: dropped")
            return PatchOutcome(**base, status=UPSTREAM, note=note, files=tuple(conflicts),
                                warning=f"{patch.ref}: {note}: check nothing of it is still needed")
        deleted = tuple(p for p in conflicts if kinds.get(p) == MODIFY_DELETE)
        ours_deleted = tuple(p for p in conflicts if kinds.get(p) == DELETE_MODIFY)
        notes = [f"conflicts in {', '.join(conflicts)}"]
        notes += [f"modify/delete: {p} was deleted in {version}" for p in deleted]
        notes += [f"delete/modify: the patch deletes {p}, which {version} changed" for p in ours_deleted]
        return PatchOutcome(**base, status=CONFLICT, files=tuple(conflicts), deleted_upstream=deleted,
                            note="; ".join(notes) + (f"; {evidence}" if evidence else ""))

    def _merged(self, patch: PatchFile, base: dict, commit: str, fresh: str, suffix: str) -> PatchOutcome:
        """A clean three-way merge: refreshed, or partly upstream when upstream has some of its lines."""
        before, after = changed_lines(patch.diff), changed_lines(fresh)
        if after != before and not (after - before):
            kept, total = sum(after.values()), sum(before.values())
            note = (f"{total - kept} of {total} changed {plural(total, 'line')} already in "
                    f"{self.new_pin.version}{suffix}")
            return PatchOutcome(**base, status=PARTLY_UPSTREAM, note=note, commit=commit, remaining_diff=fresh)
        renamed = [f for f in diff_files(fresh) if f not in patch.touched_files()]
        how = "3-way merge" + (f" (now {', '.join(renamed)})" if renamed else "")
        return PatchOutcome(**base, status=REFRESHED, note=how + suffix, commit=commit)

    def _patcher(self) -> TreePatcher:
        if self.patcher is None:
            self.patcher = TreePatcher(self.tree.read_object, self.tree.write_object)
        return self.patcher

    def _apply_in_process(self, patch: PatchFile, old_commit: str,
                          base: dict) -> tuple[PatchOutcome | None, str]:
        """A patch that applies as it is (or with offsets), without a process or a checkout.

        Returns (the outcome, "applied"), or (None, why not): "failed" (a hunk
        does not apply), "unsupported" (left to git), "upstream-lines" (it adds
        lines upstream already has) or "unavailable" (objects cannot be written here).
        """
        if not self.tree.can_write_objects():
            return None, "unavailable"
        parent = self.head()
        parent_root = self.tree.tree_of(parent)
        offsets: list[int] = []
        try:
            root = self._patcher().apply(parent_root, patch.path.read_bytes(), offsets)
        except Unsupported:
            return None, "unsupported"
        except HunkFailed:
            return None, "failed"
        found = find_upstream_hunks(patch.diff, patch.diff,
                                    old_text=lambda path: self.tree.blob_text(f"{old_commit}^", path),
                                    new_text=lambda path: self._patcher().text(parent_root, path))
        if found:
            return None, "upstream-lines"
        author, committer = patch_identities(self.new_distro, patch, self.import_time)
        self.ahead = self.tree.commit_tree(root, parent, patch.message, author, committer)
        moved = sorted({abs(o) for o in offsets if o})
        if not moved:
            return PatchOutcome(**base, status=CLEAN, commit=self.ahead), "applied"
        return PatchOutcome(**base, status=REFRESHED, commit=self.ahead,
                            note=f"offset {', '.join(map(str, moved))} {plural(moved[-1], 'line')}"), "applied"

    def _reverses_in_process(self, patch: PatchFile) -> bool | None:
        """Whether the patch applies backwards on the new tree (upstream has it); None: ask git."""
        try:
            self._patcher().apply(self.tree.tree_of(self.head()), patch.path.read_bytes(), reverse=True)
        except Unsupported:
            return None
        except HunkFailed:
            return False
        return True

    def _merge_in_process(self, patch: PatchFile, old_commit: str, base: dict,
                          evidence: str | None) -> PatchOutcome | None:
        """The three-way merge of the patch's old commit onto the new tree, as trees (no checkout).

        None when git cannot merge trees, or when a real rebase meets a conflict:
        the merge is then made in the work tree, where the developer resolves it.
        """
        tree = self.tree
        suffix = f"; {evidence}" if evidence else ""
        parent = self.head()
        parent_tree = tree.tree_of(parent)
        # A commit of the new tree on the patch's own parent: merging the patch's commit into it
        # takes that parent as the merge base, which is what a cherry-pick does.
        who = maintainer_identity(self.new_pin, self.import_time)
        ours = tree.commit_tree(parent_tree, tree.resolve(f"{old_commit}^"),
                                "designate-dist rebase: the new tree on the patch's parent\n", who, who)
        result = tree.merge_tree(ours, old_commit)
        if result is None:
            return None
        merged_tree, stages = result
        if stages:
            kinds = kinds_of_conflicts(stages)
            outcome = self._conflict(patch, base, sorted(kinds), kinds, evidence)
            if outcome.status == CONFLICT and not self.dry_run:
                return None
            return outcome
        if merged_tree == parent_tree:
            return PatchOutcome(**base, status=UPSTREAM,
                                note=f"already in {self.new_pin.version}: the 3-way merge leaves no change{suffix}")
        author, committer = patch_identities(self.new_distro, patch, self.import_time)
        commit = tree.commit_tree(merged_tree, parent, patch.message, author, committer)
        fresh = tree.commit_diff(commit)
        found = self._upstream_hunks(patch, old_commit, parent, fresh)
        if found:
            self.ahead = parent
            self.sync()
            return self._without_upstream_hunks(patch, base, parent, fresh, found, suffix)
        self.ahead = commit
        return self._merged(patch, base, commit, fresh, suffix)

    def _upstream_hunks(self, patch: PatchFile, old_commit: str, parent: str,
                        fresh: str) -> list[UpstreamHunk]:
        """Hunks of ``patch`` whose added lines the new release has, added a second time by the replay."""
        tree = self.tree
        return find_upstream_hunks(patch.diff, fresh,
                                   old_text=lambda path: tree.blob_text(f"{old_commit}^", path),
                                   new_text=lambda path: tree.blob_text(parent, path))

    def _without_upstream_hunks(self, patch: PatchFile, base: dict, parent: str, fresh: str,
                                found: list[UpstreamHunk], suffix: str) -> PatchOutcome:
        """Replay ``patch`` again without the hunks upstream already has: partly-upstream (or upstream)."""
        tree = self.tree
        note = f"already in {self.new_pin.version}: " + "; ".join(h.describe() for h in found)
        remaining = without_hunks(fresh, found)
        tree.reset_hard_to(parent)
        if not remaining.strip():
            return PatchOutcome(**base, status=UPSTREAM, note=note + suffix)
        applied, report = tree.apply_text_verbose(remaining)
        if not applied:  # the diff was made on this very tree: cannot happen unless git disagrees
            raise PatchApplyError(f"{patch.ref}: the rest of the patch without the hunks upstream has "
                                  f"does not apply: {report.splitlines()[-1] if report else ''}",
                                  patch=patch.ref)
        commit = self.commit_staged(patch)
        return PatchOutcome(**base, status=PARTLY_UPSTREAM, note=note + suffix, commit=commit,
                            remaining_diff=tree.commit_diff(commit))

    # -- state ------------------------------------------------------------------------------
    def saved(self, backup: Backup) -> RebaseState:
        """The state to save, so that another process can go on from here."""
        return RebaseState(onto=self.new_pin.version, previous=self.distro.pin.version, new_pin=self.new_pin,
                           tree=self.tree.path, series_fingerprint=self.series.fingerprint(),
                           old_commits=tuple(self.old_commits), new_upstream=self.new_upstream,
                           import_time=self.import_time, changelog_old=self.changelog_old,
                           changelog_new=self.changelog_new, requirements=self.requirements,
                           new_requirements=self.new_requirements, outcomes=tuple(self.outcomes),
                           warnings=tuple(self.warnings), head=self.tree.head(), backup=backup)

    @classmethod
    def resume(cls, distro: Distro, state: RebaseState, series: PatchSeries, progress: Progress) -> Replay:
        """The replay a saved state stands for, in a new process."""
        return cls(distro=distro, new_pin=state.new_pin, tree=WorkTree(state.tree), series=series,
                   old_commits=list(state.old_commits), new_upstream=state.new_upstream,
                   import_time=state.import_time, changelog_old=state.changelog_old,
                   changelog_new=state.changelog_new, requirements=state.requirements,
                   new_requirements=state.new_requirements, dry_run=False,
                   outcomes=list(state.outcomes), warnings=list(state.warnings), progress=progress)

    def report(self, finished: bool) -> RebaseReport:
        return RebaseReport(onto=self.new_pin.version, previous=self.distro.pin.version,
                            outcomes=tuple(self.outcomes), requirements=self.requirements,
                            dry_run=self.dry_run, finished=finished,
                            work_tree=None if self.dry_run else self.tree.path,
                            warnings=tuple(self.warnings))

