"""pdns4_dr with a catalog zone (RFC 9432) served by real designate-mdns (issue 16 item 8).

Designate's pool gets a catalog zone (``catalog_zone_fqdn``), mdns serves it; the
PowerDNS secondary consumes it.  Re-pointing moves the consumer and every member
follows; a zone the catalog did not create is re-pointed on its own.
"""
from __future__ import annotations

import time
from pathlib import Path

import fixtures
from oslotest import base

from designate_dr.backend import pdns4_dr
from tests.fixtures import dns
from tests.fixtures.designate_mdns import DesignateMdns
from tests.fixtures.designate_objects import designate_ready, make_backend, zone_object

CATALOG = "catalog.example."


class TestCatalogZone(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        designate_ready()
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.r1 = DesignateMdns(tmp / "r1", "127.0.0.2", "region1")
        pools = tmp / "pools.yaml"
        pools.write_text(f"""- name: default
  ns_records: [{{hostname: ns1.example.org., priority: 1}}]
  nameservers: [{{host: 127.0.0.1, port: 53}}]
  catalog_zone: {{catalog_zone_fqdn: {CATALOG}, catalog_zone_refresh: 60}}
  targets: []
""")
        self.r1.pool_update(pools)
        self.zones = ["cat-a.example.", "cat-b.example.", "solo.example."]
        self.serials = self.r1.create_zones(self.zones)
        self.r2 = DesignateMdns(tmp / "r2", "127.0.0.3", "region2")
        self.r1.copy_database_to(self.r2)
        self.useFixture(self.r1)
        self.useFixture(self.r2)
        self.pdns = self.useFixture(dns.PdnsSecondary(tmp / "pdns", "127.0.0.1", xfr_cycle_interval=3600))
        self.options = {**self.pdns.target_options(), "region": "region1",
                        "masters_region1": self.r1.master, "masters_region2": self.r2.master}

    def backend(self, **extra: str):
        return make_backend("pdns4_dr", {**self.options, **extra})

    def test_members_follow_the_catalog_and_the_rest_is_re_pointed_per_zone(self) -> None:
        serial = self.serials[self.zones[0]]
        # a zone created before the catalog was used: not a member, PowerDNS does not adopt it
        self.backend().create_zone(None, zone_object("solo.example.", serial))
        catalog = self.backend(catalog_zone=CATALOG)
        for zone in self.zones[:2]:
            catalog.create_zone(None, zone_object(zone, serial))
        for zone in self.zones:
            self.assertEqual(self.serials[zone], dns.wait_for_serial(zone, self.pdns, self.serials[zone]),
                             self.pdns.log_tail())
        consumer = self.pdns.api("GET", f"/zones/{CATALOG}").json()
        self.assertEqual("Consumer", consumer["kind"])

        result = pdns4_dr.repoint_zones({**self.options, "catalog_zone": CATALOG}, [self.r2.master])
        self.assertEqual(({}, sorted(self.zones)), (result.failed, sorted(result.changed)))
        self.assertEqual(sorted(self.zones[:2]), sorted(result.in_bulk),  # two API calls for both
                         "\n".join(line for line in self.pdns.log_tail(400).splitlines() if "atalog" in line))
        self.assertEqual({z: [self.r2.master] for z in self.zones},
                         {z: m for z, m in pdns4_dr.list_zones(self.options).items() if z in self.zones})
        self.assertEqual([self.r2.master], self.pdns.api("GET", f"/zones/{CATALOG}").json()["masters"])
        # region 1 is gone; the members transfer from region 2
        self.r1.stop()
        self.r2.set_serial(self.zones[0], serial + 7)
        self.pdns.api("PUT", f"/zones/{self.zones[0]}/axfr-retrieve").raise_for_status()
        self.assertEqual(serial + 7, dns.wait_for_serial(self.zones[0], self.pdns, serial + 7))
        again = pdns4_dr.repoint_zones({**self.options, "catalog_zone": CATALOG}, [self.r2.master])
        self.assertEqual(([], []), (again.changed, again.in_bulk))

    def test_update_of_a_member_changes_nothing(self) -> None:
        serial = self.serials[self.zones[0]]
        catalog = self.backend(catalog_zone=CATALOG)
        catalog.create_zone(None, zone_object(self.zones[0], serial))
        self.assertEqual(serial, dns.wait_for_serial(self.zones[0], self.pdns, serial))
        before = len(self.pdns.log_path.read_text(errors="replace").splitlines())
        catalog.update_zone(None, zone_object(self.zones[0], serial))

        def calls() -> list[str]:
            return [line for line in self.pdns.log_path.read_text(errors="replace").splitlines()[before:]
                    if "[webserver]" in line]
        # PowerDNS writes its log line after the reply: on a loaded machine it can come late
        deadline = time.monotonic() + 10
        while not calls() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # and a second call, if one were made, would have been logged by now
        self.assertEqual(1, len(calls()), calls())
