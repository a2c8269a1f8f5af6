"""Upstream history as evidence: is a change already carried, and by what?

A change is known by several ids, and any one of them is enough to recognise it
elsewhere: its commit id, the commits its ``(cherry picked from commit ...)``
lines and our ``Upstream: commit ...`` lines name, its Gerrit ``Change-Id``,
and its ``git patch-id --stable`` (the diff, whatever the message or the line
numbers).  :class:`ChangeKeys` holds them for an upstream commit or one of our
patch files; :func:`same_change` says which id two changes share.

Used by ``backports`` (which upstream commits our series or the pinned release
already carries), ``cherry-pick`` (refuse a commit already carried) and, when
the pin's source is git, by ``rebase`` (:func:`release_evidence`: which patches
the new release contains, from history rather than from the sdist's ChangeLog).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from designate_dist.errors import UsageError
from designate_dist.gitrepo import UpstreamCommit, UpstreamRepo, is_url
from designate_dist.series import PatchFile, change_ids_in, cherry_picked_from_in

#: ``scheme://...`` or scp-like ``user@host:path``: a repository to clone, not a local path.
_MIN_ABBREV = 7


def open_upstream(spec: str, *, cache: Path, base: Path | None = None) -> UpstreamRepo:
    """The upstream repository ``spec`` names: a local git repository, or a URL cloned into ``cache``.

    A relative path is taken from ``base`` (default: the current directory).
    """
    if not spec or spec.startswith("-"):
        raise UsageError(f"--upstream {spec!r}: not a repository path or URL")
    if is_url(spec):
        return UpstreamRepo.clone_cached(spec, cache / "git")
    path = Path(spec).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    return UpstreamRepo(path.resolve())


@dataclass(frozen=True)
class ChangeKeys:
    """Every id one change is known by."""

    owner: str                      # how a report names it: a commit id or a series/patch ref
    commits: tuple[str, ...]        # its own id first, then the ids it names (full or abbreviated)
    change_ids: frozenset[str]
    patch_id: str | None

    @classmethod
    def of_commit(cls, commit: UpstreamCommit, patch_id: str | None, owner: str | None = None) -> ChangeKeys:
        return cls(owner or commit.sha, tuple(dict.fromkeys((commit.sha, *cherry_picked_from_in(commit.message)))),
                   frozenset(change_ids_in(commit.message)), patch_id)

    @classmethod
    def of_patch(cls, patch: PatchFile, patch_id: str | None) -> ChangeKeys:
        return cls(patch.ref, tuple(dict.fromkeys((*patch.upstream_commits, *patch.cherry_picked_from))),
                   frozenset(patch.change_ids), patch_id)


def _same_commit(first: str, second: str) -> bool:
    short = min(len(first), len(second))
    return short >= _MIN_ABBREV and first[:short] == second[:short]


def same_change(a: ChangeKeys, b: ChangeKeys) -> str | None:
    """How ``a`` and ``b`` are known to be the same change (None when they are not)."""
    for sha in a.commits:
        for other in b.commits:
            if _same_commit(sha, other):
                return f"commit {min(sha, other, key=len)[:10]}"
    shared = sorted(a.change_ids & b.change_ids)
    if shared:
        return f"Change-Id {shared[0][:9]}"
    if a.patch_id and a.patch_id == b.patch_id:
        return "same patch-id"
    return None


@dataclass(frozen=True)
class Evidence:
    """Who carries a change, and which id says so."""

    by: str
    how: str

    def describe(self) -> str:
        return f"{self.by} ({self.how})"


def find_carrier(keys: ChangeKeys, carriers: list[ChangeKeys]) -> Evidence | None:
    """The first of ``carriers`` that is the same change as ``keys``."""
    for carrier in carriers:
        how = same_change(keys, carrier)
        if how:
            return Evidence(carrier.owner, how)
    return None


def _fake_id(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()


def series_keys(repo: UpstreamRepo, patches: list[PatchFile]) -> list[ChangeKeys]:
    """The ids of our patch files (patch-ids computed by git from their diffs)."""
    ids = repo.patch_ids_of_diffs({_fake_id(p.ref): p.diff for p in patches})
    return [ChangeKeys.of_patch(p, ids.get(_fake_id(p.ref))) for p in patches]


def release_keys(repo: UpstreamRepo, tips: list[str], exclude: list[str],
                 label: str) -> list[ChangeKeys]:
    """The ids of the commits of ``exclude..tips``, each owned by ``<label> (<short id>)``."""
    shas = repo.rev_list(tips, exclude)
    commits = repo.commits(shas)
    patch_ids = repo.patch_ids(shas)
    return [ChangeKeys.of_commit(commits[s], patch_ids.get(s), f"{label} ({s[:8]})") for s in shas]


@lru_cache(maxsize=8)
def _release_keys_cached(path: str, new: str, old: str, label: str) -> tuple[ChangeKeys, ...]:
    repo = UpstreamRepo(Path(path))
    return tuple(release_keys(repo, [new], [old], label))


def release_evidence(old_pin, new_pin, patch: PatchFile, *, root: Path, cache: Path) -> str | None:
    """Evidence from upstream's history that ``new_pin``'s release contains ``patch``.

    Only when both pins are git sources of the same repository (an sdist has no
    history): the commits between the two pinned commits are matched against
    the patch by commit id, Change-Id and patch-id.  None otherwise, and when
    nothing matches; the caller then falls back to its other evidence.
    """
    if old_pin.source != "git" or new_pin.source != "git" or old_pin.url != new_pin.url:
        return None
    if not (old_pin.commit and new_pin.commit):
        return None
    repo = open_upstream(new_pin.url, cache=cache, base=root)
    carriers = list(_release_keys_cached(str(repo.path), new_pin.commit, old_pin.commit,
                                         new_pin.version))
    found = find_carrier(series_keys(repo, [patch])[0], carriers)
    return f"{found.how} is in {found.by}" if found else None
