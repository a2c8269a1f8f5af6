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

Nothing in the distribution repository changes until the whole series is
through: then the patch files, the series files and the pin are rewritten
(each atomically).  The state of a stopped rebase is JSON in
``<work-dir>/rebase/state.json``, so ``--continue`` and ``--abort`` work from a
new shell; it keeps a copy of every file the rebase may rewrite, so ``--abort``
puts back exactly what was there.
"""
from __future__ import annotations

import base64
import json
import re
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from packaging.version import InvalidVersion, Version

from designate_dist import tree_cache
from designate_dist.apply import commit_series, patch_identities
from designate_dist.atomic import write_bytes, write_json, write_text
from designate_dist.distro import PIN_FILE, SERIES_DIRS, Distro, Pin, load_distro
from designate_dist.errors import DistError, PatchApplyError, UsageError
from designate_dist.fetch import cache_root, fetch
from designate_dist.gitrepo import DELETE_MODIFY, MODIFY_DELETE, WorkTree, kinds_of_conflicts
from designate_dist.rebase_next import after_finish
from designate_dist.requirements_files import (
    RequirementsDiff,
    describe_twice,
    is_requirements_file,
    named_twice,
    parse_requirements,
    requirements_diff,
    requirements_note,
)
from designate_dist.scratch import scratch_dir
from designate_dist.series import KIND_UPSTREAM, SERIES_FILE, PatchFile, PatchSeries, diff_files, read_series
from designate_dist.text import counted, plural
from designate_dist.tree_apply import HunkFailed, TreePatcher, Unsupported
from designate_dist.unidiff import changed_lines, parse_diff, same_hunks, split_head
from designate_dist.upstream_hunks import UpstreamHunk, find_upstream_hunks, without_hunks
from designate_dist.upstream_import import import_upstream, maintainer_identity, read_state, write_state

Progress = Callable[[str], None]

CLEAN = "clean"
REFRESHED = "refreshed"
UPSTREAM = "upstream"
PARTLY_UPSTREAM = "partly-upstream"
CONFLICT = "conflict"
RESOLVED = "resolved"
STATUSES = (CLEAN, REFRESHED, UPSTREAM, PARTLY_UPSTREAM, CONFLICT, RESOLVED)
#: Statuses whose patch file is rewritten from the commit in the new tree.
REWRITTEN = (REFRESHED, PARTLY_UPSTREAM, RESOLVED)

STATE_DIR = "rebase"
STATE_NAME = "state.json"
OLD_REF = "refs/designate-dist/rebase-old"
OLD_UPSTREAM_REF = "refs/designate-dist/rebase-old-upstream"
_OFFSET = re.compile(r"^Hunk #\d+ succeeded at \d+ \(offset (-?\d+) lines?\)", re.M)
_VERSIONISH = re.compile(r"\b(\d+\.\d+(?:\.\d+)*)\b")


def _quiet(_: str) -> None:
    pass


class RebaseConflict(PatchApplyError):
    """A patch conflicts with the new release; the rebase is stopped, its state saved (exit 3)."""

    report: RebaseReport | None = None


class RebaseStateError(DistError):
    """No rebase in progress, one already in progress, or its state does not match the repo."""


# -- diffs ----------------------------------------------------------------------------------
def rewrite_patch(original: str, mail: bool, fresh: str) -> str:
    """``original``'s header and message with the diff of ``fresh``.

    ``fresh`` is ``git format-patch`` output for a mail-format patch (its ``---``
    part, diffstat and diff, replaces the original's) or a plain diff.
    """
    head, _ = split_head(original)
    if mail:
        cut = head.rfind("\n---\n")
        fresh_head, fresh_diff = split_head(fresh)
        fresh_cut = fresh_head.rfind("\n---\n")
        tail = fresh[fresh_cut + 1:] if fresh_cut != -1 else fresh_diff
        if cut != -1:
            return head[:cut + 1] + tail
        return head + (fresh_diff if not head.endswith("\n---\n") else tail)
    _, fresh_diff = split_head(fresh)
    return head + fresh_diff


# -- results --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PatchOutcome:
    series: str
    file: str
    kind: str
    status: str
    note: str = ""
    commit: str | None = None
    remaining_diff: str | None = None
    files: tuple[str, ...] = ()
    warning: str | None = None
    deleted_upstream: tuple[str, ...] = ()  # files of a modify/delete conflict: gone in the new release

    @property
    def ref(self) -> str:
        return f"{self.series}/{self.file}"

    def as_json(self) -> dict:
        data = {"series": self.series, "file": self.file, "kind": self.kind, "status": self.status,
                "note": self.note}
        if self.files:
            data["files"] = list(self.files)
        if self.remaining_diff is not None:
            data["remaining_diff"] = self.remaining_diff
        if self.warning:
            data["warning"] = self.warning
        if self.deleted_upstream:
            data["deleted_upstream"] = list(self.deleted_upstream)
        return data

    @classmethod
    def from_json(cls, data: dict) -> PatchOutcome:
        return cls(**{**data, "files": tuple(data.get("files", ())),
                      "deleted_upstream": tuple(data.get("deleted_upstream", ()))})


@dataclass(frozen=True)
class RebaseReport:
    onto: str
    previous: str
    outcomes: tuple[PatchOutcome, ...]
    requirements: RequirementsDiff
    dry_run: bool
    finished: bool
    work_tree: Path | None = None
    warnings: tuple[str, ...] = ()
    next_steps: tuple[str, ...] = ()

    @property
    def conflicts(self) -> tuple[PatchOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == CONFLICT)

    def as_json(self) -> dict:
        return {"onto": self.onto, "from": self.previous, "dry_run": self.dry_run,
                "finished": self.finished,
                "patches": [o.as_json() for o in self.outcomes],
                "requirements": self.requirements.as_json(),
                "warnings": list(self.warnings), "next_steps": list(self.next_steps),
                "work_tree": str(self.work_tree) if self.work_tree else None}

    def table(self) -> str:
        rows = [("PATCH", "KIND", "STATUS", "NOTE")]
        rows += [(o.ref, o.kind, o.status, o.note) for o in self.outcomes]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip()
                 for r in rows]
        counts = Counter(o.status for o in self.outcomes)
        summary = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
        what = "dry run: " if self.dry_run else ""
        lines.append(f"{what}{self.previous} -> {self.onto}: {counted(len(self.outcomes), 'patch')}"
                     + (f" ({summary})" if summary else ""))
        for warning in self.warnings:
            lines.append(f"warning: {warning}")
        req = self.requirements.lines()
        lines.append(f"requirements.txt {self.previous} -> {self.onto}:" + ("" if req else " unchanged"))
        lines += req
        for outcome in self.outcomes:
            if outcome.remaining_diff:
                lines.append(f"remaining diff of {outcome.ref}:")
                lines += ["  " + line for line in outcome.remaining_diff.rstrip("\n").splitlines()]
        if self.next_steps:
            lines.append("next:")
            lines += [f"  - {step}" for step in self.next_steps]
        return "\n".join(lines)


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
                from designate_dist.published_digest import sha256_hint
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


# -- state ------------------------------------------------------------------------------------
def state_path(distro: Distro) -> Path:
    return distro.work_root / STATE_DIR / STATE_NAME


def _pin_json(pin: Pin) -> dict:
    return asdict(pin)


def _backup(distro: Distro) -> dict[str, str | None]:
    """Every file a rebase may rewrite, base64, so that --abort restores it byte for byte."""
    files: dict[str, str | None] = {str(PIN_FILE): None}
    for series in SERIES_DIRS:
        directory = distro.series_dir(series)
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                if path.is_file():
                    files[f"{series}/{path.name}"] = None
    for rel in files:
        path = distro.root / rel
        files[rel] = base64.b64encode(path.read_bytes()).decode() if path.is_file() else None
    return files


def _restore(distro: Distro, backup: dict[str, str | None]) -> list[str]:
    restored = []
    for rel, data in backup.items():
        path = distro.root / rel
        if data is None:
            if path.exists():
                path.unlink()
                restored.append(rel)
            continue
        raw = base64.b64decode(data)
        if not path.is_file() or path.read_bytes() != raw:
            write_bytes(path, raw)
            restored.append(rel)
    for series in SERIES_DIRS:  # files a half-finished rebase may have added
        directory = distro.series_dir(series)
        if directory.is_dir():
            for path in directory.iterdir():
                if path.is_file() and f"{series}/{path.name}" not in backup:
                    path.unlink()
                    restored.append(f"{series}/{path.name}")
    return restored


# -- the engine -------------------------------------------------------------------------------
@dataclass
class _Run:
    """One rebase between its start and its end (possibly across processes)."""

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
        from designate_dist.history import release_evidence
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
            outcome = self._with_notes(patch, outcome)
            self.outcomes.append(outcome)
            self.progress(f"rebase: {patch.ref}: {outcome.status}"
                          + (f" ({outcome.note})" if outcome.note else ""))
        if not self.dry_run:
            self.sync()

    def _with_notes(self, patch: PatchFile, outcome: PatchOutcome) -> PatchOutcome:
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

    def _commit(self, patch: PatchFile) -> str:
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
            commit = self._commit(patch)
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
        commit = self._commit(patch)
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
        commit = self._commit(patch)
        return PatchOutcome(**base, status=PARTLY_UPSTREAM, note=note + suffix, commit=commit,
                            remaining_diff=tree.commit_diff(commit))

    # -- state ------------------------------------------------------------------------------
    def state(self, backup: dict[str, str | None]) -> dict:
        return {"onto": self.new_pin.version, "from": self.distro.pin.version,
                "new_pin": _pin_json(self.new_pin), "tree": str(self.tree.path),
                "series_fingerprint": self.series.fingerprint(), "old_commits": self.old_commits,
                "new_upstream": self.new_upstream, "import_time": self.import_time,
                "changelog_old": self.changelog_old, "changelog_new": self.changelog_new,
                "requirements": self.requirements.as_json(), "new_requirements": self.new_requirements,
                "outcomes": [{**o.as_json(), "commit": o.commit} for o in self.outcomes],
                "warnings": self.warnings, "head": self.tree.head(), "backup": backup}

    def report(self, finished: bool) -> RebaseReport:
        return RebaseReport(onto=self.new_pin.version, previous=self.distro.pin.version,
                            outcomes=tuple(self.outcomes), requirements=self.requirements,
                            dry_run=self.dry_run, finished=finished,
                            work_tree=None if self.dry_run else self.tree.path,
                            warnings=tuple(self.warnings))


def _load_run(distro: Distro, state: dict, progress: Progress) -> _Run:
    series = read_series(distro.root)
    if series.fingerprint() != state["series_fingerprint"]:
        raise RebaseStateError("the series changed since the rebase started",
                               hint="`designate-dist rebase --abort` and start again")
    req = state["requirements"]
    requirements = RequirementsDiff(req["added"], req["removed"],
                                    {k: (v["old"], v["new"]) for k, v in req["changed"].items()})
    run = _Run(distro=distro, new_pin=Pin(**state["new_pin"]), tree=WorkTree(Path(state["tree"])),
               series=series, old_commits=state["old_commits"], new_upstream=state["new_upstream"],
               import_time=state["import_time"], changelog_old=state["changelog_old"],
               changelog_new=state["changelog_new"], requirements=requirements,
               new_requirements=state["new_requirements"], dry_run=False, progress=progress)
    run.outcomes = [PatchOutcome.from_json(o) for o in state["outcomes"]]
    run.warnings = list(state["warnings"])
    return run


def _read_state(distro: Distro) -> dict | None:
    path = state_path(distro)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise RebaseStateError(f"{path}: unreadable rebase state: {exc}") from exc


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
    if not request.dry_run and _read_state(distro) is not None:
        state = _read_state(distro) or {}
        raise RebaseStateError(f"a rebase onto {state.get('onto')} is already in progress",
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
    from designate_dist.pipeline import build_lock
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
            backup = _backup(distro)
        # No checkout yet: the commits are written first, the files follow once (or never, for a dry run).
        imported = import_upstream(new_distro, fetched, force=True, path=target, pin=new_pin, checkout=False)
        tree = WorkTree(imported.work_tree)
        progress(f"rebase: the series on {distro.pin.version}")
        old_upstream, old_commits = _old_series(distro, series, tree, scratch, progress, cache)
        new_req_text = tree.blob_text(imported.upstream_commit, "requirements.txt")
        run = _Run(distro=distro, new_pin=new_pin, tree=tree, series=series, old_commits=old_commits,
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


def _stop_or_finish(run: _Run, backup: dict[str, str | None]) -> RebaseReport:
    distro = run.distro
    if run.outcomes and run.outcomes[-1].status == CONFLICT:
        write_json(state_path(distro), run.state(backup))
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
    write_json(state_path(distro), run.state(backup))  # a crash while finishing can still be aborted
    _finish(run)
    return run.report(finished=True)


def _finish(run: _Run) -> None:
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
    tree_state = read_state(run.tree)
    tree_state.update({"series": None, "head": run.tree.head(), "failed": None})
    write_state(run.tree, tree_state)
    if run.tree.path != final:
        if final.exists():
            aside = final.with_name(f".{final.name}.replaced")
            shutil.rmtree(aside, ignore_errors=True)
            final.rename(aside)
            shutil.rmtree(aside, ignore_errors=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        run.tree.path.rename(final)
        run.tree = WorkTree(final)
    state_path(distro).unlink(missing_ok=True)
    _remove_if_empty(distro.work_root / STATE_DIR)


def rebase_continue(distro: Distro, *, progress: Progress = _quiet) -> RebaseReport:
    """Take the developer's resolution of the stopped patch and go on."""
    from designate_dist.pipeline import build_lock
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
    state = _read_state(distro)
    if state is None:
        raise RebaseStateError("no rebase in progress", hint="start one with `designate-dist rebase --onto VERSION`")
    run = _load_run(distro, state, progress)
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
    if head != state["head"]:
        added = tree.commits_between(state["head"], head)
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
        commit = run._commit(patch) if tree.has_staged_changes() else None
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
    run.outcomes[-1] = run._with_notes(patch, outcome)
    progress(f"rebase: {stopped.ref}: {run.outcomes[-1].status}")
    if warning:
        progress(f"warning: {warning}")
    run.triage(index + 1)
    return _stop_or_finish(run, state["backup"])


def rebase_abort(distro: Distro) -> list[str]:
    """Put the repository back exactly as before the rebase; return the files restored."""
    from designate_dist.pipeline import build_lock
    with build_lock(distro):
        return _rebase_abort(distro)


def _rebase_abort(distro: Distro) -> list[str]:
    state = _read_state(distro)
    if state is None:
        raise RebaseStateError("no rebase in progress")
    restored = _restore(distro, state["backup"])
    tree = Path(state["tree"])
    if tree.exists() and tree.parent == distro.work_root / STATE_DIR:
        shutil.rmtree(tree)
    state_path(distro).unlink(missing_ok=True)
    _remove_if_empty(distro.work_root / STATE_DIR)
    return restored


def _remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass


def rebase_status(distro: Distro) -> dict | None:
    """The saved state of a stopped rebase (None when there is none)."""
    return _read_state(distro)


__all__ = ["RebaseConflict", "RebaseReport", "RebaseRequest", "RebaseStateError", "PatchOutcome",
           "load_distro", "rebase", "rebase_abort", "rebase_continue", "requirements_diff",
           "parse_diff", "same_hunks", "rewrite_patch"]
