"""``dr failover`` and ``dr failback``: move a pool off a lost region and back.

Both are one pipeline over a :class:`Plan` (the pools.yaml to write and the masters
every target's zones must have):

1. preflight: list the zones of every target that stays (their DR backend's
   ``list_zones``) and ask the masters and every nameserver for the serials; a target
   or every master unreachable stops here, nothing written;
2. print the plan (pools.yaml changes, zones to re-point, serial problems);
3. write pools.yaml (timestamped backup next to it, atomic replace) unless unchanged;
4. re-point the zones of every target to the new masters (``repoint_zones``);
5. serials: a zone whose highest served serial is above what the masters serve would
   never transfer again; it is reported with its fix, or fixed through the Designate
   API with ``--fix-serials`` (an update makes Designate take a new, higher serial);
6. wait until the nameservers serve the masters' serials;
7. tell which Designate services to restart: the worker caches pools and backends.

Running it again changes nothing and says so.
"""
from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from designate_dist import atomic
from designate_dist.errors import DistError
from designate_dr.ops.check import highest_serial, serial_lag
from designate_dr.ops.designate_api import DesignateAPI
from designate_dr.ops.errors import DRFailed, PoolsError, UnknownRegion, Unreachable
from designate_dr.ops.pools import (
    MASTERS_OPTION,
    Address,
    PoolsFile,
    Target,
    dump_pools,
    load_pools,
    parse_pools,
    with_region,
    without_region,
)
from designate_dr.ops.soa import query_serials

#: Which DR backend module re-points a target of a pools.yaml ``type``.
BACKEND_MODULES = {
    "pdns4_dr": "designate_dr.backend.pdns4_dr",
    "pdns4": "designate_dr.backend.pdns4_dr",
    "bind9_dr": "designate_dr.backend.bind9_dr",
    "bind9": "designate_dr.backend.bind9_dr",
}
RESTART = ("designate-worker", "designate-producer")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TargetPlan:
    target: Target
    masters: tuple[str, ...]  # host:port, most preferred first


@dataclass(frozen=True)
class Plan:
    action: str  # failover | failback
    region: str
    path: Path
    old: PoolsFile
    new: PoolsFile
    new_text: str | None  # None: pools.yaml stays as it is
    changes: tuple[str, ...]
    targets: tuple[TargetPlan, ...]
    restore_bytes: bytes | None = None  # failback onto the exact backup

    @property
    def regions_after(self) -> tuple[str, ...]:
        return self.new.regions


@dataclass
class SerialProblem:
    zone: str
    served: int | None
    primary: int | None
    fixed_serial: int | None = None

    def line(self) -> str:
        if self.primary is None:
            return (f"zone {self.zone}: no master of the remaining regions serves it (served serial "
                    f"{self.served}); create it in Designate or restore its database")
        return (f"zone {self.zone}: served serial {self.served} is above the masters' {self.primary}; "
                f"fix: `openstack zone set --ttl <its ttl> {self.zone}` (any update gives a new serial) "
                "or run again with --fix-serials --api URL")


@dataclass
class Outcome:
    plan: Plan
    dry_run: bool
    lines: list[str] = field(default_factory=list)
    zones: int = 0
    pools_written: bool = False
    backup: Path | None = None
    repointed: int = 0
    already: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    serial_problems: list[SerialProblem] = field(default_factory=list)
    not_converged: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed_anything(self) -> bool:
        return self.pools_written or self.repointed > 0 or any(p.fixed_serial for p in self.serial_problems)

    def error(self) -> DistError | None:
        """The one error line of an incomplete run (after everything possible was done)."""
        if self.failed:
            first = next(iter(self.failed.items()))
            return DRFailed(f"{len(self.failed)} zone(s) could not be re-pointed (first: {first[0]}: "
                            f"{first[1]}); run the {self.plan.action} again")
        open_problems = [p for p in self.serial_problems if not p.fixed_serial]
        missing = [p for p in open_problems if p.primary is None]
        if missing and not self.dry_run:
            return DRFailed(f"{len(missing)} zone(s) not served by any master of the remaining "
                            f"regions (first: {missing[0].zone}); see the fixes above")
        if open_problems and not self.dry_run:
            return DRFailed(f"{len(open_problems)} zone(s) have a served serial above their masters' "
                            f"(first: {open_problems[0].zone}); see the fixes above")
        if self.not_converged and not self.dry_run:
            return DRFailed(f"{len(self.not_converged)} zone(s) not yet served with the masters' serial "
                            f"(first: {self.not_converged[0]}); check with `designate-dist dr check`")
        return None


# -- planning --------------------------------------------------------------------------------

def _describe_changes(old: PoolsFile, new: PoolsFile) -> list[str]:
    lines: list[str] = []

    def key(t: Target) -> tuple:
        return (t.pool, t.type, tuple(sorted((k, str(v)) for k, v in t.options.items()
                                             if not str(k).startswith(MASTERS_OPTION))))

    old_t, new_t = {key(t): t for t in old.targets}, {key(t): t for t in new.targets}
    for k, t in old_t.items():
        if k not in new_t:
            lines.append(f"remove target {t.label} from pool {t.pool}")
    for k, t in new_t.items():
        if k not in old_t:
            lines.append(f"add target {t.label} to pool {t.pool}")
            continue
        before = old_t[k]
        gone = [m for m in before.masters if m not in t.masters]
        came = [m for m in t.masters if m not in before.masters]
        if gone:
            lines.append(f"remove master(s) {', '.join(map(str, gone))} from target {t.label}")
        if came:
            lines.append(f"add master(s) {', '.join(map(str, came))} to target {t.label}")
        for option in sorted(set(before.options) ^ set(t.options)):
            verb = "remove" if option in before.options else "add"
            lines.append(f"{verb} option {option} of target {t.label}")
    for what, olds, news in (("nameserver", old.nameservers, new.nameservers),
                             ("also_notify", old.also_notifies, new.also_notifies)):
        for s in olds:
            if s not in news:
                lines.append(f"remove {what} {s.address} ({s.region}) from pool {s.pool}")
        for s in news:
            if s not in olds:
                lines.append(f"add {what} {s.address} ({s.region}) to pool {s.pool}")
    return lines


def _target_masters(target: Target) -> tuple[str, ...]:
    """The masters the DR backends give this target's zones (all regions, preferred first)."""
    common = _import("designate_dr.backend.common")
    masters = common.region_masters(target.options, list(target.masters))
    return tuple(str(m) for m in masters)


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise DistError(f"re-pointing needs the DR backends and Designate installed: {exc}",
                        hint="install designate-dist into Designate's environment") from None


def _make_plan(action: str, region: str, old: PoolsFile, new_data: list[dict[str, Any]] | None,
               restore_bytes: bytes | None = None) -> Plan:
    if new_data is None:
        new, text = old, None
    else:
        text = dump_pools(new_data)
        new = parse_pools(text, old.path)
        if new.data == old.data:
            new, text = old, None
    targets = tuple(TargetPlan(t, _target_masters(t)) for t in new.targets)
    for plan in targets:
        if plan.target.type not in BACKEND_MODULES:
            raise PoolsError(f"{old.path}: target {plan.target.label} has type {plan.target.type}; "
                             f"the DR operations re-point {', '.join(sorted(BACKEND_MODULES))}")
    changes = tuple(_describe_changes(old, new)) if text is not None else ()
    return Plan(action, region, old.path, old, new, text, changes, targets,
                restore_bytes if text is not None else None)


def plan_failover(path: Path | str, region: str) -> Plan:
    """What ``failover --lost region`` would do (nothing done yet)."""
    old = load_pools(path)
    if region not in old.regions:
        if _backups_with(Path(path), region):
            # already failed over: pools.yaml unchanged, the rest converges again
            return _make_plan("failover", region, old, None)
        old.require_region(region)
    return _make_plan("failover", region, old, without_region(old, region))


def _backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.*.bak"), reverse=True)


def _backups_with(path: Path, region: str) -> list[Path]:
    found = []
    for backup in _backups(path):
        try:
            if region in load_pools(backup).regions:
                found.append(backup)
        except PoolsError:
            continue
    return found


def plan_failback(path: Path | str, region: str, backup: Path | str | None = None) -> Plan:
    """What ``failback --restore region`` would do, from ``backup`` or the newest backup with the region."""
    path = Path(path)
    current = load_pools(path)
    if region in current.regions:
        return _make_plan("failback", region, current, None)
    if backup is None:
        candidates = _backups_with(path, region)
        if not candidates:
            raise UnknownRegion(f"{path}: no region {region!r} and no backup {path.name}.*.bak has it "
                                f"(regions now: {', '.join(current.regions)})")
        backup = candidates[0]
    old = load_pools(backup)
    data = with_region(current, old, region)
    restore = Path(backup).read_bytes() if data == old.data else None
    return _make_plan("failback", region, current, data, restore)


# -- doing -----------------------------------------------------------------------------------

def _backend_call(target: Target, what: str, func: Callable[[], Any]) -> Any:
    try:
        return func()
    except DistError:
        raise
    except Exception as exc:  # the backends raise designate.exceptions.Backend
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise Unreachable(f"target {target.label}: {what} failed: {message}") from None


def _list_zones(plan: Plan) -> dict[int, dict[str, list[str]]]:
    out: dict[int, dict[str, list[str]]] = {}
    for index, tp in enumerate(plan.targets):
        module = _import(BACKEND_MODULES[tp.target.type])
        out[index] = _backend_call(tp.target, "listing zones", lambda m=module, t=tp: m.list_zones(
            dict(t.target.options)))
    return out


def target_zones(pools: PoolsFile) -> list[str]:
    """Every zone on any target of ``pools`` that answers, from the targets themselves (their DR backend)."""
    zones: set[str] = set()
    errors: list[str] = []
    for target in pools.targets:
        if target.type not in BACKEND_MODULES:
            continue
        module = _import(BACKEND_MODULES[target.type])
        try:
            zones.update(_backend_call(target, "listing zones", lambda m=module, t=target: m.list_zones(
                dict(t.options))))
        except Unreachable as exc:
            errors.append(str(exc))
    if errors and not zones:
        raise Unreachable(f"no target could list its zones ({errors[0]})", hint="give --zones FILE")
    return sorted(zones)


def _masters(plan: Plan) -> list[Address]:
    seen: dict[str, Address] = {}
    for tp in plan.targets:
        for master in tp.masters:
            host, _, port = master.rpartition(":")
            seen.setdefault(master, Address(host.strip("[]"), int(port)))
    return list(seen.values())


def _nameservers(plan: Plan, new_only: bool = False) -> list[Address]:
    servers = [s.address for s in plan.new.nameservers]
    if not new_only:
        servers += [s.address for s in plan.old.nameservers]
    return list(dict.fromkeys(servers))


def _serial_problems(zones: list[str], masters: list[Address], nameservers: list[Address],
                     timeout: float, last_served: dict[str, int]) -> tuple[list[SerialProblem], list[str]]:
    """Zones served above their masters' serial, and warnings about masters behind the others."""
    answers = query_serials(masters + [n for n in nameservers if n not in masters], zones, timeout=timeout,
                            retries=1)
    if not any(answers[m].reachable for m in masters):
        errors = "; ".join(f"{m}: {answers[m].error}" for m in masters)
        raise Unreachable(f"no master of the remaining regions answers ({errors})")
    problems = []
    behind = dict.fromkeys(masters, 0)
    for zone in zones:
        top_master = highest_serial(answers[m].serials[zone] for m in masters if zone in answers[m].serials)
        served = highest_serial([answers[n].serials[zone] for n in nameservers if zone in answers[n].serials]
                                + ([last_served[zone]] if zone in last_served else []))
        if top_master is None or (served is not None and serial_lag(served, top_master) > 0):
            problems.append(SerialProblem(zone, served, top_master))
        for master in masters:
            serial = answers[master].serials.get(zone)
            if answers[master].reachable and top_master is not None and (
                    serial is None or serial_lag(top_master, serial) > 0):
                behind[master] += 1
    warnings = [f"master {m} does not answer ({answers[m].error})" for m in masters if not answers[m].reachable]
    warnings += [f"master {m} serves {count} zone(s) below (or without) the other masters' serial: is its "
                 "Designate database up to date?" for m, count in behind.items() if count]
    return problems, warnings


def _write_pools(plan: Plan, outcome: Outcome, progress: Progress) -> None:
    original = plan.path.read_bytes()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    backup = plan.path.with_name(f"{plan.path.name}.{stamp}.bak")
    # Designate reads pools.yaml as its own user: the file and its backup keep
    # owner, group and mode (the backup first: a refused chown writes nothing).
    stat = plan.path.stat()
    mode, owner = stat.st_mode & 0o7777, (stat.st_uid, stat.st_gid)
    atomic.write_bytes(backup, original, mode=mode, owner=owner)
    data = plan.restore_bytes if plan.restore_bytes is not None else plan.new_text.encode("utf-8")
    atomic.write_bytes(plan.path, data, mode=mode, owner=owner)
    outcome.pools_written, outcome.backup = True, backup
    progress(f"wrote {plan.path} (backup: {backup.name})")


def _repoint(plan: Plan, outcome: Outcome, concurrency: int, progress: Progress) -> None:
    for tp in plan.targets:
        module = _import(BACKEND_MODULES[tp.target.type])
        result = _backend_call(tp.target, "re-pointing", lambda m=module, t=tp: m.repoint_zones(
            dict(t.target.options), list(t.masters), concurrency=concurrency))
        outcome.repointed += len(result.changed)
        outcome.already += len(result.unchanged)
        for zone, reason in result.failed.items():
            outcome.failed[f"{zone} on {tp.target.label}"] = reason
        progress(f"target {tp.target.label}: {len(result.changed)} zones re-pointed to "
                 f"{', '.join(tp.masters)}, {len(result.unchanged)} already, {len(result.failed)} failed "
                 f"({result.seconds:.1f}s)")


def _fix_serials(problems: list[SerialProblem], api: DesignateAPI, masters: list[Address],
                 wait: float, progress: Progress) -> None:
    fixable = [p for p in problems if p.primary is not None]
    for problem in fixable:
        api.bump_serial(api.find_zone(problem.zone))
    deadline = time.monotonic() + wait
    while fixable:
        answers = query_serials(masters, [p.zone for p in fixable], retries=1)
        for problem in list(fixable):
            serial = highest_serial(answers[m].serials[problem.zone] for m in masters
                                    if problem.zone in answers[m].serials)
            if serial is not None and serial_lag(serial, problem.served or 0) > 0:
                problem.fixed_serial = serial
                fixable.remove(problem)
                progress(f"zone {problem.zone}: new serial {serial} (was {problem.primary}, served "
                         f"{problem.served})")
        if not fixable or time.monotonic() > deadline:
            break
        time.sleep(0.5)


def _wait_converged(zones: list[str], masters: list[Address], nameservers: list[Address],
                    wait: float) -> list[str]:
    deadline = time.monotonic() + wait
    pending = list(zones)
    while True:
        answers = query_serials(list(dict.fromkeys(masters + nameservers)), pending, retries=1)
        live = [n for n in nameservers if answers[n].reachable]
        still = []
        for zone in pending:
            top = highest_serial(answers[m].serials[zone] for m in masters if zone in answers[m].serials)
            if top is None or any(zone not in answers[n].serials or serial_lag(top, answers[n].serials[zone])
                                  for n in live):
                still.append(zone)
        pending = still
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(0.5)


def execute(plan: Plan, *, dry_run: bool = False, api: DesignateAPI | None = None, concurrency: int = 8,
            wait: float = 30.0, timeout: float = 1.0, last_served: dict[str, int] | None = None,
            out: Progress = lambda line: None) -> Outcome:
    """Carry out ``plan`` (see the module docstring), saying what happens through ``out``.

    Before pools.yaml is written any failure raises and nothing is changed; after it,
    only a whole target failing to re-point raises, other problems are in the
    returned :class:`Outcome` (and :meth:`Outcome.error`).  ``last_served`` (zone ->
    serial, from ``dr check --state``) counts as served too: it covers servers that are gone.
    """
    started = time.monotonic()
    outcome = Outcome(plan, dry_run)

    def say(line: str) -> None:
        outcome.lines.append(line)
        out(line)

    progress = say
    zones_by_target = _list_zones(plan)
    zones = sorted({z for zs in zones_by_target.values() for z in zs})
    outcome.zones = len(zones)
    masters = _masters(plan)
    problems, warnings = (_serial_problems(zones, masters, _nameservers(plan), timeout, last_served or {})
                          if zones else ([], []))
    outcome.serial_problems = problems

    verb = {"failover": f"fail over from region {plan.region}", "failback": f"fail back to region {plan.region}"}
    say(f"plan: {verb[plan.action]} ({len(zones)} zones; regions after: {', '.join(plan.regions_after)})")
    if plan.new_text is None:
        say(f"  pools.yaml: unchanged ({plan.path} already "
            f"{'without' if plan.action == 'failover' else 'with'} region {plan.region})")
    else:
        say(f"  pools.yaml: {plan.path} (a timestamped backup is kept next to it)")
        say("".join(f"    - {line}\n" for line in plan.changes).rstrip("\n"))
    for index, tp in enumerate(plan.targets):
        current = zones_by_target[index]
        todo = sum(1 for masters_now in current.values() if tuple(masters_now) != tp.masters)
        say(f"  target {tp.target.label}: {todo} of {len(current)} zones to re-point to "
            f"{', '.join(tp.masters)}")
    if problems:
        say(f"  serials: {len(problems)} zone(s) served above their masters' serial:")
        for problem in problems[:50]:
            say(f"    - {problem.line()}")
        if len(problems) > 50:
            say(f"    - ... and {len(problems) - 50} more")
    else:
        say("  serials: every zone's masters serve at least the highest served serial")
    for warning in warnings:
        say(f"  warning: {warning}")
    if dry_run:
        say("dry run: nothing changed")
        outcome.seconds = time.monotonic() - started
        return outcome

    if plan.new_text is not None:
        _write_pools(plan, outcome, progress)
    _repoint(plan, outcome, concurrency, progress)
    if problems and api is not None:
        _fix_serials(problems, api, masters, wait, progress)
    skip = {p.zone for p in problems if not p.fixed_serial}
    outcome.not_converged = _wait_converged([z for z in zones if z not in skip], masters,
                                            _nameservers(plan, new_only=True), wait)
    outcome.seconds = time.monotonic() - started

    if outcome.changed_anything or outcome.failed or outcome.not_converged:
        regions = ", ".join(plan.regions_after)
        say(f"done in {outcome.seconds:.1f}s: {outcome.repointed} zones re-pointed, {outcome.already} already "
            f"right, {len(outcome.failed)} failed; {outcome.zones - len(outcome.not_converged)}/{outcome.zones} "
            "zones served with the masters' serial")
        say("next: load the new pools into Designate and restart what caches them, in every region "
            f"that runs Designate ({regions}):")
        say(f"  designate-manage pool update --file {plan.path}")
        say(f"  systemctl restart {' '.join(RESTART)}   # the worker caches pools and backends until restarted")
    else:
        say(f"nothing to do: pools.yaml unchanged, all {outcome.already} zones already on their masters "
            f"({outcome.seconds:.1f}s)")
    return outcome
