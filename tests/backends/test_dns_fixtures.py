"""The loopback DNS fixtures themselves: two regions, both secondaries, real AXFR; the BIND primary; ports."""
from __future__ import annotations

import fixtures
from oslotest import base

from tests.fixtures import dns


class TestRegionsFixture(base.BaseTestCase):

    def test_zone_transfers_and_survives_region1_loss(self) -> None:
        regions = self.useFixture(dns.Regions(2))
        regions.add_zone("fixture.example", 5)
        r1, r2 = regions.primaries
        self.assertEqual(5, dns.soa_serial("fixture.example", r1))
        self.assertEqual(5, dns.soa_serial("fixture.example", r2))
        self.assertNotEqual(r1.address, r2.address)

        masters = [r1.master, r2.master]
        regions.pdns.api("POST", "/zones", json={
            "name": "fixture.example.", "kind": "Slave", "masters": masters}).raise_for_status()
        regions.pdns.api("PUT", "/zones/fixture.example./axfr-retrieve").raise_for_status()
        bind_masters = "; ".join(m.replace(":", " port ") for m in masters)
        regions.bind.rndc("addzone", "fixture.example",
                          f'{{ type secondary; primaries {{ {bind_masters}; }}; '
                          f'file "sec.fixture.example"; }};')
        for secondary in regions.secondaries:
            self.assertEqual(5, dns.wait_for_serial("fixture.example", secondary, 5))

        regions.set_serial("fixture.example", 6)
        for secondary in regions.secondaries:
            self.assertEqual(6, dns.wait_for_serial("fixture.example", secondary, 6))

        r1.stop()
        self.assertIsNone(dns.soa_serial("fixture.example", r1, timeout=0.3))
        regions.set_serial("fixture.example", 7)  # only region 2 notifies
        for secondary in regions.secondaries:
            self.assertEqual(7, dns.wait_for_serial("fixture.example", secondary, 7))

        r1.start()
        self.assertEqual(7, dns.soa_serial("fixture.example", r1))

    def test_missing_binary_is_a_clear_error(self) -> None:
        error = self.assertRaises(dns.ServerUnavailable, dns.require, "no-such-dns-server")
        self.assertIn("no-such-dns-server is not installed", str(error))

    def test_free_port_is_high_and_below_the_ephemeral_range(self) -> None:
        port = dns.free_port("127.0.0.1")
        self.assertGreater(port, 10000)
        self.assertTrue(20000 <= port <= 32000, port)

    def test_bind_primary_serves_its_zone_files(self) -> None:
        tmp = self.useFixture(fixtures.TempDir()).path
        bind = dns.BindPrimary(tmp, "127.0.0.1")
        bind.add_zones(["first.example.", "second.example"], 3)
        self.useFixture(bind)
        self.assertEqual((3, 3), (dns.soa_serial("first.example", bind), dns.soa_serial("second.example", bind)))
        bind.set_serial("first.example", 4)
        self.assertEqual(4, dns.wait_for_serial("first.example", bind, 4, timeout=5))
        bind.add_zones(["third.example"], 9)  # while running
        self.assertEqual(9, dns.wait_for_serial("third.example", bind, 9, timeout=5))
        self.assertIsNone(dns.soa_serial("elsewhere.example", bind))
        bind.stop()
        bind.start()
        self.assertEqual((4, 9), (dns.soa_serial("first.example", bind), dns.soa_serial("third.example", bind)))
