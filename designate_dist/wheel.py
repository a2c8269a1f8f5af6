"""Stage: build a wheel of a pbr project (the patched Designate, or our own package).

pbr is given the version through PBR_VERSION, so it needs no upstream git
history, and SKIP_GENERATE_AUTHORS / SKIP_WRITE_GIT_CHANGELOG stop it from
rewriting upstream's AUTHORS and ChangeLog from our short history.  pbr does
list the files with ``git ls-files`` of the work tree: that is how package data
outside Python packages (Designate's alembic migrations, its templates and
JSON schemas) gets into the wheel, as in upstream's own.  With
SOURCE_DATE_EPOCH set, the wheel's zip timestamps are fixed and its entries
sorted, so the same tree gives the same bytes.
"""
from __future__ import annotations

import shutil
import sys
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
        final = request.output_dir / wheels[0].name
        wheels[0].replace(final)
    return final
