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
from collections.abc import Iterable
from pathlib import Path

from designate_dist.errors import UnsafeTree

#: What a git diff needs to create, retarget or move a symbolic link (mode 120000).
_LINK_CHANGE = re.compile(r"^(?:(?:new file mode|new mode|index \S+) 120000|(?:rename|copy) from )", re.M)


def may_change_links(diff: str) -> bool:
    """True when ``diff`` can create, retarget, rename or copy a symbolic link."""
    return bool(_LINK_CHANGE.search(diff))


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
        elif any(part.casefold() == ".git" for part in resolved.relative_to(top).parts):
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
