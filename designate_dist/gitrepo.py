"""All git access of designate-dist, through GitPython.

Git failures become :class:`GitError` with git's own stderr kept; a patch that
does not apply becomes a :class:`PatchApplyError` naming the file and hunk.
"""
from __future__ import annotations

import hashlib
import os
import re
import struct
import tempfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import git

from designate_dist.errors import GitError

#: Build outputs that tools write into the work tree; never part of the source.
WORKTREE_EXCLUDES = (
    "/.stestr/", "/build/", "/dist/", "*.egg-info/", "__pycache__/", "*.pyc", "/.eggs/",
    "/.designate-dist/",
)
_PATCH_FAILED = re.compile(r"^error: patch failed: (?P<file>.+):(?P<line>\d+)$", re.M)
_FILE_ERROR = re.compile(r"^error: (?P<file>[^:]+): (?P<why>.+)$", re.M)
_CORRUPT = re.compile(r"^error: (corrupt patch at line \d+|No valid patches in input.*)$", re.M)
_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@")
_MARKER_OPEN = re.compile(rb"^<{7}(?: |$)", re.M)
_MARKER_CLOSE = re.compile(rb"^>{7}(?: |$)", re.M)
#: Kinds of a conflicted path (:meth:`WorkTree.conflict_kinds`).
CONTENT = "content"
MODIFY_DELETE = "modify/delete"   # HEAD (the new release) deleted the file the change modifies
DELETE_MODIFY = "delete/modify"   # the change deletes a file HEAD modified


@dataclass(frozen=True)
class Identity:
    name: str
    email: str
    when: int  # UNIX time

    def env(self, role: str) -> dict[str, str]:
        return {f"GIT_{role}_NAME": self.name, f"GIT_{role}_EMAIL": self.email,
                f"GIT_{role}_DATE": f"@{self.when} +0000"}


@dataclass(frozen=True)
class ApplyFailure:
    """Where ``git apply`` gave up."""

    file: str
    hunk: int | None
    hunk_header: str | None
    reason: str

    def describe(self) -> str:
        if self.hunk is not None:
            return f"{self.file}, hunk #{self.hunk} ({self.hunk_header}): {self.reason}"
        return f"{self.file}: {self.reason}"


def kinds_of_conflicts(stages: list[tuple[str, str]]) -> dict[str, str]:
    """``{path: kind}`` from the (stage, path) entries of a conflicted merge."""
    found: dict[str, set[str]] = {}
    for stage, path in stages:
        found.setdefault(path, set()).add(stage)
    kinds = {}
    for path, have in found.items():
        if "1" in have and "2" not in have and "3" in have:
            kinds[path] = MODIFY_DELETE
        elif "1" in have and "2" in have and "3" not in have:
            kinds[path] = DELETE_MODIFY
        else:
            kinds[path] = CONTENT
    return kinds


def _stdin_of(text: str):
    """A file object holding ``text``, for a git process's standard input."""
    handle = tempfile.TemporaryFile()
    handle.write(text.encode("utf-8"))
    handle.seek(0)
    return handle


def has_conflict_markers(path: Path) -> bool:
    """True when the file holds a conflict as git writes one (``<<<<<<<`` ... ``>>>>>>>`` lines)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(8 << 20)
    except OSError:
        return False
    return bool(_MARKER_OPEN.search(data)) and bool(_MARKER_CLOSE.search(data))


def _plain_ident(who: Identity) -> bool:
    """True when git keeps the name and email as they are (no crud to strip, nothing to refuse)."""
    for part in (who.name, who.email):
        if not part or part != part.strip(" \t,:;<>\"\\'.") or any(c in part for c in "<>\n\r\0"):
            return False
    return who.when >= 0


def _git_error(action: str, exc: git.GitCommandError) -> GitError:
    stderr = (exc.stderr or "").strip().strip("'").strip()
    last = stderr.splitlines()[-1] if stderr else str(exc)
    return GitError(f"git {action} failed: {last.removeprefix('stderr: ').strip()}")


def locate_hunk(diff: str, file: str, old_line: int) -> tuple[int | None, str | None]:
    """The 1-based number and header of the hunk of ``file`` starting at ``old_line``."""
    in_file = False
    number = 0
    best: tuple[int | None, str | None] = (None, None)
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            in_file = line.endswith(f" b/{file}") or f" a/{file} " in line
            number = 0
        elif line.startswith("+++ ") and not in_file:
            in_file = line[4:].split("\t")[0].strip() in (f"b/{file}", file)
            number = 0
        match = _HUNK_HEADER.match(line)
        if in_file and match:
            number += 1
            if int(match.group(1)) == old_line:
                return number, line.split(" @@")[0] + " @@"
            if best[0] is None and number == 1:
                best = (None, None)
    return best


def explain_apply_failure(stderr: str, diff: str) -> ApplyFailure:
    """Turn ``git apply`` stderr into the file and hunk that failed."""
    match = _PATCH_FAILED.search(stderr)
    if match:
        hunk, header = locate_hunk(diff, match.group("file"), int(match.group("line")))
        return ApplyFailure(match.group("file"), hunk, header,
                            "the context or lines to change are not in the tree")
    corrupt = _CORRUPT.search(stderr)
    if corrupt:
        return ApplyFailure("(patch)", None, None, corrupt.group(1))
    for found in _FILE_ERROR.finditer(stderr):
        if found.group("file") not in ("patch failed",):
            return ApplyFailure(found.group("file"), None, None, found.group("why"))
    last = stderr.strip().splitlines()[-1] if stderr.strip() else "git apply failed"
    return ApplyFailure("(patch)", None, None, last.removeprefix("error: "))


_PACK_TYPES = {"commit": 1, "tree": 2, "blob": 3, "tag": 4}


class _PackWriter:
    """Objects kept in memory, then written as one pack (and its index) instead of a file each.

    A pack and ``.idx`` in git's version 2 formats, the objects whole (no
    deltas); the ``.pack`` is renamed into place before the ``.idx``, as git
    does, so that a reader never sees an index without its pack.
    """

    def __init__(self) -> None:
        self.objects: dict[str, tuple[str, bytes]] = {}

    def add(self, kind: str, raw: bytes) -> str:
        sha = hashlib.sha1(f"{kind} {len(raw)}\0".encode() + raw).hexdigest()
        self.objects.setdefault(sha, (kind, raw))
        return sha

    def write(self, pack_dir: Path) -> None:
        if not self.objects:
            return
        body = bytearray(b"PACK" + struct.pack(">II", 2, len(self.objects)))
        where: dict[bytes, tuple[int, int]] = {}
        for sha, (kind, raw) in self.objects.items():
            size, first = len(raw), (_PACK_TYPES[kind] << 4) | (len(raw) & 0x0F)
            size >>= 4
            header = bytearray()
            while size:
                header.append(first | 0x80)
                first, size = size & 0x7F, size >> 7
            header.append(first)
            data = bytes(header) + zlib.compress(raw, 1)
            where[bytes.fromhex(sha)] = (len(body), zlib.crc32(data) & 0xFFFFFFFF)
            body += data
        if len(body) >= 1 << 31:
            raise GitError("too many objects for one pack")  # never for a series
        pack_sha = hashlib.sha1(body).digest()
        body += pack_sha
        names = sorted(where)
        fanout = [0] * 256
        for name in names:
            fanout[name[0]] += 1
        for index in range(1, 256):
            fanout[index] += fanout[index - 1]
        idx = bytearray(b"\xfftOc" + struct.pack(">I", 2) + struct.pack(">256I", *fanout))
        idx += b"".join(names)
        idx += b"".join(struct.pack(">I", where[name][1]) for name in names)
        idx += b"".join(struct.pack(">I", where[name][0]) for name in names)
        idx += pack_sha
        idx += hashlib.sha1(idx).digest()
        pack_dir.mkdir(parents=True, exist_ok=True)
        stem = pack_dir / f"pack-{pack_sha.hex()}"
        for suffix, data in ((".pack", body), (".idx", idx)):
            fd, tmp = tempfile.mkstemp(dir=pack_dir, prefix="tmp_pack_")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.chmod(tmp, 0o444)
                os.replace(tmp, stem.with_suffix(suffix))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        self.objects.clear()


def _commit_object(tree: str, parent: str | None, message: str, author: Identity, committer: Identity) -> bytes:
    """The body of the commit object ``git commit --cleanup=verbatim`` writes for these (plain) identities."""
    return (f"tree {tree}\n" + (f"parent {parent}\n" if parent else "")
            + f"author {author.name} <{author.email}> {author.when} +0000\n"
            + f"committer {committer.name} <{committer.email}> {committer.when} +0000\n\n"
            + message).encode("utf-8")


class _Repository:
    """What every repository we write to shares: opening it, ``git commit``, HEAD and its history."""

    kind = "repository"

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.repo = git.Repo(path)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise GitError(f"{path} is not a git {self.kind}") from exc

    @property
    def git_dir(self) -> Path:
        return Path(self.repo.git_dir)

    @contextmanager
    def _env(self, env: Mapping[str, str]) -> Iterator[None]:
        with self.repo.git.custom_environment(**env):
            yield

    def _message_file(self, message: str) -> str:
        path = self.git_dir / "DESIGNATE_DIST_MSG"
        path.write_text(message, encoding="utf-8")
        return str(path)

    def _git_commit(self, message: str, env: Mapping[str, str], paths: Sequence[str] = ()) -> str:
        """``git commit`` of the index (or of exactly ``paths``), message verbatim; the one ``git commit``."""
        try:
            with self._env(env):
                self.repo.git.commit("--quiet", "--no-verify", "--allow-empty", "--cleanup=verbatim",
                                     "-F", self._message_file(message), *(("--", *paths) if paths else ()))
        except git.GitCommandError as exc:
            raise _git_error("commit", exc) from exc
        return self.head()

    def head(self) -> str:
        return self.repo.head.commit.hexsha

    def resolve(self, rev: str) -> str | None:
        try:
            return self.repo.commit(rev).hexsha
        except (git.BadName, ValueError, git.GitCommandError):
            return None

    def current_branch(self) -> str | None:
        try:
            return self.repo.active_branch.name
        except TypeError:  # detached HEAD
            return None

    def dirty_paths(self) -> list[str]:
        """Modified, staged or untracked (not ignored) paths: what a reset would destroy."""
        out = self.repo.git.status("--porcelain", "--untracked-files=normal")
        return [line[3:] for line in out.splitlines() if line.strip()]

    def commit_message(self, rev: str) -> str:
        return self.repo.commit(rev).message

    def commit_author(self, rev: str) -> Identity:
        commit = self.repo.commit(rev)
        return Identity(commit.author.name, commit.author.email, int(commit.authored_date))

    def tag_target(self, name: str) -> str | None:
        """The commit the tag ``name`` points to, or None when there is no such tag."""
        return self.resolve(f"refs/tags/{name}^{{commit}}")


class WorkTree(_Repository):
    """A work tree under ``.work/``: an upstream release imported as one commit, the series applied on it.

    Not the distribution repository (that is :class:`DistroRepo`).
    """

    kind = "work tree"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._pack: _PackWriter | None = None

    # -- creation -----------------------------------------------------------------
    @classmethod
    def init(cls, path: Path, branch: str) -> WorkTree:
        try:
            repo = git.Repo.init(path, initial_branch=branch)
        except git.GitCommandError as exc:
            raise _git_error("init", exc) from exc
        with repo.config_writer() as cfg:
            cfg.set_value("core", "autocrlf", "false")
            cfg.set_value("gc", "auto", "0")
            cfg.set_value("advice", "detachedHead", "false")
        exclude = Path(repo.git_dir) / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        exclude.write_text("# build outputs (designate-dist)\n" + "\n".join(WORKTREE_EXCLUDES) + "\n")
        return cls(path)

    def commit_all(self, message: str, author: Identity, committer: Identity) -> str:
        """Stage everything (upstream's own .gitignore notwithstanding) and commit."""
        try:
            self.repo.git.add("--all", "--force", ".")
        except git.GitCommandError as exc:
            raise _git_error("commit", exc) from exc
        return self._git_commit(message, {**author.env("AUTHOR"), **committer.env("COMMITTER")})

    def commit_index(self, message: str, author: Identity, committer: Identity) -> str:
        """Commit what is staged in the index.

        The commit object is the one ``git commit --cleanup=verbatim`` makes
        (same bytes, same id); it is written here rather than by a ``git
        commit`` process, which costs more than the ``git apply`` before it.
        Identities git would clean up (:func:`_plain_ident`) go through ``git commit``.
        """
        if _plain_ident(author) and _plain_ident(committer) and self.current_branch() and self._sha1_objects():
            try:
                tree = self.repo.git.write_tree()
            except git.GitCommandError as exc:
                raise _git_error("write-tree", exc) from exc
            ref = self.repo.head.reference.path  # e.g. refs/heads/patched
            try:
                parent = git.SymbolicReference.dereference_recursive(self.repo, "HEAD")
            except ValueError:
                parent = None  # an unborn branch
            raw = _commit_object(tree, parent, message, author, committer)
            commit = self._write_loose_object("commit", raw)
            self._move_ref(ref, parent, commit, committer, "commit: " + message.split("\n", 1)[0])
            return commit
        return self._git_commit(message, {**author.env("AUTHOR"), **committer.env("COMMITTER")})

    def _sha1_objects(self) -> bool:
        if not hasattr(self, "_sha1"):
            reader = self.repo.config_reader("repository")
            self._sha1 = str(reader.get_value("extensions", "objectformat", "sha1")).lower() == "sha1"
        return self._sha1

    # -- objects, without a work tree or an index (designate_dist.tree_apply) ---------------

    def can_write_objects(self) -> bool:
        """True when objects can be written here directly (a SHA-1 repository)."""
        return self._sha1_objects()

    @contextmanager
    def batched_objects(self) -> Iterator[None]:
        """Objects written in the block go to one pack at its end (or before a git process needs them)."""
        self._pack = _PackWriter()
        try:
            yield
        finally:
            pack, self._pack = self._pack, None
            pack.write(self.git_dir / "objects" / "pack")

    def flush_objects(self) -> None:
        """Write the objects of a batch now, for a git process to read."""
        if self._pack is not None:
            self._pack.write(self.git_dir / "objects" / "pack")

    def read_object(self, sha: str) -> bytes:
        """The body of the object ``sha`` (through GitPython's one long-lived ``cat-file``)."""
        if self._pack is not None and sha in self._pack.objects:
            return self._pack.objects[sha][1]
        try:
            return self.repo.odb.stream(bytes.fromhex(sha)).read()
        except (ValueError, git.GitCommandError, OSError) as exc:
            raise GitError(f"cannot read object {sha[:12]}: {exc}") from exc

    def write_object(self, kind: str, raw: bytes) -> str:
        if self._pack is not None:
            return self._pack.add(kind, raw)
        return self._write_loose_object(kind, raw)

    def tree_of(self, commit: str) -> str:
        return self.repo.commit(commit).tree.hexsha

    def commit_tree(self, tree: str, parent: str | None, message: str, author: Identity,
                    committer: Identity) -> str:
        """Write the commit of ``tree`` on ``parent`` (no ref moves): the object ``git commit`` makes.

        Identities git would clean up (:func:`_plain_ident`) go through ``git commit-tree``,
        which cleans them as ``git commit`` does.
        """
        if _plain_ident(author) and _plain_ident(committer) and self._sha1_objects():
            raw = _commit_object(tree, parent, message, author, committer)
            return self.write_object("commit", raw)
        self.flush_objects()
        try:
            with self._env({**author.env("AUTHOR"), **committer.env("COMMITTER")}):
                return self.repo.git.commit_tree(tree, *(["-p", parent] if parent else []),
                                                 "-F", self._message_file(message)).strip()
        except git.GitCommandError as exc:
            raise _git_error("commit-tree", exc) from exc

    def apply_to_tree(self, tree: str, patch_file: Path) -> tuple[str | None, str]:
        """``git apply --cached`` of the patch onto ``tree`` in a scratch index: (new tree or None, stderr).

        The work tree and the real index are not touched.
        """
        self.flush_objects()
        index = self.git_dir / "designate-dist-apply.index"
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            with self._env(env):
                self.repo.git.read_tree(tree)
                try:
                    self.repo.git.apply("--cached", "--whitespace=nowarn", "--verbose", str(patch_file))
                except git.GitCommandError as exc:
                    return None, (exc.stderr or "").replace("\n  stderr: '", "\n").strip().strip("'")
                return self.repo.git.write_tree().strip(), ""
        except git.GitCommandError as exc:
            raise _git_error("apply --cached", exc) from exc
        finally:
            index.unlink(missing_ok=True)

    def merge_tree(self, ours: str, theirs: str) -> tuple[str, list[tuple[str, str]]] | None:
        """``git merge-tree --write-tree`` of two commits, with no index or work tree.

        Returns (the merged tree, [(stage, path)] of the conflicts), or None
        when this git cannot (before 2.38).
        """
        status, out, err = self.repo.git.merge_tree("--write-tree", "-z", "--no-messages", ours, theirs,
                                                    with_extended_output=True, with_exceptions=False,
                                                    strip_newline_in_stdout=False)
        if status not in (0, 1):
            if "--write-tree" in err or "unknown option" in err or "usage:" in err:
                return None
            raise GitError(f"git merge-tree failed: {err.strip().splitlines()[-1] if err.strip() else status}")
        parts = out.split("\0")
        conflicts = []
        for entry in parts[1:]:
            if not entry:
                break
            info, _, path = entry.partition("\t")
            conflicts.append((info.split()[2], path))
        return parts[0].strip(), conflicts

    def pack_objects(self, rev: str, base: Path) -> str:
        """Pack every object reachable from ``rev`` (the tag object included) into ``base-<id>.pack``."""
        try:
            out = self.repo.git.execute(["git", "pack-objects", "--revs", "-q", str(base)],
                                        istream=_stdin_of(rev + "\n"))
        except git.GitCommandError as exc:
            raise _git_error("pack-objects", exc) from exc
        return str(out).strip()

    def ref_target(self, ref: str) -> str:
        """The object ``ref`` points to, not peeled (an annotated tag's own id)."""
        try:
            return self.repo.git.rev_parse("--verify", ref).strip()
        except git.GitCommandError as exc:
            raise _git_error(f"rev-parse {ref}", exc) from exc

    def set_ref(self, ref: str, sha: str) -> None:
        """Point ``ref`` at ``sha`` (``git update-ref``)."""
        try:
            self.repo.git.update_ref(ref, sha)
        except git.GitCommandError as exc:
            raise _git_error(f"update-ref {ref}", exc) from exc

    def _write_loose_object(self, kind: str, raw: bytes) -> str:
        """Store one object as git does (zlib-compressed, named by the SHA-1 of header + body)."""
        data = f"{kind} {len(raw)}\0".encode() + raw
        sha = hashlib.sha1(data).hexdigest()
        path = self.git_dir / "objects" / sha[:2] / sha[2:]
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="tmp_obj_")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(zlib.compress(data))
                os.chmod(tmp, 0o444)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return sha

    def _move_ref(self, ref: str, old: str | None, new: str, who: Identity, why: str) -> None:
        """Point the loose ref ``ref`` at ``new`` under git's lock protocol, and log it as git does."""
        path = self.git_dir / ref
        lock = path.with_name(path.name + ".lock")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(lock, "x", encoding="ascii") as handle:
                handle.write(new + "\n")
            current = path.read_text(encoding="ascii").strip() if path.is_file() else None
            if current is not None and current != old:
                lock.unlink()
                raise GitError(f"{ref} moved to {current[:12]} while committing; expected {(old or '')[:12]}")
            os.replace(lock, path)
        except FileExistsError:
            raise GitError(f"{ref} is locked by another git process ({lock} exists)") from None
        line = f"{old or '0' * 40} {new} {who.name} <{who.email}> {who.when} +0000\t{why}\n"
        for log in (self.git_dir / "logs" / ref, self.git_dir / "logs" / "HEAD"):
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(line)

    def tag(self, name: str, message: str, tagger: Identity, *, force: bool = False) -> None:
        try:
            with self._env(tagger.env("COMMITTER")):
                args = ["--annotate", "-m", message, name]
                self.repo.git.tag(*(["--force"] if force else []), *args)
        except git.GitCommandError as exc:
            raise _git_error(f"tag {name}", exc) from exc

    # -- queries ------------------------------------------------------------------

    def tracked_symlinks(self) -> list[str]:
        """The paths the index holds as symbolic links (mode 120000)."""
        return _index_symlinks(self.repo)

    def is_rebasing(self) -> bool:
        return any((self.git_dir / name).exists() for name in ("rebase-apply", "rebase-merge",
                                                               "MERGE_HEAD", "CHERRY_PICK_HEAD"))

    # -- changes ------------------------------------------------------------------

    def reset_hard(self, rev: str, branch: str) -> None:
        """Point ``branch`` at ``rev``, check it out and drop untracked files."""
        try:
            self.repo.git.checkout("--force", "-B", branch, rev)
            self.repo.git.clean("-d", "--force", "--quiet")
        except git.GitCommandError as exc:
            raise _git_error(f"checkout {rev}", exc) from exc

    def apply(self, patch_file: Path, *, three_way: bool = False) -> str | None:
        """``git apply --index`` the patch; return git's stderr on failure, None on success.

        ``git apply`` is all-or-nothing: on failure the tree and index are untouched.
        """
        args = ["--index", "--whitespace=nowarn", "--verbose"]
        if three_way:
            args.append("--3way")
        try:
            self.repo.git.apply(*args, str(patch_file))
        except git.GitCommandError as exc:
            return (exc.stderr or "").replace("\n  stderr: '", "\n").strip().strip("'")
        return None

    def format_patch(self, commit: str) -> str:
        """``git format-patch`` of one commit, stable across runs (no commit id, no version)."""
        try:
            return self.repo.git.format_patch("-1", "--stdout", "--no-signature", "--zero-commit",
                                              "--no-numbered", "--full-index",
                                              commit) + "\n"
        except git.GitCommandError as exc:
            raise _git_error(f"format-patch {commit[:12]}", exc) from exc

    def archive_tree(self) -> str:
        """The tree id of HEAD (identical trees give identical ids)."""
        return self.repo.head.commit.tree.hexsha

    # -- rebase and patch queue (designate_dist.rebase, designate_dist.patchqueue) ---------

    def check_apply(self, patch_file: Path, *, reverse: bool = False,
                    min_context: int | None = None) -> str | None:
        """``git apply --check`` against the work tree; git's stderr on failure, None if it applies."""
        args = ["--check", "--whitespace=nowarn", "--verbose"]
        if reverse:
            args.append("--reverse")
        if min_context is not None:
            args.append(f"-C{min_context}")
        try:
            self.repo.git.apply(*args, str(patch_file))
        except git.GitCommandError as exc:
            return (exc.stderr or "").replace("\n  stderr: '", "\n").strip().strip("'")
        return None

    def apply_verbose(self, patch_file: Path, *, min_context: int | None = None) -> tuple[bool, str]:
        """``git apply --index --verbose`` (all or nothing): (applied, git's report on stderr)."""
        args = ["--index", "--whitespace=nowarn", "--verbose"]
        if min_context is not None:
            args.append(f"-C{min_context}")
        try:
            _, _, stderr = self.repo.git.apply(*args, str(patch_file), with_extended_output=True)
        except git.GitCommandError as exc:
            return False, (exc.stderr or "").replace("\n  stderr: '", "\n").strip().strip("'")
        return True, stderr

    def merge_commit_into_index(self, commit: str) -> list[str]:
        """Three-way merge of ``commit``'s change onto HEAD, without committing.

        ``git cherry-pick --no-commit`` (rename detection included).  Returns the
        paths left with conflicts (markers in the files, unmerged in the index);
        an empty list when the merge succeeded and the result is staged.
        """
        try:
            self.repo.git.cherry_pick("--no-commit", "--allow-empty", commit)
        except git.GitCommandError as exc:
            conflicts = self.unmerged_paths()
            if conflicts:
                return conflicts
            raise _git_error(f"cherry-pick {commit[:12]}", exc) from exc
        return []

    def conflict_kinds(self, paths: list[str]) -> dict[str, str]:
        """For each unmerged path: :data:`MODIFY_DELETE`, :data:`DELETE_MODIFY` or :data:`CONTENT`.

        Read from the index stages: 1 the base, 2 HEAD, 3 the change merged in.
        """
        stages = []
        for line in self.repo.git.ls_files("--unmerged", "-z", "--", *paths).split("\0"):
            if "\t" in line:
                info, path = line.split("\t", 1)
                stages.append((info.split()[2], path))
        return kinds_of_conflicts(stages)

    def blob_text(self, rev: str, path: str) -> str | None:
        """The text of ``path`` at ``rev`` (None when absent), read without starting a process."""
        try:
            item = self.repo.commit(rev).tree / path
        except (KeyError, ValueError, git.BadName):
            return None
        if item.type != "blob":
            return None
        return item.data_stream.read().decode("utf-8", errors="surrogateescape")

    def move_to(self, rev: str) -> None:
        """Move the current branch, index and files to ``rev`` (a clean tree: nothing else to drop)."""
        try:
            self.repo.git.reset("--hard", "--quiet", rev)
        except git.GitCommandError as exc:
            raise _git_error(f"reset {rev[:12]}", exc) from exc

    def reset_hard_to(self, rev: str) -> None:
        """Move the current branch, index and files to ``rev``; untracked files are removed."""
        try:
            self.repo.git.reset("--hard", "--quiet", rev)
            self.repo.git.clean("-d", "--force", "--quiet")
        except git.GitCommandError as exc:
            raise _git_error(f"reset {rev[:12]}", exc) from exc
        (self.git_dir / "MERGE_MSG").unlink(missing_ok=True)

    def apply_text_verbose(self, diff: str) -> tuple[bool, str]:
        """:meth:`apply_verbose` of a diff given as text."""
        path = self.git_dir / "DESIGNATE_DIST_DIFF"
        path.write_text(diff, encoding="utf-8", errors="surrogateescape")
        try:
            return self.apply_verbose(path)
        finally:
            path.unlink(missing_ok=True)

    def staged_diff(self) -> str:
        """The staged change against HEAD, as ``commit_diff`` writes a commit's."""
        try:
            return self.repo.git.diff("--cached", "--full-index", "-M", strip_newline_in_stdout=False)
        except git.GitCommandError as exc:
            raise _git_error("diff --cached", exc) from exc

    def reset_soft(self, rev: str) -> None:
        """Move the branch to ``rev``, keeping the index and the files."""
        try:
            self.repo.git.reset("--soft", "--quiet", rev)
        except git.GitCommandError as exc:
            raise _git_error(f"reset --soft {rev[:12]}", exc) from exc

    def delete_ref(self, ref: str) -> None:
        """Remove ``ref`` if it exists."""
        if self.resolve(ref) is None:
            return
        try:
            self.repo.git.update_ref("-d", ref)
        except git.GitCommandError as exc:
            raise _git_error(f"update-ref -d {ref}", exc) from exc

    def unmerged_paths(self) -> list[str]:
        out = self.repo.git.diff("--name-only", "--diff-filter=U")
        return sorted(set(out.splitlines()))

    def has_staged_changes(self) -> bool:
        try:
            self.repo.git.diff("--cached", "--quiet")
        except git.GitCommandError:
            return True
        return False

    def _marker_files(self, *diff_args: str) -> list[str]:
        """Files whose added lines hold conflict markers, by ``git diff --check``."""
        try:
            self.repo.git.diff("--check", *diff_args)
        except git.GitCommandError as exc:
            out = (exc.stdout or "").replace("\n  stdout: '", "\n")
            found = []
            for line in out.splitlines():
                if "leftover conflict marker" in line:
                    path = line.strip().strip("'").rsplit(":", 2)[0]
                    if path not in found:
                        found.append(path)
            return found
        return []

    def staged_marker_files(self) -> list[str]:
        """Staged files whose added lines hold conflict markers."""
        return self._marker_files("--cached")

    def commit_marker_files(self, commit: str) -> list[str]:
        """Files ``commit`` changes whose added lines hold conflict markers."""
        return self._marker_files(f"{commit}^", commit)

    def untracked_paths(self) -> list[str]:
        """Untracked files git does not ignore (what ``git status`` lists as untracked)."""
        out = self.repo.git.ls_files("--others", "--exclude-standard", "-z")
        return sorted(p for p in out.split("\0") if p)

    def resolution_marker_files(self, staged: bool = True) -> list[str]:
        """Files a resolution leaves with conflict markers: staged ones, and untracked ones.

        ``staged=False`` checks only untracked files (the caller checked a commit itself).
        """
        marked = self.staged_marker_files() if staged else []
        return marked + [p for p in self.untracked_paths()
                         if p not in marked and has_conflict_markers(self.path / p)]

    def stage_tracked(self) -> None:
        """Stage every change to tracked files (and files already added); never an untracked file."""
        try:
            self.repo.git.add("--update")
        except git.GitCommandError as exc:
            raise _git_error("add --update", exc) from exc

    def added_paths(self, commit: str) -> list[str]:
        """Files ``commit`` adds (absent from its parent)."""
        try:
            out = self.repo.git.diff("--name-only", "--no-renames", "--diff-filter=A", "-z", f"{commit}^", commit)
        except git.GitCommandError as exc:
            raise _git_error(f"diff {commit[:12]}", exc) from exc
        return [p for p in out.split("\0") if p]

    def discard_merge(self) -> None:
        """Drop a half-done merge or apply: back to HEAD, untracked files removed."""
        try:
            self.repo.git.reset("--hard", "--quiet", "HEAD")
            self.repo.git.clean("-d", "--force", "--quiet")
        except git.GitCommandError as exc:
            raise _git_error("reset", exc) from exc
        (self.git_dir / "MERGE_MSG").unlink(missing_ok=True)

    def commit_diff(self, commit: str) -> str:
        """The diff of ``commit`` against its first parent, as format-patch writes it."""
        try:
            return self.repo.git.diff("--full-index", "-M", f"{commit}^", commit) + "\n"
        except git.GitCommandError as exc:
            raise _git_error(f"diff {commit[:12]}", exc) from exc

    def fetch_ref(self, source: Path, ref: str, dest_ref: str) -> str:
        """Copy ``ref`` (and its objects) from the repository at ``source`` to ``dest_ref``."""
        try:
            self.repo.git.fetch("--quiet", "--no-tags", "--force", str(source), f"+{ref}:{dest_ref}")
        except git.GitCommandError as exc:
            raise _git_error(f"fetch {ref} from {source}", exc) from exc
        return self.repo.commit(dest_ref).hexsha

    def commits_between(self, base: str, tip: str) -> list[str]:
        """The commits of ``base..tip``, oldest first (first-parent, no merges)."""
        try:
            out = self.repo.git.rev_list("--reverse", "--first-parent", "--no-merges", f"{base}..{tip}")
        except git.GitCommandError as exc:
            raise _git_error(f"rev-list {base[:12]}..{tip[:12]}", exc) from exc
        return out.split()

    def create_branch_here(self, name: str) -> None:
        """Create ``name`` at HEAD (replacing it) and check it out."""
        try:
            self.repo.git.checkout("--quiet", "-B", name)
        except git.GitCommandError as exc:
            raise _git_error(f"checkout -B {name}", exc) from exc


class DistroRepo(_Repository):
    """The distribution repository itself: its release commits and tags (designate_dist.release)."""

    kind = "repository"

    def tags_merged(self, pattern: str, rev: str = "HEAD") -> list[str]:
        """Tags matching the glob ``pattern`` that point at ``rev`` or one of its ancestors."""
        try:
            return self.repo.git.tag("--list", "--merged", rev, pattern).split()
        except git.GitCommandError as exc:
            raise _git_error("tag --merged", exc) from exc

    def files_at(self, rev: str, paths: list[str]) -> dict[str, bytes]:
        """The bytes of every file at ``rev`` under ``paths`` (files or directories)."""
        tree = self.repo.commit(rev).tree
        found: dict[str, bytes] = {}
        for path in paths:
            try:
                item = tree / path
            except KeyError:
                continue
            blobs = [item] if item.type == "blob" else [b for b in item.traverse() if b.type == "blob"]
            for blob in blobs:
                found[blob.path] = blob.data_stream.read()
        return found

    def has_identity(self) -> bool:
        """True when git knows who commits (user.name/user.email or GIT_* variables)."""
        try:
            self.repo.git(c="user.useConfigOnly=true").var("GIT_COMMITTER_IDENT")
            self.repo.git(c="user.useConfigOnly=true").var("GIT_AUTHOR_IDENT")
        except git.GitCommandError:
            return False
        return True

    def commit_paths(self, paths: list[str], message: str, env: Mapping[str, str] | None = None) -> str:
        """Stage ``paths`` and commit exactly them, with git's own identity unless ``env`` sets one."""
        try:
            self.repo.git.add("--", *paths)
        except git.GitCommandError as exc:
            raise _git_error("commit", exc) from exc
        return self._git_commit(message, dict(env or {}), paths)

    def unstage(self, paths: list[str]) -> None:
        """Take ``paths`` out of the index again (back to HEAD's version there)."""
        try:
            self.repo.git.reset("--quiet", "HEAD", "--", *paths)
        except git.GitCommandError as exc:
            raise _git_error("reset", exc) from exc

    def annotated_tag(self, name: str, rev: str, message: str,
                      env: Mapping[str, str] | None = None) -> None:
        """``git tag --annotate name rev`` with ``message``; never moves an existing tag."""
        try:
            with self._env(dict(env or {})):
                self.repo.git.tag("--annotate", "--cleanup=verbatim", "-F", self._message_file(message),
                                  name, rev)
        except git.GitCommandError as exc:
            raise _git_error(f"tag {name}", exc) from exc


def _index_symlinks(repo: git.Repo) -> list[str]:
    try:
        out = repo.git.ls_files("--stage", "-z")
    except git.GitCommandError as exc:
        raise _git_error("ls-files", exc) from exc
    links = []
    for entry in out.split("\0"):
        info, _, name = entry.partition("\t")
        if info.startswith("120000 "):
            links.append(name)
    return links


def tracked_symlinks(path: Path) -> list[str]:
    """The symbolic links (mode 120000) in the index of the repository at ``path``; [] if it is none."""
    try:
        repo = git.Repo(path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return []
    try:
        return _index_symlinks(repo)
    finally:
        repo.close()


def clone_at_tag(url: str, tag: str, dest: Path) -> str:
    """Clone ``url`` into ``dest`` (no checkout) and return the commit ``tag`` points to."""
    try:
        repo = git.Repo.clone_from(url, dest, no_checkout=True, multi_options=["--quiet"],
                                   env={"GIT_TERMINAL_PROMPT": "0", **os.environ})
    except git.GitCommandError as exc:
        raise _git_error(f"clone {url}", exc) from exc
    except (git.exc.UnsafeProtocolError, git.exc.UnsafeOptionError) as exc:
        raise GitError(f"git clone {url} refused: {exc}") from exc
    try:
        return repo.commit(f"refs/tags/{tag}^{{commit}}").hexsha
    except (git.BadName, ValueError) as exc:
        raise GitError(f"{url} has no tag {tag!r}") from exc


def archive(repo_path: Path, commit: str, prefix: str, out: Path) -> None:
    """``git archive --format=tar`` of ``commit`` into ``out``."""
    repo = git.Repo(repo_path)
    try:
        with open(out, "wb") as handle:
            repo.archive(handle, treeish=commit, prefix=prefix, format="tar")
    except git.GitCommandError as exc:
        raise _git_error("archive", exc) from exc


# -- an upstream repository with history (designate_dist.backports, cherrypick, history) ----
_REF_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./@{}^~+-]*$")
_URL = re.compile(r"^([a-z][a-z0-9+.-]*://|[^/@:\s]+@[^/:\s]+:)", re.I)


def is_url(spec: str) -> bool:
    """True when ``spec`` names a repository by URL (``scheme://`` or scp-like ``user@host:``), not a path."""
    return bool(_URL.match(spec))


def check_ref_name(name: str, what: str) -> str:
    """Refuse a revision name that git could read as an option or that is not a name at all."""
    if not name or not _REF_NAME.match(name) or ".." in name:
        raise GitError(f"{what} {name!r} is not a commit, tag or branch name")
    return name


@dataclass(frozen=True)
class UpstreamCommit:
    """One upstream commit, as the backports report and cherry-pick need it."""

    sha: str
    parents: tuple[str, ...]
    author: Identity
    subject: str
    message: str
    files: tuple[str, ...]  # paths it touches (both names of a rename)

    @property
    def short(self) -> str:
        return self.sha[:8]


class UpstreamRepo:
    """A git repository of upstream (a local copy, or a cached clone of a URL); read only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_dir():
            raise GitError(f"{path} is not a git repository (no such directory)")
        # Commands run inside ``path``: git finds a bare copy there even without its
        # config file, which GitPython's Repo would take for a work tree.
        self.git = git.Git(str(path))
        try:
            top = self.git.rev_parse("--absolute-git-dir")
        except git.GitCommandError:
            raise GitError(f"{path} is not a git repository") from None
        self.git_dir = Path(top)

    @classmethod
    def clone_cached(cls, url: str, cache_dir: Path) -> UpstreamRepo:
        """A bare clone of ``url`` under ``cache_dir`` (made once, then fetched)."""
        if url.startswith("-"):
            raise GitError(f"{url!r} is not a repository URL")
        dest = cache_dir / (hashlib.sha256(url.encode()).hexdigest()[:20] + ".git")
        env = {"GIT_TERMINAL_PROMPT": "0", **os.environ}
        if not dest.is_dir():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".clone-"))
            try:
                git.Repo.clone_from(url, tmp / "repo.git", bare=True, multi_options=["--quiet"], env=env)
                os.replace(tmp / "repo.git", dest)
            except git.GitCommandError as exc:
                raise _git_error(f"clone {url}", exc) from exc
            except (git.exc.UnsafeProtocolError, git.exc.UnsafeOptionError) as exc:
                raise GitError(f"git clone {url} refused: {exc}") from exc
            finally:
                import shutil
                shutil.rmtree(tmp, ignore_errors=True)
        else:
            try:
                git.Git(str(dest)).fetch("--quiet", "--prune", "--tags", "--force", "--end-of-options",
                                         url, "+refs/heads/*:refs/heads/*", env=env)
            except git.GitCommandError as exc:
                raise _git_error(f"fetch {url}", exc) from exc
        return cls(dest)

    def resolve(self, name: str, what: str = "revision") -> str:
        """The commit ``name`` names; :class:`GitError` when there is none."""
        check_ref_name(name, what)
        try:
            return self.git.rev_parse("--verify", "--quiet", "--end-of-options", f"{name}^{{commit}}")
        except git.GitCommandError:
            raise GitError(f"{self.path}: no commit {name!r}") from None

    def tag_commit(self, tag: str) -> str | None:
        check_ref_name(tag, "tag")
        try:
            return self.git.rev_parse("--verify", "--quiet", f"refs/tags/{tag}^{{commit}}")
        except git.GitCommandError:
            return None

    def branches_containing(self, commit: str, pattern: str) -> list[str]:
        """Short names of local and remote-tracking branches matching ``pattern`` that hold ``commit``."""
        out = self.git.for_each_ref("--contains", commit, "--format=%(refname)",
                                         f"refs/heads/{pattern}", f"refs/remotes/*/{pattern}")
        names: list[str] = []
        for ref in out.split():
            short = ref.removeprefix("refs/heads/")
            if ref.startswith("refs/remotes/"):
                short = ref.split("/", 3)[3]
            if short not in names:
                names.append(short)
        return names

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        try:
            self.git.merge_base("--is-ancestor", ancestor, descendant)
        except git.GitCommandError:
            return False
        return True

    def merge_base(self, first: str, second: str) -> str | None:
        try:
            return self.git.merge_base(first, second)
        except git.GitCommandError:
            return None

    def rev_list(self, tips: list[str], exclude: list[str], *, merges: bool = False) -> list[str]:
        """Commits reachable from ``tips`` and not from ``exclude``, newest first (no merges)."""
        args = ["--no-merges"] if not merges else ["--merges"]
        try:
            out = self.git.rev_list(*args, *tips, *(f"^{sha}" for sha in exclude), "--")
        except git.GitCommandError as exc:
            raise _git_error("rev-list", exc) from exc
        return out.split()

    def commits(self, shas: list[str]) -> dict[str, UpstreamCommit]:
        """Author, message and touched files of every commit in ``shas``, in one ``git log``."""
        if not shas:
            return {}
        sep, end = "\x1f", "\x1e"
        try:
            out = self.git.log("--no-walk=unsorted", "--name-only", "--no-renames",
                                    f"--format={end}%H{sep}%P{sep}%an{sep}%ae{sep}%at{sep}%B{sep}",
                                    *shas, "--", strip_newline_in_stdout=False)
        except git.GitCommandError as exc:
            raise _git_error("log", exc) from exc
        found: dict[str, UpstreamCommit] = {}
        for record in out.split(end)[1:]:
            sha, parents, name, email, when, message, rest = record.split(sep, 6)
            files = tuple(line for line in rest.strip().splitlines() if line)
            message = message.rstrip("\n") + "\n"
            found[sha] = UpstreamCommit(sha, tuple(parents.split()), Identity(name, email, int(when)),
                                        message.split("\n", 1)[0], message, files)
        return found

    def diffs(self, shas: list[str]) -> dict[str, str]:
        """The diff of every non-merge commit in ``shas`` against its parent, in one ``git log``."""
        if not shas:
            return {}
        try:
            log = self.git.log("--no-walk=unsorted", "-p", "--full-index", "--format=commit %H",
                               *shas, "--", strip_newline_in_stdout=False)
        except git.GitCommandError as exc:
            raise _git_error("log -p", exc) from exc
        found: dict[str, str] = {}
        for chunk in ("\n" + log).split("\ncommit ")[1:]:
            sha, _, diff = chunk.partition("\n")
            diff = diff.strip("\n")  # git log separates the patches with at most a blank line
            found[sha.strip()] = diff + "\n" if diff else ""
        return found

    def patch_ids(self, shas: list[str]) -> dict[str, str]:
        """``git patch-id --stable`` of every commit in ``shas`` (commits with no diff left out)."""
        return self.patch_ids_of_diffs(self.diffs(shas))

    def patch_ids_of_diffs(self, diffs: dict[str, str]) -> dict[str, str]:
        """``git patch-id --stable`` of each diff, keyed as ``diffs`` (40-hex keys)."""
        stream = "".join(f"commit {key}\n\n{diff if diff.endswith(chr(10)) else diff + chr(10)}"
                         for key, diff in diffs.items())
        return patch_ids_of(self.git, stream) if stream else {}

    def commit_diff(self, sha: str) -> str:
        """The diff of a non-merge commit against its parent (full blob ids)."""
        try:
            return self.git.diff_tree("-p", "--full-index", "--root", "--no-commit-id", sha,
                                           strip_newline_in_stdout=False)
        except git.GitCommandError as exc:
            raise _git_error(f"diff-tree {sha[:12]}", exc) from exc

    def format_patch(self, sha: str) -> str:
        """``git format-patch`` of one commit: its own author, date and message, full blob ids."""
        try:
            return self.git.format_patch("-1", "--stdout", "--no-signature", "--full-index",
                                              "--end-of-options", sha, strip_newline_in_stdout=False)
        except git.GitCommandError as exc:
            raise _git_error(f"format-patch {sha[:12]}", exc) from exc


def patch_ids_of(cmd: git.Git, text: str) -> dict[str, str]:
    """``git patch-id --stable`` of a stream of patches, each introduced by ``commit <id>``.

    Returns ``{id from the stream: patch-id}``.
    """
    try:
        with subprocess_pipe(text) as handle:
            out = cmd.patch_id("--stable", istream=handle)
    except git.GitCommandError as exc:
        raise _git_error("patch-id", exc) from exc
    ids: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2:
            ids[parts[1]] = parts[0]
    return ids


def subprocess_pipe(text: str):
    """A file object holding ``text`` for a GitPython ``istream``."""
    handle = tempfile.TemporaryFile()
    handle.write(text.encode("utf-8", "surrogateescape"))
    handle.seek(0)
    return handle


class TreeIndex:
    """A scratch index holding one tree of a repository: ``git apply --cached`` checks, no work tree.

    Checking an upstream commit against our patched tree this way costs one
    ``git apply`` process and writes nothing to the repository.
    """

    def __init__(self, repo_path: Path, tree: str, scratch: Path) -> None:
        self.repo = git.Repo(repo_path)
        self.index = scratch / f"index-{tree[:12]}"
        self.env = {"GIT_INDEX_FILE": str(self.index)}
        try:
            self.repo.git.read_tree(tree, env={**os.environ, **self.env})
            listed = self.repo.git.ls_files(env={**os.environ, **self.env})
        except git.GitCommandError as exc:
            raise _git_error(f"read-tree {tree[:12]}", exc) from exc
        self.paths = frozenset(listed.splitlines())

    def check(self, diff: str, *, reverse: bool = False) -> str | None:
        """None when ``diff`` applies to the tree (reverse-applies with ``reverse``), else git's stderr."""
        args = ["--cached", "--check", "--whitespace=nowarn"] + (["--reverse"] if reverse else [])
        try:
            with subprocess_pipe(diff) as handle:
                self.repo.git.apply(*args, "-", istream=handle, env={**os.environ, **self.env})
        except git.GitCommandError as exc:
            return (exc.stderr or "").replace("\n  stderr: '", "\n").strip().strip("'") or str(exc)
        return None
