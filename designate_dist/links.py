"""Symbolic links that lead out of a tree: never followed into an artifact.

A link in the patched tree whose target, resolved, is outside the tree would
make the wheel or the deb carry a file of the build host (``designate/leak.txt
-> /etc/hostname``).  The archive import refuses such links
(:mod:`designate_dist.upstream_import`), the apply stage refuses a patch that
makes one, and the wheel and deb stages check once more what they package.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath

from designate_dist.errors import UnsafeTree
from designate_dist.tree_apply import TREE_MODE, parse_tree

#: What a git diff needs to create, retarget or move a symbolic link (mode 120000).
_LINK_CHANGE = re.compile(r"^(?:(?:new file mode|new mode|index \S+) 120000|(?:rename|copy) from )", re.M)


#: As the kernel's MAXSYMLINKS: more links on one path is a loop.
LINK_HOPS = 40


def may_change_links(diff: str) -> bool:
    """True when ``diff`` can create, retarget, rename or copy a symbolic link."""
    return bool(_LINK_CHANGE.search(diff))


def resolve(links: Mapping[tuple[str, ...], str], start: tuple[str, ...], target: str,
            floor: int = 0) -> tuple[str, ...] | None:
    """Where the link text ``target``, in the directory ``start``, leads in a tree known as ``links``.

    ``links`` maps each link's path (a tuple of names) to its text; every other
    name is taken for a directory or file.  The tree's root is the first
    ``floor`` names of a path (0: the empty path).  Each link on the way is
    followed, as the kernel would; None when the path climbs above the root, is
    absolute, or loops.
    """
    resolved: list[str] = list(start)
    pending = list(PurePosixPath(target).parts)
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part.startswith("/"):
            return None
        if part == "..":
            if len(resolved) <= floor:
                return None  # above the root of the tree
            resolved.pop()
            continue
        resolved.append(part)
        link = links.get(tuple(resolved))
        if link is not None:
            hops += 1
            if hops > LINK_HOPS:
                return None
            resolved.pop()
            pending = list(PurePosixPath(link).parts) + pending
    return tuple(resolved)


def _in_git_dir(parts: Iterable[str]) -> bool:
    return any(part.casefold() == ".git" for part in parts)


def leaving_in_tree(read: Callable[[str], bytes], root: str) -> list[tuple[str, str]]:
    """``(path, target)`` of each symbolic link of the git tree ``root`` that leads outside it (or into .git).

    The tree is read as objects (``read``: object id -> body), no work tree needed.
    """
    links: dict[tuple[str, ...], str] = {}
    pending: list[tuple[tuple[str, ...], str]] = [((), root)]
    while pending:
        prefix, sha = pending.pop()
        for name, (mode, oid) in parse_tree(read(sha)).items():
            path = (*prefix, name.decode("utf-8", "surrogateescape"))
            if mode == TREE_MODE:
                pending.append((path, oid.hex()))
            elif mode == b"120000":
                links[path] = read(oid.hex()).decode("utf-8", "surrogateescape")
    found = []
    for path, target in sorted(links.items()):
        resolved = resolve(links, path[:-1], target)
        if resolved is None or _in_git_dir(resolved):
            found.append(("/".join(path), target))
    return found


def leaving(root: Path, paths: Iterable[str]) -> list[tuple[str, str]]:
    """``(path, target)`` of each symbolic link among ``paths`` (relative to ``root``) that leads outside it.

    Resolved as the kernel would, through every other link on the way; only
    link texts are read, nothing is opened.  A ``.git`` directory counts as
    outside: its config can hold a remote's credentials.
    """
    top = Path(os.path.realpath(root))
    found = []
    for rel in paths:
        path = root / rel
        if not path.is_symlink():
            continue
        resolved = Path(os.path.realpath(path))
        if resolved != top and top not in resolved.parents:
            found.append((rel, os.readlink(path)))
        elif _in_git_dir(resolved.relative_to(top).parts):
            found.append((rel, os.readlink(path)))
    return found


def links_under(root: Path) -> list[str]:
    """Every symbolic link below ``root`` that a build could package, relative to ``root``.

    Not below ``.git``, a virtualenv, or the hidden entries and ``build``/``dist``
    output directories at the top (a developer's ``.venv`` or ``dist`` may well
    be a link elsewhere; none of them is packaged).
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel = here.relative_to(root)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in ("build", "dist")]
            filenames = [f for f in filenames if not f.startswith(".")]
        kept = []
        for name in dirnames:
            if (here / name).is_symlink():
                found.append(str(rel / name))
            elif name != ".git" and not (here / name / "pyvenv.cfg").exists():
                kept.append(name)
        dirnames[:] = kept
        found.extend(str(rel / name) for name in filenames if (here / name).is_symlink())
    return sorted(found)


def check_tree(root: Path, what: str, *, tracked: Iterable[str] = ()) -> None:
    """Refuse (:class:`UnsafeTree`) when a link under ``root`` (or among ``tracked``) leads outside it."""
    escaping = leaving(root, sorted(set(links_under(root)) | set(tracked)))
    if escaping:
        path, target = escaping[0]
        more = f" and {len(escaping) - 1} more" if len(escaping) > 1 else ""
        raise UnsafeTree(f"{what}: {root / path} is a symbolic link to {target!r}, outside {root}{more}; "
                         "it would put a file of this machine into the package",
                         hint="remove the link, or make it a regular file")
