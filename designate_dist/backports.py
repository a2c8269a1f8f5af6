"""The backports report: which upstream fixes after our pinned release we carry, and which we do not.

    backports = open upstream -> commits after the pinned tag (stable branch, up to --to)
                -> our patched tree (pin + series) in a scratch index
                -> for each commit: kind, carried (by which patch), applies

For every non-merge commit reachable from the release's stable branch or
``--to`` and not from the pinned tag:

*carried*  our series or the release itself already has it: a patch names its
           commit (``Upstream:``, ``cherry picked from``), shares its Change-Id or
           its patch-id, or the release's own branch has it under another id
           (a stable backport); else its diff reverse-applies on our patched tree;
*applies*  ``clean`` / ``conflict`` (files named) / ``not-applicable`` (it only
           changes files our tree does not have), checked with ``git apply
           --cached --check`` against an index of the patched tree: no work tree
           per commit, nothing written;
*kind*     ``security`` (a Closes-Bug and security words), ``fix``, ``feature``,
           ``packaging``, ``tests-docs`` or ``ci`` (by the files it touches).

The report is read only: the distro repository and its work tree are not changed.
"""
from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from designate_dist.apply import apply_series
from designate_dist.cache import cache_root
from designate_dist.distro import Distro
from designate_dist.errors import ConfigError, UsageError
from designate_dist.fetch import fetch
from designate_dist.gitrepo import TreeIndex, UpstreamCommit, UpstreamRepo, WorkTree, check_ref_name
from designate_dist.history import ChangeKeys, Evidence, find_carrier, open_upstream, release_keys, series_keys
from designate_dist.series import PatchSeries, change_ids_in, read_series
from designate_dist.tree_state import read_tree_state
from designate_dist.upstream_import import import_upstream

Progress = Callable[[str], None]

SECURITY, FIX, FEATURE, PACKAGING, TESTS_DOCS, CI = (
    "security", "fix", "feature", "packaging", "tests-docs", "ci")
KINDS = (SECURITY, FIX, FEATURE, PACKAGING, TESTS_DOCS, CI)
CLEAN, CONFLICT, NOT_APPLICABLE, CARRIED = "clean", "conflict", "not-applicable", "carried"

_SECURITY_WORDS = re.compile(
    r"\bbypass|denial[- ]of[- ]service|\binjection|\btraversal|\bprivilege|\bescalat"
    r"|\bCVE-\d|\bOSSA\b|cross-tenant|\bunauthori[sz]ed|\bdisclos|\bXSS\b|\bCSRF\b", re.I)
_DOS = re.compile(r"\bDoS\b")  # case-sensitive: "dos" is not a denial of service
_CLOSES_BUG = re.compile(r"^\s*Closes-Bug:\s*#?(\d+)", re.M | re.I)
_BUGS = re.compile(r"^\s*(?:Closes|Partial|Related)-Bug:\s*#?(\d+)", re.M | re.I)
_FIX_WORDS = re.compile(r"\bfix(es|ed)?\b|^revert\b|\bbug\b", re.I)
_FIX_SAYS = re.compile(r"\bthis (patch|change|commit) fix(es)?\b", re.I)
# A subject that names something new: a feature, even with a bug number (upstream files RFEs as bugs).
_FEATURE_WORDS = re.compile(r"^(add|support|allow|implement|introduce|enable|migrate|drop|remove|"
                            r"replace|use|update|bump|clean ?up)\b|\bsupport\b", re.I)
_CI_PATHS = ("devstack/", ".zuul.yaml", ".zuul.d/", "zuul.d/", "playbooks/", "roles/", ".gitreview",
             "tox.ini", "bindep.txt", ".pre-commit-config.yaml", "tools/", "rally-jobs/", "contrib/")
_DOC_PATHS = ("doc/", "api-ref/", "releasenotes/", "README", "CONTRIBUTING", "HACKING")
_PACKAGING = ("setup.cfg", "setup.py", "pyproject.toml", "requirements.txt", "test-requirements.txt",
              "MANIFEST.in", ".gitignore", ".stestr.conf")
_MISSING = re.compile(r"^error: (?P<file>.+?): (does not exist in index|No such file or directory)$", re.M)
_FAILED = re.compile(r"^error: patch failed: (?P<file>.+):\d+$", re.M)
_OTHER = re.compile(r"^error: (?P<file>[^:]+): (?P<why>.+)$", re.M)


def _quiet(_: str) -> None:
    pass


def path_kind(path: str) -> str:
    """What a touched path is: ci, tests-docs, packaging or code."""
    if path.startswith(_CI_PATHS):
        return CI
    if "/tests/" in f"/{path}" or path.startswith(_DOC_PATHS) or path.endswith((".rst", ".md")):
        return TESTS_DOCS
    if path in _PACKAGING or path.endswith("requirements.txt"):
        return PACKAGING
    return "code"


def classify(commit: UpstreamCommit) -> str:
    """The kind of an upstream commit, from the files it touches and its message."""
    kinds = {path_kind(p) for p in commit.files}
    if "code" not in kinds:
        # a devstack fix with its release note is CI; tests or docs with a requirement bump, packaging
        for kind in (PACKAGING, CI, TESTS_DOCS):
            if kind in kinds:
                return kind
    message = commit.message
    if _CLOSES_BUG.search(message) and (_DOS.search(message) or _SECURITY_WORDS.search(message)):
        return SECURITY
    if _FIX_WORDS.search(commit.subject) or _FIX_SAYS.search(message):
        return FIX
    if _FEATURE_WORDS.search(commit.subject):
        return FEATURE
    return FIX if _BUGS.search(message) else FEATURE


@dataclass(frozen=True)
class BackportsRequest:
    upstream: str                  # a local git repository or a URL
    branch: str | None = None      # the release's stable branch (default: the one holding the tag)
    to: str | None = None          # a later tag, or master


@dataclass(frozen=True)
class Backport:
    commit: str
    subject: str
    author: str
    date: int
    kind: str
    on: tuple[str, ...]            # the branch and/or --to it was found on
    applies: str                   # clean | conflict | not-applicable | carried
    carried_by: str | None = None  # series/patch, or "<release> (<commit>)", or "patched tree"
    evidence: str | None = None    # which id says so
    files: tuple[str, ...] = ()    # conflicting files
    bugs: tuple[str, ...] = ()
    change_id: str | None = None

    @property
    def carried(self) -> bool:
        return self.carried_by is not None

    @property
    def alarm(self) -> bool:
        """A security fix that applies cleanly and that we do not carry."""
        return self.kind == SECURITY and not self.carried and self.applies == CLEAN

    def as_json(self) -> dict:
        return {"commit": self.commit, "subject": self.subject, "author": self.author,
                "date": self.date, "kind": self.kind, "on": list(self.on),
                "carried": self.carried, "carried_by": self.carried_by, "evidence": self.evidence,
                "applies": self.applies, "files": list(self.files), "bugs": list(self.bugs),
                "change_id": self.change_id}

    def carried_text(self) -> str:
        if not self.carried:
            return "no"
        return f"{self.carried_by} ({self.evidence})" if self.evidence else str(self.carried_by)

    def applies_text(self) -> str:
        if self.applies == CONFLICT and self.files:
            more = f" +{len(self.files) - 2}" if len(self.files) > 2 else ""
            return f"conflict: {', '.join(self.files[:2])}{more}"
        return "-" if self.applies == CARRIED else self.applies


@dataclass(frozen=True)
class BackportsReport:
    release: str
    tag: str
    tag_commit: str
    branch: str | None
    to: str | None
    entries: tuple[Backport, ...]
    warnings: tuple[str, ...] = field(default=())

    @property
    def alarms(self) -> tuple[Backport, ...]:
        return tuple(e for e in self.entries if e.alarm)

    def as_json(self) -> dict:
        counts = Counter(e.kind for e in self.entries)
        return {"release": self.release, "tag": self.tag, "tag_commit": self.tag_commit,
                "branch": self.branch, "to": self.to,
                "commits": [e.as_json() for e in self.entries],
                "summary": {"total": len(self.entries),
                            "carried": sum(e.carried for e in self.entries),
                            "kinds": {k: counts[k] for k in KINDS if counts[k]},
                            "alarms": [e.commit for e in self.alarms]},
                "warnings": list(self.warnings)}

    def table(self) -> str:
        def cut(text: str, width: int = 60) -> str:
            return text if len(text) <= width else text[:width - 3] + "..."

        rows = [("COMMIT", "KIND", "ON", "SUBJECT", "APPLIES", "CARRIED")]
        rows += [(e.commit[:8], e.kind, ",".join(e.on), cut(e.subject), e.applies_text(), e.carried_text())
                 for e in self.entries]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [("  ".join(f"{cell:<{widths[i]}}" for i, cell in enumerate(r[:5])) + "  " + r[5]).rstrip()
                 for r in rows]
        where = " and ".join(x for x in (self.branch, self.to) if x)
        carried = sum(e.carried for e in self.entries)
        counts = Counter(e.kind for e in self.entries if not e.carried)
        open_ = ", ".join(f"{counts[k]} {k}" for k in KINDS if counts[k])
        lines.append(f"{len(self.entries)} commits after {self.tag} on {where}: {carried} carried"
                     + (f"; not carried: {open_}" if open_ else ""))
        lines += [f"warning: {w}" for w in self.warnings]
        for entry in self.alarms:
            lines.append(f"ALARM: security fix {entry.commit[:8]} applies to {self.release} and is not "
                         f"carried: {entry.subject}")
        return "\n".join(lines)


def patched_tree(distro: Distro, series: PatchSeries, scratch: Path, progress: Progress,
                 cache: Path | None = None) -> tuple[Path, str]:
    """A repository holding the pinned release with our series applied, and the patched tree id.

    The distro's work tree is used as is when it holds exactly that (read only);
    else the series is applied in ``scratch``.
    """
    existing = distro.work_tree
    if (existing / ".git").is_dir():
        tree = WorkTree(existing)
        state = read_tree_state(tree.git_dir)
        if (state.holds(series.fingerprint(), len(series), tree.head())
                and state.upstream is not None and state.upstream.version == distro.pin.version):
            progress(f"backports: our patched tree: {existing} (HEAD {tree.head()[:12]})")
            return existing, tree.archive_tree()
    progress(f"backports: applying the series on {distro.pin.version} (scratch tree)")
    fetched = fetch(distro, cache=cache)
    imported = import_upstream(distro, fetched, force=True, path=scratch / "patched")
    applied = apply_series(distro, imported, series, tree_path=imported.work_tree)
    return applied.work_tree, WorkTree(applied.work_tree).archive_tree()


def resolve_range(repo: UpstreamRepo, distro: Distro, request: BackportsRequest
                  ) -> tuple[str, str, str | None, str | None, list[tuple[str, str]]]:
    """(tag, tag commit, branch, to, [(name, commit) of the tips]) of the report."""
    tag = distro.pin.tag or distro.pin.version
    tag_commit = repo.tag_commit(tag)
    if tag_commit is None:
        raise ConfigError(f"{repo.path} has no tag {tag} (the pinned release)",
                          hint="fetch upstream's tags into that repository")
    if distro.pin.commit and distro.pin.commit != tag_commit:
        raise ConfigError(f"{repo.path}: tag {tag} points to {tag_commit[:12]}, not the pinned "
                          f"commit {distro.pin.commit[:12]}")
    branch = request.branch
    if branch is None:
        found = repo.branches_containing(tag_commit, "stable/*")
        if len(found) == 1:
            branch = found[0]
        elif len(found) > 1:
            raise UsageError(f"tag {tag} is on several stable branches ({', '.join(found)}): "
                             "pass --branch")
        elif request.to is None:
            raise UsageError(f"no stable branch of {repo.path} holds tag {tag}: pass --branch or --to")
    tips: list[tuple[str, str]] = []
    for name, what in ((branch, "--branch"), (request.to, "--to")):
        if name is None:
            continue
        check_ref_name(name, what)
        commit = repo.resolve(name, what)
        if what == "--branch" and not repo.is_ancestor(tag_commit, commit):
            raise UsageError(f"--branch {name} does not contain tag {tag}")
        tips.append((name, commit))
    return tag, tag_commit, branch, request.to, tips


def _apply_result(index: TreeIndex, diff: str) -> tuple[str, tuple[str, ...], bool]:
    """(applies, conflicting files, reverse-applies) of one upstream diff on the patched index."""
    error = index.check(diff)
    if error is None:
        return CLEAN, (), False
    if index.check(diff, reverse=True) is None:
        return CARRIED, (), True
    missing = {m.group("file") for m in _MISSING.finditer(error)}
    failed = [m.group("file") for m in _FAILED.finditer(error)]
    other = [m.group("file") for m in _OTHER.finditer(error)
             if m.group("file") != "patch failed" and m.group("file") not in missing]
    files = tuple(dict.fromkeys(failed + other))
    if missing and not files and not (missing & index.paths):
        return NOT_APPLICABLE, tuple(sorted(missing)), False
    return CONFLICT, files or tuple(sorted(missing)), False


def backports(distro: Distro, request: BackportsRequest, *, progress: Progress = _quiet,
              cache: Path | None = None) -> BackportsReport:
    """The backports report of ``distro``'s pinned release against ``request.upstream``."""
    cache = cache or cache_root()
    series = read_series(distro.root)
    repo = open_upstream(request.upstream, cache=cache)
    tag, tag_commit, branch, to, tips = resolve_range(repo, distro, request)
    shas = repo.rev_list([sha for _, sha in tips], [tag_commit])
    on: dict[str, list[str]] = {}
    for name, sha in tips:
        for found in repo.rev_list([sha], [tag_commit]):
            on.setdefault(found, []).append(name)
    progress(f"backports: {len(shas)} commits after {tag} on {' and '.join(n for n, _ in tips)}")
    commits = repo.commits(shas)
    diffs = repo.diffs(shas)
    patch_ids = repo.patch_ids_of_diffs(diffs)
    ours = series_keys(repo, list(series))
    # The release's own branch, from where it left the --to line up to the tag: a change
    # there under another id (a stable backport) is in the release already.
    bases = [base for _, sha in tips if (base := repo.merge_base(tag_commit, sha)) and base != tag_commit]
    in_release = release_keys(repo, [tag_commit], bases, tag) if bases else []
    warnings: list[str] = []
    entries: list[Backport] = []
    with tempfile.TemporaryDirectory(prefix="designate-dist-backports-") as tmp:
        tree_repo, tree = patched_tree(distro, series, Path(tmp), progress, cache)
        index = TreeIndex(tree_repo, tree, Path(tmp))
        for sha in shas:
            commit = commits[sha]
            keys = ChangeKeys.of_commit(commit, patch_ids.get(sha))
            evidence: Evidence | None = find_carrier(keys, ours) or find_carrier(keys, in_release)
            applies, files = CARRIED, ()
            if evidence is None:
                applies, files, reverse = _apply_result(index, diffs.get(sha, ""))
                if reverse:
                    evidence = Evidence("patched tree", "reverse-applies")
            entries.append(Backport(
                commit=sha, subject=commit.subject, author=commit.author.name, date=commit.author.when,
                kind=classify(commit), on=tuple(on.get(sha, ())), applies=applies,
                carried_by=evidence.by if evidence else None, evidence=evidence.how if evidence else None,
                files=files, bugs=tuple(dict.fromkeys(_BUGS.findall(commit.message))),
                change_id=(change_ids_in(commit.message) or (None,))[-1]))
    for entry in entries:
        if entry.kind == SECURITY and not entry.carried and entry.applies == CONFLICT:
            warnings.append(f"security fix {entry.commit[:8]} is not carried and conflicts "
                            f"({', '.join(entry.files)}): it needs an adapted backport")
    order = {kind: number for number, kind in enumerate(KINDS)}
    entries.sort(key=lambda e: (order[e.kind], e.carried, -e.date, e.commit))
    return BackportsReport(release=distro.pin.version, tag=tag, tag_commit=tag_commit, branch=branch,
                           to=to, entries=tuple(entries), warnings=tuple(warnings))
