#!/usr/bin/env python3
"""Bench: ``designate-dr check`` of 10,000 zones x 3 nameservers on real servers.

Servers: BIND (127.0.0.1) and two PowerDNS on sqlite3 (127.0.0.21, 127.0.0.22), each
serving the same 10,000 zones (zone files / rows inserted directly: loading through
an API would take minutes), and a real designate-mdns (127.0.0.40, Designate from the
venv on SQLite: one zone made by central.create_zone, the rest copies of its rows) as
the pool's master.  Compared in the same run:

- ours: ``dr check`` through ``main()`` (non-blocking UDP, one socket per server; the
  master asked about a sample of 256 zones), and with ``--master-sample all`` (mdns
  asked about every zone: its CPU per query is printed);
- sequential dnspython (``dns.query.udp`` one query after the other), on a sample,
  extrapolated to all queries;
- a thread pool of 32 workers doing ``dns.query.udp``, on a sample, extrapolated;
- a ``dig`` loop (one process per query), on a small sample, if dig is installed.

With ``--failover-zones N`` it also times ``dr failover`` of N zones against two real
designate-mdns (127.0.0.2, 127.0.0.3; region 2's database a copy of region 1's) and one
remaining PowerDNS target (secondaries loaded straight into their sqlite databases,
region 1's mdns and secondary then stopped), and the no-op second run.

With ``--failover-bind`` region 2 also has a BIND secondary in ``bind9_dr``'s lists mode
(zones added with rndc addzone and transferred from region 2's mdns first).

Usage: .venv/bin/python bench/bench_dr_check.py [--zones 10000] [--runs 3] [--failover-zones 10000]
       [--failover-bind]
Targets: dr check under 10 s (issue 7); failover of 10,000 zones against real mdns under 60 s,
exit 0 (issue 16).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from designate_dr.cli import main  # noqa: E402
from tests.fixtures import dns as fx  # noqa: E402
from tests.fixtures.pools import nameserver_target, pools_yaml  # noqa: E402


def one_query(zone: str, server) -> int | None:
    query = dns.message.make_query(zone, dns.rdatatype.SOA)
    query.flags = 0
    try:
        answer = dns.query.udp(query, server.address, port=server.port, timeout=2)
    except Exception:  # noqa: BLE001 - a miss counts as a miss
        return None
    return answer.answer[0][0].serial if answer.answer else None


def timed_sample(label: str, pairs: list[tuple[str, object]], func) -> tuple[float, int]:
    started = time.perf_counter()
    answered = func(pairs)
    seconds = time.perf_counter() - started
    print(f"  {label}: {len(pairs)} queries in {seconds:.2f}s ({answered} answered)", file=sys.stderr)
    return seconds, answered


def _load_bind_lists(bind: fx.BindSecondary, options: dict[str, str], zones: list[str], serial: int,
                     master: str) -> None:
    """The lists written, every zone added referring to its list, transferred from ``master``."""
    from designate_dr.backend import bind9_dr
    from designate_dr.backend.common import bounded_map
    host, _, port = master.rpartition(":")
    bind9_dr.write_lists(options, target_masters=[{"host": host, "port": int(port)}])
    control = bind9_dr.BindControl(options)
    try:
        list(bounded_map(lambda z: control.add(z.rstrip("."), [], f"z.{z}db"), zones, 8))
    finally:
        control.close()
    if not bind.wait_all_at(serial, len(zones), timeout=1200):
        raise SystemExit("error: BIND did not transfer every zone from region 2's mdns in time")


def bench_failover(count: int, tmp: Path, mdns_workers: int = 1,
                   bind_lists: bool = False) -> list[tuple[str, int, float, float]]:
    """Rows for ``dr failover`` of ``count`` zones against real designate-mdns (module docstring)."""
    import sqlite3
    from contextlib import closing

    from tests.fixtures.designate_mdns import DesignateMdns
    zones = [f"fo{i}.example." for i in range(count)]
    started = time.perf_counter()
    r1 = DesignateMdns(tmp / "r1", "127.0.0.2", "region1", workers=mdns_workers)
    serial = r1.create_zones(zones[:1])[zones[0]]
    r1.clone_zones(zones[1:], like=zones[0])
    r2 = DesignateMdns(tmp / "r2", "127.0.0.3", "region2", workers=mdns_workers)
    r1.copy_database_to(r2)
    p1 = fx.PdnsSecondary(tmp / "p1", "127.0.0.1")
    p2 = fx.PdnsSecondary(tmp / "p2", "127.0.0.4")
    servers = [r1, r2, p1, p2]
    b2 = fx.BindSecondary(tmp / "b2", "127.0.0.1", primaries_lists=True) if bind_lists else None
    if b2 is not None:
        servers.append(b2)
    try:
        for server in servers:
            server.start()
        for secondary, masters in ((p1, f"{r1.master},{r2.master}"), (p2, f"{r2.master},{r1.master}")):
            with closing(sqlite3.connect(secondary.db_path)) as con, con:
                for zone in zones:
                    name = zone.rstrip(".")
                    zid = con.execute("INSERT INTO domains (name, type, master, last_check) "
                                      "VALUES (?, 'SLAVE', ?, ?)", (name, masters, int(time.time()))).lastrowid
                    con.executemany("INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled,"
                                    " auth) VALUES (?, ?, ?, ?, 5, 0, 0, 1)",
                                    [(zid, n, t, c) for n, t, c in fx.zone_records(name, serial, 3600)])
        print(f"  failover setup: 2 designate-mdns ({mdns_workers} worker(s) each) and 2 PowerDNS with "
              f"{count} zones in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        pools = tmp / "pools-failover.yaml"
        targets = [(p1, r1, "region1", f"masters_region2: '{r2.master}'"),
                   (p2, r2, "region2", f"masters_region1: '{r1.master}'\n      region_preference: region2,region1")]
        lines = ["- name: default", "  nameservers:"]
        lines += [f"  - {{host: {p.address}, port: {p.port}}}" for p, *_ in targets]
        lines.append("  targets:")
        for secondary, primary, region, extra in targets:
            lines += ["  - type: pdns4_dr", f"    masters: [{{host: {primary.address}, port: {primary.port}}}]",
                      "    options:", f"      host: {secondary.address}", f"      port: '{secondary.port}'",
                      f"      api_endpoint: {secondary.api_endpoint}", f"      api_token: {secondary.api_key}",
                      f"      region: {region}", f"      {extra}"]
        if b2 is not None:
            bind_options = {"host": b2.address, "port": str(b2.port), **b2.target_options(), "region": "region2",
                            "masters_region1": r1.master, "region_preference": "region2,region1",
                            "primaries_list": "designate-dr", "primaries_file": str(b2.primaries_path)}
            lines += ["  - type: bind9_dr", f"    masters: [{{host: {r2.address}, port: {r2.port}}}]",
                      "    options:", *[f"      {k}: '{v}'" for k, v in bind_options.items()]]
            lines.insert(2, f"  - {{host: {b2.address}, port: {b2.port}}}")
            started = time.perf_counter()
            _load_bind_lists(b2, bind_options, zones, serial, r2.master)
            print(f"  failover setup: BIND in the lists mode with {count} zones (addzone, transfers from "
                  f"region 2) in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        pools.write_text("\n".join(lines) + "\n")
        r1.stop()
        p1.stop()
        rows = []
        db = ["--designate-conf", str(r2.config_path)]
        for label, extra in (("dr failover --lost region1 --designate-conf (serials from region 2's DB)", db),
                             ("dr failover again --designate-conf (nothing to do)", db),
                             ("dr failover again, serials from mdns (nothing to do)", [])):
            out = io.StringIO()
            cpu = _cpu_seconds(r2)
            started = time.perf_counter()
            with contextlib.redirect_stdout(out):
                code = main(["failover", "--lost", "region1", "--pools", str(pools), "--wait", "300",
                             *extra])
            seconds = time.perf_counter() - started
            text = out.getvalue().strip().splitlines()
            print(f"  {label}: exit {code}, {seconds:.1f}s, region 2 mdns CPU {_cpu_seconds(r2) - cpu:.1f}s; "
                  f"{text[-1] if text else ''}", file=sys.stderr)
            if code != 0:
                print("\n".join(text[-30:]), file=sys.stderr)
                raise SystemExit(f"error: {label} failed (exit {code})")
            for line in text:
                if line.startswith(("target ", "plan:", "  serials", "  warning")):
                    print(f"    {line.strip()}", file=sys.stderr)
            rows.append((f"{label}", count, seconds, seconds))
        return rows
    finally:
        for server in servers:
            server.stop()
            server.cleanup_dir()


def _cpu_seconds(server) -> float:
    """CPU seconds used so far by ``server``'s process group (mdns forks its workers)."""
    import os
    total = 0.0
    if server.proc is None:
        return total
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == server.proc.pid or int(entry.name) == server.proc.pid:  # pgid
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main_bench() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--zones", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sample", type=int, default=1500, help="queries per baseline sample")
    parser.add_argument("--failover-zones", type=int, default=0, metavar="N",
                        help="also time dr failover of N zones against real designate-mdns (0: skip)")
    parser.add_argument("--failover-bind", action="store_true",
                        help="the failover's remaining region also has a BIND target in the lists mode")
    parser.add_argument("--mdns-workers", type=int, default=1, metavar="N",
                        help="designate-mdns worker processes per region in the failover bench (default 1)")
    args = parser.parse_args()

    from tests.fixtures.designate_mdns import DesignateMdns
    tmp = Path(tempfile.mkdtemp(prefix="bench-dr-check-"))
    servers = []
    mdns = None
    try:
        started = time.perf_counter()
        names = [f"bench{i}.example." for i in range(args.zones)]
        mdns = DesignateMdns(tmp / "mdns", "127.0.0.40", "region1")
        serial = mdns.create_zones(names[:1])[names[0]]
        mdns.clone_zones(names[1:], like=names[0])
        mdns.start()
        zones = dict.fromkeys(names, serial)
        servers = [fx.BindPrimary(tmp / "bind", "127.0.0.1"), fx.PdnsPrimary(tmp / "pdns1", "127.0.0.21", caches=True),
                   fx.PdnsPrimary(tmp / "pdns2", "127.0.0.22", caches=True)]
        for server in servers:
            server.add_zones(names, serial)
            server.start()
        print(f"servers (3 nameservers, 1 designate-mdns master) up with {args.zones} zones each in "
              f"{time.perf_counter() - started:.1f}s", file=sys.stderr)
        pools = tmp / "pools.yaml"
        pools.write_text(pools_yaml(nameserver_target(region, server, [mdns.master]) for region, server in
                                    (("region1", servers[0]), ("region1", servers[1]), ("region2", servers[2]))))
        zone_file = tmp / "zones.txt"
        zone_file.write_text("\n".join(zones) + "\n")
        total = len(zones) * len(servers)

        ours = []
        for run in range(args.runs):
            out = io.StringIO()
            started = time.perf_counter()
            with contextlib.redirect_stdout(out):
                code = main(["check", "--pools", str(pools), "--zones", str(zone_file),
                             "--format", "json", "-q"])
            seconds = time.perf_counter() - started
            report = json.loads(out.getvalue())
            print(f"  ours run {run + 1}: exit {code}, {report['zones_in_sync']}/{report['zones']} in sync, "
                  f"{seconds:.2f}s", file=sys.stderr)
            if code != 0 or report["zones_in_sync"] != len(zones):
                print("error: the check did not find every zone in sync", file=sys.stderr)
                return 1
            ours.append(seconds)
        ours_s = statistics.median(ours)

        # the master asked about every zone: what real mdns costs
        out = io.StringIO()
        cpu = _cpu_seconds(mdns)
        started = time.perf_counter()
        with contextlib.redirect_stdout(out):
            all_code = main(["check", "--pools", str(pools), "--zones", str(zone_file),
                             "--format", "json", "-q", "--master-sample", "all"])
        all_s = time.perf_counter() - started
        all_report = json.loads(out.getvalue())
        (master,) = all_report["masters"]
        mdns_cpu = _cpu_seconds(mdns) - cpu
        print(f"  ours, mdns asked about every zone: exit {all_code}, {all_report['zones_in_sync']}/"
              f"{all_report['zones']} in sync, {all_s:.2f}s; mdns answered {master['in_sync']} "
              f"(rtt {master['rtt_ms']} ms, {master['retried']} retried), its CPU {mdns_cpu:.1f}s "
              f"({mdns_cpu / max(1, master['in_sync']) * 1000:.1f} ms a query)", file=sys.stderr)

        # region 2 lost without a trace: its nameserver drops every packet (no ICMP)
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.23", 0))
        silent = types.SimpleNamespace(address="127.0.0.23", port=sink.getsockname()[1])
        lost_pools = tmp / "pools-lost.yaml"
        # the masters named where nothing listens: this row times the silent nameserver alone
        lost_pools.write_text(pools_yaml(nameserver_target(region, server, ["127.0.0.40:5354"]) for region, server in
                                         (("region1", servers[0]), ("region1", servers[1]), ("region2", silent))))
        out = io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(out):
            lost_code = main(["check", "--pools", str(lost_pools), "--zones", str(zone_file),
                              "--format", "json", "-q"])
        lost_s = time.perf_counter() - started
        sink.close()
        print(f"  ours, region 2 silent: exit {lost_code} ({json.loads(out.getvalue())['regions_down']} down), "
              f"{lost_s:.2f}s", file=sys.stderr)

        names = list(zones)
        sample = [(names[i % len(names)], servers[i % len(servers)]) for i in range(args.sample)]
        seq_s, _ = timed_sample("sequential dnspython", sample,
                                lambda pairs: sum(one_query(z, s) is not None for z, s in pairs))

        def threaded(pairs):
            with ThreadPoolExecutor(max_workers=32) as pool:
                return sum(r is not None for r in pool.map(lambda p: one_query(*p), pairs))
        thr_s, _ = timed_sample("thread pool (32)", sample, threaded)

        rows = [("dr check (ours, non-blocking UDP)", total, ours_s, ours_s),
                (f"dr check --master-sample all (+{args.zones} mdns queries)", total + args.zones, all_s, all_s),
                ("dr check (ours), region 2 drops every packet", total, lost_s, lost_s)]
        rows.append(("sequential dnspython (sample, extrapolated)", len(sample), seq_s,
                     seq_s * total / len(sample)))
        rows.append(("thread pool 32 x dnspython (sample, extrapolated)", len(sample), thr_s,
                     thr_s * total / len(sample)))
        dig = shutil.which("dig")
        if dig:
            small = sample[:200]

            def dig_loop(pairs):
                n = 0
                for zone, server in pairs:
                    out = subprocess.run([dig, "+short", "+norecurse", "-p", str(server.port), f"@{server.address}",
                                          zone, "SOA"], capture_output=True, text=True, check=False)
                    n += bool(out.stdout.strip())
                return n
            dig_s, _ = timed_sample("dig loop", small, dig_loop)
            rows.append(("dig loop (sample, extrapolated)", len(small), dig_s, dig_s * total / len(small)))
        else:
            print("  dig is not installed (bind9-dnsutils): dig loop skipped", file=sys.stderr)

        print(f"\ndr check: {args.zones} zones x {len(servers)} nameservers = {total} SOA queries "
              f"(median of {args.runs} runs; target < 10 s)\n")
        print(f"| {'method':<50} | {'queries run':>11} | {'measured s':>10} | {'all queries s':>13} | "
              f"{'vs ours':>8} |")
        print(f"|{'-' * 52}|{'-' * 13}|{'-' * 12}|{'-' * 15}|{'-' * 10}|")
        for label, queried, measured, full in rows:
            print(f"| {label:<50} | {queried:>11} | {measured:>10.2f} | {full:>13.2f} | {full / ours_s:>7.1f}x |")
        print(f"\nours: {total / ours_s:,.0f} queries/s; {'PASS' if ours_s < 10 else 'FAIL'} (< 10 s)")
        if args.failover_zones:
            fo_rows = bench_failover(args.failover_zones, tmp, args.mdns_workers, args.failover_bind)
            remaining = "1 PowerDNS and 1 BIND (lists mode) target" if args.failover_bind else "1 PowerDNS target"
            print(f"\nfailover of {args.failover_zones} zones against real designate-mdns, {remaining} "
                  "(target < 60 s, exit 0)\n")
            print(f"| {'failover':<76} | {'seconds':>8} | {'zones/s':>8} |")
            print(f"|{'-' * 78}|{'-' * 10}|{'-' * 10}|")
            for label, count, seconds, _ in fo_rows:
                print(f"| {label:<76} | {seconds:>8.1f} | {count / seconds:>8.0f} |")
        return 0 if ours_s < 10 else 1
    finally:
        for server in servers:
            server.stop()
        if mdns is not None:
            mdns.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main_bench())
