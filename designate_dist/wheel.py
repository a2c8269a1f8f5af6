"""Stage: build a wheel of a pbr project (the patched Designate, or our own package).

pbr is given the version through PBR_VERSION, so it needs no upstream git
history, and SKIP_GENERATE_AUTHORS / SKIP_WRITE_GIT_CHANGELOG stop it from
rewriting upstream's AUTHORS and ChangeLog from our short history.  pbr does
list the files with ``git ls-files`` of the work tree: that is how package data
outside Python packages (Designate's alembic migrations, its templates and
JSON schemas) gets into the wheel, as in upstream's own.

The same commit gives the same wheel bytes from any checkout: the build runs
with TZ=UTC and SOURCE_DATE_EPOCH (fixed zip times), and :func:`normalize_wheel`
then rewrites the zip's metadata, which setuptools takes from the build
machine: each entry's mode comes from the file it copied, created under the
builder's umask (umask 002 gave 0664 entries where 022 gave 0644).  Entries
get 0644 (0755 when any execute bit was set), the time of SOURCE_DATE_EPOCH
and a fixed order; their bytes, hence RECORD, are untouched.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from designate_dist import scratch
from designate_dist.errors import CommandFailed
from designate_dist.gitrepo import tracked_symlinks
from designate_dist.links import check_tree
from designate_dist.runner import run

# What setuptools leaves behind in a source tree; stale copies leak into wheels.
_LEFTOVERS = ("build/lib", "build/lib.*", "build/bdist.*", "build/scripts-*", "*.egg-info", ".eggs")


@dataclass(frozen=True)
class WheelRequest:
    source_dir: Path
    version: str            # PEP 440, given to pbr
    source_date_epoch: int
    output_dir: Path


def clean_leftovers(source_dir: Path) -> None:
    for pattern in _LEFTOVERS:
        for path in source_dir.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def build_env(version: str, source_date_epoch: int) -> dict[str, str]:
    return {"PBR_VERSION": version, "SKIP_GENERATE_AUTHORS": "1",
            "SKIP_WRITE_GIT_CHANGELOG": "1",
            "SOURCE_DATE_EPOCH": str(source_date_epoch), "PYTHONHASHSEED": "0",
            "LC_ALL": "C.UTF-8", "TZ": "UTC"}


def _entry_order(info: zipfile.ZipInfo) -> tuple[bool, bool, str]:
    """Package files first, then .dist-info/, RECORD last (as wheel writes them)."""
    top = info.filename.split("/", 1)[0]
    in_dist_info = top.endswith(".dist-info")
    return (in_dist_info, in_dist_info and info.filename.endswith("/RECORD"), info.filename)


def normalize_wheel(path: Path, source_date_epoch: int) -> None:
    """Rewrite ``path`` with machine-independent zip metadata (see the module doc), atomically."""
    stamp = time.gmtime(max(source_date_epoch, 315532800))[:6]  # zip times start in 1980
    fd, tmp = scratch.make_file(path.parent, f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(path) as source, \
                zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as out:
            for info in sorted(source.infolist(), key=_entry_order):
                entry = zipfile.ZipInfo(info.filename, stamp)
                entry.create_system = 3  # Unix: external_attr holds the mode
                mode = (info.external_attr >> 16) & 0o7777
                if info.is_dir():
                    entry.external_attr = (0o40755 << 16) | 0x10
                    out.writestr(entry, b"")
                    continue
                entry.external_attr = (0o100755 if mode & 0o111 else 0o100644) << 16
                entry.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(entry, source.read(info))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_wheel(request: WheelRequest) -> Path:
    """Build the wheel into ``output_dir`` and return its path."""
    # setuptools copies what a link points to: one leading out of the tree would ship a host file.
    check_tree(request.source_dir, f"the wheel of {request.source_dir.name}",
               tracked=tracked_symlinks(request.source_dir))
    clean_leftovers(request.source_dir)
    request.output_dir.mkdir(parents=True, exist_ok=True)
    scratch.sweep(request.output_dir, ".wheel-")
    with scratch.directory(request.output_dir, ".wheel-") as tmp:
        try:
            run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", tmp,
                 str(request.source_dir)], cwd=request.source_dir,
                extra_env=build_env(request.version, request.source_date_epoch),
                what=f"build the wheel of {request.source_dir.name}")
        finally:
            clean_leftovers(request.source_dir)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise CommandFailed(f"building {request.source_dir.name} gave {len(wheels)} wheels, not 1")
        normalize_wheel(wheels[0], request.source_date_epoch)
        final = request.output_dir / wheels[0].name
        wheels[0].replace(final)
    return final
