"""What the PowerDNS and BIND DR backends share.

Pool target options (all values are strings, as in pools.yaml):

``region``
    The region this target lives in (e.g. ``region1``).
``masters_<region>``
    That region's mdns servers: ``host[:port]`` separated by commas or spaces
    (IPv6 as ``[addr]:port``); the port defaults to 5354 (Designate's mdns).
    The target's own ``masters:`` list from pools.yaml counts as the masters of
    ``region`` when no ``masters_<region>`` option names them.
``region_preference``
    Comma-separated region names, most preferred first.  Regions not named
    follow in name order; without it the target's own ``region`` comes first.

Every zone is created with the masters of all regions in that order, so a
zone keeps transferring when one region's mdns is gone.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
from designate import exceptions
from designate.backend import base

from designate_dr.names import bare_zone_name

_LOG = logging.getLogger(__name__)
DEFAULT_MASTER_PORT = 5354
MASTERS_PREFIX = "masters_"


#: What a bulk re-point did to one zone.
CHANGED, REFRESHED, UNCHANGED = "changed", "refreshed", "unchanged"


@dataclass
class RepointResult:
    """What a bulk re-point did, zone names in Designate's form (trailing dot).

    ``changed``: new masters; ``refreshed``: masters already right, but the zone
    held less than the masters' serial and was transferred again; ``in_bulk``: the
    changed zones that moved in one step for the whole server (PowerDNS's catalog
    consumer, BIND's primaries lists), ``via`` says which.
    """

    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    refreshed: list[str] = field(default_factory=list)
    in_bulk: list[str] = field(default_factory=list)  # of ``changed``: moved at once, by ``via``
    via: str = ""  # what moved ``in_bulk`` (the catalog zone, the primaries lists)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True, order=True)
class Master:
    """One master (primary) a secondary zone transfers from."""

    host: str
    port: int = DEFAULT_MASTER_PORT

    @classmethod
    def parse(cls, text: str, default_port: int = DEFAULT_MASTER_PORT) -> Master:
        """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address."""
        text = text.strip()
        host, port = text, default_port
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            if rest:
                port = _port(rest.lstrip(":"), text)
        elif text.count(":") == 1:
            host, _, port_text = text.partition(":")
            port = _port(port_text, text)
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"master {text!r} is not an IP address[:port]") from None
        return cls(str(address), port)

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"master {whole!r} has a bad port")
    return int(text)


def parse_masters(value: str | Iterable[str | Master] | None,
                  default_port: int = DEFAULT_MASTER_PORT) -> list[Master]:
    """Masters from an option string (commas/spaces) or a list; order kept, duplicates dropped."""
    if value is None:
        return []
    items = re.split(r"[,\s]+", value) if isinstance(value, str) else list(value)
    out: list[Master] = []
    for item in items:
        if isinstance(item, Master):
            master = item
        elif not str(item).strip():
            continue
        else:
            master = Master.parse(str(item), default_port)
        if master not in out:
            out.append(master)
    return out


def option(options: Any, key: str, default: Any = None) -> Any:
    """``options[key]`` for a dict or Designate's PoolTargetOptionList."""
    if options is None:
        return default
    value = options.get(key, default)
    return default if value is None else value


def option_items(options: Any) -> dict[str, Any]:
    """All options as a plain dict."""
    if options is None:
        return {}
    if isinstance(options, Mapping):
        return dict(options)
    return {item.key: item.value for item in options}


def float_option(options: Any, key: str, default: float) -> float:
    value = option(options, key, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise exceptions.Backend(f"option {key}={value!r} is not a number") from None


def bool_option(options: Any, key: str, default: bool = False) -> bool:
    value = option(options, key, default)
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _target_master(master: Any) -> Master:
    if isinstance(master, Mapping) or hasattr(master, "get"):
        host, port = master.get("host"), master.get("port")
    else:
        host, port = master.host, master.port
    return Master.parse(str(host), int(port or DEFAULT_MASTER_PORT))


def region_groups(options: Any, target_masters: Iterable[Any] = ()) -> list[list[Master]]:
    """Each region's masters, most preferred region first (see the module docstring)."""
    items = option_items(options)
    own = str(items.get("region") or "").strip()
    by_region: dict[str, list[Master]] = {}
    try:
        for key, value in items.items():
            if key.startswith(MASTERS_PREFIX) and len(key) > len(MASTERS_PREFIX):
                by_region[key[len(MASTERS_PREFIX):]] = parse_masters(value)
        local = [_target_master(m) for m in target_masters or ()]
    except ValueError as exc:
        raise exceptions.Backend(f"bad masters option: {exc}") from None
    if local and not by_region.get(own):
        by_region[own] = local
    preference = [r.strip() for r in str(items.get("region_preference") or "").split(",")
                  if r.strip()]
    if not preference and own:
        preference = [own]
    order = [r for r in preference if r in by_region]
    order += sorted(r for r in by_region if r not in order)
    seen: set[Master] = set()
    groups = []
    for region in order:
        group = [m for m in by_region[region] if m not in seen]
        seen.update(group)
        if group:
            groups.append(group)
    return groups


def region_masters(options: Any, target_masters: Iterable[Any] = ()) -> list[Master]:
    """Masters of every region, most preferred region first (see the module docstring)."""
    return [m for group in region_groups(options, target_masters) for m in group]


def zone_key(zone: str, lists: int | None = None) -> int:
    """The stable hash that rotates a zone's masters; with ``lists``, the index of the
    named primaries list the zone refers to (``bind9_dr``'s ``primaries_list`` mode)."""
    key = zlib.crc32(str(zone).strip().lower().rstrip(".").encode())
    return key % lists if lists else key


def masters_for(zone: str, groups: Sequence[Sequence[Master]], lists: int | None = None) -> list[Master]:
    """The masters of ``zone``: regions in preference order, each region's masters rotated
    by a stable hash of the zone name (:func:`zone_key`).

    Stock bind9 shuffles a region's mdns at random to spread the transfers; a random
    order would make every update of a zone look like a change of its masters.  The
    rotation spreads the zones over a region's mdns the same way, and a zone keeps its
    order from one call to the next.  With ``lists`` the masters of the zone's primaries
    list (the same order whenever a region's size divides ``lists``).
    """
    return rotated(zone_key(zone, lists), groups)


def rotated(key: int, groups: Sequence[Sequence[Master]]) -> list[Master]:
    """Regions in order, each region's masters rotated by ``key``."""
    out: list[Master] = []
    for group in groups:
        if group:
            turn = key % len(group)
            out += [m for m in list(group[turn:]) + list(group[:turn]) if m not in out]
    return out


def zone_name(name: str) -> str:
    """``name`` checked as a DNS zone name and returned lower-case without the trailing dot.

    Strict on purpose: the name ends up in an rndc zone statement and a URL.
    """
    try:
        return bare_zone_name(name)
    except ValueError as exc:
        raise exceptions.Backend(str(exc)) from None


def designate_name(name: str) -> str:
    """``example.org`` -> ``example.org.``."""
    return name if name.endswith(".") else name + "."


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with every secret replaced by ``***`` and cut to one line."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    line = " ".join(str(text).split())
    return line[:300]


def bounded_map(func: Callable[[str], Any], items: Iterable[str],
                concurrency: int) -> Iterable[tuple[str, Any, BaseException | None]]:
    """``(item, result, error)`` for every item, at most ``concurrency`` at a time."""
    items = list(items)
    workers = max(1, min(int(concurrency), len(items) or 1))
    if workers == 1:
        for item in items:
            try:
                yield item, func(item), None
            except Exception as exc:  # noqa: BLE001 - reported per item
                yield item, None, exc
        return

    def call(item: str) -> tuple[str, Any, BaseException | None]:
        try:
            return item, func(item), None
        except Exception as exc:  # noqa: BLE001 - reported per item
            return item, None, exc

    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(call, items)


class MasterProbe:
    """SOA queries to masters; a master that does not answer is skipped for ``forget_after`` s.

    One probe lives as long as its backend (a worker's), so a dead region costs
    one timeout per ``forget_after`` seconds, not one per zone; thread-safe.
    """

    def __init__(self, timeout: float = 1.0, forget_after: float = 30.0) -> None:
        self.timeout = timeout
        self.forget_after = forget_after
        self._down: dict[Master, float] = {}  # master -> when to try it again
        self._lock = threading.Lock()

    def _is_down(self, master: Master) -> bool:
        with self._lock:
            until = self._down.get(master)
            if until is not None and until <= time.monotonic():
                del self._down[master]
                until = None
            return until is not None

    def serial(self, zone: str, master: Master) -> int | None:
        """The serial ``master`` serves for ``zone``; None when it does not serve it or is down."""
        if self._is_down(master):
            return None
        query = dns.message.make_query(designate_name(zone), dns.rdatatype.SOA)
        try:
            reply = dns.query.udp(query, master.host, port=master.port, timeout=self.timeout)
        except (dns.exception.DNSException, OSError):
            with self._lock:
                self._down[master] = time.monotonic() + self.forget_after
            return None
        if reply.rcode() != dns.rcode.NOERROR:
            return None
        for rrset in reply.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return int(rrset[0].serial)
        return None

    def serials(self, zone: str, masters: Iterable[Master]) -> dict[Master, int | None]:
        """Every master's serial for ``zone`` (None: down or not serving it), in order."""
        return {master: self.serial(zone, master) for master in masters}

    def master_serial(self, zone: str, masters: Iterable[Master]) -> int | None:
        """The serial the first serving master serves (None if none does)."""
        for master in masters:
            serial = self.serial(zone, master)
            if serial is not None:
                return serial
        return None


def repoint_masters(plugin: str, masters: str | Iterable[str] | Iterable[Iterable[str]]) -> list[list[Master]]:
    """The masters a ``repoint_zones`` call asks for, as region groups (a flat list is one
    group, kept in its order); a Backend error when none or bad."""
    items = [masters] if isinstance(masters, str) else list(masters)
    nested = bool(items) and all(not isinstance(i, (str, Master)) for i in items)
    try:
        groups = [parse_masters(list(g)) for g in items] if nested else [parse_masters(items)]
    except ValueError as exc:
        raise exceptions.Backend(f"{plugin}: {exc}") from None
    groups = [g for g in groups if g]
    if not groups:
        raise exceptions.Backend(f"{plugin}: repoint_zones needs at least one master")
    if not nested:
        return [[m] for m in groups[0]]  # a flat list: exactly that order for every zone
    return groups


def record_repoint(result: RepointResult, outcomes: Iterable[tuple[str, Any, BaseException | None]],
                   *secrets: str | None) -> None:
    """Sort ``bounded_map`` outcomes (CHANGED, REFRESHED, UNCHANGED or a bool "changed")
    into ``result`` (errors scrubbed of secrets)."""
    for name, outcome, error in outcomes:
        if error is not None:
            result.failed[designate_name(name)] = scrub(str(error), *secrets)
        elif outcome == REFRESHED:
            result.refreshed.append(designate_name(name))
        elif outcome is True or outcome == CHANGED:
            result.changed.append(designate_name(name))
        else:
            result.unchanged.append(designate_name(name))


def wanted_serials(serials: Mapping[str, int | None] | None) -> dict[str, int]:
    """``serials`` (zone -> the masters' serial) keyed like the backends' zone names."""
    out: dict[str, int] = {}
    for zone, serial in (serials or {}).items():
        if serial is not None:
            out[str(zone).strip().lower().rstrip(".")] = int(serial)
    return out


class RegionBackend(base.Backend):
    """create/update/delete shared by the DR plugins.

    Every zone gets the masters of all regions (:func:`region_masters`);
    create converges an existing zone in place, update is create, delete of a
    missing zone succeeds.  Subclasses say how: :meth:`_connect`,
    :meth:`_converge`, :meth:`_delete`.

    A target with a bad option (no masters, an unparsable port, an unreadable
    rndc key, ...) does not raise while Designate's worker builds the pool's
    backends (that would break every zone action of the pool): it logs one
    error line, and each of *its* zone actions fails with that line.
    """

    __backend_status__ = "untested"

    def __init__(self, target: Any) -> None:
        super().__init__(target)
        self.zone_masters: list[Master] = []
        self.master_groups: list[list[Master]] = []
        self.misconfigured: str | None = None
        try:
            self.master_groups = region_groups(self.options, self.masters)
            self.zone_masters = [m for group in self.master_groups for m in group]
            if not self.zone_masters:
                raise exceptions.Backend(f"{self.__plugin_name__}: no masters: set "
                                         "masters_<region> options or the target's masters")
            self._connect()
        except exceptions.Backend as exc:
            self.misconfigured = " ".join(str(exc).split())[:300]
            _LOG.error("%s target %s is misconfigured, its zone actions will fail until it is "
                       "fixed (the pool's other targets are not affected): %s", self.__plugin_name__,
                       self._describe(target), self.misconfigured)

    @staticmethod
    def _describe(target: Any) -> str:
        for attr in ("description", "id"):
            value = getattr(target, attr, None) if not isinstance(target, Mapping) else target.get(attr)
            if value:
                return str(value)
        return "(no id)"

    def _connect(self) -> None:
        """Set up the connection objects from the options (raise exceptions.Backend when bad)."""

    def masters_for(self, name: str) -> list[Master]:
        """The masters of zone ``name`` (:func:`masters_for`)."""
        return masters_for(name, self.master_groups)

    def _check_configured(self) -> None:
        if self.misconfigured is not None:
            raise exceptions.Backend(f"misconfigured target: {self.misconfigured}")

    def _converge(self, name: str, zone: Any) -> bool:
        """Make ``name`` a secondary of :attr:`zone_masters`; True if anything changed."""
        raise NotImplementedError

    def _delete(self, name: str, hard: bool) -> bool:
        """Remove ``name``; False if it was not there."""
        raise NotImplementedError

    def _server(self) -> str:
        raise NotImplementedError

    def create_zone(self, context: Any, zone: Any) -> None:
        """Create the secondary zone, or converge an existing one's masters in place."""
        self._check_configured()
        name = zone_name(zone["name"])
        if self._converge(name, zone):
            _LOG.info("%s: %s now transfers from %s", self.__plugin_name__, name,
                      ", ".join(map(str, self.zone_masters)))

    def _update(self, name: str, zone: Any) -> bool:
        """Converge an existing zone (the common case of ``update_zone``); default: :meth:`_converge`."""
        return self._converge(name, zone)

    def update_zone(self, context: Any, zone: Any) -> None:
        """Converge the zone's masters (creating it when missing), changing nothing when they are right."""
        self._check_configured()
        name = zone_name(zone["name"])
        if self._update(name, zone):
            _LOG.info("%s: %s now transfers from %s", self.__plugin_name__, name,
                      ", ".join(map(str, self.zone_masters)))

    def delete_zone(self, context: Any, zone: Any, zone_params: Any = None) -> None:
        """Delete the zone; a zone that is not there counts as deleted."""
        self._check_configured()
        name = zone_name(zone["name"])
        hard = bool(zone_params and zone_params.get("hard_delete"))
        if not self._delete(name, hard):
            _LOG.info("%s: %s was not on %s; nothing to delete", self.__plugin_name__, name,
                      self._server())
