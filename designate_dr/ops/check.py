"""``dr check``: is every zone served with the same SOA serial by every nameserver of every region?

The masters (every region's mdns) are asked too.  For each zone the reference is the
highest serial any nameserver or master serves (RFC 1982 serial arithmetic).  A server
serving less is *lagging* (by the difference: with Designate's timestamp serials,
seconds), a server that answers but not with the zone's SOA has it *missing* (absent),
a server that gave no answer for the zone within its tries (or ``max_time``) has *no
answer* yet, a server that answers nothing is *unreachable*, and a region whose
nameservers are all unreachable is down.  A master unreachable or behind makes the
check degraded: a dead mdns shows before zones lag.
"""
from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from designate_dr.names import bare_zone_name
from designate_dr.ops import atomic
from designate_dr.ops.errors import PoolsError
from designate_dr.ops.pools import Address, PoolsFile
from designate_dr.ops.soa import Keyrings, ServerAnswers, query_serials
from designate_dr.serial import highest_serial, serial_lag

EXIT_IN_SYNC = 0
EXIT_DEGRADED = 1
EXIT_REGION_DOWN = 2


NAMESERVER, MASTER = "nameserver", "master"
LAGGING, MISSING, NO_ANSWER = "lagging", "missing", "no-answer"


@dataclass(frozen=True)
class Problem:
    zone: str
    region: str
    server: str
    state: str  # lagging | missing | no-answer
    serial: int | None
    expected: int | None
    lag: int
    reason: str = ""
    role: str = NAMESERVER

    def as_json(self) -> dict[str, Any]:
        return {"zone": self.zone, "region": self.region, "server": self.server, "state": self.state,
                "serial": self.serial, "expected": self.expected, "lag": self.lag, "reason": self.reason,
                "role": self.role}


@dataclass(frozen=True)
class ServerStatus:
    region: str
    server: str
    reachable: bool
    error: str | None
    in_sync: int
    lagging: int
    missing: int
    max_lag: int
    no_answer: int = 0
    role: str = NAMESERVER
    rtt_ms: float | None = None
    retried: int = 0

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CheckReport:
    zones: int
    seconds: float
    servers: tuple[ServerStatus, ...]
    problems: tuple[Problem, ...]
    regions: tuple[str, ...]
    regions_down: tuple[str, ...]
    zones_in_sync: int
    highest: dict[str, int | None] = field(repr=False, default_factory=dict)
    masters: tuple[ServerStatus, ...] = ()
    lists: tuple[Any, ...] = ()  # bindlists.ListsState of BIND targets in the lists mode

    @property
    def exit_code(self) -> int:
        if self.regions_down:
            return EXIT_REGION_DOWN
        if (self.problems or any(not s.reachable for s in self.servers + self.masters)
                or any(state.stale for state in self.lists)):
            return EXIT_DEGRADED
        return EXIT_IN_SYNC

    @property
    def status(self) -> str:
        return {EXIT_IN_SYNC: "in-sync", EXIT_DEGRADED: "degraded",
                EXIT_REGION_DOWN: "region-unreachable"}[self.exit_code]

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "exit_code": self.exit_code, "zones": self.zones,
                "zones_in_sync": self.zones_in_sync, "seconds": round(self.seconds, 3),
                "regions": list(self.regions), "regions_down": list(self.regions_down),
                "servers": [s.as_json() for s in self.servers],
                "masters": [s.as_json() for s in self.masters],
                "problems": [p.as_json() for p in self.problems],
                "bind_lists": [state.as_json() for state in self.lists]}

    def json(self) -> str:
        return json.dumps(self.as_json(), indent=2, sort_keys=True)

    def table(self, max_problems: int = 50) -> str:
        rows = [("REGION", "SERVER", "ROLE", "STATE", "IN SYNC", "LAGGING", "MISSING", "NO ANSWER",
                 "MAX LAG", "RTT")]
        for s in self.servers + self.masters:
            state = "up" if s.reachable else f"UNREACHABLE ({s.error})"
            rtt = "-" if s.rtt_ms is None else f"{s.rtt_ms:.0f}ms"
            rows.append((s.region, s.server, s.role, state, str(s.in_sync), str(s.lagging), str(s.missing),
                         str(s.no_answer), str(s.max_lag), rtt))
        lines = _columns(rows)
        if self.problems:
            lines.append("")
            prows = [("ZONE", "REGION", "SERVER", "STATE", "SERIAL", "HIGHEST", "LAG")]
            for p in self.problems[:max_problems]:
                server = p.server if p.role == NAMESERVER else f"{p.server} ({p.role})"
                prows.append((p.zone, p.region, server, p.state + (f" ({p.reason})" if p.reason else ""),
                              "-" if p.serial is None else str(p.serial),
                              "-" if p.expected is None else str(p.expected), str(p.lag)))
            lines += _columns(prows)
            if len(self.problems) > max_problems:
                lines.append(f"... and {len(self.problems) - max_problems} more (see --format json)")
        for state in self.lists:
            if state.stale:
                lines += ["", f"BIND lists: target {state.target}: {state.file} {state.reason}"]
        lines.append("")
        down = f"; regions unreachable: {', '.join(self.regions_down)}" if self.regions_down else ""
        masters_down = [s.server for s in self.masters if not s.reachable]
        if masters_down:
            down += f"; masters unreachable: {', '.join(masters_down)}"
        lines.append(f"{self.status}: {self.zones_in_sync}/{self.zones} zones in sync on "
                     f"{len(self.servers)} nameservers in {len(self.regions)} regions "
                     f"({self.seconds:.2f}s){down}")
        return "\n".join(lines)

    def prometheus(self) -> str:
        """Prometheus text exposition format (textfile collector or scrape)."""
        out: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
            out.append(f"# HELP designate_dr_{name} {help_text}")
            out.append(f"# TYPE designate_dr_{name} {kind}")
            for labels, value in samples:
                text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
                out.append(f"designate_dr_{name}{{{text}}} {_number(value)}" if text
                           else f"designate_dr_{name} {_number(value)}")

        metric("check_status", "gauge", "0 all zones in sync, 1 degraded, 2 a region unreachable",
               [({}, self.exit_code)])
        metric("check_duration_seconds", "gauge", "How long the check took", [({}, self.seconds)])
        metric("zones", "gauge", "Zones checked", [({}, self.zones)])
        metric("zones_in_sync", "gauge", "Zones served with the same serial by every nameserver",
               [({}, self.zones_in_sync)])
        metric("region_up", "gauge", "1 when at least one nameserver of the region answers",
               [({"region": r}, 0 if r in self.regions_down else 1) for r in self.regions])
        metric("nameserver_up", "gauge", "1 when the nameserver answers",
               [({"region": s.region, "server": s.server}, int(s.reachable)) for s in self.servers])
        metric("master_up", "gauge", "1 when the master (mdns) answers",
               [({"region": s.region, "server": s.server}, int(s.reachable)) for s in self.masters])
        for role, statuses in (("nameserver", self.servers), ("master", self.masters)):
            samples: list[tuple[dict[str, str], float]] = []
            for s in statuses:
                for state, count in (("in_sync", s.in_sync), ("lagging", s.lagging), ("missing", s.missing),
                                     ("no_answer", s.no_answer)):
                    samples.append(({"region": s.region, "server": s.server, "state": state}, count))
            metric(f"{role}_zones", "gauge", f"Zones on a {role} by state", samples)
        if self.lists:
            metric("bind_lists_stale", "gauge", "1 when a BIND target's primaries lists file (lists mode) "
                                                "differs from pools.yaml",
                   [({"target": state.target}, int(state.stale)) for state in self.lists])
        metric("nameserver_max_lag", "gauge", "Largest serial lag of a zone on the nameserver",
               [({"region": s.region, "server": s.server}, s.max_lag) for s in self.servers])
        metric("zone_lag", "gauge", "Serial lag of a lagging zone on a nameserver (only lagging zones)",
               [({"zone": p.zone, "region": p.region, "server": p.server}, p.lag)
                for p in self.problems if p.state == LAGGING and p.role == NAMESERVER])
        metric("zone_missing", "gauge", "1 for a zone a reachable nameserver does not serve",
               [({"zone": p.zone, "region": p.region, "server": p.server}, 1)
                for p in self.problems if p.state == MISSING and p.role == NAMESERVER])
        return "\n".join(out) + "\n"

    def render(self, fmt: str) -> str:
        return {"table": self.table, "json": self.json, "prometheus": self.prometheus}[fmt]()


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6f}"


def read_zone_file(path: Path | str) -> list[str]:
    """Zone names, one a line; blank lines and ``#`` comments ignored; lower-case, trailing dot added."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PoolsError(f"{path}: cannot read zone list: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PoolsError(f"{path}: zone list is not UTF-8 text (byte {exc.start})") from None
    zones = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            try:
                zones.append(bare_zone_name(line) + ".")
            except ValueError as exc:
                raise PoolsError(f"{path}: line {number}: {exc}") from None
    return list(dict.fromkeys(zones))


def load_state(path: Path | str) -> dict[str, int]:
    """The highest serial served per zone, as recorded by :func:`save_state` ({} when no file yet)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise PoolsError(f"{path}: not a dr check state file: {exc}") from None
    zones = data.get("zones") if isinstance(data, dict) else None
    if not isinstance(zones, dict) or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**32 for s in zones.values()):
        raise PoolsError(f"{path}: not a dr check state file: no zones, or a serial that is not one")
    return {str(z): s for z, s in zones.items()}


def save_state(path: Path | str, report: CheckReport) -> None:
    """Remember the highest serial ever served per zone (merged with what ``path`` has).

    A failover reads it (``--state``) to know what servers that are gone last served.
    """
    zones = load_state(path)
    for zone, serial in report.highest.items():
        if serial is not None:
            zones[zone] = highest_serial([serial] + ([zones[zone]] if zone in zones else []))
    atomic.write_text(Path(path), json.dumps({"zones": zones, "updated": time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=1, sort_keys=True) + "\n")


MASTER_SAMPLE = 256


def master_zones(zones: list[str], sample: int | None, also: Iterable[str] = ()) -> list[str]:
    """The zones the masters are asked about: ``sample`` spread over ``zones`` (all with
    None), plus ``also`` (zones the nameservers do not agree on)."""
    if sample is None or sample >= len(zones):
        return list(zones)
    step = len(zones) / max(1, sample)
    chosen = {zones[int(i * step)] for i in range(sample)}
    chosen.update(also)
    return [z for z in zones if z in chosen]


def check(pools: PoolsFile, zones: list[str], *, timeout: float = 1.0, retries: int = 3,
          window: int = 256, max_time: float | None = None, masters: bool = True,
          master_sample: int | None = MASTER_SAMPLE, keyrings: Keyrings | None = None,
          tsig_keys: list | None = None, servers: list[tuple[Address, str]] | None = None) -> CheckReport:
    """Ask every nameserver of ``pools`` (or ``servers``: address, region) for every zone's
    serial, then, with ``masters``, every master about ``master_sample`` zones and every
    zone the nameservers do not agree on (a designate-mdns answers ~100 queries a second:
    asking it about 10,000 zones each minute would keep it busy).  ``max_time`` bounds
    each of the two rounds.  Zones a master refuses unsigned are asked again signed with
    ``tsig_keys`` (:mod:`designate_dr.ops.tsig`)."""
    started = time.monotonic()
    if servers is None:
        servers = list(dict.fromkeys((ns.address, ns.region) for ns in pools.nameservers))
    names = [z if z.endswith(".") else z + "." for z in zones]
    patience = {"timeout": timeout, "retries": retries, "window": window, "max_time": max_time}
    answers = query_serials([a for a, _ in servers], names, keyrings=keyrings, **patience)
    master_list = pools.masters() if masters else []
    master_list = [(a, r) for a, r in master_list if a not in answers]
    if master_list:
        first = build_report(names, servers, answers, 0.0)
        unsure = {p.zone for p in first.problems}
        asked = master_zones(names, master_sample, unsure)
        answers.update(query_serials([a for a, _ in master_list], asked, keyrings=keyrings, **patience))
        if tsig_keys:
            from designate_dr.ops.tsig import ask_refused_signed
            ask_refused_signed(answers, [a for a, _ in master_list], tsig_keys, **patience)
    report = build_report(names, servers, answers, time.monotonic() - started, master_list)
    from designate_dr.ops.bindlists import lists_states  # bindlists imports failover, which imports this
    return dataclasses.replace(report, lists=tuple(lists_states(pools)))


def _status(address: Address, region: str, answers: ServerAnswers, counts: list[int], role: str) -> ServerStatus:
    rtt = None if answers.srtt is None else round(answers.srtt * 1000, 1)
    return ServerStatus(region, str(address), answers.reachable, answers.error, *counts[:4],
                        no_answer=counts[4], role=role, rtt_ms=rtt, retried=answers.retried)


def build_report(zones: list[str], servers: list[tuple[Address, str]],
                 answers: dict[Address, ServerAnswers], seconds: float,
                 masters: list[tuple[Address, str]] | None = None) -> CheckReport:
    names = [z if z.endswith(".") else z + "." for z in zones]
    masters = masters or []
    everyone = [(a, r, NAMESERVER) for a, r in servers] + [(a, r, MASTER) for a, r in masters]
    reachable = [(a, r, role) for a, r, role in everyone if answers[a].reachable]
    problems: list[Problem] = []
    counts = {a: [0, 0, 0, 0, 0] for a, _, _ in everyone}  # in sync, lagging, missing, max lag, no answer
    in_sync = 0
    highest: dict[str, int | None] = {}
    for zone in names:
        top = highest_serial(answers[a].serials[zone] for a, _, _ in reachable if zone in answers[a].serials)
        highest[zone] = top
        zone_ok = any(role == NAMESERVER for _, _, role in reachable)
        for address, region, role in reachable:
            got = answers[address]
            serial = got.serials.get(zone)
            count = counts[address]
            if serial is None and zone not in got.missing and zone not in got.unanswered:
                continue  # not asked (a master asked about a sample)
            if serial is None:
                zone_ok = False
                if zone in got.unanswered:
                    count[4] += 1
                    problems.append(Problem(zone, region, str(address), NO_ANSWER, None, top, 0,
                                            "no answer within the tries", role))
                else:
                    count[2] += 1
                    problems.append(Problem(zone, region, str(address), MISSING, None, top, 0,
                                            got.missing.get(zone, ""), role))
                continue
            lag = serial_lag(top, serial) if top is not None else 0
            if lag:
                zone_ok = False
                count[1] += 1
                count[3] = max(count[3], lag)
                problems.append(Problem(zone, region, str(address), LAGGING, serial, top, lag, "", role))
            else:
                count[0] += 1
        in_sync += zone_ok
    statuses = tuple(_status(a, r, answers[a], counts[a], NAMESERVER) for a, r in servers)
    master_statuses = tuple(_status(a, r, answers[a], counts[a], MASTER) for a, r in masters)
    regions = tuple(dict.fromkeys(r for _, r in servers))
    down = tuple(r for r in regions if not any(s.reachable for s in statuses if s.region == r))
    return CheckReport(len(names), seconds, statuses, tuple(problems), regions, down, in_sync, highest,
                       master_statuses)
