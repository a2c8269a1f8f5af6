#!/usr/bin/env python3
"""Bench: re-point N zones (default 10,000) to another region's mdns: per zone, by BIND lists, by catalog.

    .venv/bin/python bench/bench_repoint.py [--zones 10000] [--concurrency 8] [--only pdns|bind]
        [--skip-bind-catalog] [--skip-bind-per-zone]

Masters: two real designate-mdns (Designate from the venv on SQLite, 127.0.0.2 and
127.0.0.3; region 2's database a copy of region 1's) whose pool has a catalog zone
(``catalog_zone_fqdn: catalog.example.``).  One zone is made by ``central.create_zone``,
the others are copies of its rows.  Measured in one run, each from region 1 to region 2:

- PowerDNS, per zone: ``pdns4_dr.repoint_zones`` on a secondary whose zones are plain
  secondaries (rows written straight into its database, as Designate's worker leaves them);
- PowerDNS, catalog: ``pdns4_dr.repoint_zones`` with ``catalog_zone`` on a secondary whose
  zones are members of a consumer zone of mdns's catalog (member rows written straight
  into its database with the catalog's unique ids, as PowerDNS writes them); done when
  every member lists the new masters;
- BIND, per zone: ``bind9_dr.repoint_zones`` (showzone, modzone over kept-open rndc
  connections; zones added with rndc addzone beforehand);
- BIND, primaries lists: ``bind9_dr.repoint_zones`` with ``primaries_list`` (zones added
  with rndc addzone referring to the lists; the re-point writes the lists file named.conf
  includes, one ``rndc reconfig``, then a showzone per zone finds zones with masters of
  their own); done when it returns, checked by a transfer from region 2 with region 1's
  mdns stopped;
- BIND, catalog (not a plugin operation: named.conf's ``catalog-zones`` statement): the
  catalog's primaries and ``default-primaries`` rewritten in named.conf and ``rndc
  reconfig``; done when named logs the catalog's reload after it.

Target (issue 16): 10,000 zones re-pointed in < 10 s on each server type.  Load average
is printed: the figures depend on it.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import dns.query
import dns.rdatatype
import dns.zone

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from designate_dr.backend import bind9_dr, pdns4_dr  # noqa: E402
from tests.fixtures import dns as fx  # noqa: E402
from tests.fixtures.designate_mdns import DesignateMdns  # noqa: E402
from tests.fixtures.designate_objects import designate_ready  # noqa: E402

CATALOG = "catalog.example."


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def catalog_members(mdns: DesignateMdns) -> dict[str, str]:
    """zone (no trailing dot) -> the catalog's unique label, from an AXFR of the catalog."""
    zone = dns.zone.from_xfr(dns.query.xfr(mdns.address, CATALOG, port=mdns.port, lifetime=300))
    out = {}
    for name, node in zone.nodes.items():
        for rdataset in node.rdatasets:
            if rdataset.rdtype == dns.rdatatype.PTR:
                for rdata in rdataset:
                    out[str(rdata.target).rstrip(".")] = str(name).split(".")[0]
    return out


def load_pdns(secondary: fx.PdnsSecondary, zones: list[str], masters: str, serial: int,
              members: dict[str, str] | None = None) -> None:
    """Zones written straight into the secondary's database (as secondaries, or catalog members)."""
    catalog = CATALOG.rstrip(".")
    secondary._ensure_db()
    with closing(sqlite3.connect(secondary.db_path)) as con, con:
        if members is not None:
            con.execute("INSERT INTO domains (name, master, type, last_check) VALUES (?, ?, 'CONSUMER', ?)",
                        (catalog, masters, int(time.time())))
        for zone in zones:
            name = zone.rstrip(".")
            if members is None:
                zid = con.execute("INSERT INTO domains (name, type, master, last_check) VALUES (?, 'SLAVE', ?, ?)",
                                  (name, masters, int(time.time()))).lastrowid
            else:
                options = json.dumps({"consumer": {"unique": f"{members[name]}."}})
                zid = con.execute("INSERT INTO domains (name, type, master, last_check, catalog, options) "
                                  "VALUES (?, 'SLAVE', ?, ?, ?, ?)",
                                  (name, masters, int(time.time()), catalog, options)).lastrowid
            con.executemany("INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth)"
                            " VALUES (?, ?, ?, ?, 5, 0, 0, 1)",
                            [(zid, n, t, c) for n, t, c in fx.zone_records(name, serial, 3600)])


def transferred_from(bind: fx.BindSecondary, zone: str, address: str, timeout: float = 30.0) -> bool:
    """``rndc retransfer zone``; whether named then logs a completed transfer from ``address``."""
    mark = len(bind.log_path.read_text(errors="replace"))
    bind.rndc("retransfer", zone.rstrip("."))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = bind.log_path.read_text(errors="replace")[mark:]
        if re.search(rf"from {re.escape(address)}#\d+: Transfer completed", text):
            return True
        time.sleep(0.1)
    return False


class CatalogBind(fx.BindSecondary):
    """BIND consuming mdns's catalog zone (named.conf's catalog-zones statement)."""

    primary: DesignateMdns

    def _options(self) -> str:
        # the catalog's AXFR from mdns takes ~18 s at 10,000 members: more than the TCP timeouts
        return super()._options() + (f'\n    catalog-zones {{ zone "{CATALOG}" default-primaries {{ '
                                     f'{self.primary.address} port {self.primary.port}; }} in-memory yes; }};'
                                     '\n    tcp-initial-timeout 1200;\n    tcp-idle-timeout 1200;')

    def _zones_include(self) -> str:
        return super()._zones_include() + (f'zone "{CATALOG}" {{ type secondary; primaries {{ '
                                           f'{self.primary.address} port {self.primary.port}; }}; '
                                           'file "catalog.db"; };\n')


class _SkipPdns(Exception):
    """--only: the other server type is skipped."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--zones", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--only", choices=("pdns", "bind"), help="one server type only")
    parser.add_argument("--skip-bind-catalog", action="store_true",
                        help="skip BIND's catalog (its setup transfers every zone from mdns)")
    parser.add_argument("--skip-bind-per-zone", action="store_true",
                        help="skip BIND's per-zone path (a minute at 10,000 zones)")
    args = parser.parse_args()
    designate_ready()
    tmp = Path(tempfile.mkdtemp(prefix="bench-repoint-"))
    zones = [f"rp{i}.example." for i in range(args.zones)]
    servers: list = []
    rows: list[tuple[str, int, float, str]] = []
    try:
        started = time.perf_counter()
        r1 = DesignateMdns(tmp / "r1", "127.0.0.2", "region1")
        pools = tmp / "pools.yaml"
        pools.write_text(f"""- name: default
  ns_records: [{{hostname: ns1.example.org., priority: 1}}]
  nameservers: [{{host: 127.0.0.1, port: 53}}]
  catalog_zone: {{catalog_zone_fqdn: {CATALOG}, catalog_zone_refresh: 3600}}
  targets: []
""")
        r1.pool_update(pools)
        serial = r1.create_zones(zones[:1])[zones[0]]
        r1.clone_zones(zones[1:], like=zones[0])
        r2 = DesignateMdns(tmp / "r2", "127.0.0.3", "region2")
        r1.copy_database_to(r2)
        servers += [r1, r2]
        for mdns in (r1, r2):
            mdns.start()
        members = catalog_members(r1)
        print(f"2 designate-mdns with {len(zones)} zones, catalog of {len(members)} members: "
              f"{time.perf_counter() - started:.1f}s (load {load()})", file=sys.stderr, flush=True)

        if args.only == "bind":
            raise _SkipPdns
        per_zone = fx.PdnsSecondary(tmp / "pdns-zones", "127.0.0.1", xfr_cycle_interval=3600)
        # the catalog's AXFR (10,000 PTRs rendered by mdns) outlasts PowerDNS's default 10 s
        by_catalog = fx.PdnsSecondary(tmp / "pdns-catalog", "127.0.0.4", xfr_cycle_interval=3600,
                                      extra_config="axfr-fetch-timeout=300")
        load_pdns(per_zone, zones, r1.master, serial)
        load_pdns(by_catalog, zones, r1.master, serial, members)
        for server in (per_zone, by_catalog):
            servers.append(server)
            server.start()
        # the consumer's first transfer (from region 1, at start) must be over: its members' masters
        # are written when it ends
        consumer = pdns4_dr.PdnsApi({**by_catalog.target_options(), "catalog_zone": CATALOG})
        deadline = time.monotonic() + 900
        while len(consumer.catalog_members()) < len(zones) and time.monotonic() < deadline:
            time.sleep(1)
        consumer.close()
        options = {"region": "region2"}
        for label, server, extra in (("PowerDNS, per zone", per_zone, {}),
                                     ("PowerDNS, catalog zone", by_catalog, {"catalog_zone": CATALOG})):
            started = time.perf_counter()
            # the masters' serials are known (a failover has them from its preflight)
            result = pdns4_dr.repoint_zones({**server.target_options(), **options, **extra}, [r2.master],
                                            concurrency=args.concurrency, serials=dict.fromkeys(zones, serial))
            seconds = time.perf_counter() - started
            listed = pdns4_dr.list_zones(server.target_options())
            on_r2 = sum(1 for z in zones if listed.get(z) == [r2.master])
            note = (f"{len(result.changed)} changed ({len(result.in_bulk)} by the catalog), "
                    f"{len(result.failed)} failed; {on_r2}/{len(zones)} on region 2")
            print(f"  {label}: {seconds:.2f}s; {note} (load {load()})", file=sys.stderr, flush=True)
            rows.append((label, len(zones), seconds, note))
        for server in (per_zone, by_catalog):
            server.stop()
    except _SkipPdns:
        pass
    except BaseException:
        for server in reversed(servers):
            server.stop()
        raise
    try:
        if args.only == "pdns":
            raise _SkipPdns
        from designate_dr.backend.common import Master, bounded_map
        for mode in ("per zone", "primaries lists"):
            if mode == "per zone" and args.skip_bind_per_zone:
                continue
            lists = mode == "primaries lists"
            bind = fx.BindSecondary(tmp / f"bind-{mode.replace(' ', '-')}", "127.0.0.1", primaries_lists=lists)
            servers.append(bind)
            bind.start()
            options = bind.target_options()
            if lists:
                options.update(primaries_list="designate-dr", primaries_file=str(bind.primaries_path))
                bind9_dr.write_lists(options, [r1.master])
            control = bind9_dr.BindControl(options)
            started = time.perf_counter()
            masters = [Master.parse(r1.master)]
            list(bounded_map(lambda z, c=control, m=masters: c.add(z.rstrip("."), m, f"z.{z}db"), zones,
                             args.concurrency))
            control.close()
            print(f"  BIND ({mode}): {len(zones)} zones added over rndc in {time.perf_counter() - started:.1f}s",
                  file=sys.stderr, flush=True)
            probe = zones[-1]
            bind.wait_all_at(serial, len(zones), timeout=900)  # every zone transferred from region 1 first
            print(f"  BIND ({mode}): transferred from region 1 after {time.perf_counter() - started:.1f}s",
                  file=sys.stderr, flush=True)
            started = time.perf_counter()
            result = bind9_dr.repoint_zones(options, [r2.master], concurrency=args.concurrency,
                                            serials=dict.fromkeys(zones, serial))
            seconds = time.perf_counter() - started
            # region 1 gone: a refresh of a zone must come from region 2 now
            r1.stop()
            moved = transferred_from(bind, probe, r2.address)
            r1.start()
            note = (f"{len(result.changed)} changed ({len(result.in_bulk)} by the lists), "
                    f"{len(result.failed)} failed; transfer from region 2 after: {'yes' if moved else 'NO'}")
            print(f"  BIND, {mode}: {seconds:.2f}s; {note} (load {load()})", file=sys.stderr, flush=True)
            rows.append((f"BIND, {mode}", len(zones), seconds, note))
            bind.stop()

        if not args.skip_bind_catalog:
            CatalogBind.primary = r1
            catbind = CatalogBind(tmp / "bind-catalog", "127.0.0.1")
            servers.append(catbind)
            started = time.perf_counter()
            catbind.start()
            deadline = time.monotonic() + 1800
            while "reload done" not in catbind.log_path.read_text(errors="replace") \
                    and time.monotonic() < deadline:
                time.sleep(1)
            print(f"  BIND catalog: {len(zones)} members consumed in {time.perf_counter() - started:.1f}s",
                  file=sys.stderr, flush=True)
            before = catbind.log_path.read_text(errors="replace").count("reload done")
            CatalogBind.primary = r2
            started = time.perf_counter()
            catbind._write_config()
            catbind.rndc("reconfig", timeout=600)
            while catbind.log_path.read_text(errors="replace").count("reload done") <= before:
                time.sleep(0.1)
            seconds = time.perf_counter() - started
            modified = len(re.findall(r"catz: modifying zone", catbind.log_path.read_text(errors="replace")))
            note = f"named.conf + rndc reconfig; {modified} members modified"
            print(f"  BIND, catalog zone: {seconds:.2f}s; {note} (load {load()})", file=sys.stderr, flush=True)
            rows.append(("BIND, catalog zone (named.conf + reconfig)", len(zones), seconds, note))
    except _SkipPdns:
        pass
    finally:
        for server in reversed(servers):
            server.stop()

    print(f"\nre-point {args.zones} zones from region 1's mdns to region 2's (target < 10 s each; "
          f"load average at the end {load()})\n")
    print(f"| {'path':<44} | {'zones':>6} | {'seconds':>8} | {'zones/s':>8} | note")
    print(f"|{'-' * 46}|{'-' * 8}|{'-' * 10}|{'-' * 10}|------")
    for label, count, seconds, note in rows:
        print(f"| {label:<44} | {count:>6} | {seconds:>8.2f} | {count / seconds:>8.0f} | {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
