"""Stage: unpack a verified upstream archive and import it into a git work tree.

The pristine upstream tree is one commit, tagged ``upstream/<version>``; the
tag message records the archive's sha256 so that a later run can tell whether
the tree still matches the pin.  ``PKG-INFO`` and ``*.egg-info`` are removed
before the import: pbr would otherwise take its version from them instead of
from PBR_VERSION or git.
"""
from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path, PurePosixPath

from designate_dist import tree_cache
from designate_dist.distro import Distro, Pin
from designate_dist.errors import ConfigError, DirtyWorkTree, GitError, VerificationError
from designate_dist.fetch import FetchResult
from designate_dist.gitrepo import Identity, WorkTree

BRANCH = "patched"
STATE_FILE = "designate-dist.json"
_METADATA = ("PKG-INFO",)


def upstream_tag(version: str) -> str:
    return f"upstream/{version}"


def maintainer_identity(pin: Pin, when: int) -> Identity:
    name, addr = parseaddr(pin.maintainer)
    return Identity(name or "designate-dist", addr or "designate-dist@localhost", when)


@dataclass(frozen=True)
class ImportResult:
    work_tree: Path
    upstream_commit: str
    import_time: int  # newest mtime in the archive: the upstream release's own date
    reused: bool
    checked_out: bool = True  # False: the branch is at the commit, the index and files are not (yet)


def read_state(tree: WorkTree) -> dict:
    path = tree.git_dir / STATE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_state(tree: WorkTree, state: dict, *, durable: bool = True) -> None:
    from designate_dist.atomic import write_json
    write_json(tree.git_dir / STATE_FILE, state, durable=durable)


def _safe_members(archive: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    members = []
    for member in archive.getmembers():
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts:
            raise VerificationError(f"archive member {member.name!r} escapes the tree")
        if member.issym() or member.islnk():
            base = name.parent if member.issym() else PurePosixPath()
            resolved = os.path.normpath(str(base / member.linkname))
            if member.linkname.startswith("/") or resolved == ".." or resolved.startswith("../"):
                raise VerificationError(f"archive link {member.name!r} -> {member.linkname!r} escapes the tree")
        elif not (member.isfile() or member.isdir()):
            continue  # devices, fifos: never part of a source tree
        member.uid = member.gid = 0
        member.uname = member.gname = ""
        member.mode = (member.mode | 0o644) & 0o755 if member.isfile() else 0o755
        members.append(member)
    return members


def unpack(archive: Path, dest: Path) -> tuple[Path, int]:
    """Unpack ``archive`` below ``dest``; return its single top directory and newest mtime."""
    try:
        with tarfile.open(archive) as tar:
            members = _safe_members(tar, dest)
            tar.extractall(dest, members=members)  # members vetted above
            newest = max((m.mtime for m in members), default=0)
    except (tarfile.TarError, OSError) as exc:
        raise VerificationError(f"{archive.name}: not a readable tar archive: {exc}") from exc
    tops = [p for p in dest.iterdir()]
    if len(tops) != 1 or not tops[0].is_dir():
        raise ConfigError(f"{archive.name}: expected one top-level directory, found {len(tops)} entries")
    return tops[0], int(newest)


def check_clean(tree: WorkTree, *, force: bool) -> None:
    """Refuse to touch a work tree with uncommitted work or a rebase in progress."""
    if tree.is_rebasing():
        raise DirtyWorkTree(f"work tree {tree.path} is in the middle of a rebase or merge",
                            hint="finish it with `designate-dist rebase --continue` or `--abort`")
    if force:
        return
    dirty = tree.dirty_paths()
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise DirtyWorkTree(f"work tree {tree.path} has uncommitted changes: {shown}",
                            hint="commit or discard them, or pass --force to discard them")


def import_upstream(distro: Distro, fetched: FetchResult, *, force: bool = False,
                    path: Path | None = None, pin: Pin | None = None,
                    checkout: bool = True) -> ImportResult:
    """Make ``path`` (default: the distro's work tree) hold the pristine upstream release.

    ``checkout=False`` may leave the files out (when the tree cache has the
    release): for a caller that writes commits first and checks out once.
    """
    pin = pin or distro.pin
    target = path or distro.work_tree
    tag = upstream_tag(pin.version)
    if (target / ".git").exists():
        tree = WorkTree(target)
        check_clean(tree, force=force)
        state = read_state(tree)
        if not force and state.get("head") and tree.head() != state.get("head"):
            raise DirtyWorkTree(
                f"work tree {target} has commits that are not from the series (HEAD {tree.head()[:12]})",
                hint="export them with `designate-dist patches export`, or pass --force")
        commit = tree.resolve(f"refs/tags/{tag}^{{commit}}")
        if commit and state.get("upstream", {}).get("sha256") == fetched.sha256:
            return ImportResult(target, commit, int(state["upstream"]["import_time"]), reused=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.import-") as tmp:
        cached = tree_cache.lookup(pin, fetched)
        if cached is not None:  # the same objects a fresh import writes, from the cache
            top, newest = Path(tmp) / "cached", cached.import_time
            tree = WorkTree.init(top, BRANCH)
            tree_cache.load(tree, cached)
            commit = cached.commit
            if checkout:
                tree.reset_hard(commit, BRANCH)
            else:
                tree.set_ref(f"refs/heads/{BRANCH}", commit)
        else:
            top, newest = unpack(fetched.archive, Path(tmp) / "unpack")
            for name in _METADATA:
                (top / name).unlink(missing_ok=True)
            for info in top.glob("*.egg-info"):
                shutil.rmtree(info)
            tree = WorkTree.init(top, BRANCH)
            who = maintainer_identity(pin, newest)
            message = (f"Import upstream {pin.name} {pin.version}\n\n"
                       f"Source: {fetched.source}\nSHA256: {fetched.sha256}\n")
            commit = tree.commit_all(message, who, who)
            tree.tag(tag, f"{pin.name} {pin.version}\nsha256 {fetched.sha256}\n", who)
            tree_cache.store(tree, pin, fetched, tag, newest)
        write_state(tree, {"upstream": {"name": pin.name, "version": pin.version,
                                        "sha256": fetched.sha256, "commit": commit,
                                        "import_time": newest}})
        old = None
        if target.exists():
            old = Path(tmp) / "old"
            target.rename(old)
        try:
            top.rename(target)
        except OSError as exc:
            if old is not None:
                old.rename(target)
            raise GitError(f"cannot move the new work tree into {target}: {exc}") from exc
    return ImportResult(target, commit, newest, reused=False, checked_out=checkout or cached is None)
