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
from collections.abc import Callable, Iterable, Mapping
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


@dataclass
class RepointResult:
    """What a bulk re-point did, zone names in Designate's form (trailing dot)."""

    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
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


def region_masters(options: Any, target_masters: Iterable[Any] = ()) -> list[Master]:
    """Masters of every region, most preferred region first (see the module docstring)."""
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
    return parse_masters(m for region in order for m in by_region[region])


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


def master_serial(zone: str, masters: Iterable[Master], timeout: float = 2.0,
                  unreachable: set[Master] | None = None) -> int | None:
    """The SOA serial the first answering master serves for ``zone`` (None if none does).

    Masters that time out or refuse are added to ``unreachable`` and skipped
    by later calls sharing that set (a bulk call then waits for a dead master once).
    """
    query = dns.message.make_query(designate_name(zone), dns.rdatatype.SOA)
    for master in masters:
        if unreachable is not None and master in unreachable:
            continue
        try:
            reply = dns.query.udp(query, master.host, port=master.port, timeout=min(timeout, 1.0))
        except (dns.exception.DNSException, OSError):
            if unreachable is not None:
                unreachable.add(master)
            continue
        if reply.rcode() != dns.rcode.NOERROR:
            continue
        for rrset in reply.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return int(rrset[0].serial)
    return None


def repoint_masters(plugin: str, masters: str | Iterable[str]) -> list[Master]:
    """The masters a ``repoint_zones`` call asks for, parsed; a Backend error when none or bad."""
    try:
        wanted = parse_masters(masters)
    except ValueError as exc:
        raise exceptions.Backend(f"{plugin}: {exc}") from None
    if not wanted:
        raise exceptions.Backend(f"{plugin}: repoint_zones needs at least one master")
    return wanted


def record_repoint(result: RepointResult, outcomes: Iterable[tuple[str, Any, BaseException | None]],
                   *secrets: str | None) -> None:
    """Sort ``bounded_map`` outcomes of a converge into ``result`` (errors scrubbed of secrets)."""
    for name, changed, error in outcomes:
        if error is not None:
            result.failed[designate_name(name)] = scrub(str(error), *secrets)
        elif changed:
            result.changed.append(designate_name(name))
        else:
            result.unchanged.append(designate_name(name))


class RegionBackend(base.Backend):
    """create/update/delete shared by the DR plugins.

    Every zone gets the masters of all regions (:func:`region_masters`);
    create converges an existing zone in place, update is create, delete of a
    missing zone succeeds.  Subclasses say how: :meth:`_converge`, :meth:`_delete`.
    """

    __backend_status__ = "untested"

    def __init__(self, target: Any) -> None:
        super().__init__(target)
        self.zone_masters = region_masters(self.options, self.masters)
        if not self.zone_masters:
            raise exceptions.Backend(f"{self.__plugin_name__}: no masters: set "
                                     "masters_<region> options or the target's masters")

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
        name = zone_name(zone["name"])
        if self._converge(name, zone):
            _LOG.info("%s: %s now transfers from %s", self.__plugin_name__, name,
                      ", ".join(map(str, self.zone_masters)))

    def update_zone(self, context: Any, zone: Any) -> None:
        """Converge the zone's masters (creating it when missing)."""
        self.create_zone(context, zone)

    def delete_zone(self, context: Any, zone: Any, zone_params: Any = None) -> None:
        """Delete the zone; a zone that is not there counts as deleted."""
        name = zone_name(zone["name"])
        hard = bool(zone_params and zone_params.get("hard_delete"))
        if not self._delete(name, hard):
            _LOG.info("%s: %s was not on %s; nothing to delete", self.__plugin_name__, name,
                      self._server())
