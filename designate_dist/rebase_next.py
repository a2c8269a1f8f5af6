"""After a finished rebase: regenerate ``patches/`` and say what to do next.

``patches/`` (the quilt export) is made from the applied series; once the pin
and the series moved, it is stale until regenerated.  It is regenerated here
when the repository has one, with the build lock released (``quilt`` takes it
itself); when that fails, the next steps say so and how to do it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from designate_dist.distro import Distro, load_distro
from designate_dist.errors import DistError
from designate_dist.pipeline import quilt
from designate_dist.rebase_outcome import RebaseReport
from designate_dist.text import counted

QUILT_DIR = "patches"


def after_finish(distro: Distro, report: RebaseReport, progress: Callable[[str], None]) -> RebaseReport:
    """``report`` with its next steps, ``patches/`` regenerated where there is one."""
    root = distro.root
    steps: list[str] = []
    quilt_dir = root / QUILT_DIR
    if (quilt_dir / "series").is_file():
        progress(f"rebase: regenerating {QUILT_DIR}/ on {report.onto}")
        try:
            written = quilt(load_distro(root, distro.work_root), output=quilt_dir, progress=progress)
            steps.append(f"{QUILT_DIR}/ regenerated ({counted(len(written.files), 'patch')})")
        except DistError as exc:
            steps.append(f"{QUILT_DIR}/ is stale, it could not be regenerated ({exc}): "
                         "run `designate-dist quilt`")
    if report.warnings:
        steps.append(f"check the {counted(len(report.warnings), 'warning')} above")
    if report.requirements.added or report.requirements.removed or report.requirements.changed:
        steps.append(f"requirements.txt changed in {report.onto}: refresh build/constraints.txt "
                     "with `designate-dist lock`")
    steps.append(f"review the rewritten files: `git -C {root} status` and `git -C {root} diff`")
    steps.append(f"build and test {report.onto}: `designate-dist build`")
    steps.append(f"commit the pin, the series and {QUILT_DIR}/: `git -C {root} add -A build cherry-pick "
                 f"customs {QUILT_DIR}` then `git -C {root} commit -m 'Rebase onto {report.onto}'`")
    return replace(report, next_steps=tuple(steps))
