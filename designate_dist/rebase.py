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
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from packaging.version import InvalidVersion, Version

from designate_dist.apply import apply_series, patch_identities
from designate_dist.atomic import write_bytes, write_json, write_text
from designate_dist.distro import PIN_FILE, SERIES_DIRS, Distro, Pin, load_distro
from designate_dist.errors import DistError, PatchApplyError, UsageError
from designate_dist.fetch import cache_root, fetch
from designate_dist.gitrepo import WorkTree
from designate_dist.lockfile import canonical
from designate_dist.series import KIND_UPSTREAM, SERIES_FILE, PatchFile, PatchSeries, diff_files, read_series
from designate_dist.upstream_import import import_upstream, read_state, write_state

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
_DIFF_START = re.compile(r"^(diff --git |--- (a/|/dev/null)|Index: )", re.M)
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_OFFSET = re.compile(r"^Hunk #\d+ succeeded at \d+ \(offset (-?\d+) lines?\)", re.M)
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)$")
_VERSIONISH = re.compile(r"\b(\d+\.\d+(?:\.\d+)*)\b")


def _quiet(_: str) -> None:
    pass


class RebaseConflict(PatchApplyError):
    """A patch conflicts with the new release; the rebase is stopped, its state saved (exit 3)."""

    report: RebaseReport | None = None


class RebaseStateError(DistError):
    """No rebase in progress, one already in progress, or its state does not match the repo."""


# -- diffs ----------------------------------------------------------------------------------
def split_head(text: str) -> tuple[str, str]:
    """A patch file's text split into what comes before the diff and the diff."""
    match = _DIFF_START.search(text)
    if match is None:
        return text, ""
    return text[:match.start()], text[match.start():]


@dataclass(frozen=True)
class FileDiff:
    old: str | None
    new: str | None
    hunks: tuple[tuple[tuple[int, int, int, int], tuple[str, ...]], ...]
    extended: tuple[str, ...] = ()  # new file / deleted / rename / mode lines


def parse_diff(diff: str) -> tuple[FileDiff, ...]:
    """A unified diff as files and hunks (hunk bodies read by their counts, trailers ignored)."""
    files: list[FileDiff] = []
    lines = diff.split("\n")
    index = 0
    old = new = None
    hunks: list = []
    extended: list[str] = []
    started = False

    def flush() -> None:
        if started:
            files.append(FileDiff(old, new, tuple(hunks), tuple(extended)))

    while index < len(lines):
        line = lines[index]
        if line.startswith("diff --git "):
            flush()
            started, hunks, extended = True, [], []
            parts = line[len("diff --git "):].split(" b/", 1)
            old = parts[0].removeprefix("a/")
            new = parts[1] if len(parts) > 1 else old
        elif line.startswith("--- ") and index + 1 < len(lines) and lines[index + 1].startswith("+++ "):
            if not started or hunks:
                flush()
                started, hunks, extended = True, [], []
            old = _diff_path(line[4:])
            new = _diff_path(lines[index + 1][4:])
            index += 1
        elif line.startswith(("new file mode", "deleted file mode", "rename from", "rename to",
                              "old mode", "new mode", "copy from", "copy to", "Binary files")):
            extended.append(line)
        elif started and (match := _HUNK.match(line)):
            a, b = int(match.group(1)), int(match.group(2) or 1)
            c, d = int(match.group(3)), int(match.group(4) or 1)
            remove, add = b, d
            body: list[str] = []
            index += 1
            while index < len(lines) and (remove > 0 or add > 0 or lines[index].startswith("\\")):
                body_line = lines[index]
                if body_line.startswith("\\"):
                    body.append(body_line)
                elif body_line.startswith("-"):
                    remove -= 1
                    body.append(body_line)
                elif body_line.startswith("+"):
                    add -= 1
                    body.append(body_line)
                else:  # context (an empty line is a context line whose space was stripped)
                    remove -= 1
                    add -= 1
                    body.append(" " + body_line[1:] if body_line else " ")
                index += 1
            hunks.append(((a, b, c, d), tuple(body)))
            continue
        index += 1
    flush()
    return tuple(files)


def _diff_path(text: str) -> str | None:
    path = text.split("\t")[0].strip()
    if path == "/dev/null":
        return None
    return path[2:] if path.startswith(("a/", "b/")) else path


def same_hunks(first: str, second: str) -> bool:
    """True when two diffs make the same change at the same place with the same context."""
    return parse_diff(first) == parse_diff(second)


def changed_lines(diff: str) -> Counter:
    """The multiset of added and removed lines (sign + text), whatever the file names."""
    counter: Counter = Counter()
    for file in parse_diff(diff):
        for _, body in file.hunks:
            for line in body:
                if line[:1] in "+-":
                    counter[line] += 1
        for line in file.extended:
            if line.startswith(("new file", "deleted file")):
                counter[line.split(" mode")[0]] += 1
    return counter


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


# -- requirements ----------------------------------------------------------------------------
def parse_requirements(text: str | None) -> dict[str, str]:
    """``{canonical name: specifier}`` of a requirements.txt (comments and options dropped)."""
    result: dict[str, str] = {}
    for raw in (text or "").splitlines():
        line = raw.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        match = _REQ_NAME.match(line)
        if match:
            result[canonical(match.group(1))] = re.sub(r"\s+", "", match.group(2))
    return result


@dataclass(frozen=True)
class RequirementsDiff:
    added: dict[str, str]
    removed: dict[str, str]
    changed: dict[str, tuple[str, str]]

    def as_json(self) -> dict:
        return {"added": self.added, "removed": self.removed,
                "changed": {k: {"old": o, "new": n} for k, (o, n) in self.changed.items()}}

    def lines(self) -> list[str]:
        out = [f"  + {name}{spec}" for name, spec in sorted(self.added.items())]
        out += [f"  - {name}{spec}" for name, spec in sorted(self.removed.items())]
        out += [f"  ~ {name}: {old or '(any)'} -> {new or '(any)'}"
                for name, (old, new) in sorted(self.changed.items())]
        return out


def requirements_diff(old: str | None, new: str | None) -> RequirementsDiff:
    before, after = parse_requirements(old), parse_requirements(new)
    return RequirementsDiff(
        added={k: v for k, v in sorted(after.items()) if k not in before},
        removed={k: v for k, v in sorted(before.items()) if k not in after},
        changed={k: (before[k], after[k]) for k in sorted(before) if k in after and before[k] != after[k]})


def requirements_note(patch: PatchFile, new_requirements: dict[str, str],
                      diff: RequirementsDiff, version: str) -> str | None:
    """Whether a patch to requirements.txt is still needed on the new release."""
    wanted: dict[str, str] = {}
    dropped: set[str] = set()
    for file in parse_diff(patch.diff):
        if (file.new or file.old or "").rsplit("/", 1)[-1] != "requirements.txt":
            continue
        for _, body in file.hunks:
            for line in body:
                if line.startswith("+"):
                    wanted.update(parse_requirements(line[1:]))
                elif line.startswith("-"):
                    dropped.update(parse_requirements(line[1:]))
    dropped -= set(wanted)
    if not wanted and not dropped:
        return None
    satisfied = all(new_requirements.get(name) == spec for name, spec in wanted.items()) and \
        all(name not in new_requirements for name in dropped)
    if satisfied:
        return f"requirements patch no longer needed: {version} already has " + \
            ", ".join([f"{n}{s}" for n, s in sorted(wanted.items())] +
                      [f"no {n}" for n in sorted(dropped)])
    moved = sorted(n for n in set(wanted) | dropped if n in diff.changed or n in diff.removed)
    if moved:
        return "upstream changed " + ", ".join(
            f"{n} ({diff.changed[n][0] or '(any)'} -> {diff.changed[n][1] or '(any)'})"
            if n in diff.changed else f"{n} (removed)" for n in moved) + ": check this requirements patch"
    return None


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
        return data

    @classmethod
    def from_json(cls, data: dict) -> PatchOutcome:
        return cls(**{**data, "files": tuple(data.get("files", ()))})


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

    @property
    def conflicts(self) -> tuple[PatchOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == CONFLICT)

    def as_json(self) -> dict:
        return {"onto": self.onto, "from": self.previous, "dry_run": self.dry_run,
                "finished": self.finished,
                "patches": [o.as_json() for o in self.outcomes],
                "requirements": self.requirements.as_json(),
                "warnings": list(self.warnings),
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
        lines.append(f"{what}{self.previous} -> {self.onto}: {len(self.outcomes)} patches"
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
            raise UsageError(f"rebase --onto {self.version}: --sha256 is required for a {source} source "
                             "(the new archive is verified like the pin)")
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

    def triage(self, start: int) -> None:
        for index in range(start, len(self.series)):
            patch = self.series.patches[index]
            outcome = self.triage_one(patch, self.old_commits[index])
            if outcome.status == CONFLICT and not self.dry_run:
                self.outcomes.append(outcome)
                return
            if outcome.status == CONFLICT:
                self.tree.discard_merge()
            outcome = self._with_notes(patch, outcome)
            self.outcomes.append(outcome)
            self.progress(f"rebase: {patch.ref}: {outcome.status}"
                          + (f" ({outcome.note})" if outcome.note else ""))

    def _with_notes(self, patch: PatchFile, outcome: PatchOutcome) -> PatchOutcome:
        notes = [outcome.note] if outcome.note else []
        warning = outcome.warning
        req = requirements_note(patch, self.new_requirements, self.requirements, self.new_pin.version)
        if req and outcome.status != UPSTREAM:
            notes.append(req)
            warning = warning or f"{patch.ref}: {req}"
        if patch.kind == KIND_UPSTREAM and outcome.status in (CLEAN, REFRESHED, RESOLVED):
            text = f"{patch.ref}: .upstream patch not found upstream in {self.new_pin.version}"
            notes.append(f"warning: not found upstream in {self.new_pin.version}")
            warning = warning or text
        if warning:
            self.warnings.append(warning)
        return replace(outcome, note="; ".join(notes), warning=warning)

    def _commit(self, patch: PatchFile) -> str:
        author, committer = patch_identities(self.new_distro, patch, self.import_time)
        return self.tree.commit_index(patch.message, author, committer)

    def triage_one(self, patch: PatchFile, old_commit: str) -> PatchOutcome:
        tree = self.tree
        base = dict(series=patch.series, file=patch.name, kind=patch.kind)
        evidence = self.changelog_evidence(patch)
        applied, report = tree.apply_verbose(patch.path)  # all or nothing
        if applied:
            commit = self._commit(patch)
            if same_hunks(patch.diff, tree.commit_diff(commit)):
                return PatchOutcome(**base, status=CLEAN, commit=commit)
            offsets = sorted({abs(int(o)) for o in _OFFSET.findall(report)})
            how = f"offset {', '.join(map(str, offsets))} lines" if offsets else "new context"
            return PatchOutcome(**base, status=REFRESHED, note=how, commit=commit)
        if tree.check_apply(patch.path, reverse=True) is None:
            note = f"already in {self.new_pin.version}: reverse-applies"
            return PatchOutcome(**base, status=UPSTREAM, note=note + (f"; {evidence}" if evidence else ""))
        # With upstream's word that the change was merged, never fuzz it in a second time.
        if evidence is None and tree.check_apply(patch.path, min_context=1) is None:
            applied, _ = tree.apply_verbose(patch.path, min_context=1)
            if applied:
                commit = self._commit(patch)
                return PatchOutcome(**base, status=REFRESHED, note="fuzz", commit=commit)
        conflicts = tree.merge_commit_into_index(old_commit)
        if conflicts and evidence and patch.series == "cherry-pick":
            tree.discard_merge()
            note = (f"merged upstream in a modified form ({evidence}); the old change conflicts with "
                    f"{self.new_pin.version} in {', '.join(conflicts)}: dropped")
            return PatchOutcome(**base, status=UPSTREAM, note=note, files=tuple(conflicts),
                                warning=f"{patch.ref}: {note}: check nothing of it is still needed")
        if conflicts:
            return PatchOutcome(**base, status=CONFLICT, files=tuple(conflicts),
                                note="conflicts in " + ", ".join(conflicts)
                                + (f"; {evidence}" if evidence else ""))
        if not tree.has_staged_changes():
            tree.discard_merge()
            note = f"already in {self.new_pin.version}: the 3-way merge leaves no change"
            return PatchOutcome(**base, status=UPSTREAM, note=note + (f"; {evidence}" if evidence else ""))
        commit = self._commit(patch)
        fresh = tree.commit_diff(commit)
        before, after = changed_lines(patch.diff), changed_lines(fresh)
        if after != before and not (after - before):
            kept, total = sum(after.values()), sum(before.values())
            note = (f"{total - kept} of {total} changed lines already in {self.new_pin.version}"
                    + (f"; {evidence}" if evidence else ""))
            return PatchOutcome(**base, status=PARTLY_UPSTREAM, note=note, commit=commit,
                                remaining_diff=fresh)
        renamed = [f for f in diff_files(fresh) if f not in patch.touched_files()]
        how = "3-way merge" + (f" (now {', '.join(renamed)})" if renamed else "")
        return PatchOutcome(**base, status=REFRESHED, note=how + (f"; {evidence}" if evidence else ""),
                            commit=commit)

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


def _old_branch(distro: Distro, series: PatchSeries, scratch: Path, progress: Progress,
                cache: Path | None) -> tuple[Path, str, list[str]]:
    """A tree with the old series applied on the old release: (path, upstream commit, commits)."""
    existing = distro.work_tree
    if (existing / ".git").is_dir():
        tree = WorkTree(existing)
        state = read_state(tree)
        if (state.get("series") == series.fingerprint() and state.get("head") == tree.head()
                and not state.get("failed") and len(state.get("commits", [])) == len(series)
                and state.get("upstream", {}).get("sha256") == distro.pin.sha256):
            progress(f"rebase: reusing {existing} for the series on {distro.pin.version}")
            return existing, state["upstream"]["commit"], list(state["commits"])
    progress(f"rebase: applying the series on {distro.pin.version} (scratch tree)")
    fetched = fetch(distro, cache=cache)
    imported = import_upstream(distro, fetched, force=True, path=scratch / "old")
    applied = apply_series(distro, imported, series, tree_path=imported.work_tree)
    return imported.work_tree, imported.upstream_commit, [a.commit for a in applied.applied]


def _check_can_start(distro: Distro, request: RebaseRequest) -> None:
    if _read_state(distro) is not None:
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
        return _rebase(distro, request, progress=progress, cache=cache)


def _rebase(distro: Distro, request: RebaseRequest, *, progress: Progress,
            cache: Path | None) -> RebaseReport:
    _check_can_start(distro, request)
    new_pin = request.new_pin(distro.pin)
    series = read_series(distro.root)
    new_distro = distro.with_pin(new_pin)
    progress(f"rebase: fetch {new_pin.describe_source()}")
    fetched = fetch(new_distro, cache=cache)
    with tempfile.TemporaryDirectory(prefix="designate-dist-rebase-") as tmp:
        scratch = Path(tmp)
        old_path, old_upstream, old_commits = _old_branch(distro, series, scratch, progress, cache)
        if request.dry_run:
            target = scratch / "new"
        else:
            target = distro.work_root / STATE_DIR / f"{new_pin.name}-{new_pin.version}"
            if target.exists():
                shutil.rmtree(target)  # a leftover without state: nothing to keep
            backup = _backup(distro)
        imported = import_upstream(new_distro, fetched, force=True, path=target, pin=new_pin)
        tree = WorkTree(imported.work_tree)
        tree.fetch_ref(old_path, old_commits[-1] if old_commits else old_upstream, OLD_REF)
        old_tree = WorkTree(old_path)
        new_req_text = tree.file_at(imported.upstream_commit, "requirements.txt")
        run = _Run(distro=distro, new_pin=new_pin, tree=tree, series=series, old_commits=old_commits,
                   new_upstream=imported.upstream_commit, import_time=imported.import_time,
                   changelog_old=old_tree.file_at(old_upstream, "ChangeLog") or "",
                   changelog_new=tree.file_at(imported.upstream_commit, "ChangeLog") or "",
                   requirements=requirements_diff(old_tree.file_at(old_upstream, "requirements.txt"),
                                                  new_req_text),
                   new_requirements=parse_requirements(new_req_text), dry_run=request.dry_run,
                   progress=progress)
        progress(f"rebase: replaying {len(series)} patches onto {new_pin.version}")
        run.triage(0)
        if request.dry_run:
            return run.report(finished=False)
    return _stop_or_finish(run, backup)


def _stop_or_finish(run: _Run, backup: dict[str, str | None]) -> RebaseReport:
    distro = run.distro
    if run.outcomes and run.outcomes[-1].status == CONFLICT:
        write_json(state_path(distro), run.state(backup))
        stopped = run.outcomes[-1]
        files = ", ".join(stopped.files)
        error = RebaseConflict(
            f"rebase onto {run.new_pin.version} stopped: {stopped.ref} conflicts in {files}",
            patch=stopped.ref, files=list(stopped.files),
            hint=f"resolve the conflicts in {run.tree.path}, `git add` the files, then run "
                 "`designate-dist rebase --continue`; or `designate-dist rebase --abort`")
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


def rebase_continue(distro: Distro, *, progress: Progress = _quiet) -> RebaseReport:
    """Take the developer's resolution of the stopped patch and go on."""
    from designate_dist.pipeline import build_lock
    with build_lock(distro):
        return _rebase_continue(distro, progress=progress)


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
                             hint=f"resolve them in {tree.path} and `git add` them, then run "
                                  "`designate-dist rebase --continue` again")
    head = tree.head()
    if head != state["head"]:
        added = tree.commits_between(state["head"], head)
        if len(added) != 1:
            raise RebaseStateError(f"{tree.path} has {len(added)} new commits since the rebase stopped; "
                                   "expected the one resolving " + stopped.ref,
                                   hint="squash them into one commit, then run `designate-dist rebase --continue`")
        commit = added[0]
    else:
        tree.stage_all()
        markers = tree.conflict_marker_lines(list(stopped.files))
        if markers:
            raise RebaseConflict(f"{stopped.ref}: conflict markers left in {markers[0].split(':')[0]}",
                                 patch=stopped.ref, files=list(stopped.files),
                                 hint="remove them, `git add` the file, then run "
                                      "`designate-dist rebase --continue` again")
        commit = run._commit(patch) if tree.has_staged_changes() else None
        (tree.git_dir / "MERGE_MSG").unlink(missing_ok=True)
    if commit is None:
        outcome = PatchOutcome(stopped.series, stopped.file, stopped.kind, UPSTREAM,
                               note="the resolution leaves no change: dropped")
    else:
        outcome = PatchOutcome(stopped.series, stopped.file, stopped.kind, RESOLVED,
                               note="conflicts in " + ", ".join(stopped.files) + " resolved",
                               commit=commit)
    run.outcomes[-1] = run._with_notes(patch, outcome)
    progress(f"rebase: {stopped.ref}: {run.outcomes[-1].status}")
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
    return restored


def rebase_status(distro: Distro) -> dict | None:
    """The saved state of a stopped rebase (None when there is none)."""
    return _read_state(distro)


__all__ = ["RebaseConflict", "RebaseReport", "RebaseRequest", "RebaseStateError", "PatchOutcome",
           "load_distro", "rebase", "rebase_abort", "rebase_continue", "requirements_diff",
           "parse_diff", "same_hunks", "rewrite_patch"]
