"""``designate-dr check`` against real BIND and PowerDNS servers: exit codes 0/1/2 and formats."""
from __future__ import annotations

import json
import re
import socket
import types
from pathlib import Path

import fixtures
from oslotest import base

from designate_dr.ops.soa import parse_soa_answer, soa_query_wire
from designate_dr.serial import highest_serial, serial_lag
from tests.fixtures import dns
from tests.fixtures.cli import run_dr
from tests.fixtures.designate_api import FakeDesignateAPI
from tests.fixtures.pools import nameserver_target, pools_yaml

ZONES = {f"zone{i}.example.": 2026010100 + i for i in range(30)}
SAMPLE_LINE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-z_]+="[^"]*",?)*\})? -?[0-9.e+]+$')


class TestCheck(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.bind = self.serving(dns.BindPrimary(tmp / "bind", "127.0.0.1"))
        self.pdns1 = self.serving(dns.PdnsPrimary(tmp / "pdns1", "127.0.0.21"))
        self.pdns2 = self.serving(dns.PdnsPrimary(tmp / "pdns2", "127.0.0.22"))
        self.master = self.serving(dns.PdnsPrimary(tmp / "master", "127.0.0.40"))  # the masters (mdns) of region 1
        self.pools = tmp / "pools.yaml"
        self.write_pools([("region1", self.bind), ("region1", self.pdns1), ("region2", self.pdns2)])
        self.zones = tmp / "zones.txt"
        self.zones.write_text("# every zone of the pool\n" + "\n".join(z.rstrip(".") for z in ZONES) + "\n")

    def serving(self, server):
        """``server`` started with every zone of ZONES at its serial."""
        for zone, serial in ZONES.items():
            server.add_zones([zone], serial)
        return self.useFixture(server)

    def write_pools(self, servers) -> None:
        self.pools.write_text(pools_yaml(nameserver_target(region, server, [self.master.master])
                                         for region, server in servers))

    def check(self, *extra: str):
        return run_dr("check", "--pools", str(self.pools), "--zones", str(self.zones),
                       "--timeout", "0.5", *extra)

    def test_all_in_sync_exit_0(self) -> None:
        outcome = self.check()
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertIn("in-sync: 30/30 zones in sync on 3 nameservers in 2 regions", outcome.stdout)
        report = json.loads(self.check("--format", "json").stdout)
        self.assertEqual(("in-sync", 0, 30, []), (report["status"], report["exit_code"],
                                                   report["zones_in_sync"], report["problems"]))

    def test_lagging_and_missing_exit_1(self) -> None:
        self.pdns2.set_serial("zone1.example.", ZONES["zone1.example."] - 100)
        self.pdns1.remove_zone("zone2.example.")
        outcome = self.check("--format", "json")
        self.assertEqual(1, outcome.code, outcome.stderr)
        report = json.loads(outcome.stdout)
        self.assertEqual("degraded", report["status"])
        self.assertEqual(28, report["zones_in_sync"])
        problems = {(p["zone"], p["region"], p["state"]): p for p in report["problems"]}
        self.assertEqual({("zone1.example.", "region2", "lagging"), ("zone2.example.", "region1", "missing")},
                         set(problems))
        self.assertEqual(100, problems["zone1.example.", "region2", "lagging"]["lag"])
        self.assertEqual("REFUSED", problems["zone2.example.", "region1", "missing"]["reason"])

        prom = self.check("--format", "prometheus")
        self.assertEqual(1, prom.code)
        self.assert_prometheus(prom.stdout)
        self.assertIn('designate_dr_zone_lag{zone="zone1.example.",region="region2",'
                      f'server="127.0.0.22:{self.pdns2.port}"}} 100', prom.stdout)
        self.assertIn('designate_dr_zone_missing{zone="zone2.example.",region="region1",'
                      f'server="127.0.0.21:{self.pdns1.port}"}} 1', prom.stdout)
        self.assertIn("designate_dr_check_status 1\n", prom.stdout)

        table = self.check()
        self.assertIn("zone1.example.  region2", table.stdout)
        self.assertIn("degraded: 28/30 zones in sync", table.stdout)

    def test_region_unreachable_exit_2(self) -> None:
        self.pdns2.stop()
        outcome = self.check("--format", "json")
        self.assertEqual(2, outcome.code, outcome.stderr)
        report = json.loads(outcome.stdout)
        self.assertEqual(["region2"], report["regions_down"])
        down = [s for s in report["servers"] if not s["reachable"]]
        self.assertEqual([f"127.0.0.22:{self.pdns2.port}"], [s["server"] for s in down])
        self.assertEqual(30, report["zones_in_sync"])  # the reachable servers agree

    def test_region_that_drops_every_packet_exit_2(self) -> None:
        # a lost region usually sends no ICMP back: a socket that never reads stands in for it
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sink.close)
        sink.bind(("127.0.0.23", 0))
        silent = types.SimpleNamespace(address="127.0.0.23", port=sink.getsockname()[1])
        self.write_pools([("region1", self.bind), ("region1", self.pdns1), ("region2", silent)])
        outcome = self.check("--format", "json", "--retries", "1")
        self.assertEqual(2, outcome.code, outcome.stderr)
        report = json.loads(outcome.stdout)
        self.assertEqual(["region2"], report["regions_down"])
        (down,) = [s for s in report["servers"] if not s["reachable"]]
        self.assertEqual("no answer in 2 tries", down["error"])

    def test_one_server_of_a_region_down_is_degraded(self) -> None:
        self.bind.stop()
        outcome = self.check("--format", "prometheus", "--output", str(self.pools.with_name("dr.prom")))
        self.assertEqual(1, outcome.code, outcome.stderr)
        text = self.pools.with_name("dr.prom").read_text()
        self.assert_prometheus(text)
        self.assertIn(f'designate_dr_nameserver_up{{region="region1",server="127.0.0.1:{self.bind.port}"}} 0',
                      text)
        self.assertIn('designate_dr_region_up{region="region1"} 1', text)

    def test_masters_are_checked_too(self) -> None:
        master = f"127.0.0.40:{self.master.port}"
        self.master.set_serial("zone3.example.", ZONES["zone3.example."] - 5)  # its database is behind
        report = json.loads(self.check("--format", "json").stdout)
        self.assertTrue(all(m["reachable"] for m in report["masters"]))
        self.assertEqual([(master, "region1", 29, 1)],
                         [(m["server"], m["region"], m["in_sync"], m["lagging"]) for m in report["masters"]])
        (problem,) = report["problems"]
        self.assertEqual(("zone3.example.", master, "master", "lagging", 5),
                         (problem["zone"], problem["server"], problem["role"], problem["state"], problem["lag"]))
        self.master.stop()  # a dead mdns shows before any zone lags
        outcome = self.check("--format", "prometheus")
        self.assertEqual(1, outcome.code, outcome.stderr)
        self.assertIn(f'designate_dr_master_up{{region="region1",server="{master}"}} 0', outcome.stdout)
        table = self.check()
        self.assertIn(f"masters unreachable: {master}", table.stdout)
        self.assertEqual(0, self.check("--no-masters").code)

    def test_bad_input_is_one_line(self) -> None:
        self.pools.write_text("- name: default\n  targets: [\n")
        outcome = self.check()
        self.assertEqual(1, outcome.code)
        self.assertEqual([f"error: {self.pools}: not valid YAML at line 3, column 1: expected the node "
                          "content, but found '<stream end>'"], outcome.stderr.splitlines())
        missing = run_dr("check", "--pools", str(self.pools), "--zones", "/nonexistent/zones")
        self.assertEqual(1, missing.code)
        self.zones.write_text("# nothing yet\n")
        self.write_pools([("region1", self.bind)])
        empty = self.check()
        self.assertEqual((1, ["error: no zones to check (give --zones FILE or --from-api URL)"]),
                         (empty.code, empty.stderr.splitlines()))

    def assert_prometheus(self, text: str) -> None:
        declared: set[str] = set()
        for line in text.splitlines():
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                declared.add(line.split()[2])
                continue
            self.assertRegex(line, SAMPLE_LINE)
            self.assertIn(line.split("{")[0].split(" ")[0], declared, line)


    def test_zones_from_the_designate_api(self) -> None:
        api = self.useFixture(FakeDesignateAPI(masters=[self.master], token="monitor-token"))
        self.useFixture(fixtures.EnvironmentVariable("OS_AUTH_TOKEN", "monitor-token"))
        outcome = run_dr("check", "--pools", str(self.pools), "--from-api", api.url + "/v2",
                         "--insecure-http", "--format", "json")
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertEqual(30, json.loads(outcome.stdout)["zones"])
        # 30 zones, 12 a page: followed the next links
        self.assertEqual([("GET", "/v2/zones")] * 3, [(r.method, r.path.split("?")[0]) for r in api.received])
        self.useFixture(fixtures.EnvironmentVariable("OS_AUTH_TOKEN", "stale-token"))
        refused = run_dr("check", "--pools", str(self.pools), "--from-api", api.url, "--insecure-http")
        self.assertEqual(1, refused.code)
        self.assertEqual(["error: Designate API refused listing zones: HTTP 401 (set OS_AUTH_TOKEN to an "
                          "admin token)"], refused.stderr.splitlines())
        self.assertNotIn("stale-token", refused.stdout + refused.stderr)


class TestSerials(base.BaseTestCase):
    def test_rfc1982(self) -> None:
        self.assertEqual(5, serial_lag(10, 5))
        self.assertEqual(0, serial_lag(5, 10))
        self.assertEqual(10, serial_lag(4, 2**32 - 6))  # wrapped around
        self.assertEqual(4, highest_serial([2**32 - 6, 4, 1]))
        self.assertIsNone(highest_serial([]))

    def test_answers_the_parser_reads(self) -> None:
        import dns.flags
        import dns.message
        import dns.rcode
        import dns.rrset

        wire = soa_query_wire("example.org")
        query = dns.message.from_wire(wire)
        self.assertEqual(0, query.flags & dns.flags.RD)
        answer = dns.message.make_response(query)
        answer.flags |= dns.flags.AA
        answer.answer.append(dns.rrset.from_text("example.org.", 60, "IN", "SOA",
                                                 "ns1.example.org. h.example.org. 42 1 1 1 1"))
        qlen = len(wire) - 12
        self.assertEqual((42, ""), parse_soa_answer(answer.to_wire(), qlen))
        answer.flags &= ~dns.flags.AA
        self.assertEqual((None, "not authoritative"), parse_soa_answer(answer.to_wire(), qlen))
        refused = dns.message.make_response(query)
        refused.set_rcode(dns.rcode.REFUSED)
        self.assertEqual((None, "REFUSED"), parse_soa_answer(refused.to_wire(), qlen))

