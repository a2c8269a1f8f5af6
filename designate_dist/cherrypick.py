"""``cherry-pick``: add one upstream commit to ``cherry-pick/``, verbatim or adapted.

    cherry-pick = open upstream -> refuse merges and what we already carry
                  -> prepare (the whole series applies) -> apply the commit after cherry-pick/
                  -> customs/ still applies -> write NNNN-<slug>.upstream + series entry
                  (does not apply: 3-way merge in the work tree, state saved, stop, exit 3)

A commit that applies as it is becomes ``cherry-pick/NNNN-<slug>.upstream``:
``git format-patch`` of upstream's commit (author, date, message, Change-Id)
with an ``Upstream: commit <id> (<branch>)`` header.  One that does not is
merged three-way into the work tree (upstream's blobs are fetched for it) and
the command stops like a rebase conflict.  The developer resolves, ``git
add``s (or commits), and ``cherry-pick --continue`` turns the resolution into
``cherry-pick/NNNN-<slug>.patch``: upstream's author and message, then
``(cherry picked from commit <id>)``, the ``Conflicts:`` and a
``Backport-Note:`` saying what differs from upstream's change; its header
says ``Upstream: commit <id> (<branch>), adapted``.

Nothing in the distribution repository is written before the end (each file
atomically, the patch before the series entry); ``--abort`` puts the work tree
back on the commit and state it had, and the series file and patch directory
back byte for byte.  The state of a stopped cherry-pick is JSON in
``<work-dir>/cherry-pick/state.json``.
"""
from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from designate_dist import rebase_state
from designate_dist.apply import patch_identities
from designate_dist.atomic import write_bytes, write_json, write_text
from designate_dist.cache import cache_root
from designate_dist.distro import Distro
from designate_dist.errors import DistError, PatchApplyError, UsageError
from designate_dist.gitrepo import Identity, UpstreamCommit, UpstreamRepo, WorkTree, explain_apply_failure
from designate_dist.history import ChangeKeys, find_carrier, open_upstream, series_keys
from designate_dist.pipeline import build_lock, prepare_held
from designate_dist.series import (
    KIND_CUSTOM,
    SERIES_FILE,
    PatchFile,
    next_patch_name,
    parse_patch,
    read_series,
    series_with_entry,
)
from designate_dist.tree_state import read_tree_state, state_file, write_tree_state
from designate_dist.unidiff import parse_diff
from designate_dist.upstream_import import BRANCH, maintainer_identity

Progress = Callable[[str], None]
STATE_DIR = "cherry-pick"
STATE_NAME = "state.json"
PICK_REF = "refs/designate-dist/cherry-pick"


def _quiet(_: str) -> None:
    pass


class CherryPickConflict(PatchApplyError):
    """The commit does not apply as it is; the work tree holds the 3-way merge (exit 3)."""


class CherryPickStateError(DistError):
    """No cherry-pick in progress, one already in progress, or a rebase in the way."""


@dataclass(frozen=True)
class CherryPickRequest:
    commit: str
    upstream: str


@dataclass(frozen=True)
class CherryPickResult:
    file: Path       # the new patch file
    commit: str      # the upstream commit
    adapted: bool    # .patch (resolved by hand) rather than .upstream

    @property
    def ref(self) -> str:
        return f"{self.file.parent.name}/{self.file.name}"


def state_path(distro: Distro) -> Path:
    return distro.work_root / STATE_DIR / STATE_NAME


def _read_state(distro: Distro) -> dict | None:
    path = state_path(distro)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise CherryPickStateError(f"{path}: unreadable cherry-pick state: {exc}") from exc


def where_from(repo: UpstreamRepo, sha: str) -> str:
    """The branch a commit is taken from: a stable branch holding it, else master/main, else any."""
    stable = sorted(repo.branches_containing(sha, "stable/*"))
    if stable:
        return stable[0]
    branches = repo.branches_containing(sha, "*")
    for name in ("master", "main"):
        if name in branches:
            return name
    return sorted(branches)[0] if branches else "no branch"


def with_upstream_header(patch_text: str, value: str) -> str:
    """``git format-patch`` text with an ``Upstream:`` header after its mail headers."""
    head, sep, rest = patch_text.partition("\n\n")
    return f"{head}\nUpstream: {value}{sep}{rest}"


def _backup(path: Path) -> str | None:
    return base64.b64encode(path.read_bytes()).decode() if path.is_file() else None


def _restore_file(path: Path, data: str | None) -> bool:
    if data is None:
        if path.exists():
            path.unlink()
            return True
        return False
    raw = base64.b64decode(data)
    if path.is_file() and path.read_bytes() == raw:
        return False
    write_bytes(path, raw)
    return True


def _check_can_start(distro: Distro) -> None:
    state = _read_state(distro)
    if state is not None:
        raise CherryPickStateError(f"a cherry-pick of {state['commit'][:12]} is already in progress",
                                   hint="`designate-dist cherry-pick --continue` or `--abort`")
    if rebase_state.in_progress(distro):
        raise CherryPickStateError("a rebase is in progress",
                                   hint="finish it with `designate-dist rebase --continue` or `--abort`")


def _commit_of(repo: UpstreamRepo, name: str) -> UpstreamCommit:
    sha = repo.resolve(name, "COMMIT")
    commit = repo.commits([sha])[sha]
    if len(commit.parents) > 1:
        raise UsageError(f"{name} ({sha[:12]}) is a merge commit: cherry-pick the commit it merges")
    if not commit.parents:
        raise UsageError(f"{name} ({sha[:12]}) is a root commit: it has no change to pick")
    return commit


def _customs_apply(tree: WorkTree, customs: list[PatchFile], distro: Distro, when: int) -> None:
    """Apply ``customs`` on top of HEAD (one commit each); raise when one no longer applies."""
    for patch in customs:
        error = tree.apply(patch.path)
        if error is not None:
            failure = explain_apply_failure(error, patch.diff)
            raise PatchApplyError(f"{patch.ref} no longer applies after the cherry-pick: "
                                  f"{failure.describe()}", patch=patch.ref, files=[failure.file])
        author, committer = patch_identities(distro, patch, when)
        tree.commit_index(patch.message, author, committer)


def cherry_pick(distro: Distro, request: CherryPickRequest, *, progress: Progress = _quiet,
                cache: Path | None = None) -> CherryPickResult:
    """Add ``request.commit`` at the end of ``cherry-pick/``; raise :class:`CherryPickConflict` when it stops."""
    cache = cache or cache_root()
    with build_lock(distro):
        _check_can_start(distro)
        repo = open_upstream(request.upstream, cache=cache)
        commit = _commit_of(repo, request.commit)
        series = read_series(distro.root)
        carried = find_carrier(ChangeKeys.of_commit(commit, repo.patch_ids([commit.sha]).get(commit.sha)),
                               series_keys(repo, list(series)))
        if carried:
            raise UsageError(f"{commit.short} is already carried by {carried.by} ({carried.how})")
        tag = repo.tag_commit(distro.pin.tag or distro.pin.version)
        if tag and repo.is_ancestor(commit.sha, tag):
            raise UsageError(f"{commit.short} is already in {distro.pin.version} (an ancestor of its tag)")
        where = where_from(repo, commit.sha)
        progress(f"cherry-pick: {commit.short} {commit.subject} ({where})")
        prepared = prepare_held(distro, cache=cache, progress=progress)
        tree = WorkTree(prepared.work_tree)
        applied = prepared.applied.applied
        picks = [a for a in applied if a.patch.series == "cherry-pick"]
        base = picks[-1].commit if picks else prepared.applied.upstream_commit
        customs = [a.patch for a in applied if a.patch.kind == KIND_CUSTOM]
        conflicts: list[str] = []
        directory = distro.series_dir("cherry-pick")
        state = {"commit": commit.sha, "upstream": str(repo.path), "where": where,
                 "head": tree.head(), "base": base, "tree": str(tree.path),
                 "tree_state": _backup(state_file(tree.git_dir)),
                 "series": _backup(directory / SERIES_FILE),
                 "files": sorted(p.name for p in directory.iterdir()) if directory.is_dir() else [],
                 "import_time": prepared.import_time, "conflicts": []}
        text = with_upstream_header(repo.format_patch(commit.sha), f"commit {commit.sha} ({where})")
        name = next_patch_name(directory, commit.subject, ".upstream")
        try:
            with tempfile.TemporaryDirectory(prefix="designate-dist-pick-") as tmp:
                candidate = Path(tmp) / name
                candidate.write_text(text, encoding="utf-8")
                patch = parse_patch(candidate, "cherry-pick", "upstream")
                tree.reset_hard(base, BRANCH)
                error = tree.apply(candidate)
                if error is None:
                    progress(f"cherry-pick: {commit.short} applies as it is; checking customs/")
                    tree.commit_index(patch.message, *_identities(distro, commit))
                    _customs_apply(tree, customs, distro, prepared.import_time)
                    _put_back(tree, state)
                    _write_patch(distro, directory / name, text)
                    return CherryPickResult(directory / name, commit.sha, adapted=False)
            failure = explain_apply_failure(error, patch.diff)
            progress(f"cherry-pick: {commit.short} does not apply ({failure.describe()}); 3-way merge")
            tree.fetch_ref(repo.path, commit.sha, PICK_REF)
            conflicts = tree.merge_commit_into_index(commit.sha)
            state["conflicts"] = conflicts
            write_json(state_path(distro), state)
        except BaseException:
            _put_back(tree, state)
            raise
        what = (f"conflicts in {', '.join(conflicts)}" if conflicts
                else "it does not apply as it is; the 3-way merge is staged for review")
        raise CherryPickConflict(
            f"cherry-pick of {commit.short} stopped: {what}", patch=commit.sha,
            files=conflicts or [failure.file],
            hint=f"resolve in {tree.path}, `git add` the files, then run `designate-dist cherry-pick "
                 "--continue [--note TEXT]`; or `designate-dist cherry-pick --abort`")


def _identities(distro: Distro, commit: UpstreamCommit) -> tuple[Identity, Identity]:
    """Upstream's author; the maintainer commits, at the author date (as apply does for a patch)."""
    when = commit.author.when
    return Identity(commit.author.name, commit.author.email, when), maintainer_identity(distro.pin, when)


def _put_back(tree: WorkTree, state: dict) -> None:
    """The work tree on the commit and with the apply state it had before the cherry-pick."""
    tree.discard_merge()
    tree.reset_hard(state["head"], BRANCH)
    tree.delete_ref(PICK_REF)
    _restore_file(state_file(tree.git_dir), state["tree_state"])


def _write_patch(distro: Distro, path: Path, text: str) -> None:
    """The patch file first, then the series entry: a crash in between leaves an unlisted file."""
    series_file = path.parent / SERIES_FILE
    write_text(path, text)
    write_text(series_file, series_with_entry(series_file, path.name))
    tree_state = distro.work_tree
    if (tree_state / ".git").is_dir():
        tree = WorkTree(tree_state)
        # the next prepare applies the new series
        write_tree_state(tree.git_dir, read_tree_state(tree.git_dir).series_rewritten(tree.head()))


def _adaptation_note(upstream_diff: str, ours: str, version: str) -> str:
    """What the resolution changed compared with upstream's diff, file by file."""
    def by_file(diff: str) -> dict[str, object]:
        return {(f.new or f.old or ""): (f.hunks, f.extended) for f in parse_diff(diff)}

    theirs, mine = by_file(upstream_diff), by_file(ours)
    changed = [f for f in theirs if f in mine and theirs[f] != mine[f]]
    dropped = [f for f in theirs if f not in mine]
    added = [f for f in mine if f not in theirs]
    parts = []
    if changed:
        parts.append("changed from upstream's: " + ", ".join(changed))
    if dropped:
        parts.append("left out: " + ", ".join(dropped))
    if added:
        parts.append("added: " + ", ".join(added))
    kept = [f for f in theirs if f in mine and theirs[f] == mine[f]]
    if kept:
        parts.append("as upstream's: " + ", ".join(kept))
    return f"adapted to {version}; " + "; ".join(parts) if parts else f"adapted to {version}"


def _wrap(label: str, text: str, width: int = 72) -> str:
    words, lines, line = text.split(), [], label
    for word in words:
        if len(line) + 1 + len(word) > width and line.strip():
            lines.append(line)
            line = " " + word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\n".join(lines)


def cherry_pick_continue(distro: Distro, *, note: str | None = None,
                         progress: Progress = _quiet) -> CherryPickResult:
    """Turn the developer's resolution into an adapted ``.patch`` and add it to the series."""
    with build_lock(distro):
        state = _read_state(distro)
        if state is None:
            raise CherryPickStateError("no cherry-pick in progress",
                                       hint="start one with `designate-dist cherry-pick COMMIT --upstream REPO`")
        tree = WorkTree(Path(state["tree"]))
        repo = UpstreamRepo(Path(state["upstream"]))
        commit = repo.commits([state["commit"]])[state["commit"]]
        unmerged = tree.unmerged_paths()
        if unmerged:
            raise CherryPickConflict(f"{commit.short} still has unresolved conflicts in {', '.join(unmerged)}",
                                     patch=commit.sha, files=unmerged,
                                     hint=f"resolve them in {tree.path} and `git add` them, then run "
                                          "`designate-dist cherry-pick --continue` again")
        head = tree.head()
        if head != state["base"]:
            added = tree.commits_between(state["base"], head)
            if len(added) != 1:
                raise CherryPickStateError(
                    f"{tree.path} has {len(added)} new commits since the cherry-pick stopped; expected "
                    f"at most the one resolving {commit.short}", hint="squash them into one commit")
            tree.reset_soft(state["base"])
        # Only what git tracks and what the developer `git add`ed: never a merge tool's backup
        # (the same rule as rebase --continue, issue 13.3).
        tree.stage_tracked()
        markers = tree.resolution_marker_files()
        if markers:
            raise CherryPickConflict(f"{commit.short}: conflict markers left in {', '.join(markers)}",
                                     patch=commit.sha, files=markers,
                                     hint="remove them and `git add` the file (delete a merge tool's backup "
                                          "files), then run `designate-dist cherry-pick --continue` again")
        if not tree.has_staged_changes():
            raise CherryPickStateError(f"the resolution of {commit.short} leaves no change",
                                       hint="`designate-dist cherry-pick --abort`: nothing to carry")
        version = f"{distro.pin.name} {distro.pin.version}"
        auto = _adaptation_note(repo.commit_diff(commit.sha), tree.staged_diff(), version)
        full_note = f"{note.strip()} ({auto})" if note and note.strip() else auto
        message = commit.message.rstrip("\n") + "\n" + f"(cherry picked from commit {commit.sha})\n"
        if state["conflicts"]:
            message += "Conflicts:\n" + "".join(f"\t{f}\n" for f in state["conflicts"])
        message += _wrap("Backport-Note:", full_note) + "\n"
        resolved = tree.commit_index(message, *_identities(distro, commit))
        text = with_upstream_header(tree.format_patch(resolved),
                                    f"commit {commit.sha} ({state['where']}), adapted")
        customs = [p for p in read_series(distro.root) if p.kind == KIND_CUSTOM]
        progress(f"cherry-pick: {commit.short} resolved; checking customs/")
        _customs_apply(tree, customs, distro, state["import_time"])
        directory = distro.series_dir("cherry-pick")
        name = next_patch_name(directory, commit.subject, ".patch")
        _put_back(tree, state)
        _write_patch(distro, directory / name, text)
        state_path(distro).unlink(missing_ok=True)
        return CherryPickResult(directory / name, commit.sha, adapted=True)


def cherry_pick_abort(distro: Distro) -> list[str]:
    """Put the work tree and ``cherry-pick/`` back as they were; return the files restored."""
    with build_lock(distro):
        state = _read_state(distro)
        if state is None:
            raise CherryPickStateError("no cherry-pick in progress")
        restored = []
        directory = distro.series_dir("cherry-pick")
        if _restore_file(directory / SERIES_FILE, state["series"]):
            restored.append(f"cherry-pick/{SERIES_FILE}")
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                if path.is_file() and path.name not in state["files"]:
                    path.unlink()
                    restored.append(f"cherry-pick/{path.name}")
        tree = Path(state["tree"])
        if (tree / ".git").is_dir():
            _put_back(WorkTree(tree), state)
        state_path(distro).unlink(missing_ok=True)
        return restored


__all__ = ["CherryPickConflict", "CherryPickRequest", "CherryPickResult", "CherryPickStateError",
           "cherry_pick", "cherry_pick_abort", "cherry_pick_continue"]
