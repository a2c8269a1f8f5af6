"""``dr failover`` and ``dr failback``: move a pool off a lost region and back.

Both are one pipeline over a :class:`Plan` (the pools.yaml to write and the masters
every target's zones must have):

1. preflight: list the zones of every target that stays (their DR backend's
   ``list_zones``) and ask the masters and every nameserver for the serials, once,
   patiently and within ``Patience.max_time`` (a designate-mdns answers ~100 queries a
   second: the masters' serials are asked for once and reused below); a target or
   every master unreachable stops here, nothing written;
2. print the plan (pools.yaml changes, zones to re-point, serial problems);
3. write pools.yaml (timestamped backup next to it, atomic replace) unless unchanged;
4. remove from every target the zones Designate has deleted (no master serves them and
   Designate's zone list says they are gone: :mod:`designate_dr.ops.deleted`; never a
   zone Designate may still have), re-point the zones of every target to the new
   masters (``repoint_zones``; a zone that holds another serial than its masters' is
   transferred, whether or not its masters changed), and create on every target the
   zones Designate has that the pool's other targets hold and it does not (a server
   back empty), with the masters of all regions (``create_zones``);
5. serials: a zone whose highest served serial is above what the masters serve would
   never transfer again; it is reported with its fix, or fixed through the Designate
   API with ``--fix-serials`` (an update makes Designate take a new, higher serial);
6. wait until the nameservers serve the masters' serials (asking the nameservers only);
7. with ``--apply-pools``, before the re-point: stop the workers and producers, load the
   pools into Designate, read them back and verify them, start the services
   (:mod:`designate_dr.ops.apply`); without, tell how.

Running it again changes nothing and says so.
"""
from __future__ import annotations

import importlib
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from designate_dr.ops import atomic
from designate_dr.ops.apply import ApplySettings, apply_pools
from designate_dr.ops.check import MASTER_SAMPLE, master_zones
from designate_dr.ops.deleted import catalog_zones, find_deleted
from designate_dr.ops.designate_api import DesignateAPI
from designate_dr.ops.errors import DRError, DRFailed, PoolsError, UnknownRegion, Unreachable
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
from designate_dr.ops.soa import Keyrings, Patience, query_serials
from designate_dr.ops.tsig import ask_refused_signed
from designate_dr.serial import highest_serial, serial_lag

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
    groups: tuple[tuple[str, ...], ...] = ()  # the same by region (a zone gets each rotated)
    lists: int | None = None  # bind9_dr's lists mode: how many primaries lists (rotations) there are

    def masters_of(self, zone: str) -> tuple[str, ...]:
        """The masters ``zone`` gets (the DR backends' order: region order, rotated within a region)."""
        common = _import("designate_dr.backend.common")
        groups = [[common.Master.parse(m) for m in g] for g in self.groups] or \
                 [[common.Master.parse(m)] for m in self.masters]
        return tuple(str(m) for m in common.masters_for(zone, groups, self.lists))


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


@dataclass(frozen=True)
class MasterSerials:
    """What the masters said in the preflight."""

    serials: dict[str, int]  # zone -> the highest serial a master serves
    unanswered: list[str]  # zones no master answered for (neither a serial nor "absent")
    problems: list[SerialProblem]
    warnings: list[str]
    lagging: list[str] = field(default_factory=list)  # zones some nameserver serves below the masters'


@dataclass
class SerialProblem:
    zone: str
    served: int | None
    primary: int | None
    fixed_serial: int | None = None
    doubt: str = ""  # primary None: why the zone is not known to be deleted in Designate
    lost: bool = True  # primary None: Designate never deleted it (lost from its database?)

    def line(self) -> str:
        if self.primary is None and self.lost:
            return (f"zone {self.zone}: no master of the remaining regions serves it (served serial "
                    f"{self.served}); create it in Designate or restore its database")
        if self.primary is None:
            return (f"zone {self.zone}: no master of the remaining regions serves it (served serial "
                    f"{self.served}) and it cannot be told whether Designate deleted it ({self.doubt}): "
                    "not removed; run again once that is resolved")
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
    pools_applied: bool = False
    backup: Path | None = None
    repointed: int = 0
    refreshed: int = 0
    created: int = 0
    removed: int = 0
    already: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    serial_problems: list[SerialProblem] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    not_converged: list[str] = field(default_factory=list)
    seconds: float = 0.0
    pending: bool = False  # dry run: a real run would change something

    def record_failed(self, target: Target, failed: dict[str, str]) -> None:
        """The per-zone failures of a bulk call on ``target``."""
        for zone, reason in failed.items():
            self.failed[f"{zone} on {target.label}"] = reason

    @property
    def changed_anything(self) -> bool:
        return (self.pools_written or self.pools_applied or self.repointed > 0 or self.refreshed > 0
                or self.created > 0 or self.removed > 0 or any(p.fixed_serial for p in self.serial_problems))

    def error(self) -> DRError | None:
        """The one error line of an incomplete run (after everything possible was done)."""
        if self.failed:
            first = next(iter(self.failed.items()))
            return DRFailed(f"{len(self.failed)} zone(s) could not be re-pointed, created or removed (first: "
                            f"{first[0]}: {first[1]}); run the {self.plan.action} again")
        open_problems = [p for p in self.serial_problems if not p.fixed_serial]
        missing = [p for p in open_problems if p.primary is None]
        if missing and not self.dry_run:
            return DRFailed(f"{len(missing)} zone(s) not served by any master of the remaining "
                            f"regions (first: {missing[0].zone}); see the fixes above")
        if open_problems and not self.dry_run:
            return DRFailed(f"{len(open_problems)} zone(s) have a served serial above their masters' "
                            f"(first: {open_problems[0].zone}); see the fixes above")
        if self.unanswered and not self.dry_run:
            return DRFailed(f"{len(self.unanswered)} zone(s) got no answer from any master in time (first: "
                            f"{self.unanswered[0]}): their serials are unknown; run again, with a larger "
                            "--max-time if the masters are slow")
        if self.not_converged and not self.dry_run:
            return DRFailed(f"{len(self.not_converged)} zone(s) not yet served with the masters' serial "
                            f"(first: {self.not_converged[0]}); check with `designate-dr check`")
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


def in_lists_mode(target: Target) -> bool:
    """A BIND target whose zones refer to named primaries lists (``bind9_dr``'s ``primaries_list``)."""
    return BACKEND_MODULES.get(target.type, "").endswith("bind9_dr") and bool(target.options.get("primaries_list"))


def _target_plan(target: Target) -> TargetPlan:
    """The masters the DR backends give this target's zones (all regions, preferred first)."""
    common = _import("designate_dr.backend.common")
    groups = common.region_groups(target.options, list(target.masters))
    lists = None
    if in_lists_mode(target):
        try:
            lists = int(target.options.get("primaries_lists") or _import(BACKEND_MODULES[target.type]).DEFAULT_LISTS)
        except ValueError:
            lists = None  # the backend says what is wrong when it re-points
    return TargetPlan(target, tuple(str(m) for g in groups for m in g),
                      tuple(tuple(str(m) for m in g) for g in groups), lists)


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise DRError(f"re-pointing needs the DR backends and Designate installed: {exc}",
                      hint="run designate-dr from Designate's virtualenv") from None


def _make_plan(action: str, region: str, old: PoolsFile, new_data: list[dict[str, Any]] | None,
               restore_bytes: bytes | None = None) -> Plan:
    if new_data is None:
        new, text = old, None
    else:
        text = dump_pools(new_data)
        new = parse_pools(text, old.path)
        if new.data == old.data:
            new, text = old, None
    targets = tuple(_target_plan(t) for t in new.targets)
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

def backend_call(target: Target, what: str, func: Callable[[Any], Any]) -> Any:
    """``func(module)`` with the DR backend module of ``target``; its failure as one :class:`Unreachable` line."""
    module = _import(BACKEND_MODULES[target.type])
    try:
        return func(module)
    except DRError:
        raise
    except Exception as exc:  # the backends raise designate.exceptions.Backend
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise Unreachable(f"target {target.label}: {what} failed: {message}") from None


def check_lists_clash(targets: list[Target]) -> None:
    """named's ``primaries`` lists are global to the server (all views): two lists-mode targets
    of one named (two views) must use different ``primaries_list`` prefixes and files."""
    seen: dict[tuple[str, str, str], Target] = {}
    for target in filter(in_lists_mode, targets):
        options = target.options
        named = (str(options.get("rndc_host") or "127.0.0.1"), str(options.get("rndc_port") or "953"))
        for key in ((*named, f"list {options['primaries_list']}"),
                    (*named, f"file {options.get('primaries_file')}")):
            other = seen.setdefault(key, target)
            if other is not target:
                raise PoolsError(f"targets {other.label} and {target.label} are on one named "
                                 f"({named[0]}:{named[1]}) with the same primaries {key[2]}",
                                 hint="give each view its own primaries_list and primaries_file")


def _check_lists_files(plan: Plan) -> None:
    """BIND targets in the lists mode: their re-point writes ``primaries_file`` here; say so before
    anything changes when it cannot."""
    check_lists_clash([tp.target for tp in plan.targets])
    for tp in plan.targets:
        if tp.lists is None:
            continue
        path = tp.target.options.get("primaries_file")
        if not path:
            raise PoolsError(f"target {tp.target.label}: primaries_list is set but primaries_file is not: "
                             "the primaries lists cannot be rewritten")
        folder = os.path.dirname(os.path.abspath(str(path)))
        try:  # really try: access() says yes to root on read-only or special file systems
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".designate-dr-probe.")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise PoolsError(f"target {tp.target.label}: cannot write primaries_file {path} from this host "
                             f"({exc.strerror})", hint="run where the BIND lists file is, or as its owner") from None


def _list_zones(plan: Plan) -> dict[int, dict[str, list[str]]]:
    out: dict[int, dict[str, list[str]]] = {}
    for index, tp in enumerate(plan.targets):
        out[index] = backend_call(tp.target, "listing zones", lambda m, t=tp: m.list_zones(dict(t.target.options)))
    return out


def target_zones(pools: PoolsFile) -> list[str]:
    """Every zone on any target of ``pools`` that answers, from the targets themselves (their DR backend)."""
    zones: set[str] = set()
    errors: list[str] = []
    for target in pools.targets:
        if target.type not in BACKEND_MODULES:
            continue
        try:
            zones.update(backend_call(target, "listing zones", lambda m, t=target: m.list_zones(dict(t.options))))
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


def _spread(zones: list[str], masters: list[Address], regions: dict[Address, str]) -> dict[Address, list[str]]:
    """Which zones to ask each master about: every zone of one master per region (round
    robin: k masters of a region share its zones), and a sample of every master for the
    "behind the others" warning."""
    by_region: dict[str, list[Address]] = {}
    for master in masters:
        by_region.setdefault(regions.get(master, "?"), []).append(master)
    out: dict[Address, list[str]] = {m: [] for m in masters}
    for group in by_region.values():
        for index, zone in enumerate(zones):
            out[group[index % len(group)]].append(zone)
    sample = set(master_zones(zones, MASTER_SAMPLE))
    for master in masters:
        mine = set(out[master])
        out[master] += [z for z in zones if z in sample and z not in mine]
    return out


def _ask_masters(zones: list[str], masters: list[Address], nameservers: list[Address],
                 patience: Patience, last_served: dict[str, int], keyrings: Keyrings | None,
                 regions: dict[Address, str] | None = None, tsig_keys: list | None = None,
                 db_serials: dict[str, int] | None = None) -> MasterSerials:
    """The masters' serials, zones served above them, and warnings about masters behind the others.

    Each zone is asked of one master per region (:func:`_spread`).  With ``db_serials``
    (from the remaining region's database) those are the masters' serials and the
    masters are asked only about a sample, to check that they serve them.
    """
    if db_serials is None:
        only = _spread(zones, masters, regions or {})
    else:
        sample = master_zones(zones, MASTER_SAMPLE)
        only = dict.fromkeys(masters, sample)
    started = time.monotonic()
    answers = query_serials(masters + [n for n in nameservers if n not in masters], zones,
                            keyrings=keyrings, only=only, **patience.kwargs())
    # a zone whose master did not answer (dead, or out of time) is asked of the other masters
    live = [m for m in masters if answers[m].reachable]
    asked = {z for zs in only.values() for z in zs}
    again = [z for z in zones if z in asked
             and not any(z in answers[m].serials or z in answers[m].missing for m in live)]
    if again and live:
        left = None if patience.max_time is None else max(1.0, patience.max_time - (time.monotonic() - started))
        more = query_serials(live, again, keyrings=keyrings, **patience.kwargs(left))
        for master in live:
            got, extra = answers[master], more[master]
            got.serials.update(extra.serials)
            got.missing.update(extra.missing)
            got.unanswered = (got.unanswered | extra.unanswered) - set(got.serials) - set(got.missing)
    if tsig_keys:
        ask_refused_signed(answers, live, tsig_keys, **patience.kwargs())
    if not live:
        errors = "; ".join(f"{m}: {answers[m].error}" for m in masters)
        raise Unreachable(f"no master of the remaining regions answers ({errors})")
    problems = []
    unanswered: list[str] = []
    lagging: list[str] = []
    behind = dict.fromkeys(masters, 0)
    master_serials: dict[str, int] = {}
    for zone in zones:
        served_by_masters = highest_serial(answers[m].serials[zone] for m in masters
                                           if zone in answers[m].serials)
        served = highest_serial([answers[n].serials[zone] for n in nameservers if zone in answers[n].serials]
                                + ([last_served[zone]] if zone in last_served else []))
        if db_serials is not None:
            top_master = db_serials.get(zone)
        else:
            top_master = served_by_masters
            if top_master is None and any(zone in answers[m].unanswered for m in masters):
                unanswered.append(zone)  # not "absent": a master may serve it, we do not know yet
                continue
        if top_master is not None:
            master_serials[zone] = top_master
            if any(answers[n].reachable and (zone not in answers[n].serials
                                             or serial_lag(top_master, answers[n].serials[zone]))
                   for n in nameservers if n not in masters):
                lagging.append(zone)
        if top_master is None or (served is not None and serial_lag(served, top_master) > 0):
            problems.append(SerialProblem(zone, served, top_master))
        for master in masters:
            got = answers[master]
            serial = got.serials.get(zone)
            if got.reachable and top_master is not None and (serial is not None or zone in got.missing) \
                    and (serial is None or serial_lag(top_master, serial) > 0):
                behind[master] += 1
    other = "the other masters'" if db_serials is None else "its database's"
    warnings = [f"master {m} does not answer ({answers[m].error})" for m in masters if not answers[m].reachable]
    warnings += [f"master {m} serves {count} zone(s) below (or without) {other} serial: is its "
                 "Designate database up to date?" for m, count in behind.items() if count]
    for master in masters:
        got = answers[master]
        if got.reachable and got.unanswered:
            warnings.append(f"master {master} gave no answer for {len(got.unanswered)} zone(s) within "
                            f"{patience.retries + 1} tries" + (f" or {patience.max_time:g}s"
                                                                if patience.max_time else ""))
    return MasterSerials(master_serials, unanswered, problems, warnings, lagging)


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


def _repoint(plan: Plan, outcome: Outcome, concurrency: int, serials: dict[str, int],
             progress: Progress, lists_command: Sequence[str] | None = None) -> None:
    """Re-point every target; zones already on their masters but behind ``serials`` are refreshed."""
    for tp in plan.targets:
        extra = {"lists_command": lists_command} if tp.lists is not None and lists_command else {}
        result = backend_call(tp.target, "re-pointing", lambda m, t=tp, kw=extra: m.repoint_zones(
            dict(t.target.options), [list(g) for g in t.groups], concurrency=concurrency, serials=serials, **kw))
        outcome.repointed += len(result.changed)
        outcome.refreshed += len(result.refreshed)
        outcome.already += len(result.unchanged)
        outcome.record_failed(tp.target, result.failed)
        via = f" ({len(result.in_bulk)} through {result.via})" if result.in_bulk else ""
        progress(f"target {tp.target.label}: {len(result.changed)} zones re-pointed to "
                 f"{', '.join(tp.masters)}{via}, {len(result.refreshed)} behind and transferred again, "
                 f"{len(result.unchanged)} already right, {len(result.failed)} failed "
                 f"({result.seconds:.1f}s)")


def _lacking(plan: Plan, zones_by_target: dict[int, dict[str, list[str]]],
             zones: list[str]) -> dict[str, list[str]]:
    """Per zone: the targets of its pool (the pools of the targets holding it) that do not hold it."""
    out: dict[str, list[str]] = {}
    for zone in zones:
        pools = {tp.target.pool for index, tp in enumerate(plan.targets) if zone in zones_by_target[index]}
        out[zone] = [tp.target.label for index, tp in enumerate(plan.targets)
                     if tp.target.pool in pools and zone not in zones_by_target[index]]
    return out


def _removals_and_creations(plan: Plan, zones_by_target: dict[int, dict[str, list[str]]],
                            designate_has: dict[str, int], gone: dict[str, str],
                            ) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    """Per target (index): the zones to remove (deleted in Designate) and to create (Designate
    has them, the pool's other targets hold them, this one does not: a server back empty)."""
    catalogs = catalog_zones(plan.new)
    by_pool: dict[str, set[str]] = {}
    for index, tp in enumerate(plan.targets):
        by_pool.setdefault(tp.target.pool, set()).update(zones_by_target[index])
    removals: dict[int, list[str]] = {}
    creations: dict[int, list[str]] = {}
    for index, tp in enumerate(plan.targets):
        held = zones_by_target[index]
        remove = sorted(z for z in held if z in gone)
        create = sorted(z for z in by_pool[tp.target.pool] - set(held)
                        if z in designate_has and z not in gone and z.lower() not in catalogs)
        if remove:
            removals[index] = remove
        if create:
            creations[index] = create
    return removals, creations


def _remove(plan: Plan, outcome: Outcome, removals: dict[int, list[str]], gone: dict[str, str],
            concurrency: int, progress: Progress) -> None:
    for index, names in removals.items():
        tp = plan.targets[index]
        result = backend_call(tp.target, "removing zones", lambda m, t=tp, z=names: m.delete_zones(
            dict(t.target.options), z, concurrency=concurrency))
        outcome.removed += len(result.changed)
        for zone in result.changed:
            progress(f"target {tp.target.label}: removed zone {zone} (deleted in Designate: {gone.get(zone)})")
        outcome.record_failed(tp.target, result.failed)


def _create(plan: Plan, outcome: Outcome, creations: dict[int, list[str]], concurrency: int,
            progress: Progress) -> None:
    for index, names in creations.items():
        tp = plan.targets[index]
        result = backend_call(tp.target, "creating zones", lambda m, t=tp, z=names: m.create_zones(
            dict(t.target.options), [list(g) for g in t.groups], z, concurrency=concurrency))
        outcome.created += len(result.changed)
        outcome.already += len(result.unchanged)
        outcome.record_failed(tp.target, result.failed)
        progress(f"target {tp.target.label}: {len(result.changed)} zones created as secondaries of "
                 f"{', '.join(tp.masters)}, {len(result.unchanged)} already there, {len(result.failed)} failed "
                 f"({result.seconds:.1f}s)")


def _fix_serials(problems: list[SerialProblem], api: DesignateAPI, masters: list[Address],
                 wait: float, patience: Patience, keyrings: Keyrings | None, progress: Progress) -> None:
    fixable = [p for p in problems if p.primary is not None]
    for problem in fixable:
        api.bump_serial(api.find_zone(problem.zone))
    deadline = time.monotonic() + wait
    while fixable:
        answers = query_serials(masters, [p.zone for p in fixable], keyrings=keyrings,
                                **patience.kwargs(max(1.0, deadline - time.monotonic())))
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


def _wait_converged(expected: dict[str, int], nameservers: list[Address], wait: float,
                    patience: Patience) -> list[str]:
    """Zones some live nameserver still serves below ``expected`` (the masters' serials) after ``wait``.

    Only the nameservers are asked (the masters' serials are known from the preflight);
    a nameserver serving more than expected has taken a newer change: that counts as served.
    """
    deadline = time.monotonic() + wait
    pending = sorted(expected)
    while True:
        answers = query_serials(nameservers, pending,
                                **patience.kwargs(max(1.0, deadline - time.monotonic())))
        live = [n for n in nameservers if answers[n].reachable]
        pending = [zone for zone in pending
                   if any(zone not in answers[n].serials or serial_lag(expected[zone], answers[n].serials[zone])
                          for n in live)]
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(0.5)


def _say_list(say: Progress, title: str, problems: list[SerialProblem], limit: int = 50) -> None:
    """``title``, then one line per problem, the first ``limit`` of them."""
    say(title)
    for problem in problems[:limit]:
        say(f"    - {problem.line()}")
    if len(problems) > limit:
        say(f"    - ... and {len(problems) - limit} more")


def execute(plan: Plan, *, dry_run: bool = False, api: DesignateAPI | None = None, concurrency: int = 8,
            wait: float = 30.0, patience: Patience | None = None, last_served: dict[str, int] | None = None,
            keyrings: Keyrings | None = None, tsig_keys: list | None = None,
            db_serials: dict[str, int] | None = None, db_deleted: set[str] | None = None,
            apply: ApplySettings | None = None, lists_command: Sequence[str] | None = None,
            out: Progress = lambda line: None) -> Outcome:
    """Carry out ``plan`` (see the module docstring), saying what happens through ``out``.

    Before pools.yaml is written any failure raises and nothing is changed; after it,
    only a whole target failing to re-point raises, other problems are in the
    returned :class:`Outcome` (and :meth:`Outcome.error`).  ``last_served`` (zone ->
    serial, from ``dr check --state``) counts as served too: it covers servers that are gone.
    ``patience`` bounds every DNS check; ``keyrings`` signs the queries to a server (TSIG);
    zones a master refuses unsigned are asked again signed with ``tsig_keys``.  With
    ``db_serials`` (zone -> serial, from the remaining region's Designate database) the
    masters are asked only about a sample (:func:`_ask_masters`); ``db_deleted`` (the names of
    the zones it deleted) tells a zone deleted in Designate from one lost from its database
    (:mod:`designate_dr.ops.deleted`).  With ``apply``, the
    new pools are loaded into Designate before the re-point (:mod:`designate_dr.ops.apply`).
    ``lists_command`` (an argv, ``{file}`` and ``{host}``) copies a BIND target's primaries
    lists to its host after they are written here (``bind9_dr``'s lists mode).
    """
    patience = patience or Patience()
    started = time.monotonic()
    _check_lists_files(plan)
    outcome = Outcome(plan, dry_run)

    def say(line: str) -> None:
        outcome.lines.append(line)
        out(line)

    progress = say
    zones_by_target = _list_zones(plan)
    zones = sorted({z for zs in zones_by_target.values() for z in zs})
    outcome.zones = len(zones)
    masters = _masters(plan)
    regions = {a: r for a, r in plan.new.masters()}
    asked = (_ask_masters(zones, masters, _nameservers(plan), patience, last_served or {}, keyrings, regions,
                          tsig_keys, db_serials)
             if zones else MasterSerials({}, [], [], []))
    problems, warnings = asked.problems, asked.warnings
    # zones no master serves: deleted in Designate (removed below) or not known to be
    candidates = [p.zone for p in problems if p.primary is None]
    deleted = find_deleted(candidates, masters, plan.new, patience=patience,
                           masters_serve_some=bool(asked.serials), lacking=_lacking(plan, zones_by_target, candidates),
                           db_zones=None if db_serials is None else list(db_serials), db_deleted=db_deleted,
                           keyrings=keyrings, tsig_keys=tsig_keys)
    for problem in problems:
        problem.doubt = deleted.doubtful.get(problem.zone, problem.doubt)
        problem.lost = problem.zone in deleted.lost
    problems = [p for p in problems if p.zone not in deleted.gone]
    outcome.serial_problems = problems
    outcome.unanswered = asked.unanswered
    removals, creations = _removals_and_creations(plan, zones_by_target, asked.serials, deleted.gone)

    verb = {"failover": f"fail over from region {plan.region}", "failback": f"fail back to region {plan.region}"}
    say(f"plan: {verb[plan.action]} ({len(zones)} zones; regions after: {', '.join(plan.regions_after)})")
    if plan.new_text is None:
        say(f"  pools.yaml: unchanged ({plan.path} already "
            f"{'without' if plan.action == 'failover' else 'with'} region {plan.region})")
    else:
        say(f"  pools.yaml: {plan.path} (a timestamped backup is kept next to it)")
        say("".join(f"    - {line}\n" for line in plan.changes).rstrip("\n"))
    outcome.pending = plan.new_text is not None or bool(asked.lagging) or bool(removals) or bool(creations)
    for index, tp in enumerate(plan.targets):
        current = zones_by_target[index]
        todo = sum(1 for zone, masters_now in current.items()
                   if zone not in deleted.gone and tuple(masters_now) != tp.masters_of(zone))
        outcome.pending = outcome.pending or todo > 0
        more = ""
        if creations.get(index):
            more += f"; {len(creations[index])} to create (Designate has them, the pool's other targets hold them)"
        if removals.get(index):
            more += f"; {len(removals[index])} to remove (deleted in Designate)"
        say(f"  target {tp.target.label}: {todo} of {len(current)} zones to re-point to "
            f"{', '.join(tp.masters)}{more}")
    for index, names in removals.items():
        for zone in names:
            say(f"  remove zone {zone} from target {plan.targets[index].target.label}: deleted in Designate "
                f"({deleted.gone[zone]})")
    above = [p for p in problems if p.primary is not None]
    unknown = [p for p in problems if p.primary is None]
    if above:
        _say_list(say, f"  serials: {len(above)} zone(s) served above their masters' serial:", above)
    else:
        say("  serials: every zone's masters serve at least the highest served serial")
    if unknown:
        _say_list(say, f"  not removed: {len(unknown)} zone(s) served that no master serves, not known deleted "
                       "in Designate:", unknown)
    if asked.unanswered:
        say(f"  serials: {len(asked.unanswered)} zone(s) got no answer from any master in time "
            f"(first: {asked.unanswered[0]}); they are re-pointed, their serials are not checked")
    for warning in warnings:
        say(f"  warning: {warning}")
    if asked.lagging:
        say(f"  {len(asked.lagging)} zone(s) served below their masters' serial somewhere: transferred again")
    if dry_run:
        if apply is not None and apply_pools(plan.new, apply, say, dry_run=True):
            outcome.pending = True
        say("dry run: nothing changed" + ("" if outcome.pending else "; nothing to do either"))
        outcome.seconds = time.monotonic() - started
        return outcome

    if plan.new_text is not None:
        _write_pools(plan, outcome, progress)
    if apply is not None:
        # the workers stop before the pool update and start with the new pools, before the
        # re-point: none of them puts the old masters back
        outcome.pools_applied = apply_pools(plan.new, apply, progress)
    _remove(plan, outcome, removals, deleted.gone, concurrency, progress)
    _repoint(plan, outcome, concurrency, asked.serials, progress, lists_command)
    _create(plan, outcome, creations, concurrency, progress)
    expected = dict(asked.serials)
    if problems and api is not None:
        _fix_serials(problems, api, masters, wait, patience, keyrings, progress)
        expected.update({p.zone: p.fixed_serial for p in problems if p.fixed_serial})
    for problem in problems:
        if not problem.fixed_serial:
            expected.pop(problem.zone, None)
    outcome.not_converged = _wait_converged(expected, _nameservers(plan, new_only=True), wait, patience)
    outcome.seconds = time.monotonic() - started

    if outcome.changed_anything or outcome.failed or outcome.not_converged or outcome.unanswered:
        regions = ", ".join(plan.regions_after)
        say(f"done in {outcome.seconds:.1f}s: {outcome.repointed} zones re-pointed, {outcome.refreshed} "
            f"transferred again, {outcome.created} created, {outcome.removed} removed (deleted in Designate), "
            f"{outcome.already} already right, {len(outcome.failed)} failed; "
            f"{outcome.zones - len(outcome.not_converged)}/{outcome.zones} "
            "zones served with the masters' serial")
        if apply is None:
            say("next: load the new pools into Designate and restart what caches them, in every region "
                f"that runs Designate ({regions}), or run again with --apply-pools:")
            say(f"  systemctl stop {' '.join(RESTART)}   # no worker may put the old masters back")
            say(f"  designate-manage pool update --file {plan.path}")
            say(f"  systemctl start {' '.join(RESTART)}")
        elif apply.service_command is None and outcome.pools_applied:
            say(f"next: start {', '.join(apply.services)} on every host of the region(s) ({regions})")
    else:
        say(f"nothing to do: pools.yaml unchanged, all {outcome.already} zones already on their masters "
            f"({outcome.seconds:.1f}s)")
    return outcome
