"""Imported upstream trees kept in the cache as git objects, keyed by the archive's sha256.

Importing a release -- unpacking ~1,700 files, ``git add``, commit, tag --
costs seconds, and a fresh clone paid it for every tree it needed (a rebase
needs two).  The import commit and its tag are packed once into::

    <cache>/trees/<archive sha256>/<inputs>/pack-<id>.pack, .idx, import.json

``<inputs>`` is a digest of what else goes into those objects (name, version,
source, maintainer): they are exactly the objects a fresh import writes, so
commit ids do not depend on the cache.  A new work tree links the pack into
its repository and checks it out; a rebase loads the old release's pack with
no checkout at all.  ``import.json`` is written last: a pack without it is an
unfinished store, never used.  The cache is a convenience: anything wrong
with it (unreadable, another file system, no space) means a fresh import.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from designate_dist.distro import Pin
from designate_dist.errors import DistError
from designate_dist.fetch import FetchResult
from designate_dist.gitrepo import WorkTree

LOG = logging.getLogger(__name__)
TREES_DIR = "trees"
META = "import.json"


@dataclass(frozen=True)
class CachedImport:
    """An import commit and its tag, packed in the cache."""

    directory: Path
    pack: str          # file name of the pack (its .idx is beside it)
    commit: str
    tag: str           # the tag's name (upstream/<version>)
    tag_object: str
    import_time: int


def cache_root_of(fetched: FetchResult) -> Path | None:
    """The cache root the archive was fetched into (the directory above ``archives/``)."""
    for parent in fetched.archive.parents:
        if parent.name == "archives":
            return parent.parent
    return None


def _directory(pin: Pin, fetched: FetchResult) -> Path | None:
    root = cache_root_of(fetched)
    if root is None:
        return None
    inputs = json.dumps({"name": pin.name, "version": pin.version, "source": fetched.source,
                         "maintainer": pin.maintainer}, sort_keys=True)
    return root / TREES_DIR / fetched.sha256 / hashlib.sha256(inputs.encode()).hexdigest()[:32]


def lookup(pin: Pin, fetched: FetchResult) -> CachedImport | None:
    """The cached import of this archive for this pin, or None."""
    directory = _directory(pin, fetched)
    if directory is None or not (directory / META).is_file():
        return None
    try:
        meta = json.loads((directory / META).read_text())
        cached = CachedImport(directory, meta["pack"], meta["commit"], meta["tag"], meta["tag_object"],
                              int(meta["import_time"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    pack = directory / cached.pack
    if not pack.is_file() or not pack.with_suffix(".idx").is_file() or pack.stat().st_size != meta.get("size"):
        return None
    return cached


def store(tree: WorkTree, pin: Pin, fetched: FetchResult, tag: str, import_time: int) -> None:
    """Pack the import commit and tag of ``tree`` into the cache (best effort: never fails the import)."""
    directory = _directory(pin, fetched)
    if directory is None or (directory / META).is_file():
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory, prefix=".store-") as tmp:
            pack_id = tree.pack_objects(f"refs/tags/{tag}", Path(tmp) / "pack")
            for suffix in (".idx", ".pack"):  # the .pack last: lookup needs both, and the meta
                os.replace(Path(tmp) / f"pack-{pack_id}{suffix}", directory / f"pack-{pack_id}{suffix}")
        meta = {"pack": f"pack-{pack_id}.pack", "commit": tree.resolve(f"refs/tags/{tag}^{{commit}}"),
                "tag": tag, "tag_object": tree.ref_target(f"refs/tags/{tag}"), "import_time": import_time,
                "size": (directory / f"pack-{pack_id}.pack").stat().st_size}
        fd, tmp_meta = tempfile.mkstemp(dir=directory, prefix=".meta-")
        with os.fdopen(fd, "w") as handle:
            json.dump(meta, handle)
        os.replace(tmp_meta, directory / META)
    except (OSError, DistError) as exc:
        LOG.debug("tree cache: not stored (%s)", exc)


def load(tree: WorkTree, cached: CachedImport, ref: str | None = None) -> None:
    """Make the cached objects part of ``tree``'s repository; ``ref`` (default: the tag) points at the tag."""
    pack_dir = tree.git_dir / "objects" / "pack"
    pack_dir.mkdir(parents=True, exist_ok=True)
    for suffix in (".idx", ".pack"):
        source = cached.directory / Path(cached.pack).with_suffix(suffix).name
        target = pack_dir / source.name
        if target.exists():
            continue
        try:
            os.link(source, target)  # packs never change: a hard link is a copy
        except OSError:
            shutil.copyfile(source, target)
    tree.set_ref(ref or f"refs/tags/{cached.tag}", cached.tag_object)
