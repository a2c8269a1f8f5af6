"""What a rebase made of each patch: the statuses, one patch's outcome, and the report.

``clean``            applies as is (same hunks, same line numbers);
``refreshed``        applies only with an offset or a three-way merge: the file is
                     rewritten with fresh context, header and message kept;
``upstream``         its change is already in the new release: dropped;
``partly-upstream``  the new release has part of its change; the file keeps the rest;
``conflict``         the three-way merge leaves conflicts: the rebase stops;
``resolved``         a conflict the developer resolved (``rebase --continue``).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from designate_dist.requirements_files import RequirementsDiff
from designate_dist.text import counted

CLEAN = "clean"
REFRESHED = "refreshed"
UPSTREAM = "upstream"
PARTLY_UPSTREAM = "partly-upstream"
CONFLICT = "conflict"
RESOLVED = "resolved"
STATUSES = (CLEAN, REFRESHED, UPSTREAM, PARTLY_UPSTREAM, CONFLICT, RESOLVED)
#: Statuses whose patch file is rewritten from the commit in the new tree.
REWRITTEN = (REFRESHED, PARTLY_UPSTREAM, RESOLVED)


@dataclass(frozen=True)
class PatchOutcome:
    series: str
    file: str
    kind: str
    status: str
    note: str = ""
    commit: str | None = None
    remaining_diff: str | None = None
    files: tuple[str, ...] = ()
    warning: str | None = None
    deleted_upstream: tuple[str, ...] = ()  # files of a modify/delete conflict: gone in the new release

    @property
    def ref(self) -> str:
        return f"{self.series}/{self.file}"

    def as_json(self) -> dict:
        data = {"series": self.series, "file": self.file, "kind": self.kind, "status": self.status,
                "note": self.note}
        if self.files:
            data["files"] = list(self.files)
        if self.remaining_diff is not None:
            data["remaining_diff"] = self.remaining_diff
        if self.warning:
            data["warning"] = self.warning
        if self.deleted_upstream:
            data["deleted_upstream"] = list(self.deleted_upstream)
        return data

    @classmethod
    def from_json(cls, data: dict) -> PatchOutcome:
        return cls(**{**data, "files": tuple(data.get("files", ())),
                      "deleted_upstream": tuple(data.get("deleted_upstream", ()))})


@dataclass(frozen=True)
class RebaseReport:
    onto: str
    previous: str
    outcomes: tuple[PatchOutcome, ...]
    requirements: RequirementsDiff
    dry_run: bool
    finished: bool
    work_tree: Path | None = None
    warnings: tuple[str, ...] = ()
    next_steps: tuple[str, ...] = ()

    @property
    def conflicts(self) -> tuple[PatchOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == CONFLICT)

    def as_json(self) -> dict:
        return {"onto": self.onto, "from": self.previous, "dry_run": self.dry_run,
                "finished": self.finished,
                "patches": [o.as_json() for o in self.outcomes],
                "requirements": self.requirements.as_json(),
                "warnings": list(self.warnings), "next_steps": list(self.next_steps),
                "work_tree": str(self.work_tree) if self.work_tree else None}

    def table(self) -> str:
        rows = [("PATCH", "KIND", "STATUS", "NOTE")]
        rows += [(o.ref, o.kind, o.status, o.note) for o in self.outcomes]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip()
                 for r in rows]
        counts = Counter(o.status for o in self.outcomes)
        summary = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
        what = "dry run: " if self.dry_run else ""
        lines.append(f"{what}{self.previous} -> {self.onto}: {counted(len(self.outcomes), 'patch')}"
                     + (f" ({summary})" if summary else ""))
        for warning in self.warnings:
            lines.append(f"warning: {warning}")
        req = self.requirements.lines()
        lines.append(f"requirements.txt {self.previous} -> {self.onto}:" + ("" if req else " unchanged"))
        lines += req
        for outcome in self.outcomes:
            if outcome.remaining_diff:
                lines.append(f"remaining diff of {outcome.ref}:")
                lines += ["  " + line for line in outcome.remaining_diff.rstrip("\n").splitlines()]
        if self.next_steps:
            lines.append("next:")
            lines += [f"  - {step}" for step in self.next_steps]
        return "\n".join(lines)

