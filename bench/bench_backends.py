#!/usr/bin/env python3
"""pdns4_dr / bind9_dr vs Designate's stock pdns4 / bind9: create and bulk re-point.

    .venv/bin/python bench/bench_backends.py [--zones 1000] [--only pdns|bind]
                                             [--concurrency 8] [--stock-limit M]

Starts the test servers of tests/fixtures/dns.py (two region primaries
serving the zones, a PowerDNS and a BIND secondary), then per secondary:

- create: N zones through the stock backend's ``create_zone`` (timed first,
  while no transfers run), N other zones through ours, one call per zone as Designate's worker makes them (ours also
  triggers the first transfer, the stock one leaves it to mdns's NOTIFY);
- re-point: move the stock zones to region 2 the only way the stock backend
  can (pdns4: ``create_zone`` again, which deletes and re-creates each zone;
  bind9: ``update_zone``, showzone + modzone), and our zones with one
  ``repoint_zones`` call (bounded concurrency, keep-alive session / kept-open
  rndc connections);
- re-point again with ours (nothing to change: the idempotent check alone).

``--stock-limit M`` times the stock backend on the first M zones only (its
rate is what is compared; useful at 10,000 zones where the stock bind9 path
takes many minutes).  Prints a table with zones/s and ours/stock ratios.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from designate import exceptions, objects  # noqa: E402
from designate.backend.impl_bind9 import Bind9Backend  # noqa: E402
from designate.backend.impl_pdns4 import PDNS4Backend  # noqa: E402

from designate_dr.backend import bind9_dr, pdns4_dr  # noqa: E402
from tests.fixtures import dns  # noqa: E402
from tests.fixtures.designate_objects import designate_ready, pool_target, zone_object  # noqa: E402


def zones_named(prefix: str, count: int) -> list[objects.Zone]:
    return [zone_object(f"{prefix}{i}.bench.") for i in range(count)]


def timed(func, items, failures: list[str] | None = None) -> float:
    """Seconds to call ``func`` on every item; errors are counted in ``failures`` (else raised)."""
    start = time.perf_counter()
    for item in items:
        try:
            func(item)
        except exceptions.Backend as exc:
            if failures is None:
                raise
            failures.append(f"{item.name}: {' '.join(str(exc).split())[:120]}")
    return time.perf_counter() - start


def bench_one(kind: str, regions: dns.Regions, n: int, stock_n: int,
              concurrency: int) -> list[tuple]:
    r1, r2 = regions.primaries
    secondary = regions.pdns if kind == "pdns" else regions.bind
    options = {**secondary.target_options(), **regions.masters_options(), "region": "region1"}
    both = [r1.master, r2.master]
    stock_cls, ours_cls, module = ((PDNS4Backend, pdns4_dr.PDNS4DRBackend, pdns4_dr)
                                   if kind == "pdns" else
                                   (Bind9Backend, bind9_dr.Bind9DRBackend, bind9_dr))
    stock_zones = zones_named(f"s{kind}", stock_n)
    ours_zones = zones_named(f"o{kind}", n)
    stock = stock_cls(pool_target(kind, secondary.target_options(), both))
    ours = ours_cls(pool_target(f"{kind}_dr", options, []))
    rows = []
    # stock first (it starts no transfers, so ours cannot slow it down), then ours
    create_failed: list[str] = []
    repoint_failed: list[str] = []
    t_stock_create = timed(lambda z: stock.create_zone(None, z), stock_zones, create_failed)
    stock_r2 = stock_cls(pool_target(kind, secondary.target_options(), [r2.master]))
    if kind == "pdns":
        t_stock_repoint = timed(lambda z: stock_r2.create_zone(None, z), stock_zones,
                                repoint_failed)
    else:
        t_stock_repoint = timed(lambda z: stock_r2.update_zone(None, z), stock_zones,
                                repoint_failed)
    for what, failed in (("create", create_failed), ("re-point", repoint_failed)):
        if failed:
            print(f"stock {kind} {what}: {len(failed)} of {stock_n} zones failed, e.g. {failed[0]}")

    t_ours = timed(lambda z: ours.create_zone(None, z), ours_zones)
    rows.append((kind, "create (one call per zone)", n, stock_n, t_stock_create, t_ours))
    t_stock = t_stock_repoint
    result = module.repoint_zones(options, [r2.master], zones=[z.name for z in ours_zones],
                                  concurrency=concurrency)
    if result.failed or len(result.changed) != n:
        sys.exit(f"{kind} repoint: {len(result.changed)} changed, failed: "
                 f"{dict(list(result.failed.items())[:3])}")
    rows.append((kind, f"re-point (ours: {concurrency} parallel)", n, stock_n, t_stock,
                 result.seconds))
    again = module.repoint_zones(options, [r2.master], zones=[z.name for z in ours_zones],
                                 concurrency=concurrency)
    if len(again.unchanged) != n:
        sys.exit(f"{kind} repoint again: {len(again.changed)} changed, {len(again.failed)} failed")
    rows.append((kind, "re-point again (no change)", n, 0, None, again.seconds))

    # the zones really follow region 2 now: bump a few serials there and look
    sample = [z.name for z in ours_zones[:: max(1, n // 5)]]
    for name in sample:
        r2.set_serial(name, 2)
    arrived = sum(dns.wait_for_serial(name, secondary, 2, timeout=30) == 2 for name in sample)
    print(f"{kind}: {arrived}/{len(sample)} sampled zones transferred serial 2 from region 2",
          flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--zones", type=int, default=1000, help="zones per backend (default 1000)")
    parser.add_argument("--only", choices=("pdns", "bind"))
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--stock-limit", type=int, default=None,
                        help="time the stock backends on this many zones only")
    args = parser.parse_args()
    n = args.zones
    stock_n = min(n, args.stock_limit or n)
    designate_ready()

    kinds = [args.only] if args.only else ["pdns", "bind"]
    regions = dns.Regions(2, secondaries=kinds, xfr_cycle_interval=3600)
    regions.setUp()
    rows: list[tuple] = []
    try:
        names = [f"{p}{k}{i}.bench" for k in kinds for p in ("s", "o") for i in range(n)]
        start = time.perf_counter()
        regions.add_zones(names, 1)
        print(f"{len(names)} zones loaded on both primaries in "
              f"{time.perf_counter() - start:.1f}s", flush=True)
        for kind in kinds:
            rows += bench_one(kind, regions, n, stock_n, args.concurrency)
    finally:
        regions.cleanUp()

    print()
    print(f"{'target':6} {'operation':34} {'zones':>6} {'stock s':>8} {'stock z/s':>9} "
          f"{'ours s':>8} {'ours z/s':>9} {'ratio':>7}")
    for kind, op, count, s_count, s_time, o_time in rows:
        o_rate = count / o_time if o_time else float("inf")
        if s_time is None:
            print(f"{kind:6} {op:34} {count:6} {'-':>8} {'-':>9} {o_time:8.2f} {o_rate:9.0f} "
                  f"{'-':>7}")
            continue
        s_rate = s_count / s_time if s_time else float("inf")
        # stock time for all zones, extrapolated from its rate when --stock-limit was used
        s_full = count / s_rate
        print(f"{kind:6} {op:34} {count:6} {s_full:8.2f} {s_rate:9.0f} {o_time:8.2f} "
              f"{o_rate:9.0f} {o_rate / s_rate:6.1f}x")
    if stock_n != n:
        print(f"(stock measured on {stock_n} zones; 'stock s' is extrapolated to {n})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
