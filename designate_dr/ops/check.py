"""``dr check``: is every zone served with the same SOA serial by every nameserver of every region?

For each zone the reference is the highest serial any nameserver serves (RFC 1982
serial arithmetic).  A server serving less is *lagging* (by the difference: with
Designate's timestamp serials, seconds), a server that answers but not with the
zone's SOA has it *missing*, a server that answers nothing is *unreachable*, and a
region whose nameservers are all unreachable is down.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from designate_dr.names import bare_zone_name
from designate_dr.ops.errors import PoolsError
from designate_dr.ops.pools import Address, PoolsFile
from designate_dr.ops.soa import ServerAnswers, query_serials

EXIT_IN_SYNC = 0
EXIT_DEGRADED = 1
EXIT_REGION_DOWN = 2


def serial_lag(highest: int, serial: int) -> int:
    """How far ``serial`` is behind ``highest`` (RFC 1982), 0 when not behind."""
    diff = (highest - serial) % 2**32
    return diff if 0 < diff < 2**31 else 0


def highest_serial(serials: Iterable[int]) -> int | None:
    best: int | None = None
    for serial in serials:
        if best is None or serial_lag(serial, best) > 0:
            best = serial
    return best


@dataclass(frozen=True)
class Problem:
    zone: str
    region: str
    server: str
    state: str  # lagging | missing
    serial: int | None
    expected: int | None
    lag: int
    reason: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"zone": self.zone, "region": self.region, "server": self.server, "state": self.state,
                "serial": self.serial, "expected": self.expected, "lag": self.lag, "reason": self.reason}


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

    @property
    def exit_code(self) -> int:
        if self.regions_down:
            return EXIT_REGION_DOWN
        if self.problems or any(not s.reachable for s in self.servers):
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
                "problems": [p.as_json() for p in self.problems]}

    def json(self) -> str:
        return json.dumps(self.as_json(), indent=2, sort_keys=True)

    def table(self, max_problems: int = 50) -> str:
        rows = [("REGION", "SERVER", "STATE", "IN SYNC", "LAGGING", "MISSING", "MAX LAG")]
        for s in self.servers:
            state = "up" if s.reachable else f"UNREACHABLE ({s.error})"
            rows.append((s.region, s.server, state, str(s.in_sync), str(s.lagging), str(s.missing),
                         str(s.max_lag)))
        lines = _columns(rows)
        if self.problems:
            lines.append("")
            prows = [("ZONE", "REGION", "SERVER", "STATE", "SERIAL", "HIGHEST", "LAG")]
            for p in self.problems[:max_problems]:
                prows.append((p.zone, p.region, p.server, p.state + (f" ({p.reason})" if p.reason else ""),
                              "-" if p.serial is None else str(p.serial),
                              "-" if p.expected is None else str(p.expected), str(p.lag)))
            lines += _columns(prows)
            if len(self.problems) > max_problems:
                lines.append(f"... and {len(self.problems) - max_problems} more (see --format json)")
        lines.append("")
        down = f"; regions unreachable: {', '.join(self.regions_down)}" if self.regions_down else ""
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
        samples: list[tuple[dict[str, str], float]] = []
        for s in self.servers:
            for state, count in (("in_sync", s.in_sync), ("lagging", s.lagging), ("missing", s.missing)):
                samples.append(({"region": s.region, "server": s.server, "state": state}, count))
        metric("nameserver_zones", "gauge", "Zones on a nameserver by state", samples)
        metric("nameserver_max_lag", "gauge", "Largest serial lag of a zone on the nameserver",
               [({"region": s.region, "server": s.server}, s.max_lag) for s in self.servers])
        metric("zone_lag", "gauge", "Serial lag of a lagging zone on a nameserver (only lagging zones)",
               [({"zone": p.zone, "region": p.region, "server": p.server}, p.lag)
                for p in self.problems if p.state == "lagging"])
        metric("zone_missing", "gauge", "1 for a zone a reachable nameserver does not serve",
               [({"zone": p.zone, "region": p.region, "server": p.server}, 1)
                for p in self.problems if p.state == "missing"])
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
    from designate_dist import atomic
    zones = load_state(path)
    for zone, serial in report.highest.items():
        if serial is not None:
            zones[zone] = highest_serial([serial] + ([zones[zone]] if zone in zones else []))
    atomic.write_text(Path(path), json.dumps({"zones": zones, "updated": time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=1, sort_keys=True) + "\n")


def check(pools: PoolsFile, zones: list[str], *, timeout: float = 1.0, retries: int = 2,
          servers: list[tuple[Address, str]] | None = None) -> CheckReport:
    """Ask every nameserver of ``pools`` (or ``servers``: address, region) for every zone's serial."""
    started = time.monotonic()
    if servers is None:
        servers = list(dict.fromkeys((ns.address, ns.region) for ns in pools.nameservers))
    answers = query_serials([a for a, _ in servers], zones, timeout=timeout, retries=retries)
    return build_report(zones, servers, answers, time.monotonic() - started)


def build_report(zones: list[str], servers: list[tuple[Address, str]],
                 answers: dict[Address, ServerAnswers], seconds: float) -> CheckReport:
    names = [z if z.endswith(".") else z + "." for z in zones]
    reachable = [(a, r) for a, r in servers if answers[a].reachable]
    problems: list[Problem] = []
    counts = {a: [0, 0, 0, 0] for a, _ in servers}  # in sync, lagging, missing, max lag
    in_sync = 0
    highest: dict[str, int | None] = {}
    for zone in names:
        top = highest_serial(answers[a].serials[zone] for a, _ in reachable if zone in answers[a].serials)
        highest[zone] = top
        zone_ok = bool(reachable)
        for address, region in reachable:
            serial = answers[address].serials.get(zone)
            count = counts[address]
            if serial is None:
                zone_ok = False
                count[2] += 1
                problems.append(Problem(zone, region, str(address), "missing", None, top, 0,
                                        answers[address].missing.get(zone, "")))
                continue
            lag = serial_lag(top, serial) if top is not None else 0
            if lag:
                zone_ok = False
                count[1] += 1
                count[3] = max(count[3], lag)
                problems.append(Problem(zone, region, str(address), "lagging", serial, top, lag))
            else:
                count[0] += 1
        in_sync += zone_ok
    statuses = tuple(ServerStatus(region, str(a), answers[a].reachable, answers[a].error, *counts[a])
                     for a, region in servers)
    regions = tuple(dict.fromkeys(r for _, r in servers))
    down = tuple(r for r in regions if not any(s.reachable for s in statuses if s.region == r))
    return CheckReport(len(names), seconds, statuses, tuple(problems), regions, down, in_sync, highest)
