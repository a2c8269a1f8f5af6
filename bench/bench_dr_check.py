#!/usr/bin/env python3
"""Bench: ``designate-dist dr check`` of 10,000 zones x 3 nameservers on real servers.

Servers: BIND (127.0.0.1) and two PowerDNS on sqlite3 (127.0.0.21, 127.0.0.22), each
serving the same 10,000 zones (zone files / rows inserted directly: loading through
an API would take minutes).  Compared in the same run:

- ours: ``dr check`` through ``main()`` (non-blocking UDP, one socket per server);
- sequential dnspython (``dns.query.udp`` one query after the other), on a sample,
  extrapolated to all queries;
- a thread pool of 32 workers doing ``dns.query.udp``, on a sample, extrapolated;
- a ``dig`` loop (one process per query), on a small sample, if dig is installed.

With ``--failover-zones N`` it also times ``dr failover`` of N zones on one remaining
PowerDNS target (secondaries loaded straight into their sqlite databases, region 1's
primary and secondary then stopped), and the no-op second run.

Usage: .venv/bin/python bench/bench_dr_check.py [--zones 10000] [--runs 3] [--failover-zones 10000]
Target (issue 7): under 10 s.
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

from designate_dist.cli import main  # noqa: E402
from tests.dr.servers import BindPrimary, PdnsServer  # noqa: E402
from tests.dr.test_check import pools_yaml  # noqa: E402


def one_query(zone: str, server) -> int | None:
    query = dns.message.make_query(zone, dns.rdatatype.SOA)
    query.flags = 0
    try:
        answer = dns.query.udp(query, server.host, port=server.port, timeout=2)
    except Exception:  # noqa: BLE001 - a miss counts as a miss
        return None
    return answer.answer[0][0].serial if answer.answer else None


def timed_sample(label: str, pairs: list[tuple[str, object]], func) -> tuple[float, int]:
    started = time.perf_counter()
    answered = func(pairs)
    seconds = time.perf_counter() - started
    print(f"  {label}: {len(pairs)} queries in {seconds:.2f}s ({answered} answered)", file=sys.stderr)
    return seconds, answered


def bench_failover(count: int, tmp: Path) -> list[tuple[str, int, float, float]]:
    """Rows for ``dr failover`` of ``count`` zones (see the module docstring)."""
    import sqlite3
    from contextlib import closing

    from tests.fixtures import dns as fx
    serial = 1_700_000_000
    zones = [f"fo{i}.example." for i in range(count)]
    r1 = fx.PdnsPrimary(tmp / "r1", "127.0.0.2", "region1")
    r2 = fx.PdnsPrimary(tmp / "r2", "127.0.0.3", "region2")
    p1 = fx.PdnsSecondary(tmp / "p1", "127.0.0.1")
    p2 = fx.PdnsSecondary(tmp / "p2", "127.0.0.4")
    servers = [r1, r2, p1, p2]
    try:
        for server in servers:
            server.start()
        for primary in (r1, r2):
            primary.add_zones(zones, serial)
        for secondary, masters in ((p1, f"{r1.master},{r2.master}"), (p2, f"{r2.master},{r1.master}")):
            with closing(sqlite3.connect(secondary.db_path)) as con, con:
                for zone in zones:
                    name = zone.rstrip(".")
                    zid = con.execute("INSERT INTO domains (name, type, master) VALUES (?, 'SLAVE', ?)",
                                      (name, masters)).lastrowid
                    con.executemany("INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled,"
                                    " auth) VALUES (?, ?, ?, ?, 5, 0, 0, 1)",
                                    [(zid, n, t, c) for n, t, c in fx.zone_records(name, serial)])
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
        pools.write_text("\n".join(lines) + "\n")
        r1.stop()
        p1.stop()
        rows = []
        for label in ("dr failover --lost region1", "dr failover again (nothing to do)"):
            out = io.StringIO()
            started = time.perf_counter()
            with contextlib.redirect_stdout(out):
                code = main(["dr", "failover", "--lost", "region1", "--pools", str(pools), "--wait", "300"])
            seconds = time.perf_counter() - started
            last = out.getvalue().strip().splitlines()[-1] if out.getvalue().strip() else ""
            print(f"  {label}: exit {code}, {seconds:.1f}s; {last}", file=sys.stderr)
            if code != 0:
                raise SystemExit(f"error: {label} failed (exit {code})")
            rows.append((f"{label} ({count} zones, 1 PowerDNS target)", count, seconds, seconds))
        return rows
    finally:
        for server in servers:
            server.stop()


def main_bench() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--zones", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sample", type=int, default=1500, help="queries per baseline sample")
    parser.add_argument("--failover-zones", type=int, default=0, metavar="N",
                        help="also time dr failover of N zones (0: skip)")
    args = parser.parse_args()

    zones = {f"bench{i}.example.": 1_700_000_000 + i for i in range(args.zones)}
    tmp = Path(tempfile.mkdtemp(prefix="bench-dr-check-"))
    servers = []
    try:
        started = time.perf_counter()
        servers = [BindPrimary("127.0.0.1", zones), PdnsServer("127.0.0.21", zones, caches=True),
                   PdnsServer("127.0.0.22", zones, caches=True)]
        for server in servers:
            server.start()
        print(f"servers up with {args.zones} zones each in {time.perf_counter() - started:.1f}s",
              file=sys.stderr)
        pools = tmp / "pools.yaml"
        pools.write_text(pools_yaml([("region1", servers[0]), ("region1", servers[1]),
                                     ("region2", servers[2])]))
        zone_file = tmp / "zones.txt"
        zone_file.write_text("\n".join(zones) + "\n")
        total = len(zones) * len(servers)

        ours = []
        for run in range(args.runs):
            out = io.StringIO()
            started = time.perf_counter()
            with contextlib.redirect_stdout(out):
                code = main(["dr", "check", "--pools", str(pools), "--zones", str(zone_file),
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

        # region 2 lost without a trace: its nameserver drops every packet (no ICMP)
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.23", 0))
        silent = types.SimpleNamespace(host="127.0.0.23", port=sink.getsockname()[1])
        lost_pools = tmp / "pools-lost.yaml"
        lost_pools.write_text(pools_yaml([("region1", servers[0]), ("region1", servers[1]),
                                          ("region2", silent)]))
        out = io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(out):
            lost_code = main(["dr", "check", "--pools", str(lost_pools), "--zones", str(zone_file),
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
                    out = subprocess.run([dig, "+short", "+norecurse", "-p", str(server.port), f"@{server.host}",
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
            fo_rows = bench_failover(args.failover_zones, tmp)
            print(f"\n| {'failover':<68} | {'seconds':>8} | {'zones/s':>8} |")
            print(f"|{'-' * 70}|{'-' * 10}|{'-' * 10}|")
            for label, count, seconds, _ in fo_rows:
                print(f"| {label:<68} | {seconds:>8.1f} | {count / seconds:>8.0f} |")
        return 0 if ours_s < 10 else 1
    finally:
        for server in servers:
            server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main_bench())
