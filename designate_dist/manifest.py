"""Stage: the build manifest, a record of every input and output hash.

``manifest.json`` is written last, atomically, into the build's output
directory.  Its ``inputs_digest`` lets a later build see that nothing changed.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from designate_dist import tool_version
from designate_dist.atomic import write_json
from designate_dist.digest import sha256_of

MANIFEST = "manifest.json"
FORMAT = 1


def artifact_entry(path: Path, root: Path) -> dict[str, Any]:
    return {"file": str(path.relative_to(root)), "size": path.stat().st_size,
            "sha256": sha256_of(path)}


def artifact_problem(directory: Path, artifact: dict[str, Any]) -> str | None:
    """None when ``directory/<file>`` has the size and sha256 the manifest entry records.

    Else what is wrong: ``"missing"``, or ``"has sha256 <16 hex>..., the manifest says
    <16 hex>..."``.
    """
    path = directory / artifact["file"]
    if not path.is_file():
        return "missing"
    actual = sha256_of(path)
    if actual != artifact["sha256"] or path.stat().st_size != artifact["size"]:
        return f"has sha256 {actual[:16]}..., the manifest says {artifact['sha256'][:16]}..."
    return None


def tree_digest(paths: list[Path], root: Path) -> str:
    """A hash of the names and contents of ``paths`` (files, or directories walked in order)."""
    digest = hashlib.sha256()
    for base in paths:
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else (
            [base] if base.is_file() else [])
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(str(file.relative_to(root)).encode() + b"\0")
            digest.update(sha256_of(file).encode() + b"\n")
    return digest.hexdigest()


@dataclass
class Manifest:
    upstream: dict[str, Any]
    distro_version: dict[str, str]
    source_date_epoch: int
    inputs_digest: str
    patches: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    tests: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    #: ``{"migration_head": <alembic revision or None>}``: what a rollback must respect.
    database: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "tool": {"name": "designate-dist", "version": tool_version()},
                "upstream": self.upstream, "distro_version": self.distro_version,
                "source_date_epoch": self.source_date_epoch, "inputs_digest": self.inputs_digest,
                "inputs": self.inputs, "patches": self.patches, "artifacts": self.artifacts,
                "tests": self.tests, "database": self.database}

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST
        write_json(path, self.as_dict())
        return path
