"""Designate's pools.yaml with regions: load, validate, strip a region, restore it.

pools.yaml stays in Designate's own schema (``designate-manage pool update`` refuses
unknown keys), so regions live where Designate allows free-form data, in the target
``options`` (each option becomes a PoolTargetOption that backends ignore unless they
read it).  The options are those of the DR backends (:mod:`designate_dr.backend.common`):

- ``region``: the region of the target (required on every target).
- ``masters_<region>``: that region's mdns servers, ``host[:port]`` (port 5354) separated
  by commas or spaces.
- ``region_addresses``: ours, optional: comma-separated ``host`` or ``host:port`` entries
  of other servers of the target's region (a nameserver that is not a target, an
  also_notify host, an mdns).

Every other address gets its region by address, in this order: a ``masters_<region>``
entry with that host and port; a ``region_addresses`` entry with that host and port;
the target whose DNS server (``options`` ``host``/``port``, port 53) is that host and
port; a ``region_addresses`` entry with that host alone; for a master in a target's
``masters:`` list, the target's own region (the DR backends' rule); else a target whose
host is that host when all such targets are in one region.  A nameserver or also_notify
whose region cannot be told is an error.
"""
from __future__ import annotations

import copy
import dataclasses
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from designate_dr.ops.errors import PoolsError, UnknownRegion

POOL_KEYS = {"id", "name", "description", "attributes", "ns_records", "nameservers", "targets",
             "also_notifies", "catalog_zone"}
TARGET_KEYS = {"type", "tsigkey_id", "description", "masters", "options"}
ADDRESS_KEYS = {"host", "port"}
DNS_PORT = 53
MDNS_PORT = 5354
MASTERS_OPTION = "masters_"


@dataclass(frozen=True, order=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Target:
    pool: str
    index: int
    type: str
    region: str
    options: dict[str, Any] = field(hash=False, compare=False)
    masters: tuple[Address, ...]

    @property
    def address(self) -> Address | None:
        host = self.options.get("host")
        return Address(str(host), int(self.options.get("port", DNS_PORT))) if host else None

    @property
    def label(self) -> str:
        where = self.address or self.options.get("api_endpoint") or f"#{self.index}"
        return f"{self.type} {where} ({self.region})"


@dataclass(frozen=True)
class Server:
    """A nameserver or an also_notify entry of a pool."""

    pool: str
    address: Address
    region: str


@dataclass(frozen=True)
class PoolsFile:
    """A validated pools.yaml: the raw data (what is written back) and its regional view."""

    path: Path
    data: list[dict[str, Any]]
    targets: tuple[Target, ...]
    nameservers: tuple[Server, ...]
    also_notifies: tuple[Server, ...]
    regions: tuple[str, ...]

    def masters(self, region: str | None = None) -> list[tuple[Address, str]]:
        """Every distinct master (``masters:`` lists and ``masters_<region>`` options) with its region."""
        seen: dict[Address, str] = {}
        mapper = _region_mapper(self.data, self.path)
        for target in self.targets:
            for key, value in target.options.items():
                if str(key).startswith(MASTERS_OPTION):
                    for host, port in _split_addresses(value, MDNS_PORT):
                        seen.setdefault(Address(host, port or MDNS_PORT), str(key)[len(MASTERS_OPTION):])
            for master in target.masters:
                if master not in seen:
                    seen[master] = mapper(master, f"master {master} of target {target.label}",
                                          target.region)
        return [(a, r) for a, r in seen.items() if region is None or r == region]

    def require_region(self, region: str) -> None:
        if region not in self.regions:
            raise UnknownRegion(f"{self.path}: no region {region!r} (regions: {', '.join(self.regions)})")


def _fail(path: Path | str, message: str) -> PoolsError:
    return PoolsError(f"{path}: {message}")


def _address(entry: Any, path: Path | str, where: str, default_port: int) -> Address:
    if not isinstance(entry, dict) or "host" not in entry:
        raise _fail(path, f"{where}: expected a mapping with host and port, got {_show(entry)}")
    extra = set(entry) - ADDRESS_KEYS
    if extra:
        raise _fail(path, f"{where}: unknown key(s) {', '.join(sorted(map(str, extra)))}")
    host = entry["host"]
    if not isinstance(host, str) or not host.strip():
        raise _fail(path, f"{where}: host {_show(host)} is not a host name or address")
    try:
        port = _port_number(entry.get("port", default_port))
    except ValueError as exc:
        raise _fail(path, f"{where}: {exc}") from None
    return Address(host, port)


_REGION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check_options(options: dict[Any, Any], path: Path | str, where: str) -> None:
    """Every option a plain value, and the options of the DR backends of the right type and range."""
    for key, value in options.items():
        if not isinstance(key, str):
            raise _fail(path, f"{where}: option name {_show(key)} is not a string")
        if isinstance(value, (dict, list, set, bytes)):
            raise _fail(path, f"{where}: option {key} must be a plain value "
                              "(Designate stores options as strings)")
        problem = None
        try:
            if key == "host":
                if not isinstance(value, str) or not value.strip():
                    problem = f"{_show(value)} is not a host name or address"
            elif key == "port":
                _port_number(value)
            elif key == "region":
                if not isinstance(value, str) or not _REGION.fullmatch(value):
                    problem = f"{_show(value)} is not a region name (letters, digits, '_', '.', '-')"
            elif key.startswith(MASTERS_OPTION):
                if not _REGION.fullmatch(key[len(MASTERS_OPTION):]):
                    problem = "does not end in a region name"
                elif not isinstance(value, str):
                    problem = f"{_show(value)} is not a list of host[:port]"
                else:
                    for host, _port in _split_addresses(value, MDNS_PORT):
                        if not _is_ip(host):  # the DR backends take masters by address
                            problem = f"{_show(host)} is not an IP address"
                            break
            elif key == "region_addresses":
                if not isinstance(value, str):
                    problem = f"{_show(value)} is not a list of host[:port]"
                else:
                    _split_addresses(value, None)
            elif key == "region_preference":
                if not isinstance(value, str) or not all(
                        _REGION.fullmatch(r.strip()) for r in value.split(",") if r.strip()):
                    problem = f"{_show(value)} is not a comma-separated list of regions"
        except ValueError as exc:
            problem = str(exc)
        if problem:
            raise _fail(path, f"{where}: option {key}: {problem}")


def _list(value: Any, path: Path | str, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(path, f"{where} must be a list")
    return value


def _show(value: Any) -> str:
    """A value from the file for an error line: repr, shortened."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _port_number(value: Any) -> int:
    """A port, 1-65535, from an int or a string of digits (not a bool or a float)."""
    if isinstance(value, int) and not isinstance(value, bool):
        port = value
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{1,5}", value.strip()):
        port = int(value)
    else:
        raise ValueError(f"port {_show(value)} is not a number")
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range 1-65535")
    return port


def _split_addresses(text: Any, default_port: int | None) -> list[tuple[str, int | None]]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address, separated by commas or spaces.

    :raises ValueError: for an entry that is none of these, or a port out of range
    """
    out: list[tuple[str, int | None]] = []
    for item in re.split(r"[,\s]+", str(text or "")):
        if not item:
            continue
        port: int | None = default_port
        if item.startswith("["):  # [v6]:port
            host, closed, rest = item[1:].partition("]")
            if not closed or (rest and not rest.startswith(":")):
                raise ValueError(f"{_show(item)} is not host[:port]")
            if rest:
                port = _port_number(rest[1:])
        elif item.count(":") == 1:
            host, port_text = item.split(":")
            port = _port_number(port_text)
        else:
            host = item
        if not host or "[" in host or "]" in host:
            raise ValueError(f"{_show(item)} is not host[:port]")
        out.append((host, port))
    return out


RegionOf = Callable[..., str]


def _region_mapper(data: list[dict[str, Any]], path: Path | str) -> RegionOf:
    """A function giving the region of an address (see the module docstring for the rules)."""
    mdns: dict[Address, set[str]] = {}
    exact: dict[Address, set[str]] = {}
    listed_exact: dict[Address, set[str]] = {}
    listed_host: dict[str, set[str]] = {}
    target_host: dict[str, set[str]] = {}
    for pool in data:
        for target in pool.get("targets") or []:
            options = target.get("options") or {}
            region = str(options.get("region"))
            if options.get("host"):
                addr = Address(str(options["host"]), int(options.get("port", DNS_PORT)))
                exact.setdefault(addr, set()).add(region)
                target_host.setdefault(addr.host, set()).add(region)
            for key, value in options.items():
                key = str(key)
                try:
                    if key.startswith(MASTERS_OPTION):
                        for host, port in _split_addresses(value, MDNS_PORT):
                            mdns.setdefault(Address(host, port or MDNS_PORT), set()).add(
                                key[len(MASTERS_OPTION):])
                    elif key == "region_addresses":
                        for host, port in _split_addresses(value, None):
                            if port is None:
                                listed_host.setdefault(host, set()).add(region)
                            else:
                                listed_exact.setdefault(Address(host, port), set()).add(region)
                except ValueError:
                    raise _fail(path, f"target option {key} {value!r} is not a list of host[:port]") from None

    def region_of(address: Address, what: str, own_region: str | None = None) -> str:
        tables: list[tuple[dict, Any]] = [(mdns, address), (listed_exact, address), (exact, address),
                                          (listed_host, address.host)]
        if own_region is not None:
            tables.append(({address: {own_region}}, address))
        tables.append((target_host, address.host))
        for table, key in tables:
            regions = table.get(key)
            if regions:
                if len(regions) > 1:
                    raise _fail(path, f"{what} is claimed by regions {', '.join(sorted(regions))}")
                return next(iter(regions))
        raise _fail(path, f"cannot tell the region of {what}; list it in the options "
                          "region_addresses of a target of its region")

    return region_of


def parse_pools(text: str, path: Path | str = "pools.yaml") -> PoolsFile:
    """Validate pools.yaml text and map every target, nameserver, also_notify and master to a region."""
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise _fail(path, "not valid YAML: nested too deeply") from None
    except yaml.reader.ReaderError as exc:
        raise _fail(path, f"not valid YAML at character {exc.position + 1}: {exc.reason}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise _fail(path, f"not valid YAML{where}: {problem}") from None
    if not isinstance(data, list) or not data:
        raise _fail(path, "expected a non-empty list of pools")
    targets: list[Target] = []
    names: set[str] = set()
    for number, pool in enumerate(data, 1):
        if not isinstance(pool, dict):
            raise _fail(path, f"pool #{number} is not a mapping")
        name = pool.get("name")
        if not name:
            raise _fail(path, f"pool #{number} has no name")
        if not isinstance(name, str):
            raise _fail(path, f"pool #{number}: name {_show(name)} is not a string")
        for key, kind in (("description", str), ("id", str), ("attributes", dict),
                          ("catalog_zone", dict)):
            if pool.get(key) is not None and not isinstance(pool[key], kind):
                raise _fail(path, f"pool {name}: {key} must be a {'mapping' if kind is dict else 'string'}")
        if name in names:
            raise _fail(path, f"pool {name!r} is listed twice")
        names.add(name)
        extra = set(pool) - POOL_KEYS
        if extra:
            raise _fail(path, f"pool {name}: unknown key(s) {', '.join(sorted(map(str, extra)))} "
                              "(designate-manage would refuse them)")
        pool_targets = _list(pool.get("targets"), path, f"pool {name}: targets")
        if not pool_targets:
            raise _fail(path, f"pool {name} has no targets")
        for index, target in enumerate(pool_targets):
            where = f"pool {name}: target #{index + 1}"
            if not isinstance(target, dict) or not target.get("type"):
                raise _fail(path, f"{where} has no type")
            for key in ("type", "description", "tsigkey_id"):
                if target.get(key) is not None and not isinstance(target[key], str):
                    raise _fail(path, f"{where}: {key} {_show(target[key])} is not a string")
            extra = set(target) - TARGET_KEYS
            if extra:
                raise _fail(path, f"{where}: unknown key(s) {', '.join(sorted(map(str, extra)))}")
            options = target.get("options") or {}
            if not isinstance(options, dict):
                raise _fail(path, f"{where}: options must be a mapping")
            _check_options(options, path, where)
            region = options.get("region")
            if not region:
                raise _fail(path, f"{where} ({target['type']}) has no options region")
            masters = tuple(_address(m, path, f"{where}: master", MDNS_PORT)
                            for m in _list(target.get("masters"), path, f"{where}: masters"))
            targets.append(Target(name, index, str(target["type"]), str(region), options, masters))
        for key in ("nameservers", "also_notifies", "ns_records"):
            _list(pool.get(key), path, f"pool {name}: {key}")
        for record in pool.get("ns_records") or []:
            if not isinstance(record, dict) or not isinstance(record.get("hostname"), str) or \
                    not isinstance(record.get("priority", 1), int) or isinstance(record.get("priority"), bool):
                raise _fail(path, f"pool {name}: ns_records: {_show(record)} is not a mapping with a "
                                  "hostname and an integer priority")
        if not pool.get("nameservers"):
            raise _fail(path, f"pool {name} has no nameservers")

    region_of = _region_mapper(data, path)
    nameservers = tuple(
        Server(p["name"], addr, region_of(addr, f"nameserver {addr} of pool {p['name']}"))
        for p in data for addr in (_address(e, path, f"pool {p['name']}: nameserver", DNS_PORT)
                                   for e in p.get("nameservers") or []))
    also = tuple(
        Server(p["name"], addr, region_of(addr, f"also_notify {addr} of pool {p['name']}"))
        for p in data for addr in (_address(e, path, f"pool {p['name']}: also_notify", DNS_PORT)
                                   for e in p.get("also_notifies") or []))
    result = PoolsFile(Path(path), data, tuple(targets), nameservers, also, ())
    regions = {t.region for t in targets} | {r for _, r in result.masters()}
    return dataclasses.replace(result, regions=tuple(sorted(regions)))


def load_pools(path: Path | str) -> PoolsFile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PoolsError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PoolsError(f"{path}: cannot read: {exc}") from None
    return parse_pools(text, path)


def dump_pools(data: list[dict[str, Any]]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


# -- removing and restoring a region ----------------------------------------------------------

def _entry_address(entry: dict[str, Any], default_port: int) -> Address:
    return Address(str(entry["host"]), int(entry.get("port", default_port)))


def without_region(pools: PoolsFile, region: str) -> list[dict[str, Any]]:
    """The pools.yaml data with every target, nameserver, also_notify and master of ``region`` removed."""
    pools.require_region(region)
    region_of = _region_mapper(pools.data, pools.path)
    out = copy.deepcopy(pools.data)
    for pool in out:
        name = pool["name"]
        kept = [t for t in pool["targets"] if str((t.get("options") or {}).get("region")) != region]
        if not kept:
            raise PoolsError(f"{pools.path}: pool {name} has targets only in region {region}; "
                             "it would be left with none")
        for target in kept:
            own = str(target["options"]["region"])
            target["options"].pop(MASTERS_OPTION + region, None)
            if target.get("masters"):
                target["masters"] = [m for m in target["masters"]
                                     if region_of(_entry_address(m, MDNS_PORT), "master", own) != region]
            if not target.get("masters") and not any(str(k).startswith(MASTERS_OPTION)
                                                     for k in target["options"]):
                raise PoolsError(f"{pools.path}: pool {name}: a target of region {own} "
                                 f"has masters only in {region}")
        pool["targets"] = kept
        for key in ("nameservers", "also_notifies"):
            if pool.get(key):
                pool[key] = [e for e in pool[key]
                             if region_of(_entry_address(e, DNS_PORT), key) != region]
        if not pool.get("nameservers"):
            raise PoolsError(f"{pools.path}: pool {name} has nameservers only in region {region}")
    return out


def _target_key(target: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """What identifies a target across a failover (which changes only its masters)."""
    options = target.get("options") or {}
    return str(target.get("type")), tuple(sorted((str(k), str(v)) for k, v in options.items()
                                                 if not str(k).startswith(MASTERS_OPTION)))


def _merge(backup: list[Any], current: list[Any], *, lost: Callable[[Any], bool],
           key: Callable[[Any], Any]) -> list[Any]:
    """Put the lost-region items of ``backup`` back into ``current`` at their old places."""
    remaining = list(current)
    out: list[Any] = []
    for item in backup:
        if lost(item):
            if not any(key(c) == key(item) for c in remaining + out):
                out.append(copy.deepcopy(item))
            continue
        for candidate in remaining:
            if key(candidate) == key(item):
                out.append(candidate)
                remaining.remove(candidate)
                break
    return out + remaining


def _insert_like(old: dict[str, Any], current: dict[str, Any], key: str) -> dict[str, Any]:
    """``current`` plus ``old[key]``, placed after the key that preceded it in ``old``."""
    out: dict[str, Any] = {}
    keys = list(old)
    before = keys[keys.index(key) - 1] if keys.index(key) > 0 else None
    if before is None:
        out[key] = old[key]
    for k, v in current.items():
        out[k] = v
        if k == before:
            out[key] = old[key]
    out.setdefault(key, old[key])
    return out


def with_region(current: PoolsFile, backup: PoolsFile, region: str) -> list[dict[str, Any]]:
    """``current`` with ``region``'s targets, nameservers, also_notifies and masters put back from ``backup``."""
    backup.require_region(region)
    region_of = _region_mapper(backup.data, backup.path)
    out = copy.deepcopy(current.data)
    by_name = {p["name"]: p for p in out}
    for old_pool in backup.data:
        pool = by_name.get(old_pool["name"])
        if pool is None:
            continue
        old_targets = old_pool.get("targets") or []
        pool["targets"] = _merge(
            old_targets, pool.get("targets") or [], key=_target_key,
            lost=lambda t: str((t.get("options") or {}).get("region")) == region)
        old_by_key = {_target_key(t): t for t in old_targets}
        for target in pool["targets"]:
            old = old_by_key.get(_target_key(target))
            if old is None:
                continue
            own = str(old["options"]["region"])
            option = MASTERS_OPTION + region
            if option in old["options"] and option not in target["options"]:
                target["options"] = _insert_like(old["options"], target["options"], option)
            if old.get("masters"):
                target["masters"] = _merge(
                    old["masters"], target.get("masters") or [],
                    key=lambda m: _entry_address(m, MDNS_PORT),
                    lost=lambda m, own=own: region_of(_entry_address(m, MDNS_PORT), "master", own) == region)
        for key in ("nameservers", "also_notifies"):
            if old_pool.get(key):
                pool[key] = _merge(old_pool[key], pool.get(key) or [],
                                   key=lambda e: _entry_address(e, DNS_PORT),
                                   lost=lambda e, k=key: region_of(_entry_address(e, DNS_PORT), k) == region)
    return out


def addresses(entries: Iterable[Address]) -> list[str]:
    return [str(a) for a in entries]
