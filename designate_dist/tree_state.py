"""The state file of a work tree (``.git/designate-dist.json``): one typed object, one reader and writer.

It records what the tree holds, so that the next ``prepare`` can reuse it: the
upstream release imported (written by the import), the series applied on it as
one commit per patch, and the patch that failed (written by ``apply``).  When
the patch files change from the tree's commits (``rebase``, ``patches export``
and ``add``, ``cherry-pick``), the series is forgotten (:meth:`TreeState.series_rewritten`)
and the next ``prepare`` applies the series again from the files.

Whether a tree already holds a series is decided here only (:meth:`TreeState.holds`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from designate_dist.atomic import write_json

STATE_FILE = "designate-dist.json"


@dataclass(frozen=True)
class UpstreamImport:
    """The upstream release a work tree was imported from."""

    name: str
    version: str
    sha256: str        # of the archive
    commit: str        # the import commit
    import_time: int   # newest mtime in the archive

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256, "commit": self.commit,
                "import_time": self.import_time}


@dataclass(frozen=True)
class TreeState:
    """What a work tree holds; see the module docstring."""

    upstream: UpstreamImport | None = None
    series: str | None = None          # fingerprint of the series applied; None: apply from the files
    commits: tuple[str, ...] = ()      # one per patch applied, in order
    head: str | None = None            # HEAD after the last apply (or after the files were rewritten)
    failed: str | None = None          # series/file of the patch that did not apply

    def holds(self, fingerprint: str, count: int, head: str) -> bool:
        """True when the tree, at ``head``, holds the whole series ``fingerprint`` of ``count`` patches."""
        return (self.series == fingerprint and self.head is not None and self.head == head
                and not self.failed and len(self.commits) == count)

    @property
    def applied_head(self) -> str | None:
        """The commit the applied series ends at; None when no series is applied (or one failed)."""
        return self.head if self.series and not self.failed else None

    def series_rewritten(self, head: str) -> TreeState:
        """The state once the patch files were written from the tree's commits, now at ``head``."""
        return replace(self, series=None, head=head, failed=None)

    def as_json(self) -> dict[str, Any]:
        return {"upstream": self.upstream.as_json() if self.upstream else None, "series": self.series,
                "commits": list(self.commits), "head": self.head, "failed": self.failed}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TreeState:
        upstream = data.get("upstream")
        return cls(upstream=UpstreamImport(upstream["name"], upstream["version"], upstream["sha256"],
                                           upstream["commit"], int(upstream["import_time"])) if upstream else None,
                   series=data.get("series"), commits=tuple(data.get("commits") or ()),
                   head=data.get("head"), failed=data.get("failed"))


def state_file(git_dir: Path) -> Path:
    return git_dir / STATE_FILE


def read_tree_state(git_dir: Path) -> TreeState:
    """The state of the work tree whose git directory is ``git_dir``; empty when missing or unreadable."""
    try:
        return TreeState.from_json(json.loads(state_file(git_dir).read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return TreeState()


def write_tree_state(git_dir: Path, state: TreeState, *, durable: bool = True) -> None:
    write_json(state_file(git_dir), state.as_json(), durable=durable)
