"""Apply a patch to a git tree in this process, as ``git apply --index`` would, with no work tree.

The apply stage used to run ``git apply --index`` and ``git write-tree`` for
every patch: two processes, and the index and files rewritten each time.
Here a patch is read, its files' blobs are read from the object store, the
hunks are applied by the rules of git's own ``apply.c``, and the new blobs and
trees are written as objects: the tree is the one ``git apply --index`` and
``git write-tree`` give (tests check it against git on every series we have).

The rules kept from ``apply.c`` (without ``--unidiff-zero``, fuzz or
whitespace fixing, as ``--whitespace=nowarn`` runs it): each hunk's preimage
(context and removed lines) must match byte for byte; the search starts at
the hunk's new line number and alternates one line down, one line up; a hunk
starting at line 0 or 1 must match at the beginning, one without trailing
context at the end; lines an earlier hunk of the same file produced are never
matched again.  A new file must not exist, a deleted one must end up empty.

What this module does not handle is :class:`Unsupported` (binary patches,
copies, quoted or traditional non-git file names, submodules): the caller
lets git apply that patch.  A hunk that does not apply is :class:`HunkFailed`:
the caller asks git, which names the file and hunk in its own words.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_MODE = re.compile(rb"^[0-7]{6}$")
TREE_MODE = b"40000"
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


class Unsupported(Exception):
    """A patch whose shape is left to ``git apply``."""


class HunkFailed(Exception):
    """A hunk (or a file operation) of the patch does not apply to the tree."""

    def __init__(self, path: str, hunk: int | None, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.hunk = hunk
        self.reason = reason


@dataclass
class Hunk:
    old_start: int
    new_start: int
    pre: list[bytes] = field(default_factory=list)   # context and removed lines, with their newlines
    post: list[bytes] = field(default_factory=list)  # context and added lines
    leading: int = 0                                  # context lines before the first change
    trailing: int = 0                                 # context lines after the last change


@dataclass
class FilePatch:
    old_path: str | None
    new_path: str | None
    new_mode: bytes | None = None   # set for new files and mode changes
    is_new: bool = False
    is_delete: bool = False
    is_rename: bool = False
    hunks: list[Hunk] = field(default_factory=list)


def _lines(data: bytes) -> list[bytes]:
    """``data`` split after every newline (and only there: a CR is part of its line)."""
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _name(raw: bytes, strip: bool = True) -> str | None:
    """A file name of a ``---``/``+++``/``rename`` line (``a/`` or ``b/`` stripped), None for /dev/null."""
    text = raw.rstrip(b"\n")
    if b"\t" in text:
        text = text.split(b"\t", 1)[0]
    if text.startswith(b'"'):
        raise Unsupported("quoted file name")
    if text == b"/dev/null":
        return None
    if strip:
        if b"/" not in text:
            raise Unsupported("a file name without a directory to strip")
        text = text.split(b"/", 1)[1]
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        raise Unsupported("a file name that is not UTF-8") from None


def _git_header_name(line: bytes) -> str | None:
    """The name of ``diff --git a/NAME b/NAME`` when both sides are the same (else None)."""
    rest = line[len(b"diff --git "):].rstrip(b"\n")
    if rest.startswith(b'"'):
        raise Unsupported("quoted file name")
    if not rest.startswith(b"a/") or (len(rest) - 5) % 2:
        return None
    half = (len(rest) - 5) // 2
    name = rest[2:2 + half]
    if rest != b"a/" + name + b" b/" + name:
        return None
    return name.decode("utf-8", errors="strict") if name else None


def _mode(raw: bytes) -> bytes:
    mode = raw.strip()
    if not _MODE.match(mode):
        raise Unsupported(f"mode {mode!r}")
    value = int(mode, 8)
    kind = value & 0o170000
    if kind == 0o120000:
        return b"120000"
    if kind != 0o100000:
        raise Unsupported(f"mode {mode.decode()}")  # submodules and others: git's business
    return b"100755" if value & 0o100 else b"100644"


def parse_patch(data: bytes) -> list[FilePatch]:
    """The file sections of a ``git diff``/``git format-patch`` patch.

    Text before the first ``diff --git`` (a mail header, the message, a
    diffstat) and after a section's hunks (a signature) is skipped, as git does.
    """
    lines = _lines(data)
    files: list[FilePatch] = []
    index = 0
    seen_plain_diff = False
    while index < len(lines):
        line = lines[index]
        if not line.startswith(b"diff --git "):
            if line.startswith(b"--- ") and index + 1 < len(lines) and lines[index + 1].startswith(b"+++ "):
                seen_plain_diff = True
            index += 1
            continue
        header_name = _git_header_name(line)
        patch = FilePatch(header_name, header_name)
        index += 1
        while index < len(lines):
            line = lines[index]
            if line.startswith((b"diff --git ", b"@@ ", b"--- ")):
                break
            if line.startswith(b"old mode "):
                pass
            elif line.startswith(b"new mode "):
                patch.new_mode = _mode(line[9:])
            elif line.startswith(b"deleted file mode "):
                patch.is_delete = True
            elif line.startswith(b"new file mode "):
                patch.is_new = True
                patch.new_mode = _mode(line[14:])
            elif line.startswith(b"rename from "):
                patch.is_rename = True
                patch.old_path = _name(line[12:], strip=False)
            elif line.startswith(b"rename to "):
                patch.is_rename = True
                patch.new_path = _name(line[10:], strip=False)
            elif line.startswith((b"similarity index ", b"dissimilarity index ", b"index ")):
                pass
            elif line.startswith((b"copy from ", b"copy to ", b"GIT binary patch", b"Binary files ")):
                raise Unsupported("binary patches and copies")
            else:
                break  # the end of the header: git stops here too
            index += 1
        if index < len(lines) and lines[index].startswith(b"--- "):
            if index + 1 >= len(lines) or not lines[index + 1].startswith(b"+++ "):
                raise Unsupported("a --- line without its +++ line")
            old, new = _name(lines[index][4:]), _name(lines[index + 1][4:])
            if old is None and not patch.is_new or new is None and not patch.is_delete:
                raise Unsupported("/dev/null without a new or deleted file header")
            if not patch.is_rename:
                patch.old_path = old if old is not None else new
                patch.new_path = new if new is not None else old
            index += 2
        if patch.old_path is None or patch.new_path is None:
            raise Unsupported("a file section whose name cannot be told")
        while index < len(lines) and lines[index].startswith(b"@@ "):
            index = _parse_hunk(lines, index, patch)
        if patch.is_new and patch.is_delete:
            raise Unsupported("a file both new and deleted")
        files.append(patch)
        while index < len(lines) and not lines[index].startswith(b"diff --git "):
            index += 1  # a signature, or whatever follows the last hunk
    if not files and seen_plain_diff:
        raise Unsupported("a traditional (non-git) diff")
    for patch in files:
        for path in {patch.old_path, patch.new_path}:
            parts = (path or "").split("/")
            if any(part in ("", ".", "..") or part.lower() == ".git" for part in parts):
                raise Unsupported(f"the path {path!r}")  # git refuses it in its own words
    paths = [p for f in files for p in {f.old_path, f.new_path}]
    if len(paths) != len(set(paths)):
        raise Unsupported("a file named by two sections")
    return files


def _parse_hunk(lines: list[bytes], index: int, patch: FilePatch) -> int:
    match = _HUNK.match(lines[index])
    if match is None:
        raise Unsupported("a malformed hunk header")
    old_left = int(match.group(2)) if match.group(2) is not None else 1
    new_left = int(match.group(4)) if match.group(4) is not None else 1
    hunk = Hunk(int(match.group(1)), int(match.group(3)))
    if old_left == 0 and new_left == 0:
        raise Unsupported("an empty hunk")
    index += 1
    changed = False
    while index < len(lines) and (old_left > 0 or new_left > 0):
        line = lines[index]
        no_newline = index + 1 < len(lines) and lines[index + 1].startswith(b"\\")
        tag = line[:1]
        text = b"\n" if line == b"\n" else line[1:]
        if no_newline:
            text = text[:-1] if text.endswith(b"\n") else text
        if tag in (b" ", b"\n"):
            old_left -= 1
            new_left -= 1
            hunk.pre.append(text)
            hunk.post.append(text)
            if not changed:
                hunk.leading += 1
            hunk.trailing += 1
        elif tag == b"-":
            old_left -= 1
            hunk.pre.append(text)
            changed = True
            hunk.trailing = 0
        elif tag == b"+":
            new_left -= 1
            hunk.post.append(text)
            changed = True
            hunk.trailing = 0
        elif tag == b"\\":
            pass
        else:
            raise Unsupported("a hunk line with no +, - or space")
        index += 1
        if old_left < 0 or new_left < 0:
            raise Unsupported("a hunk longer than its header says")
    if old_left > 0 or new_left > 0:
        raise Unsupported("a hunk shorter than its header says")
    if index < len(lines) and lines[index].startswith(b"\\"):
        index += 1
    patch.hunks.append(hunk)
    return index


def apply_hunks(content: bytes, hunks: list[Hunk], path: str, offsets: list[int] | None = None) -> bytes:
    """``content`` with ``hunks`` applied in order, by ``git apply``'s rules.

    ``offsets`` (when given) gets how far each hunk landed from its own line, as git reports it.
    """
    image = _lines(content)
    patched = [False] * len(image)
    for number, hunk in enumerate(hunks, start=1):
        match_beginning = hunk.old_start <= 1
        match_end = hunk.trailing == 0
        start = hunk.new_start - 1 if hunk.new_start else 0
        found = _find_pos(image, patched, hunk.pre, start, match_beginning, match_end)
        if found < 0:
            raise HunkFailed(path, number, "the context or lines to change are not in the tree")
        image[found:found + len(hunk.pre)] = hunk.post
        patched[found:found + len(hunk.pre)] = [True] * len(hunk.post)
        if offsets is not None:
            offsets.append(found - start)
    return b"".join(image)


def _find_pos(image: list[bytes], patched: list[bool], pre: list[bytes], line: int,
              match_beginning: bool, match_end: bool) -> int:
    size = len(image)
    if match_beginning:
        line = 0
    elif match_end:
        line = size - len(pre)
    if line < 0 or line > size:  # git compares unsigned: a negative start is past the end
        line = size
    backwards = forwards = tried = line
    step = 0
    while True:
        if _matches(image, patched, pre, tried, match_beginning, match_end):
            return tried
        while True:
            if backwards == 0 and forwards == size:
                return -1
            if step & 1:
                if backwards == 0:
                    step += 1
                    continue
                backwards -= 1
                tried = backwards
            else:
                if forwards == size:
                    step += 1
                    continue
                forwards += 1
                tried = forwards
            break
        step += 1


def _matches(image: list[bytes], patched: list[bool], pre: list[bytes], at: int,
             match_beginning: bool, match_end: bool) -> bool:
    if len(pre) + at > len(image):
        return False
    if match_end and len(pre) + at != len(image):
        return False
    if match_beginning and at:
        return False
    for offset, want in enumerate(pre):
        if patched[at + offset] or image[at + offset] != want:
            return False
    return True


# -- trees ------------------------------------------------------------------------------------
def parse_tree(raw: bytes) -> dict[bytes, tuple[bytes, bytes]]:
    """A git tree object's entries: ``{name: (mode, 20-byte id)}``."""
    entries: dict[bytes, tuple[bytes, bytes]] = {}
    index = 0
    while index < len(raw):
        space = raw.index(b" ", index)
        nul = raw.index(b"\0", space)
        entries[raw[space + 1:nul]] = (raw[index:space], raw[nul + 1:nul + 21])
        index = nul + 21
    return entries


def format_tree(entries: dict[bytes, tuple[bytes, bytes]]) -> bytes:
    """A git tree object from its entries, in git's order (a tree sorts as ``name/``)."""
    def key(name: bytes) -> bytes:
        return name + b"/" if entries[name][0] == TREE_MODE else name
    return b"".join(entries[name][0] + b" " + name + b"\0" + entries[name][1] for name in sorted(entries, key=key))


Read = Callable[[str], bytes]          # object id -> the object's body
Write = Callable[[str, bytes], str]    # (kind, body) -> object id


class TreePatcher:
    """Apply patches to trees, reading and writing objects through ``read`` and ``write``.

    Trees and blobs read or written are kept (by id, so never stale) for the
    next patch of the series.
    """

    def __init__(self, read: Read, write: Write) -> None:
        self._read = read
        self._write = write
        self._trees: dict[str, dict[bytes, tuple[bytes, bytes]]] = {}
        self._blobs: dict[str, bytes] = {}

    def _tree(self, sha: str) -> dict[bytes, tuple[bytes, bytes]]:
        if sha not in self._trees:
            self._trees[sha] = parse_tree(self._read(sha))
        return self._trees[sha]

    def _blob(self, sha: str) -> bytes:
        if sha not in self._blobs:
            self._blobs[sha] = self._read(sha)
        return self._blobs[sha]

    def text(self, root: str, path: str) -> str | None:
        """The text of ``path`` in the tree ``root`` (None when it is not a file there)."""
        found = self.lookup(root, path)
        if found is None or found[0] == TREE_MODE:
            return None
        return self._blob(found[1]).decode("utf-8", errors="surrogateescape")

    def lookup(self, root: str, path: str) -> tuple[bytes, str] | None:
        """``(mode, id)`` of ``path`` in the tree ``root``, or None."""
        sha = root
        parts = path.encode("utf-8").split(b"/")
        for depth, part in enumerate(parts):
            entry = self._tree(sha).get(part)
            if entry is None:
                return None
            if depth < len(parts) - 1 and entry[0] != TREE_MODE:
                return None
            sha = entry[1].hex()
            if depth == len(parts) - 1:
                return entry[0], sha
        return None

    def apply(self, root: str, data: bytes, offsets: list[int] | None = None, *,
              reverse: bool = False) -> str:
        """The tree ``root`` with the patch ``data`` applied (all of it, or :class:`HunkFailed`).

        ``offsets`` (when given) gets each hunk's offset from its own line;
        ``reverse`` applies it backwards (``git apply -R``; file operations are left to git).
        """
        files = parse_patch(data)
        if reverse:
            for patch in files:
                if patch.is_new or patch.is_delete or patch.is_rename or patch.new_mode:
                    raise Unsupported("a file operation backwards")
                for hunk in patch.hunks:
                    hunk.pre, hunk.post = hunk.post, hunk.pre
                    hunk.old_start, hunk.new_start = hunk.new_start, hunk.old_start
        if not files:
            raise Unsupported("no file in the patch")
        changes: dict[str, tuple[bytes, str] | None] = {}
        for patch in files:
            assert patch.old_path is not None and patch.new_path is not None
            if patch.is_new:
                if self.lookup(root, patch.new_path) is not None:
                    raise HunkFailed(patch.new_path, None, "already exists in index")
                content, mode = b"", patch.new_mode or b"100644"
            else:
                current = self.lookup(root, patch.old_path)
                if current is None:
                    raise HunkFailed(patch.old_path, None, "does not exist in index")
                if current[0] in (TREE_MODE, b"160000"):
                    raise Unsupported("a directory or submodule named as a file")
                content, mode = self._blob(current[1]), patch.new_mode or current[0]
            result = apply_hunks(content, patch.hunks, patch.new_path, offsets) if patch.hunks else content
            if patch.is_delete:
                if result:
                    raise HunkFailed(patch.old_path, None, "removal patch leaves file contents")
                changes[patch.old_path] = None
                continue
            if patch.is_rename:
                if self.lookup(root, patch.new_path) is not None:
                    raise HunkFailed(patch.new_path, None, "already exists in index")
                changes[patch.old_path] = None
            blob = self._write("blob", result)
            self._blobs[blob] = result
            changes[patch.new_path] = (mode, blob)
        return self.edit(root, changes)

    def edit(self, root: str, changes: dict[str, tuple[bytes, str] | None]) -> str:
        """The tree ``root`` with files set (``(mode, blob id)``) or removed (None)."""
        nested: dict = {}
        for path, change in changes.items():
            parts = path.encode("utf-8").split(b"/")
            node = nested
            for part in parts[:-1]:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise Unsupported("a file and a directory of the same name")
            if isinstance(node.get(parts[-1]), dict):
                raise Unsupported("a file and a directory of the same name")
            node[parts[-1]] = change
        return self._edit(root, nested) or self._empty()

    def _empty(self) -> str:
        sha = self._write("tree", b"")
        self._trees[sha] = {}
        return sha

    def _edit(self, sha: str | None, edits: dict) -> str | None:
        entries = dict(self._tree(sha)) if sha else {}
        for name, edit in edits.items():
            if isinstance(edit, dict):
                current = entries.get(name)
                if current is not None and current[0] != TREE_MODE:
                    raise Unsupported("a file replaced by a directory")
                sub = self._edit(current[1].hex() if current else None, edit)
                if sub is None:
                    entries.pop(name, None)
                else:
                    entries[name] = (TREE_MODE, bytes.fromhex(sub))
            elif edit is None:
                entries.pop(name, None)
            else:
                current = entries.get(name)
                if current is not None and current[0] == TREE_MODE:
                    raise Unsupported("a directory replaced by a file")
                entries[name] = (edit[0], bytes.fromhex(edit[1]))
        if not entries:
            return None
        new = self._write("tree", format_tree(entries))
        self._trees[new] = entries
        return new
