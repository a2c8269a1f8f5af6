"""Stage: unpack a verified upstream archive and import it into a git work tree.

The pristine upstream tree is one commit, tagged ``upstream/<version>``; the
tag message records the archive's sha256 so that a later run can tell whether
the tree still matches the pin.  ``PKG-INFO`` and ``*.egg-info`` are removed
before the import: pbr would otherwise take its version from them instead of
from PBR_VERSION or git.
"""
from __future__ import annotations

import shutil
import tarfile
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path, PurePosixPath

from designate_dist import scratch, tree_cache
from designate_dist.distro import Distro, Pin
from designate_dist.errors import ConfigError, DirtyWorkTree, DistError, GitError, VerificationError
from designate_dist.fetch import FetchResult, archive_error
from designate_dist.gitrepo import Identity, WorkTree
from designate_dist.links import resolve
from designate_dist.tree_state import TreeState, UpstreamImport, read_tree_state, write_tree_state

BRANCH = "patched"
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


class _ArchiveTree:
    """The tree an archive's members make when extracted in order, checked before anything is written.

    Paths are tuples of parts below the extraction directory; the tree is the
    single top directory.  A member is refused when it would be written outside
    the tree, through a link, or over another member, and a link when its target,
    resolved against every link of the archive, leaves the tree.
    """

    def __init__(self, archive_name: str) -> None:
        self.archive_name = archive_name
        self.top: str | None = None
        self.dirs: set[tuple[str, ...]] = set()
        self.files: set[tuple[str, ...]] = set()
        self.links: dict[tuple[str, ...], str] = {}

    def refuse(self, member: tarfile.TarInfo, why: str) -> VerificationError:
        return VerificationError(f"{self.archive_name}: member {member.name!r} {why}; "
                                 "the archive is refused", hint="check the pin in build/upstream.toml")

    def _parts(self, member: tarfile.TarInfo, name: str) -> tuple[str, ...]:
        path = PurePosixPath(name)
        if path.is_absolute():
            raise self.refuse(member, "has an absolute path")
        if ".." in path.parts:
            raise self.refuse(member, "has '..' in its path")
        if not path.parts:
            raise self.refuse(member, "has an empty path")
        if any(part.casefold() == ".git" for part in path.parts):
            # The import runs git in this tree: a .git of the archive's would bring its own
            # config and hooks (core.fsmonitor, post-commit), that is, run its commands.
            raise self.refuse(member, "is in a .git directory")
        return path.parts

    def add(self, member: tarfile.TarInfo) -> None:
        parts = self._parts(member, member.name)
        if self.top is None:
            self.top = parts[0]
        if parts[0] != self.top:
            raise ConfigError(f"{self.archive_name}: expected one top-level directory, found "
                              f"{self.top!r} and {parts[0]!r}")
        if len(parts) == 1 and not member.isdir():
            raise self.refuse(member, "is the top directory but not a directory")
        for depth in range(1, len(parts)):
            above = parts[:depth]
            if above in self.links:
                raise self.refuse(member, f"is written through the link {'/'.join(above)!r}")
            if above in self.files:
                raise self.refuse(member, f"is below the file {'/'.join(above)!r}")
        if member.isdir():
            if parts in self.files or parts in self.links:
                raise self.refuse(member, "replaces another member of the same name")
        elif parts in self.dirs or parts in self.files or parts in self.links:
            raise self.refuse(member, "replaces another member of the same name")
        if member.issym():
            if not member.linkname or PurePosixPath(member.linkname).is_absolute():
                raise self.refuse(member, f"is a link to {member.linkname!r}, outside the tree")
            self.links[parts] = member.linkname
            self._check_link(member, parts)
        elif member.islnk():
            target = PurePosixPath(member.linkname)
            if target.is_absolute() or ".." in target.parts:
                raise self.refuse(member, f"is a hard link to {member.linkname!r}, outside the tree")
            if target.parts not in self.files:
                raise self.refuse(member, f"is a hard link to {member.linkname!r}, "
                                          "which is not a file of the archive before it")
            self.files.add(parts)
        elif member.isfile():
            self.files.add(parts)
        elif member.isdir():
            self.dirs.add(parts)
        else:
            raise self.refuse(member, "is a device, fifo or other special file")
        self.dirs.update(parts[:depth] for depth in range(1, len(parts)))

    def _check_link(self, member: tarfile.TarInfo, parts: tuple[str, ...]) -> None:
        target = self.links[parts]
        resolved = resolve(self.links, parts[:-1], target, floor=1)  # floor 1: the top directory
        if resolved is None:
            raise self.refuse(member, f"is a link to {target!r}, which leads outside the tree "
                                      "(or into a loop)")
        if len(resolved) > 1 and resolved[1].casefold() == ".git":
            # the import makes the tree a git repository: such a link would reach its config
            raise self.refuse(member, f"is a link to {target!r}, which leads into .git")

    def check_links(self, members: dict[tuple[str, ...], tarfile.TarInfo]) -> None:
        """Every link, resolved against the whole archive, must stay in the tree.

        Each link is checked when it is met, and all once more at the end: a
        later link can change where an earlier one leads (``a -> b/..`` is
        harmless until ``b -> .`` follows).
        """
        for parts in self.links:
            self._check_link(members[parts], parts)


def unpack(archive: Path, dest: Path) -> tuple[Path, int]:
    """Unpack ``archive`` below ``dest``; return its single top directory and newest mtime.

    Every member is checked (:class:`_ArchiveTree`) before the first is written:
    one bad member refuses the whole archive (exit 5), nothing is skipped.
    Where Python's tarfile has extraction filters (3.11.4+), the ``data``
    filter runs as well.
    """
    filter_error = getattr(tarfile, "FilterError", None)
    try:
        with tarfile.open(archive) as tar:
            tar.errorlevel = 2  # every extraction error raises; none is only logged
            tree = _ArchiveTree(archive.name)
            members: list[tarfile.TarInfo] = []
            by_parts: dict[tuple[str, ...], tarfile.TarInfo] = {}
            for member in tar.getmembers():
                if member.isdir() and not PurePosixPath(member.name).parts:
                    continue  # "./": the extraction directory itself
                tree.add(member)
                by_parts[PurePosixPath(member.name).parts] = member
                members.append(member)
            tree.check_links(by_parts)
            if tree.top is None:
                raise ConfigError(f"{archive.name}: the archive is empty")
            for member in members:
                member.uid = member.gid = 0
                member.uname = member.gname = ""
                if member.isfile():
                    member.mode = (member.mode | 0o644) & 0o755
                elif member.isdir():
                    member.mode = 0o755
            dest.mkdir(parents=True, exist_ok=True)
            if filter_error is not None:
                tar.extractall(dest, members=members, filter="data")
            else:
                tar.extractall(dest, members=members)  # vetted above: the same rules as "data" and more
            newest = max((m.mtime for m in members), default=0)
    except DistError:
        raise
    except Exception as exc:
        if filter_error is not None and isinstance(exc, filter_error):
            raise VerificationError(f"{archive.name}: refused by the tar extraction filter: {exc}; "
                                    "the archive is refused") from exc
        error = archive_error(exc, archive.name, f"unpack {archive.name}", dest)
        if error is None:
            raise
        raise error from exc
    top = dest / tree.top
    if top.is_symlink() or not top.is_dir():
        raise ConfigError(f"{archive.name}: {tree.top} is not a directory")
    return top, int(newest)


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
    scratch.sweep(target.parent, ".import-")  # a killed import's half-unpacked tree
    if (target / ".git").exists():
        tree = WorkTree(target)
        check_clean(tree, force=force)
        state = read_tree_state(tree.git_dir)
        if not force and state.head and tree.head() != state.head:
            raise DirtyWorkTree(
                f"work tree {target} has commits that are not from the series (HEAD {tree.head()[:12]})",
                hint="export them with `designate-dist patches export`, or pass --force")
        commit = tree.resolve(f"refs/tags/{tag}^{{commit}}")
        if commit and state.upstream is not None and state.upstream.sha256 == fetched.sha256:
            return ImportResult(target, commit, state.upstream.import_time, reused=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    with scratch.directory(target.parent, ".import-", f"{target.name}-") as tmp:
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
        write_tree_state(tree.git_dir, TreeState(upstream=UpstreamImport(pin.name, pin.version, fetched.sha256,
                                                                         commit, newest)))
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
