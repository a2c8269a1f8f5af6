"""The failover drill on real servers: lose region 1, fail over, change a zone, fail back.

Region 1: a primary standing in for its mdns (127.0.0.2), a PowerDNS and a BIND
secondary (127.0.0.1).  Region 2: a primary (127.0.0.3) and a PowerDNS secondary
(127.0.0.4).  Zones are created on the secondaries through the DR plugins, as
Designate's worker would.  Everything goes through ``designate-dr ...``'s
``main()``; ``FakeDesignateAPI`` stands in for region 2's Designate API (the two
calls ``--fix-serials`` makes: find a zone, PATCH it).  The drill's figures go to stderr.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import fixtures
from oslotest import base

from designate_dr.backend import pdns4_dr
from designate_dr.ops.pools import load_pools
from tests.fixtures import dns
from tests.fixtures.cli import run_cli, run_dr
from tests.fixtures.designate_api import FakeDesignateAPI
from tests.fixtures.designate_objects import designate_ready, make_backend, zone_object

N_ZONES = 20
SERIAL = 1_700_000_000  # Designate's serials are UNIX times
TOKEN = "drill-token-not-a-secret"


def _create_zone(kind: str, options: dict[str, str], masters: list[str], name: str, serial: int) -> None:
    """Create ``name`` on a target through its DR plugin, as Designate's worker does."""
    make_backend(kind, options, masters).create_zone(None, zone_object(name, serial))


class TestFailoverDrill(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        designate_ready()
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.p1 = self.useFixture(dns.PdnsSecondary(tmp / "p1", "127.0.0.1"))
        self.b1 = self.useFixture(dns.BindSecondary(tmp / "b1", "127.0.0.1"))
        self.p2 = self.useFixture(dns.PdnsSecondary(tmp / "p2", "127.0.0.4"))
        self.secondaries = [self.p1, self.b1, self.p2]
        self.r1 = dns.PdnsPrimary(tmp / "r1", "127.0.0.2", "region1")
        self.r2 = dns.PdnsPrimary(tmp / "r2", "127.0.0.3", "region2")
        for primary in (self.r1, self.r2):
            for secondary in self.secondaries:
                primary.add_notify_target(secondary.address, secondary.port)
            self.useFixture(primary)
        self.zones = [f"drill{i}.example." for i in range(N_ZONES)]
        for primary in (self.r1, self.r2):
            primary.add_zones(self.zones, SERIAL)
        masters = {"masters_region1": self.r1.master, "masters_region2": self.r2.master}
        self.targets = [
            ("pdns4_dr", self.p1, {"host": "127.0.0.1", "port": str(self.p1.port), **self.p1.target_options(),
                                   "region": "region1", "masters_region2": self.r2.master}, [self.r1.master]),
            ("bind9_dr", self.b1, {"host": "127.0.0.1", "port": str(self.b1.port), **self.b1.target_options(),
                                   "region": "region1", **masters}, [self.r1.master]),
            ("pdns4_dr", self.p2, {"host": "127.0.0.4", "port": str(self.p2.port), **self.p2.target_options(),
                                   "region": "region2", "region_preference": "region2,region1", **masters},
             [self.r2.master]),
        ]
        for kind, _, options, target_masters in self.targets:
            for zone in self.zones:
                _create_zone(kind, options, target_masters, zone, SERIAL)
        for zone in self.zones:
            for secondary in self.secondaries:
                self.assertEqual(SERIAL, dns.wait_for_serial(zone, secondary, SERIAL))
        self.pools = tmp / "pools.yaml"
        self.pools.write_text(self._pools_yaml())
        self.original = self.pools.read_bytes()
        self.api = self.useFixture(FakeDesignateAPI(masters=[self.r2], token=TOKEN))
        self.useFixture(fixtures.EnvironmentVariable("OS_AUTH_TOKEN", TOKEN))

    def _pools_yaml(self) -> str:
        lines = ["# two regions; region 3 runs `designate-dr check`", "- name: default",
                 "  ns_records:", "  - hostname: ns1.example.org.", "    priority: 1", "  nameservers:"]
        for _, server, _, _ in self.targets:
            lines += [f"  - host: {server.address}", f"    port: {server.port}"]
        lines.append("  targets:")
        for kind, _, options, target_masters in self.targets:
            lines += [f"  - type: {kind}", f"    description: {kind} {options['region']}", "    masters:"]
            for master in target_masters:
                host, port = master.split(":")
                lines += [f"    - host: {host}", f"      port: {port}"]
            lines.append("    options:")
            lines += [f"      {k}: '{v}'" for k, v in options.items()]
        return "\n".join(lines) + "\n"

    def served(self, servers) -> dict[str, int]:
        """Highest serial any of ``servers`` serves, per zone."""
        out = {}
        for zone in self.zones:
            serials = [s for s in (dns.soa_serial(zone, server) for server in servers) if s is not None]
            out[zone] = max(serials) if serials else -1
        return out

    def backups(self) -> list[Path]:
        return sorted(self.pools.parent.glob("pools.yaml.*.bak"))

    def assert_refused(self, outcome, code: int, text: str) -> None:
        self.assertEqual(code, outcome.code, outcome.stdout + outcome.stderr)
        self.assertEqual(1, len(outcome.error_lines), outcome.stderr)
        self.assertIn(text, outcome.error_lines[0])
        self.assertNotIn("Traceback", outcome.stderr)
        self.assertEqual(self.original, self.pools.read_bytes())
        self.assertEqual([], self.backups())

    def test_drill(self) -> None:
        figures = {"zones": N_ZONES}
        state = self.pools.with_name("dr-state.json")
        check = run_dr("check", "--pools", str(self.pools), "--format", "json", "--state", str(state))
        self.assertEqual(0, check.code, check.stdout + check.stderr)
        self.assertEqual(N_ZONES, json.loads(check.stdout)["zones_in_sync"])

        # region 2's database is behind for one zone: region 1 served a higher serial
        # (region 2's secondary may or may not have taken it from region 1 before the loss)
        ahead = self.zones[0]
        self.r1.set_serial(ahead, SERIAL + 10)
        for secondary in (self.p1, self.b1):
            self.assertEqual(SERIAL + 10, dns.wait_for_serial(ahead, secondary, SERIAL + 10))
        last_served = self.served(self.secondaries)
        # the monitor in region 3 records what is served
        run_dr("check", "--pools", str(self.pools), "--state", str(state))
        self.assertEqual(SERIAL + 10, json.loads(state.read_text())["zones"][ahead])

        # region 1 is lost
        for server in (self.r1, self.p1, self.b1):
            server.stop()
        check = run_dr("check", "--pools", str(self.pools), "--format", "json")
        self.assertEqual(2, check.code, check.stdout + check.stderr)
        self.assertEqual(["region1"], json.loads(check.stdout)["regions_down"])

        dry = run_dr("failover", "--lost", "region1", "--pools", str(self.pools), "--dry-run",
                      "--state", str(state))
        self.assertEqual(0, dry.code, dry.stdout + dry.stderr)
        self.assertIn(f"remove target pdns4_dr 127.0.0.1:{self.p1.port} (region1) from pool default", dry.stdout)
        self.assertIn(f"{N_ZONES} of {N_ZONES} zones to re-point to {self.r2.master}", dry.stdout)
        self.assertIn(f"zone {ahead}: served serial {SERIAL + 10} is above the masters' {SERIAL}", dry.stdout)
        self.assertIn("dry run: nothing changed", dry.stdout)
        self.assertEqual(self.original, self.pools.read_bytes())

        self.pools.chmod(0o600)  # it holds API keys
        started = time.monotonic()
        fail = run_dr("failover", "--lost", "region1", "--pools", str(self.pools), "--state", str(state),
                      "--fix-serials", "--api", self.api.url, "--insecure-http", "--wait", "20")
        figures["failover_s"] = time.monotonic() - started
        self.assertEqual(0, fail.code, fail.stdout + fail.stderr)
        self.assertEqual([ahead], self.api.patched)
        self.assertIn("designate-manage pool update --file", fail.stdout)
        self.assertIn("systemctl stop designate-worker designate-producer   # no worker may put the old masters back",
                      fail.stdout)
        self.assertNotIn(TOKEN, fail.stdout + fail.stderr)
        (backup,) = self.backups()
        self.assertEqual(self.original, backup.read_bytes())
        self.assertEqual((0o600, 0o600), (backup.stat().st_mode & 0o777, self.pools.stat().st_mode & 0o777))
        after = load_pools(self.pools)
        self.assertEqual(("region2",), after.regions)
        self.assertEqual({z: [self.r2.master] for z in self.zones},
                         pdns4_dr.list_zones(self.targets[2][2]))
        now_served = self.served([self.p2])
        for zone in self.zones:
            self.assertGreaterEqual(now_served[zone], last_served[zone], zone)
        self.assertGreater(now_served[ahead], SERIAL + 10)

        again = run_dr("failover", "--lost", "region1", "--pools", str(self.pools), "--state", str(state))
        self.assertEqual(0, again.code, again.stdout + again.stderr)
        self.assertIn("nothing to do", again.stdout)
        self.assertEqual(after.data, load_pools(self.pools).data)
        self.assertEqual([backup], self.backups())

        changed = self.zones[5]
        self.r2.set_serial(changed, SERIAL + 500)
        self.assertEqual(SERIAL + 500, dns.wait_for_serial(changed, self.p2, SERIAL + 500))
        check = run_dr("check", "--pools", str(self.pools))
        self.assertEqual(0, check.code, check.stdout + check.stderr)

        # region 1 is back, its database restored from region 2's
        for server in (self.r1, self.p1, self.b1):
            server.start()
        early = run_dr("failback", "--restore", "region1", "--pools", str(self.pools), "--dry-run")
        self.assertEqual(0, early.code, early.stdout + early.stderr)
        self.assertIn(f"warning: master {self.r1.master} serves 2 zone(s) below (or without) the other masters' "
                      "serial: is its Designate database up to date?", early.stdout)
        self.assertEqual(after.data, load_pools(self.pools).data)
        for zone in self.zones:
            self.r1.set_serial(zone, self.r2.serial(zone))
        started = time.monotonic()
        back = run_dr("failback", "--restore", "region1", "--pools", str(self.pools), "--wait", "30")
        figures["failback_s"] = time.monotonic() - started
        self.assertEqual(0, back.code, back.stdout + back.stderr)
        self.assertEqual(self.original, self.pools.read_bytes())
        self.assertEqual({z: [self.r2.master, self.r1.master] for z in self.zones},
                         pdns4_dr.list_zones(self.targets[2][2]))
        check = run_dr("check", "--pools", str(self.pools), "--format", "json")
        self.assertEqual(0, check.code, check.stdout + check.stderr)
        self.assertEqual(N_ZONES, json.loads(check.stdout)["zones_in_sync"])
        final = self.served(self.secondaries)
        for zone in self.zones:
            self.assertGreaterEqual(final[zone], now_served[zone], zone)
        again = run_dr("failback", "--restore", "region1", "--pools", str(self.pools))
        self.assertEqual(0, again.code, again.stdout + again.stderr)
        self.assertIn("nothing to do", again.stdout)
        print(f"\nDR drill: {figures['zones']} zones x 3 nameservers, failover {figures['failover_s']:.1f}s "
              f"(incl. serial fix), failback {figures['failback_s']:.1f}s", file=sys.stderr)

    def test_zone_no_surviving_master_serves_is_reported(self) -> None:
        # region 2's database lost a zone: after losing region 1 nobody can serve it
        gone = self.zones[1]
        self.r2.remove_zone(gone)
        for server in (self.r1, self.p1, self.b1):
            server.stop()
        lost = ("dr", "failover", "--lost", "region1", "--pools", str(self.pools), "--wait", "10")
        dry = run_cli(*lost, "--dry-run")
        self.assertEqual(0, dry.code, dry.stdout + dry.stderr)
        self.assertIn(f"zone {gone}: no master of the remaining regions serves it (served serial {SERIAL}); "
                      "create it in Designate or restore its database", dry.stdout)
        fail = run_cli(*lost)
        self.assertEqual(1, fail.code, fail.stdout + fail.stderr)
        self.assertEqual([f"error: 1 zone(s) not served by any master of the remaining regions "
                          f"(first: {gone}); see the fixes above"], fail.error_lines)
        # everything else was done: the other zones are served by region 2 from its master
        self.assertEqual(1, len(self.backups()))
        for zone in self.zones:
            if zone != gone:
                self.assertEqual(SERIAL, dns.soa_serial(zone, self.p2))

    def test_bad_input_changes_nothing(self) -> None:
        # through `designate-dist dr`: the delegation gives the same one-line errors
        lost = ("dr", "failover", "--lost", "region1", "--pools", str(self.pools))
        self.assert_refused(run_dr("failover", "--lost", "region9", "--pools", str(self.pools)), 1,
                            f"{self.pools}: no region 'region9' (regions: region1, region2)")
        # the surviving target is down: refuse before writing anything
        self.p2.stop()
        self.assert_refused(run_cli(*lost), 1, f"target pdns4_dr 127.0.0.4:{self.p2.port} (region2): "
                                               "listing zones failed")
        self.p2.start()
        # every surviving master is down
        self.r2.stop()
        self.assert_refused(run_cli(*lost), 1, "no master of the remaining regions answers")
        self.r2.start()
        self.pools.write_text(self.original.decode().replace("  targets:", "  targets:\n  - [broken"))
        self.original = self.pools.read_bytes()
        self.assert_refused(run_cli(*lost), 1, f"{self.pools}: not valid YAML at line")
        self.assert_refused(run_dr("failback", "--restore", "region1", "--pools", str(self.pools)),
                            1, "not valid YAML")
        self.pools.write_bytes(self._pools_yaml().encode())
        self.original = self.pools.read_bytes()
        refused = run_dr("failback", "--restore", "region3", "--pools", str(self.pools))
        self.assert_refused(refused, 1, "no region 'region3'")
