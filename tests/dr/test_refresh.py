"""Failback refreshes the zones a returning region's secondaries hold stale (issue 16 item 3).

The zones have Designate's SOA refresh of an hour, so a secondary back from an
outage keeps serving what it had until the failback makes it transfer again: its
zones already list the right masters, so there is nothing to re-point.  Region 1:
a primary (127.0.0.2), a PowerDNS and a BIND secondary (127.0.0.1); region 2: a
primary (127.0.0.3) and a PowerDNS secondary (127.0.0.4).
"""
from __future__ import annotations

from pathlib import Path

import fixtures
from oslotest import base

from tests.fixtures import dns
from tests.fixtures.cli import run_dr
from tests.fixtures.designate_objects import designate_ready
from tests.fixtures.pools import pools_yaml, region_targets

SERIAL = 1_700_000_000
REFRESH = 3600  # Designate's default SOA refresh


class TestFailbackRefreshesStaleZones(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        designate_ready()
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.p1 = self.useFixture(dns.PdnsSecondary(tmp / "p1", "127.0.0.1", xfr_cycle_interval=1))
        self.b1 = self.useFixture(dns.BindSecondary(tmp / "b1", "127.0.0.1"))
        self.p2 = self.useFixture(dns.PdnsSecondary(tmp / "p2", "127.0.0.4", xfr_cycle_interval=1))
        self.secondaries = [self.p1, self.b1, self.p2]
        self.r1 = dns.PdnsPrimary(tmp / "r1", "127.0.0.2", "region1", refresh=REFRESH)
        self.r2 = dns.PdnsPrimary(tmp / "r2", "127.0.0.3", "region2", refresh=REFRESH)
        for primary in (self.r1, self.r2):
            for secondary in self.secondaries:
                primary.add_notify_target(secondary.address, secondary.port)
            self.useFixture(primary)
        self.zones = [f"back{i}.example." for i in range(6)]
        for primary in (self.r1, self.r2):
            primary.add_zones(self.zones, SERIAL)
        self.targets = region_targets(self.r1.master, self.r2.master, self.p1, self.b1, self.p2)
        for target in self.targets:
            target.create_zones(self.zones, SERIAL)
        for zone in self.zones:
            for secondary in self.secondaries:
                self.assertEqual(SERIAL, dns.wait_for_serial(zone, secondary, SERIAL))
        self.assertTrue(self.p1.wait_checked())
        self.pools = tmp / "pools.yaml"
        self.pools.write_text(pools_yaml(self.targets))

    def run_dr(self, *argv: str):
        outcome = run_dr(*argv, "--pools", str(self.pools), "--wait", "20")
        self.assertEqual(0, outcome.code, outcome.stdout + outcome.stderr)
        return outcome

    def test_failback_transfers_what_returning_servers_hold_stale_and_converges(self) -> None:
        for server in (self.r1, self.p1, self.b1):
            server.stop()
        self.run_dr("failover", "--lost", "region1")
        changed = self.zones[:3]
        for zone in changed:
            # Designate's worker tells the pool's nameservers: region 2's alone now
            self.r2.set_serial(zone, SERIAL + 100, notify=False)
            self.p2.api("PUT", f"/zones/{zone}/axfr-retrieve").raise_for_status()
            self.assertEqual(SERIAL + 100, dns.wait_for_serial(zone, self.p2, SERIAL + 100))
            # region 1's database restored from region 2's; mdns notifies nobody when it starts
            self.r1.set_serial(zone, SERIAL + 100, notify=False)
        for server in (self.r1, self.p1, self.b1):
            server.start()
        # PowerDNS keeps what it had until the SOA refresh (an hour)
        self.assertEqual(SERIAL, dns.wait_for_serial(changed[0], self.p1, SERIAL + 100, timeout=3))

        back = self.run_dr("failback", "--restore", "region1")
        self.assertIn(f"target pdns4_dr 127.0.0.1:{self.p1.port} (region1): 0 zones re-pointed", back.stdout)
        self.assertIn("3 behind and transferred again", back.stdout)
        for zone in changed:
            for secondary in self.secondaries:
                self.assertEqual(SERIAL + 100, dns.soa_serial(zone, secondary), f"{zone} on {secondary.address}")
        check = run_dr("check", "--pools", str(self.pools))
        self.assertEqual(0, check.code, check.stdout + check.stderr)

        again = self.run_dr("failback", "--restore", "region1")
        self.assertIn("nothing to do", again.stdout)
