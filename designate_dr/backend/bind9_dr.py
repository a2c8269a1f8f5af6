"""BIND 9 backend that knows about several regions (``bind9_dr``).

Differences from Designate's stock ``bind9``:

- zones are secondaries of the masters of *all* regions (see
  :mod:`designate_dr.backend.common`), in preference order (the stock backend
  shuffles one region's masters);
- ``create_zone`` on an existing zone and ``update_zone`` converge the masters
  in place with ``modzone`` (only when they differ) and then ``retransfer``;
  ``delete_zone`` of a missing zone succeeds;
- commands go over BIND's control channel on kept-open connections
  (:mod:`designate_dr.backend.rndc`) instead of one ``rndc`` process each;
- every failure is a :class:`designate.exceptions.Backend` with one readable
  line, never the rndc secret.

Pool target options: ``rndc_host`` (default 127.0.0.1), ``rndc_port`` (953),
``rndc_key_file`` (default /etc/bind/rndc.key) or ``rndc_config_file`` (an
rndc.conf; its default-key is used), ``rndc_timeout`` (seconds, default 10),
``view``, ``clean_zonefile`` (delete zone files on delete), ``tsigkey_name``
(a key defined in named.conf, used for transfers from the masters),
``stats_url`` (BIND's statistics channel, e.g. ``http://127.0.0.1:8053``:
lets :func:`repoint_zones` / :func:`list_zones` find every zone), and the
region options of :mod:`designate_dr.backend.common`.  :func:`create_zones` and
:func:`delete_zones` are the bulk create and delete paths of the DR operations.

Primaries lists (``primaries_list``): re-point that does not grow with the zone count.
Per zone, a re-point is a ``modzone`` per zone, and named runs every ``modzone`` in
exclusive mode, one at a time, every other task (queries included) waiting: 7.3 s for
10,000 zones on an idle named, a minute on one busy transferring.  With the option
``primaries_list`` (a name prefix, e.g. ``designate-dr``) a zone does not carry its
masters: its statement is ``primaries { "designate-dr-N"; };``, one of
``primaries_lists`` (default 60) named lists, N a stable hash of the zone name.  The
lists themselves live in ``primaries_file``, a file named.conf includes; list N holds
the masters of every region in preference order, each region's masters rotated by N
(so a region of 1 to 6 mdns spreads the zones exactly as the per-zone mode does).
:func:`repoint_zones` rewrites that file (atomically) and runs ``rndc reconfig``: every
zone of the server follows at once (a fraction of a second for 10,000 zones), then
zones still carrying masters of their own are moved to their list (``modzone``) and
zones behind their masters' serial are transferred again.  The worker's
``create_zone``/``update_zone`` only refer to the lists (they never write
``primaries_file``; the worker need not run on the BIND host); :func:`write_lists`
(``designate-dr bind-lists``) writes them when BIND is set up.  The TSIG key
(``tsigkey_name``) is in the lists too.
"""
from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from designate import exceptions

from designate_dr.backend.common import (
    CHANGED,
    REFRESHED,
    UNCHANGED,
    Master,
    MasterProbe,
    RegionBackend,
    RepointResult,
    bool_option,
    bounded_map,
    designate_name,
    float_option,
    masters_for,
    option,
    record_repoint,
    region_groups,
    repoint_masters,
    rotated,
    wanted_serials,
    zone_key,
    zone_name,
)
from designate_dr.backend.rndc import RndcCommandFailed, RndcError, RndcPool, load_key
from designate_dr.ops import atomic
from designate_dr.serial import lags

_SECONDARY = ("secondary", "slave")
_TSIG_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
_LIST_PREFIX = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
DEFAULT_LISTS = 60  # lcm(1..6): regions of up to 6 mdns rotate exactly as per zone
LISTS_COMMAND_TIMEOUT = 120
_LISTS_HEADER = ("# Written by designate-dr (bind9_dr primaries lists); named.conf includes it.\n"
                 "# Zones refer to these lists; a failover or failback rewrites them and runs\n"
                 "# rndc reconfig.  Do not edit: the next re-point writes it again.\n")


@dataclass(frozen=True)
class ZoneConf:
    """What ``rndc showzone`` says about a zone."""

    type: str
    masters: list[Master]
    file: str | None
    keys: tuple[str | None, ...] = ()  # the TSIG key of each master (None: unsigned)
    lists: tuple[str, ...] = ()  # named primaries lists the zone refers to


def _primaries(block: str) -> tuple[list[Master], list[str | None], list[str]]:
    """The entries of a ``primaries { ... }`` block: addresses (with their keys) and list names."""
    masters: list[Master] = []
    keys: list[str | None] = []
    lists: list[str] = []
    for entry in block.split(";"):
        entry = entry.strip()
        if not entry:
            continue
        found = re.fullmatch(r'([0-9A-Fa-f.:]+)(?:\s+port\s+(\d+))?(?:\s+key\s+"?([^";\s]+)"?)?', entry)
        try:
            master = Master.parse(found.group(1), int(found.group(2) or 53)) if found else None
        except ValueError:
            master = None
        if master is not None:
            masters.append(master)
            keys.append(found.group(3))
        else:
            lists.append(entry.strip('"'))
    return masters, keys, lists


def parse_showzone(text: str) -> ZoneConf:
    kind = re.search(r"\btype\s+(\w+)\s*;", text)
    file = re.search(r'\bfile\s+"([^"]*)"\s*;', text)
    block = re.search(r"\b(?:masters|primaries)\b[^{]*\{(.*?)\}\s*;", text, re.S)
    masters, keys, lists = _primaries(block.group(1)) if block else ([], [], [])
    return ZoneConf(kind.group(1).lower() if kind else "", masters, file.group(1) if file else None,
                    tuple(keys), tuple(lists))


@dataclass(frozen=True)
class PrimariesList:
    """One named ``primaries`` list of ``primaries_file``."""

    masters: tuple[Master, ...]
    keys: tuple[str | None, ...]


def parse_lists(text: str) -> dict[str, PrimariesList]:
    """The named lists of a primaries file (as :func:`render_lists` writes it)."""
    out: dict[str, PrimariesList] = {}
    for found in re.finditer(r'\b(?:primaries|masters)\s+"?([A-Za-z0-9_.-]+)"?\s*\{(.*?)\}\s*;', text, re.S):
        masters, keys, _ = _primaries(found.group(2))
        out[found.group(1)] = PrimariesList(tuple(masters), tuple(keys))
    return out


def _entry(master: Master, key: str | None) -> str:
    signed = f' key "{key}"' if key else ""
    return f"{master.host} port {master.port}{signed};"


def render_lists(prefix: str, count: int, groups: Sequence[Sequence[Master]], key: str | None) -> str:
    """The primaries file: ``count`` lists ``<prefix>-N``, list N = every region in order,
    each region's masters rotated by N."""
    lines = [_LISTS_HEADER]
    for index in range(count):
        entries = " ".join(_entry(m, key) for m in rotated(index, groups))
        lines.append(f'primaries "{prefix}-{index}" {{ {entries} }};\n')
    return "".join(lines)


def _read_file(path: Path) -> str | None:
    """The text of ``primaries_file``; None when it is not there; unreadable: one Backend line."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise exceptions.Backend(f"bind9_dr: cannot read primaries_file {path}: "
                                 f"{getattr(exc, 'strerror', None) or type(exc).__name__}") from None


def read_lists_file(path: Path) -> dict[str, PrimariesList]:
    """The lists a primaries file holds ({} when it is not there)."""
    return parse_lists(_read_file(path) or "")


def _tsigkey(options: Any) -> str | None:
    """``tsigkey_name``, checked (it goes into zone statements and lists files)."""
    name = option(options, "tsigkey_name") or None
    if name and not _TSIG_NAME.match(str(name)):
        raise exceptions.Backend("bind9_dr: tsigkey_name has characters BIND does not allow")
    return name


def _lists_options(options: Any) -> tuple[str | None, int, Path | None]:
    """``primaries_list``, ``primaries_lists`` and ``primaries_file``, checked."""
    prefix = option(options, "primaries_list") or None
    if prefix and not _LIST_PREFIX.match(str(prefix)):
        raise exceptions.Backend("bind9_dr: primaries_list may hold letters, digits, '-' and '_' only")
    try:
        count = int(option(options, "primaries_lists", DEFAULT_LISTS))
    except (TypeError, ValueError):
        raise exceptions.Backend("bind9_dr: primaries_lists is not a number") from None
    if not 1 <= count <= 1000:
        raise exceptions.Backend("bind9_dr: primaries_lists must be between 1 and 1000")
    path = option(options, "primaries_file") or None
    return prefix, count, Path(path) if path else None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class BindControl:
    """The rndc commands the backend and the bulk calls use, on one named."""

    def __init__(self, options: Any) -> None:
        self.host = str(option(options, "rndc_host", "127.0.0.1"))
        try:
            self.port = int(option(options, "rndc_port", 953))
        except (TypeError, ValueError):
            raise exceptions.Backend("bind9_dr: rndc_port is not a number") from None
        timeout = float_option(options, "rndc_timeout", 10.0) or 10.0
        try:
            key = load_key(option(options, "rndc_key_file"), option(options, "rndc_config_file"))
        except RndcError as exc:
            raise exceptions.Backend(f"bind9_dr: {exc}") from None
        self.view = option(options, "view") or None
        self.clean_zonefile = bool_option(options, "clean_zonefile")
        self.tsigkey_name = _tsigkey(options)
        self.stats_url = (option(options, "stats_url") or "").rstrip("/") or None
        self.primaries_list, self.primaries_lists, self.primaries_file = _lists_options(options)
        self.timeout = timeout
        self.probe = MasterProbe(timeout=min(timeout, 1.0))
        self.rndc = RndcPool(self.host, self.port, key, timeout)

    def close(self) -> None:
        self.rndc.close()

    def _run(self, text: str) -> str:
        try:
            return self.rndc.command(text)
        except RndcCommandFailed:
            raise
        except RndcError as exc:
            raise exceptions.Backend(f"bind9_dr: {exc}") from None

    def _target(self, name: str) -> str:
        return f"{name} in {self.view}" if self.view else name

    def show(self, name: str) -> ZoneConf | None:
        try:
            return parse_showzone(self._run(f"showzone {self._target(name)}"))
        except RndcCommandFailed as exc:
            if "not found" in exc.err:
                return None
            raise exceptions.Backend(f"bind9_dr: {exc}") from None

    # primaries lists ----------------------------------------------------------
    def list_for(self, name: str) -> str | None:
        """The primaries list zone ``name`` refers to (None without ``primaries_list``)."""
        if not self.primaries_list:
            return None
        return f"{self.primaries_list}-{zone_key(name, self.primaries_lists)}"

    def masters_of(self, name: str, groups: Sequence[Sequence[Master]]) -> list[Master]:
        """The masters zone ``name`` gets from ``groups`` (through its list in the lists mode)."""
        return masters_for(name, groups, self.primaries_lists if self.primaries_list else None)

    def read_lists(self) -> dict[str, PrimariesList]:
        """The lists ``primaries_file`` holds now ({} when it is not set or not there)."""
        return read_lists_file(self.primaries_file) if self.primaries_file is not None else {}

    def write_lists(self, groups: Sequence[Sequence[Master]], ship: Sequence[str] | None = None) -> set[str]:
        """Write ``primaries_file`` for ``groups`` (atomically; only when it changes), run
        ``ship`` (an argv; ``{file}`` and ``{host}`` replaced: it copies the file to a BIND
        host this host cannot write to) and ``rndc reconfig``; the names of the lists whose
        masters changed."""
        if not self.primaries_list or self.primaries_file is None:
            raise exceptions.Backend("bind9_dr: writing the primaries lists needs the primaries_list and "
                                     "primaries_file options (the file named.conf includes)")
        self._check_path()
        text = render_lists(self.primaries_list, self.primaries_lists, groups, self.tsigkey_name)
        current = _read_file(self.primaries_file)
        before = parse_lists(current or "")
        changed = {name for name, lst in parse_lists(text).items() if before.get(name) != lst}
        if current != text:
            self._check_ours(current)
            try:
                atomic.write_text(self.primaries_file, text)
            except OSError as exc:
                raise exceptions.Backend(f"bind9_dr: cannot write primaries_file {self.primaries_file}: "
                                         f"{exc.strerror or type(exc).__name__}") from None
        # always: a copy or reconfig that failed last time is made up for by the rerun
        if ship:
            self._ship(ship)
        try:
            self._run("reconfig")
        except RndcCommandFailed as exc:
            raise exceptions.Backend(f"bind9_dr: rndc reconfig on {self.host} after writing "
                                     f"{self.primaries_file} failed: {exc}") from None
        return changed

    def _check_path(self) -> None:
        """Refuse anything but a lists file (:meth:`_check_ours`): pools.yaml names the path,
        the DR operations run as root."""
        path = self.primaries_file
        assert path is not None
        if not path.is_absolute():
            raise exceptions.Backend(f"bind9_dr: primaries_file {path} is not an absolute path")
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise exceptions.Backend(f"bind9_dr: primaries_file {path} is not a regular file: "
                                     "refusing to replace it")

    def _check_ours(self, current: str | None) -> None:
        path = self.primaries_file
        assert path is not None
        if path.exists() and (current is None or (current.strip() and not current.startswith(_LISTS_HEADER[:40]))):
            raise exceptions.Backend(f"bind9_dr: primaries_file {path} was not written by designate-dr: "
                                     "refusing to replace it (empty it or name another file)")

    def _ship(self, template: Sequence[str]) -> None:
        argv = [word.replace("{file}", str(self.primaries_file)).replace("{host}", self.host)
                for word in template]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=LISTS_COMMAND_TIMEOUT,
                                  check=False)
        except FileNotFoundError:
            raise exceptions.Backend(f"bind9_dr: the lists command {argv[0]} is not installed") from None
        except subprocess.TimeoutExpired:
            raise exceptions.Backend(f"bind9_dr: the lists command {shlex.join(argv)} did not finish in "
                                     f"{LISTS_COMMAND_TIMEOUT}s") from None
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-2:])[-200:]
            raise exceptions.Backend(f"bind9_dr: the lists command {shlex.join(argv)} failed "
                                     f"(exit {done.returncode}): {tail or 'no output'}")

    def _unknown_list(self, name: str, exc: RndcCommandFailed) -> exceptions.Backend:
        if self.primaries_list and "not found" in exc.err:
            return exceptions.Backend(
                f"bind9_dr: named on {self.host} does not know the primaries list {self.list_for(name)}: "
                "write the lists into a file named.conf includes (designate-dr bind-lists) and rndc reconfig")
        return exceptions.Backend(f"bind9_dr: {exc}")

    def _statement(self, name: str, masters: list[Master], file: str) -> str:
        listname = self.list_for(name)
        if listname:
            primaries = f'primaries {{ "{listname}"; }};'  # the key is in the list
        else:
            key = f' key "{self.tsigkey_name}"' if self.tsigkey_name else ""
            listed = " ".join(f"{m.host} port {m.port}{key};" for m in masters)
            primaries = f"masters {{ {listed} }};"
        safe_file = file.replace('"', "")
        return f'{self._target(name)} {{ type secondary; {primaries} file "{safe_file}"; }};'

    def add(self, name: str, masters: list[Master], file: str) -> bool:
        """addzone; False when the zone already exists."""
        try:
            self._run(f"addzone {self._statement(name, masters, file)}")
        except RndcCommandFailed as exc:
            if "already exists" in exc.err:
                return False
            raise self._unknown_list(name, exc) from None
        return True

    def modify(self, name: str, masters: list[Master], file: str, retransfer: bool = True,
               ) -> None:
        try:
            self._run(f"modzone {self._statement(name, masters, file)}")
        except RndcCommandFailed as exc:
            raise self._unknown_list(name, exc) from None
        if retransfer:
            self.retransfer(name)

    def is_right(self, name: str, conf: ZoneConf, masters: list[Master]) -> bool:
        """Whether ``conf`` already is what :meth:`converge` would make of zone ``name``."""
        listname = self.list_for(name)
        if listname:
            return conf.lists == (listname,) and not conf.masters
        return (not conf.lists and conf.masters == masters
                and all(k == self.tsigkey_name for k in conf.keys))

    def retransfer(self, name: str) -> None:
        try:
            self._run(f"retransfer {self._target(name)}")
        except RndcCommandFailed as exc:
            raise exceptions.Backend(f"bind9_dr: {exc}") from None

    def held_serial(self, name: str) -> int | None:
        """The serial ``name`` holds (``rndc zonestatus``), None when not loaded."""
        try:
            text = self._run(f"zonestatus {self._target(name)}")
        except RndcCommandFailed as exc:
            raise exceptions.Backend(f"bind9_dr: {exc}") from None
        found = re.search(r"^serial:\s*(\d+)", text, re.M)
        return int(found.group(1)) if found else None

    def delete(self, name: str, clean: bool = False) -> bool:
        """delzone; False when the zone was not there."""
        flag = "-clean " if clean or self.clean_zonefile else ""
        try:
            self._run(f"delzone {flag}{self._target(name)}")
        except RndcCommandFailed as exc:
            if "not found" in exc.err:
                return False
            raise exceptions.Backend(f"bind9_dr: {exc}") from None
        return True

    def converge(self, name: str, masters: list[Master], file: str | None = None,
                 create: bool = True, serial: int | None = None, target: int | None = None) -> bool:
        """Make ``name`` a secondary of ``masters``; True when something changed.

        With ``serial`` (what the zone holds now), a changed zone is
        retransferred only when the new masters serve another serial
        (``target`` when the caller knows it, else a SOA query to the masters).
        """
        current = self.show(name)
        if current is None:
            if not create:
                raise exceptions.Backend(f"bind9_dr: zone {name} is not on {self.host}")
            if self.add(name, masters, file or f"slave.{name}.db"):
                return True  # a new secondary zone transfers at once
            current = self.show(name)
            if current is None:
                raise exceptions.Backend(f"bind9_dr: zone {name} vanished while being created")
        if current.type not in _SECONDARY:
            raise exceptions.Backend(f"bind9_dr: zone {name} exists on {self.host} as a "
                                     f"{current.type or 'non-secondary'} zone, not a secondary")
        if self.is_right(name, current, masters):
            return False
        if target is None and serial is not None:
            target = self.probe.master_serial(name, masters)
        retransfer = serial is None or serial != target
        self.modify(name, masters, current.file or file or f"slave.{name}.db", retransfer)
        return True

    def zone_names(self) -> list[str]:
        """Every secondary zone of the view, from BIND's statistics channel."""
        return sorted(self.zone_serials())

    def zone_serials(self) -> dict[str, int | None]:
        """Every secondary zone of the view -> the serial it holds (statistics channel)."""
        if not self.stats_url:
            raise exceptions.Backend("bind9_dr: listing zones needs the stats_url option "
                                     "(BIND statistics-channels) or an explicit zone list")
        url = f"{self.stats_url}/json/v1/zones"
        try:
            resp = requests.get(url, timeout=self.timeout)
            resp.raise_for_status()
            views = resp.json()["views"]
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise exceptions.Backend(f"bind9_dr: cannot list zones from {url}: "
                                     f"{type(exc).__name__}") from None
        zones = views.get(self.view or "_default", {}).get("zones", [])
        return {str(z["name"]).lower().rstrip("."): _int_or_none(z.get("serial"))
                for z in zones if str(z.get("type", "")).lower() in _SECONDARY}


class Bind9DRBackend(RegionBackend):
    """BIND secondaries fed by the mdns of every region (addzone/modzone/delzone over rndc)."""

    __plugin_name__ = "bind9_dr"

    control: BindControl

    def _connect(self) -> None:
        self.control = BindControl(self.options)

    @staticmethod
    def _file(zone: Any, name: str) -> str:
        zone_id = zone.get("id") if hasattr(zone, "get") else None
        return f"slave.{name}.{zone_id}" if zone_id else f"slave.{name}.db"

    def masters_for(self, name: str) -> list[Master]:
        return self.control.masters_of(name, self.master_groups)

    def _converge(self, name: str, zone: Any) -> bool:
        return self.control.converge(name, self.masters_for(name), self._file(zone, name))

    def _delete(self, name: str, hard: bool) -> bool:
        return self.control.delete(name, clean=hard)

    def _server(self) -> str:
        return self.control.host


def list_zones(options: Any, *, concurrency: int = 8) -> dict[str, list[str]]:
    """Every secondary zone on the target (``example.org.``) -> its masters (``host:port``).

    Needs the ``stats_url`` option to find the zones.
    """
    control = BindControl(options)
    try:
        lists = control.read_lists()
        out: dict[str, list[str]] = {}
        for name, conf, error in bounded_map(control.show, control.zone_names(), concurrency):
            if error is None and conf is not None:
                masters = list(conf.masters)
                for listname in conf.lists:  # as named has them after the last write_lists
                    masters += lists[listname].masters if listname in lists else []
                out[designate_name(name)] = [str(m) for m in masters] or [f'"{n}"' for n in conf.lists]
        return out
    finally:
        control.close()


def _groups(options: Any, masters: Any, target_masters: Sequence[Any]) -> list[list[Master]]:
    groups = (repoint_masters("bind9_dr", masters) if masters is not None
              else region_groups(options, target_masters))
    if not groups:
        raise exceptions.Backend("bind9_dr: no masters: set masters_<region> options or the target's masters")
    return groups


def lists_text(options: Any, masters: Any = None, target_masters: Sequence[Any] = ()) -> str:
    """The primaries file :func:`write_lists` would write (no connection to named: for a BIND
    host the DR host cannot write to)."""
    prefix, count, _ = _lists_options(options)
    if not prefix:
        raise exceptions.Backend("bind9_dr: the primaries_list option is not set")
    return render_lists(prefix, count, _groups(options, masters, target_masters), _tsigkey(options))


def write_lists(options: Any, masters: Any = None, target_masters: Sequence[Any] = (),
                lists_command: Sequence[str] | None = None) -> set[str]:
    """Write the target's ``primaries_file`` and ``rndc reconfig`` (the set-up step of the lists mode).

    ``masters``: region groups (as for :func:`repoint_zones`); default: the region options
    of ``options`` (and ``target_masters``, the target's own masters from pools.yaml).
    ``lists_command``: an argv that copies ``{file}`` to the BIND host ``{host}`` (run before
    the reconfig).  Returns the lists whose masters changed.
    """
    groups = _groups(options, masters, target_masters)
    control = _control(options)
    try:
        return control.write_lists(groups, lists_command)
    finally:
        control.close()


def _control(options: Any) -> BindControl:
    """A control connection to the target, checked once (named down, wrong key: one Backend error)."""
    control = BindControl(options)
    try:
        control.rndc.command("status")  # fail fast, once, when named is down or the key is wrong
    except RndcError as exc:
        control.close()
        raise exceptions.Backend(f"bind9_dr: {exc}") from None
    return control


def repoint_zones(options: Any, masters: list[str], *, zones: list[str] | None = None,
                  concurrency: int = 8, serials: Mapping[str, int | None] | None = None,
                  lists_command: Sequence[str] | None = None) -> RepointResult:
    """Set the masters of every secondary zone on the target (or of ``zones``) to ``masters``.

    ``showzone`` each zone, ``modzone`` those whose masters differ, then
    ``retransfer`` those whose new masters serve another serial than the zone
    holds (every changed zone when ``stats_url`` is not set); at most
    ``concurrency`` control connections.  ``serials`` (zone -> the masters'
    serial): a zone already on its masters but holding less is retransferred
    (``refreshed``), so a server back from an outage catches up at once.  Without ``zones`` the zone list
    comes from ``stats_url``.  In the lists mode the lists are written first (see
    :func:`write_lists`, ``lists_command``).  Per-zone failures land in
    ``failed``; a target-wide failure (named down, wrong key) raises
    :class:`designate.exceptions.Backend`.
    """
    started = time.monotonic()
    groups = repoint_masters("bind9_dr", masters)
    result = RepointResult()
    control = _control(options)
    try:
        # the serials the zones hold, so that zones whose new masters serve the
        # same serial are not transferred again (no AXFR storm on a failover)
        held_serials = control.zone_serials() if control.stats_url else {}
        if zones is None:
            todo = sorted(held_serials)
        else:
            todo = []
            for raw in zones:
                try:
                    todo.append(zone_name(raw))
                except exceptions.Backend as exc:
                    result.failed[str(raw)] = str(exc)
        targets = wanted_serials(serials)
        # the lists mode: one write and one reconfig move every zone that refers to a list
        moved_lists = control.write_lists(groups, lists_command) if control.primaries_list else set()
        in_bulk: set[str] = set()

        def one(name: str) -> str:
            held = held_serials.get(name)
            masters = control.masters_of(name, groups)
            listname = control.list_for(name)
            if listname in moved_lists:
                conf = control.show(name)
                if conf is not None and control.is_right(name, conf, masters):
                    in_bulk.add(designate_name(name))
                    target = targets.get(name)
                    if target is None and held is not None:
                        target = control.probe.master_serial(name, masters)
                    if held is None or held != target:
                        control.retransfer(name)
                    return CHANGED
            if control.converge(name, masters, create=False, serial=held, target=targets.get(name)):
                return CHANGED
            if name in targets and name not in held_serials:
                held = control.held_serial(name)  # no statistics channel: ask named
            if lags(held, targets.get(name)):
                control.retransfer(name)
                return REFRESHED
            return UNCHANGED

        record_repoint(result, bounded_map(one, todo, concurrency))
        result.in_bulk = sorted(in_bulk)
        result.via = "the primaries lists" if in_bulk else ""
    finally:
        control.close()
    result.seconds = time.monotonic() - started
    return result


def create_zones(options: Any, masters: list[str], zones: list[str], *, concurrency: int = 8) -> RepointResult:
    """Create ``zones`` on the target as secondaries of ``masters`` (region groups, as for
    :func:`repoint_zones`), the way ``create_zone`` does (``addzone``, or ``modzone`` of a zone
    that is there with other masters).  ``changed``: created (or converged); ``unchanged``:
    already there and right."""
    started = time.monotonic()
    groups = repoint_masters("bind9_dr", masters)
    result = RepointResult()
    control = _control(options)
    try:
        def one(raw: str) -> str:
            name = zone_name(raw)
            changed = control.converge(name, control.masters_of(name, groups), f"slave.{name}.db")
            return CHANGED if changed else UNCHANGED

        record_repoint(result, bounded_map(one, list(zones), concurrency))
    finally:
        control.close()
    result.seconds = time.monotonic() - started
    return result


def delete_zones(options: Any, zones: list[str], *, concurrency: int = 8) -> RepointResult:
    """Delete ``zones`` from the target (``delzone``, ``-clean`` with ``clean_zonefile``).
    ``changed``: deleted; ``unchanged``: not there.  Per-zone failures land in ``failed``."""
    started = time.monotonic()
    result = RepointResult()
    control = _control(options)
    try:
        def one(raw: str) -> str:
            return CHANGED if control.delete(zone_name(raw)) else UNCHANGED

        record_repoint(result, bounded_map(one, list(zones), concurrency))
    finally:
        control.close()
    result.seconds = time.monotonic() - started
    return result
