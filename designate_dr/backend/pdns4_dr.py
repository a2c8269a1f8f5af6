"""PowerDNS 4 backend that knows about several regions (``pdns4_dr``).

Differences from Designate's stock ``pdns4``:

- zones are secondaries of the masters of *all* regions (see
  :mod:`designate_dr.backend.common`), so they keep transferring when a
  region is lost;
- ``create_zone`` on an existing zone converges its masters in place (the
  stock backend deletes and re-creates it, leaving it empty for seconds);
  ``update_zone`` converges masters too; ``delete_zone`` of a missing zone
  succeeds;
- after a masters change the zone is fetched at once (``axfr-retrieve``)
  instead of waiting for ``xfr-cycle-interval``;
- a lean HTTP client (:mod:`designate_dr.backend.httpclient`: a third of the
  client CPU of ``requests`` per call, redirects never followed) with timeouts;
  HTTP 500 "database is locked"
  (sqlite under parallel writes) is retried for up to ``api_timeout``, and so is the bare HTTP 500 of an
  idempotent call (GET, PUT, PATCH, DELETE): PowerDNS 4.7 answers a DELETE that hit
  the lock with ``{"error": "Internal Server Error"}`` only (the reason is in its log);
- every failure is a :class:`designate.exceptions.Backend` with one readable
  line that never contains the API key.

Pool target options: ``api_endpoint`` (``http://host:port``), ``api_token``
(the API key), ``api_timeout`` (seconds, default 10), ``api_ca_cert``
(CA bundle for https; empty = verify with the system CAs), ``tsigkey_name``
(a TSIG key known to PowerDNS, used for transfers from the masters: the
zone's ``slave_tsig_key_ids``, PowerDNS's ``AXFR-MASTER-TSIG``, as in stock
``pdns4``), ``catalog_zone`` (the pool's catalog zone, Designate's
``catalog_zone_fqdn``: see below), ``catalog_wait`` (seconds to wait for the
members to follow a re-pointed consumer, default 120), and the region options of
:mod:`designate_dr.backend.common`.

Catalog zones (RFC 9432), measured with Designate 22.0.1 mdns and PowerDNS
4.7.3: mdns serves a pool's catalog zone; a PowerDNS *consumer* zone of it
creates every member zone as a secondary of the consumer's masters, and when
the consumer's masters change (and it is transferred) PowerDNS changes the
masters of every member in one transaction ("Catalog-Zone update primaries"),
then transfers each member from them.  A zone PowerDNS did not create from the
catalog is not adopted: it keeps its own masters.  With ``catalog_zone`` set,
``create_zone`` makes sure the consumer exists and transfers it (the new zone
appears as a member) and converges per zone only what the catalog did not do;
``repoint_zones`` changes the consumer's masters first (two API calls for all
members), waits for the members to follow, then handles the rest per zone.
At 10,000 zones the catalog's AXFR from mdns takes longer than PowerDNS's
default ``axfr-fetch-timeout`` (10 s) on a loaded machine: raise it.

:func:`repoint_zones`, :func:`list_zones`, :func:`create_zones` and
:func:`delete_zones` are the bulk calls used by DR operations.
"""
from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from designate import exceptions

from designate_dr.backend.common import (
    CHANGED,
    REFRESHED,
    UNCHANGED,
    Master,
    MasterProbe,
    RegionBackend,
    RepointResult,
    bounded_map,
    designate_name,
    float_option,
    masters_for,
    option,
    parse_masters,
    record_repoint,
    repoint_masters,
    scrub,
    wanted_serials,
    zone_name,
)
from designate_dr.backend.httpclient import Endpoint, HttpError, Reply
from designate_dr.serial import lags

#: why a call got no reply (:class:`HttpError` kinds), for the error line
_NO_REPLY = {"timeout": "did not answer within {timeout:g}s",
             "tls": "failed the TLS handshake (check api_ca_cert)",
             "unreachable": "is unreachable (connection refused or reset)"}
#: methods whose bare HTTP 500 is retried (a repeat does what one call would)
IDEMPOTENT = frozenset({"GET", "PUT", "PATCH", "DELETE"})
#: PowerDNS's error text for an exception it does not describe (a database error among them)
UNDESCRIBED = frozenset({"", "Internal Server Error"})


class PdnsApi:
    """The few PowerDNS API calls we need, each turning failures into one Backend error."""

    def __init__(self, options: Any, pool_size: int = 8) -> None:
        endpoint = str(option(options, "api_endpoint", "") or "").strip()
        parsed = urllib.parse.urlparse(endpoint)
        try:
            parsed.port  # noqa: B018 - raises ValueError on a port that is not a number
        except ValueError:
            parsed = parsed._replace(netloc="")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise exceptions.Backend(f"pdns4_dr: api_endpoint {scrub(endpoint)!r} is not an "
                                     "http(s)://host[:port] URL")
        self.endpoint = f"{parsed.scheme}://{parsed.netloc}"
        self._key = str(option(options, "api_token", "") or option(options, "api_key", "") or "")
        self.timeout = float_option(options, "api_timeout", 10.0)
        self.tsigkey_name = option(options, "tsigkey_name") or None
        catalog = option(options, "catalog_zone") or None
        self.catalog = zone_name(catalog) if catalog else None
        self.catalog_wait = float_option(options, "catalog_wait", 120.0)
        self.probe = MasterProbe(timeout=min(self.timeout, 1.0))
        ca_cert = option(options, "api_ca_cert") or None
        self.http = Endpoint(parsed.scheme, parsed.hostname, parsed.port, timeout=self.timeout,
                             headers={"X-API-Key": self._key, "Accept": "application/json"},
                             ca_cert=ca_cert if ca_cert != "changeme" else None, size=pool_size)

    def close(self) -> None:
        self.http.close()

    def _fail(self, what: str, reason: str) -> exceptions.Backend:
        return exceptions.Backend(scrub(f"pdns4_dr: PowerDNS API at {self.endpoint} {reason} "
                                        f"while {what}", self._key))

    def request(self, method: str, path: str, what: str, *, json: Any = None,
                missing_ok: bool = False) -> Reply | None:
        """One API call; None for a 404 when ``missing_ok``."""
        path = f"/api/v1/servers/localhost{path}"
        delay = 0.02
        busy_until = time.monotonic() + self.timeout  # retries of a busy database stop here
        while True:
            try:
                resp = self.http.request(method, path, json)
            except HttpError as exc:
                raise self._fail(what, _NO_REPLY.get(exc.kind, "failed: {kind}").format(
                    timeout=self.timeout, kind=exc.kind)) from None
            if resp.status_code < 300:
                return resp
            if resp.status_code < 400:
                raise self._fail(what, f"answered HTTP {resp.status_code} (a redirect: not followed, the API "
                                       "key goes to api_endpoint only)")
            detail = _error_text(resp)
            if resp.status_code == 500 and time.monotonic() + delay < busy_until and (
                    "database is locked" in detail or (method in IDEMPOTENT and detail in UNDESCRIBED)):
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            if resp.status_code in (401, 403):
                raise self._fail(what, f"rejected the API key (HTTP {resp.status_code}; "
                                       "check api_token)")
            if resp.status_code == 404 and missing_ok:
                return None
            raise self._fail(what, f"answered HTTP {resp.status_code}: {detail or resp.reason}")

    # zone calls -----------------------------------------------------------
    @staticmethod
    def _zone_path(name: str) -> str:
        return f"/zones/{name}."

    def get_zone(self, name: str) -> dict | None:
        resp = self.request("GET", self._zone_path(name) + "?rrsets=false",
                            f"reading zone {name}", missing_ok=True)
        return None if resp is None else resp.json()

    def list_zones(self) -> list[dict]:
        resp = self.request("GET", "/zones", "listing zones")
        return resp.json()

    def create_secondary(self, name: str, masters: list[Master]) -> bool:
        """Create ``name`` as a secondary; False if it already existed (HTTP 409)."""
        data: dict[str, Any] = {"name": f"{name}.", "kind": "Slave",
                                "masters": [str(m) for m in masters]}
        if self.tsigkey_name:
            # slave_tsig_key_ids is the key this server signs its transfers *from* the
            # masters with (AXFR-MASTER-TSIG); master_tsig_key_ids would be who may pull
            # from it (TSIG-ALLOW-AXFR), and transfers would be refused by a TSIG-enforcing mdns
            data["slave_tsig_key_ids"] = [self.tsigkey_name]
        try:
            self.request("POST", "/zones", f"creating zone {name}", json=data)
        except exceptions.Backend as exc:
            if "HTTP 409" in str(exc):
                return False
            raise
        return True

    def set_masters(self, name: str, masters: list[Master], tsig: bool = False) -> None:
        """New masters (and, with ``tsig``, the transfer key) for ``name``."""
        data: dict[str, Any] = {"masters": [str(m) for m in masters]}
        if tsig:
            data["slave_tsig_key_ids"] = [self.tsigkey_name] if self.tsigkey_name else []
        self.request("PUT", self._zone_path(name), f"setting the masters of zone {name}",
                     json=data)

    def tsig_differs(self, zone: dict) -> bool:
        """Whether ``zone`` (as the API shows it) is not signed with ``tsigkey_name``."""
        have = {_key_name(k) for k in zone.get("slave_tsig_key_ids") or []}
        return have != ({_key_name(self.tsigkey_name)} if self.tsigkey_name else set())

    def retrieve(self, name: str) -> None:
        """Ask PowerDNS to transfer ``name`` from one of its masters (chosen at random) now."""
        self.request("PUT", self._zone_path(name) + "/axfr-retrieve",
                     f"starting a transfer of zone {name}")

    def transfer_now(self, name: str, masters: list[Master]) -> None:
        """Transfer ``name`` now from the first of ``masters`` that serves it.

        PowerDNS's axfr-retrieve picks one of the zone's masters at random; with a
        region down that is a dead master half of the time, and its next try
        waits for the refresh cycle with a growing back-off (a new zone stays
        empty, and Designate's worker puts it in ERROR).  When not every master
        serves the zone, the zone is pointed at the first that does for the
        request, then back at all of them: the request keeps its master.
        """
        serials = self.probe.serials(name, masters)
        serving = [m for m, serial in serials.items() if serial is not None]
        if len(serving) in (0, len(masters)):
            self.retrieve(name)  # all serve (any will do), or none answers (nothing better)
            return
        self.set_masters(name, serving[:1])
        try:
            self.retrieve(name)
        finally:
            self.set_masters(name, masters)

    # catalog zones ----------------------------------------------------------
    def consumer(self) -> dict | None:
        """The consumer zone of ``catalog_zone`` (None without the option, or when it is missing)."""
        if not self.catalog:
            return None
        return self.get_zone(self.catalog)

    def ensure_consumer(self, masters: list[Master]) -> bool:
        """Create the consumer zone of ``catalog_zone`` when missing; True if it was created."""
        if not self.catalog or self.consumer() is not None:
            return False
        data: dict[str, Any] = {"name": f"{self.catalog}.", "kind": "Consumer",
                                "masters": [str(m) for m in masters]}
        if self.tsigkey_name:
            data["slave_tsig_key_ids"] = [self.tsigkey_name]
        try:
            self.request("POST", "/zones", f"creating catalog zone {self.catalog}", json=data)
        except exceptions.Backend as exc:
            if "HTTP 409" not in str(exc):
                raise
            return False
        return True

    def catalog_members(self) -> set[str]:
        """The member zones the consumer holds (from its PTR records under ``zones.``)."""
        if not self.catalog:
            return set()
        resp = self.request("GET", self._zone_path(self.catalog), f"reading catalog zone {self.catalog}",
                            missing_ok=True)
        if resp is None:
            return set()
        suffix = f".zones.{self.catalog}."
        members = set()
        for rrset in resp.json().get("rrsets") or []:
            if rrset.get("type") == "PTR" and str(rrset.get("name", "")).lower().endswith(suffix):
                members.update(str(r.get("content", "")).lower().rstrip(".") for r in rrset.get("records") or [])
        return members

    def repoint_catalog(self, masters: list[Master], wait: float) -> set[str]:
        """Point the consumer at ``masters`` and wait until its members follow; the members.

        Members not following within ``wait`` seconds are left to the per-zone path.
        """
        zone = self.consumer()
        if zone is None:
            return set()
        if not _same_masters(zone.get("masters") or [], masters):
            self.set_masters(self.catalog, masters)
        self.retrieve(self.catalog)
        asked = time.monotonic()
        members = self.catalog_members()
        deadline = asked + wait
        moved_before, stable = -1, 0
        while members and time.monotonic() < deadline:
            listed = {z["name"].rstrip(".").lower(): z for z in self.list_zones()}
            present = [m for m in members if m in listed]
            moved = sum(_same_masters(listed[m].get("masters") or [], masters) for m in present)
            if moved == len(present):
                break
            # members PowerDNS did not create from the catalog never move: stop once the
            # count holds still; they are re-pointed per zone
            stable = stable + 1 if moved and moved == moved_before else 0
            if stable >= 3:
                break
            moved_before = moved
            if not moved and time.monotonic() - asked > 2:
                # a transfer of the consumer already running swallows a new request
                self.retrieve(self.catalog)
                asked = time.monotonic()
            time.sleep(0.3)
        return members

    def wait_member(self, name: str, wait: float) -> bool:
        """Whether ``name`` appears (from the catalog) within ``wait`` seconds."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.get_zone(name) is not None:
                return True
            time.sleep(0.1)
        return False

    def delete(self, name: str) -> bool:
        """Delete ``name``; False when it was not there."""
        resp = self.request("DELETE", self._zone_path(name), f"deleting zone {name}",
                            missing_ok=True)
        return resp is not None

    def converge(self, name: str, masters: list[Master], current: Iterable[str] | None = None,
                 serial: int | None = None, target: int | None = None, read_first: bool = False) -> bool:
        """Make ``name`` a secondary of ``masters``; True when something changed.

        ``current`` (the zone's masters) and ``serial`` (the serial it holds)
        are given when the caller already knows them; with ``serial``, a
        changed zone is transferred only when the new masters serve another
        serial (a failover to a region in step costs no AXFR storm): ``target``
        when the caller knows it, else a SOA query to the masters.
        """
        if current is None:
            # create: POST first, one call in the common case and no window in which the
            # zone is missing when it exists (HTTP 409 -> converge in place); update (the
            # zone usually exists and is right): GET first, and nothing more when it is
            zone = self.get_zone(name) if read_first else None
            if zone is None:
                if self.create_secondary(name, masters):
                    self.transfer_now(name, masters)
                    return True
                zone = self.get_zone(name)
            if zone is None:
                raise exceptions.Backend(f"pdns4_dr: zone {name} on {self.endpoint} conflicts "
                                         "on create but cannot be read")
            if str(zone.get("kind", "")).lower() not in ("slave", "secondary"):
                raise exceptions.Backend(f"pdns4_dr: zone {name} exists on {self.endpoint} as a "
                                         f"{zone.get('kind')} zone, not a secondary")
            current = zone.get("masters") or []
            if self.tsig_differs(zone):
                self.set_masters(name, masters, tsig=True)
                self.transfer_now(name, masters)
                return True
        if _same_masters(current, masters):
            return False
        self.set_masters(name, masters)
        if target is None and serial is not None:
            target = self.probe.master_serial(name, masters)
        if serial is None or serial != target:
            self.transfer_now(name, masters)
        return True


def _error_text(resp: Reply) -> str:
    try:
        body = resp.json()
        if isinstance(body, dict) and body.get("error"):
            return str(body["error"])
    except ValueError:
        pass
    return resp.text.strip()[:200]


def _key_name(key: str) -> str:
    return str(key).strip().rstrip(".").lower()


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _same_masters(current: Iterable[str], wanted: list[Master]) -> bool:
    try:
        return parse_masters(list(current), default_port=53) == wanted
    except ValueError:
        return False


class PDNS4DRBackend(RegionBackend):
    """PowerDNS secondaries fed by the mdns of every region (HTTP API)."""

    __plugin_name__ = "pdns4_dr"

    api: PdnsApi

    def _connect(self) -> None:
        self.api = PdnsApi(self.options)

    def _converge(self, name: str, zone: Any) -> bool:
        if self.api.catalog:
            # catalog members all have the consumer's masters: no per-zone order
            # the zone should come from the catalog (it then follows the consumer's masters):
            # transfer the consumer now rather than wait for its refresh
            created = self.api.ensure_consumer(self.zone_masters)
            self.api.retrieve(self.api.catalog)
            if self.api.wait_member(name, min(self.api.timeout, 5.0)):
                return self.api.converge(name, self.zone_masters, read_first=True) or created
        return self.api.converge(name, self.masters_for(name))

    def _update(self, name: str, zone: Any) -> bool:
        # called on every change of the zone's records: one GET, a PUT only when the masters
        # or the key differ (stock pdns4 does nothing here; mdns NOTIFYs the change)
        masters = self.zone_masters if self.api.catalog else self.masters_for(name)
        return self.api.converge(name, masters, read_first=True)

    def _delete(self, name: str, hard: bool) -> bool:
        return self.api.delete(name)

    def _server(self) -> str:
        return self.api.endpoint


def list_zones(options: Any) -> dict[str, list[str]]:
    """Every secondary zone on the target (``example.org.``) -> its masters (``host:port``)."""
    api = PdnsApi(options)
    try:
        return {designate_name(z["name"].rstrip(".")): [str(m) for m in
                                                        parse_masters(z.get("masters") or [], 53)]
                for z in api.list_zones()
                if str(z.get("kind", "")).lower() in ("slave", "secondary")}
    finally:
        api.close()


def repoint_zones(options: Any, masters: list[str], *, zones: list[str] | None = None,
                  concurrency: int = 8, serials: Mapping[str, int | None] | None = None,
                  ) -> RepointResult:
    """Set the masters of every secondary zone on the target (or of ``zones``) to ``masters``.

    At most ``concurrency`` requests in flight; zones
    already on those masters are left alone (``unchanged``); a changed zone
    is transferred at once (axfr-retrieve).  ``serials`` (zone -> the masters'
    serial): a zone already on its masters but holding less is transferred
    again (``refreshed``): a server back from an outage catches up at once.
    Per-zone failures land in ``failed``; a target-wide failure (down, bad
    key) raises :class:`designate.exceptions.Backend`.
    """
    started = time.monotonic()
    groups = repoint_masters("pdns4_dr", masters)
    wanted = [m for group in groups for m in group]  # the consumer's (catalog members share it)
    result = RepointResult()
    api = PdnsApi(options, pool_size=concurrency)
    try:
        before = {z["name"].rstrip(".").lower(): z for z in api.list_zones()
                  if str(z.get("kind", "")).lower() in ("slave", "secondary")}
        # catalog zone: one change of the consumer's masters moves every member
        members = api.repoint_catalog(wanted, wait=api.catalog_wait) if api.catalog else set()
        current = before if not members else {
            z["name"].rstrip(".").lower(): z for z in api.list_zones()
            if str(z.get("kind", "")).lower() in ("slave", "secondary")}
        result.via = "the catalog zone"
        result.in_bulk = [designate_name(m) for m in sorted(members) if m in before
                          and not _same_masters(before[m].get("masters") or [], wanted)
                          and _same_masters(current.get(m, {}).get("masters") or [], wanted)]
        if zones is None:
            todo = sorted(current)
        else:
            todo = []
            for raw in zones:
                try:
                    name = zone_name(raw)
                except exceptions.Backend as exc:
                    result.failed[str(raw)] = str(exc)
                    continue
                if name in current:
                    todo.append(name)
                else:
                    result.failed[designate_name(name)] = "not a secondary zone on this server"
        targets = wanted_serials(serials)

        moved = set(result.in_bulk)

        def one(name: str) -> str:
            held = _int_or_none(current[name].get("serial"))
            if designate_name(name) in moved:
                return CHANGED  # the catalog did it (PowerDNS transfers the member itself)
            mine = wanted if name in members else masters_for(name, groups)
            if api.converge(name, mine, current[name].get("masters") or [], held, targets.get(name)):
                return CHANGED
            if lags(held, targets.get(name)):
                api.transfer_now(name, mine)
                return REFRESHED
            return UNCHANGED

        record_repoint(result, bounded_map(one, todo, concurrency), api._key)
    finally:
        api.close()
    result.seconds = time.monotonic() - started
    return result


def create_zones(options: Any, masters: list[str], zones: list[str], *, concurrency: int = 8) -> RepointResult:
    """Create ``zones`` on the target as secondaries of ``masters`` (region groups, as for
    :func:`repoint_zones`), the way ``create_zone`` does: a zone that exists is converged in
    place, a new one is transferred at once.  ``changed``: created (or converged);
    ``unchanged``: already there and right.  With ``catalog_zone`` the consumer is made sure
    of and transferred first: its members come from it and take its masters.
    """
    started = time.monotonic()
    groups = repoint_masters("pdns4_dr", masters)
    wanted = [m for group in groups for m in group]
    result = RepointResult()
    api = PdnsApi(options, pool_size=concurrency)
    try:
        members: set[str] = set()
        if api.catalog:
            api.ensure_consumer(wanted)
            api.retrieve(api.catalog)
            members = api.catalog_members()

        def one(raw: str) -> str:
            name = zone_name(raw)
            if name in members and api.wait_member(name, min(api.timeout, 5.0)):
                return CHANGED if api.converge(name, wanted, read_first=True) else UNCHANGED
            return CHANGED if api.converge(name, masters_for(name, groups), read_first=True) else UNCHANGED

        record_repoint(result, bounded_map(one, list(zones), concurrency), api._key)
    finally:
        api.close()
    result.seconds = time.monotonic() - started
    return result


def delete_zones(options: Any, zones: list[str], *, concurrency: int = 8) -> RepointResult:
    """Delete ``zones`` from the target (``delete_zone``'s path).  ``changed``: deleted;
    ``unchanged``: not there.  Per-zone failures land in ``failed``."""
    started = time.monotonic()
    result = RepointResult()
    api = PdnsApi(options, pool_size=concurrency)
    try:
        def one(raw: str) -> str:
            return CHANGED if api.delete(zone_name(raw)) else UNCHANGED

        record_repoint(result, bounded_map(one, list(zones), concurrency), api._key)
    finally:
        api.close()
    result.seconds = time.monotonic() - started
    return result
