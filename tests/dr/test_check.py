"""``designate-dist dr check`` against real BIND and PowerDNS servers: exit codes 0/1/2 and formats."""
from __future__ import annotations

import json
import re
import tempfile
import unittest
from pathlib import Path

from tests.dr.servers import BindPrimary, PdnsServer, free_port, have_servers
from tests.fixtures.cli import run_cli

ZONES = {f"zone{i}.example.": 2026010100 + i for i in range(30)}
SAMPLE_LINE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-z_]+="[^"]*",?)*\})? -?[0-9.e+]+$')


def pools_yaml(servers: list[tuple[str, object]]) -> str:
    lines = ["- name: default", "  nameservers:"]
    for _, server in servers:
        lines += [f"  - host: {server.host}", f"    port: {server.port}"]
    lines.append("  targets:")
    for region, server in servers:
        kind = "bind9_dr" if isinstance(server, BindPrimary) else "pdns4_dr"
        lines += [f"  - type: {kind}", "    masters:", "    - host: 127.0.0.40", "      port: 5354",
                  "    options:", f"      host: {server.host}", f"      port: '{server.port}'",
                  f"      region: {region}"]
    return "\n".join(lines) + "\n"


class TestCheck(unittest.TestCase):
    def setUp(self) -> None:
        reason = have_servers()
        if reason:
            self.fail(reason)
        self.bind = BindPrimary("127.0.0.1", ZONES)
        self.pdns1 = PdnsServer("127.0.0.21", ZONES)
        self.pdns2 = PdnsServer("127.0.0.22", ZONES)
        for server in (self.bind, self.pdns1, self.pdns2):
            self.addCleanup(server.cleanup)
            server.start()
        tmp = Path(self.enterContext(tempfile.TemporaryDirectory()))
        self.pools = tmp / "pools.yaml"
        self.pools.write_text(pools_yaml([("region1", self.bind), ("region1", self.pdns1),
                                          ("region2", self.pdns2)]))
        self.zones = tmp / "zones.txt"
        self.zones.write_text("# every zone of the pool\n" + "\n".join(z.rstrip(".") for z in ZONES) + "\n")

    def check(self, *extra: str):
        return run_cli("dr", "check", "--pools", str(self.pools), "--zones", str(self.zones),
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
        self.pdns1.drop_zone("zone2.example.")
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

    def test_one_server_of_a_region_down_is_degraded(self) -> None:
        self.bind.stop()
        outcome = self.check("--format", "prometheus", "--output", str(self.pools.with_name("dr.prom")))
        self.assertEqual(1, outcome.code, outcome.stderr)
        text = self.pools.with_name("dr.prom").read_text()
        self.assert_prometheus(text)
        self.assertIn(f'designate_dr_nameserver_up{{region="region1",server="127.0.0.1:{self.bind.port}"}} 0',
                      text)
        self.assertIn('designate_dr_region_up{region="region1"} 1', text)

    def test_bad_input_is_one_line(self) -> None:
        self.pools.write_text("- name: default\n  targets: [\n")
        outcome = self.check()
        self.assertEqual(1, outcome.code)
        self.assertEqual([f"error: {self.pools}: not valid YAML at line 3, column 1: expected the node "
                          "content, but found '<stream end>'"], outcome.stderr.splitlines())
        missing = run_cli("dr", "check", "--pools", str(self.pools), "--zones", "/nonexistent/zones")
        self.assertEqual(1, missing.code)

    def assert_prometheus(self, text: str) -> None:
        declared: set[str] = set()
        for line in text.splitlines():
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                declared.add(line.split()[2])
                continue
            self.assertRegex(line, SAMPLE_LINE)
            self.assertIn(line.split("{")[0].split(" ")[0], declared, line)


class TestUnusedPort(unittest.TestCase):
    def test_free_port_is_high(self) -> None:
        self.assertGreater(free_port("127.0.0.1"), 10000)
