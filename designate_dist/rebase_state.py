"""The saved state of a stopped rebase: one typed object, its one reader and writer, and ``--status``.

A rebase that stops at a conflict saves where it stands in
``<work-dir>/rebase/state.json``, so that ``--continue`` and ``--abort`` work
from a new shell.  The state keeps a copy (base64) of every file the rebase may
rewrite -- the pin, the series files and the patch files -- so that ``--abort``
puts back exactly what was there.
"""
from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from designate_dist.atomic import write_bytes, write_json
from designate_dist.distro import PIN_FILE, SERIES_DIRS, Distro, Pin
from designate_dist.errors import DistError
from designate_dist.rebase_outcome import CONFLICT, PatchOutcome
from designate_dist.requirements_files import RequirementsDiff
from designate_dist.text import counted

STATE_DIR = "rebase"
STATE_NAME = "state.json"
#: ``{path relative to the distro: base64 of its bytes, or None when it did not exist}``.
Backup = dict[str, str | None]


class RebaseStateError(DistError):
    """No rebase in progress, one already in progress, or its state does not match the repo."""


def state_path(distro: Distro) -> Path:
    return distro.work_root / STATE_DIR / STATE_NAME


def in_progress(distro: Distro) -> bool:
    """True while a rebase is stopped (its state is saved)."""
    return state_path(distro).is_file()


# -- the files a rebase may rewrite ----------------------------------------------------------
def backup_files(distro: Distro) -> Backup:
    """Every file a rebase may rewrite, base64, so that --abort restores it byte for byte."""
    files: Backup = {str(PIN_FILE): None}
    for series in SERIES_DIRS:
        directory = distro.series_dir(series)
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                if path.is_file():
                    files[f"{series}/{path.name}"] = None
    for rel in files:
        path = distro.root / rel
        files[rel] = base64.b64encode(path.read_bytes()).decode() if path.is_file() else None
    return files


def restore_files(distro: Distro, backup: Backup) -> list[str]:
    """Put back the files of ``backup``, remove series files added since; return those changed."""
    restored = []
    for rel, data in backup.items():
        path = distro.root / rel
        if data is None:
            if path.exists():
                path.unlink()
                restored.append(rel)
            continue
        raw = base64.b64decode(data)
        if not path.is_file() or path.read_bytes() != raw:
            write_bytes(path, raw)
            restored.append(rel)
    for series in SERIES_DIRS:  # files a half-finished rebase may have added
        directory = distro.series_dir(series)
        if directory.is_dir():
            for path in directory.iterdir():
                if path.is_file() and f"{series}/{path.name}" not in backup:
                    path.unlink()
                    restored.append(f"{series}/{path.name}")
    return restored


# -- the state ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RebaseState:
    """Where a stopped rebase stands: enough to go on (or undo it) from a new process."""

    onto: str                          # the new upstream version
    previous: str                      # the pin's version when the rebase started
    new_pin: Pin
    tree: Path                         # the new release's work tree, where conflicts are resolved
    series_fingerprint: str            # the series the rebase replays (it must not change meanwhile)
    old_commits: tuple[str, ...]       # the series as commits on the old release
    new_upstream: str                  # the new release's import commit
    import_time: int
    changelog_old: str
    changelog_new: str
    requirements: RequirementsDiff
    new_requirements: dict[str, str]
    outcomes: tuple[PatchOutcome, ...]
    warnings: tuple[str, ...]
    head: str                          # the work tree's HEAD when the rebase stopped
    backup: Backup

    @property
    def stopped_at(self) -> PatchOutcome | None:
        """The patch that conflicts, None when the rebase went through every patch."""
        return next((o for o in self.outcomes if o.status == CONFLICT), None)

    def as_json(self) -> dict[str, Any]:
        return {"onto": self.onto, "from": self.previous, "new_pin": asdict(self.new_pin),
                "tree": str(self.tree), "series_fingerprint": self.series_fingerprint,
                "old_commits": list(self.old_commits), "new_upstream": self.new_upstream,
                "import_time": self.import_time, "changelog_old": self.changelog_old,
                "changelog_new": self.changelog_new, "requirements": self.requirements.as_json(),
                "new_requirements": self.new_requirements,
                "outcomes": [{**o.as_json(), "commit": o.commit} for o in self.outcomes],
                "warnings": list(self.warnings), "head": self.head, "backup": self.backup}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RebaseState:
        req = data["requirements"]
        return cls(onto=data["onto"], previous=data["from"], new_pin=Pin(**data["new_pin"]),
                   tree=Path(data["tree"]), series_fingerprint=data["series_fingerprint"],
                   old_commits=tuple(data["old_commits"]), new_upstream=data["new_upstream"],
                   import_time=data["import_time"], changelog_old=data["changelog_old"],
                   changelog_new=data["changelog_new"],
                   requirements=RequirementsDiff(req["added"], req["removed"],
                                                 {k: (v["old"], v["new"]) for k, v in req["changed"].items()}),
                   new_requirements=data["new_requirements"],
                   outcomes=tuple(PatchOutcome.from_json(o) for o in data["outcomes"]),
                   warnings=tuple(data["warnings"]), head=data["head"], backup=data["backup"])


def read_state(distro: Distro) -> RebaseState | None:
    """The saved state, None when no rebase is stopped; :class:`RebaseStateError` when unreadable."""
    path = state_path(distro)
    if not path.is_file():
        return None
    try:
        return RebaseState.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise RebaseStateError(f"{path}: unreadable rebase state: {exc}") from exc


def write_state(distro: Distro, state: RebaseState) -> None:
    write_json(state_path(distro), state.as_json())


def drop_state(distro: Distro) -> None:
    """Remove the state (and the ``rebase/`` directory once nothing else is in it)."""
    path = state_path(distro)
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass


# -- rebase --status -------------------------------------------------------------------------
@dataclass(frozen=True)
class RebaseStatus:
    """What ``rebase --status`` says: whether a rebase is stopped, where, and in which tree."""

    in_progress: bool
    previous: str | None = None
    onto: str | None = None
    work_tree: Path | None = None
    done: int = 0                      # patches triaged before the one it stopped at
    stopped_at: str | None = None      # series/file of the conflicting patch
    files: tuple[str, ...] = ()        # the files in conflict

    @classmethod
    def of(cls, state: RebaseState | None) -> RebaseStatus:
        if state is None:
            return cls(in_progress=False)
        stopped = state.stopped_at
        return cls(in_progress=True, previous=state.previous, onto=state.onto, work_tree=state.tree,
                   done=sum(o is not stopped for o in state.outcomes),
                   stopped_at=stopped.ref if stopped else None,
                   files=stopped.files if stopped else ())

    def as_json(self) -> dict[str, Any]:
        if not self.in_progress:
            return {"in_progress": False}
        return {"in_progress": True, "from": self.previous, "onto": self.onto,
                "work_tree": str(self.work_tree), "done": self.done, "stopped_at": self.stopped_at,
                "files": list(self.files)}

    def lines(self) -> list[str]:
        if not self.in_progress:
            return ["no rebase in progress"]
        lines = [f"rebase {self.previous} -> {self.onto} in progress in {self.work_tree}: "
                 f"{counted(self.done, 'patch')} done"]
        if self.stopped_at:
            lines.append(f"stopped at {self.stopped_at}: conflicts in {', '.join(self.files)}")
        lines.append("next: resolve, `git add` the files, then `designate-dist rebase --continue`; "
                     "or `designate-dist rebase --abort`")
        return lines


def rebase_status(distro: Distro) -> RebaseStatus:
    """Whether a rebase is stopped in ``distro``, and where."""
    return RebaseStatus.of(read_state(distro))
