"""``--apply-pools``: the new pools.yaml loaded into Designate with no window (issue 16 item 6).

Designate's side is real: its pools live in a Designate database changed and read by
Designate's own ``designate-manage pool update`` / ``generate_file`` code (central
in-process, :mod:`tests.fixtures.designate_mdns`).  The masters are PowerDNS stand-ins
(127.0.0.2, 127.0.0.3); the services are stood in for by a script that logs what it is
asked to stop and start, so the order can be checked.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import fixtures
import yaml
from oslotest import base

from tests.fixtures import dns
from tests.fixtures.cli import run_dr
from tests.fixtures.designate_mdns import DesignateMdns
from tests.fixtures.designate_objects import designate_ready, make_backend, zone_object

SERIAL = 1_700_000_000
SERVICE_SCRIPT = """import sys
with open(sys.argv[1], "a") as log:
    log.write(" ".join(sys.argv[2:]) + "\\n")
"""


class TestApplyPools(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        designate_ready()
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.designate = DesignateMdns(tmp / "designate", "127.0.0.2", "region2")  # its database only
        self.p1 = self.useFixture(dns.PdnsSecondary(tmp / "p1", "127.0.0.1"))
        self.p2 = self.useFixture(dns.PdnsSecondary(tmp / "p2", "127.0.0.4"))
        self.r1 = dns.PdnsPrimary(tmp / "r1", "127.0.0.2", "region1")
        self.r2 = dns.PdnsPrimary(tmp / "r2", "127.0.0.3", "region2")
        for primary in (self.r1, self.r2):
            self.useFixture(primary)
        self.zones = [f"apply{i}.example." for i in range(4)]
        for primary in (self.r1, self.r2):
            primary.add_zones(self.zones, SERIAL)
        targets = [(self.p1, "region1", [self.r1.master]), (self.p2, "region2", [self.r2.master])]
        lines = ["- name: default", "  ns_records:", "  - {hostname: ns1.example.org., priority: 1}",
                 "  nameservers:"]
        lines += [f"  - {{host: {p.address}, port: {p.port}}}" for p, _, _ in targets]
        lines.append("  targets:")
        for secondary, region, masters in targets:
            other = {"region1": "region2", "region2": "region1"}[region]
            other_master = {"region1": self.r2.master, "region2": self.r1.master}[region]
            options = {"host": secondary.address, "port": str(secondary.port), **secondary.target_options(),
                       "region": region, f"masters_{other}": other_master}
            lines += ["  - type: pdns4_dr", f"    description: pdns4_dr {region}", "    masters:"]
            for master in masters:
                host, port = master.split(":")
                lines += [f"    - {{host: {host}, port: {port}}}"]
            lines.append("    options:")
            lines += [f"      {k}: '{v}'" for k, v in options.items()]
            backend = make_backend("pdns4_dr", options, masters)
            for zone in self.zones:
                backend.create_zone(None, zone_object(zone, SERIAL))
        self.pools = tmp / "pools.yaml"
        self.pools.write_text("\n".join(lines) + "\n")
        self.designate.pool_update(self.pools)  # what the region runs today
        self.service_log = tmp / "services.log"
        script = tmp / "service.py"
        script.write_text(SERVICE_SCRIPT)
        self.apply = ["--apply-pools",
                      "--pool-update-command", self.designate.manage_command("update"),
                      "--pool-show-command", self.designate.manage_command("generate_file"),
                      "--service-command", shlex.join([sys.executable, str(script), str(self.service_log)])
                      + " {action} {service}"]
        for zone in self.zones:
            self.assertEqual(SERIAL, dns.wait_for_serial(zone, self.p2, SERIAL))

    def services(self) -> list[str]:
        return self.service_log.read_text().splitlines() if self.service_log.exists() else []

    def failover(self, *extra: str):
        return run_dr("failover", "--lost", "region1", "--pools", str(self.pools), "--wait", "20", *extra)

    def live_masters(self) -> dict[str, list[str]]:
        return {t["description"]: [f"{m['host']}:{m['port']}" for m in t["masters"]]
                for pool in self.designate.pool_generate() for t in pool["targets"]}

    def test_failover_stops_updates_verifies_and_starts_and_a_rerun_does_nothing(self) -> None:
        self.r1.stop()
        self.p1.stop()
        dry = self.failover(*self.apply, "--dry-run")
        self.assertEqual(0, dry.code, dry.stdout + dry.stderr)
        self.assertIn("dry run: would stop designate-worker, designate-producer; run ", dry.stdout)
        self.assertEqual([], self.services())
        done = self.failover(*self.apply)
        self.assertEqual(0, done.code, done.stdout + done.stderr)
        self.assertEqual(["stop designate-worker", "stop designate-producer",
                          "start designate-worker", "start designate-producer"], self.services())
        self.assertIn("read back: every pool, target, master and nameserver matches", done.stdout)
        # Designate holds region 2 alone, with the masters pools.yaml gives it
        self.assertEqual({"pdns4_dr region2": [self.r2.master]}, self.live_masters())
        self.assertLess(done.stdout.index("pool update done"), done.stdout.index("zones re-pointed to"))
        again = self.failover(*self.apply)
        self.assertEqual(0, again.code, again.stdout + again.stderr)
        self.assertIn("Designate's pools already match pools.yaml", again.stdout)
        self.assertIn("nothing to do", again.stdout)
        self.assertEqual(4, len(self.services()))  # no service touched again

    def test_a_failed_pool_update_leaves_the_services_stopped_and_a_rerun_resumes(self) -> None:
        self.r1.stop()
        self.p1.stop()
        broken = list(self.apply)
        broken[broken.index("--pool-update-command") + 1] = "false {pools}"
        failed = self.failover(*broken)
        self.assertEqual(1, failed.code, failed.stdout + failed.stderr)
        self.assertEqual(1, len(failed.error_lines), failed.stderr)
        self.assertIn("the pool update failed (exit 1): false ", failed.error_lines[0])
        self.assertIn("the services stay stopped (zone changes wait): fix it and run the same command again",
                      failed.error_lines[0])
        self.assertEqual(["stop designate-worker", "stop designate-producer"], self.services())
        self.assertIn("pdns4_dr region1", self.live_masters())  # Designate unchanged
        resumed = self.failover(*self.apply)
        self.assertEqual(0, resumed.code, resumed.stdout + resumed.stderr)
        self.assertEqual({"pdns4_dr region2": [self.r2.master]}, self.live_masters())
        self.assertEqual(["start designate-worker", "start designate-producer"], self.services()[-2:])

    def test_a_pool_update_that_does_not_take_is_caught_by_the_read_back(self) -> None:
        self.r1.stop()
        self.p1.stop()
        silent = list(self.apply)
        silent[silent.index("--pool-update-command") + 1] = "true {pools}"
        failed = self.failover(*silent)
        self.assertEqual(1, failed.code, failed.stdout + failed.stderr)
        self.assertIn("after the pool update Designate's pools still differ from pools.yaml", failed.error_lines[0])
        self.assertIn(f"(3): pool default: nameservers ['127.0.0.1:{self.p1.port}', '127.0.0.4:{self.p2.port}'] "
                      f"in Designate, ['127.0.0.4:{self.p2.port}'] in pools.yaml", failed.error_lines[0])

    def test_bad_commands_are_one_line(self) -> None:
        for option, value, expected in (("--pool-update-command", "update {file}", "unknown placeholder {file}"),
                                        ("--service-command", "systemctl '{action}", "No closing quotation"),
                                        ("--pool-show-command", "/nonexistent/manage {output}",
                                         "/nonexistent/manage is not installed")):
            argv = list(self.apply)
            argv[argv.index(option) + 1] = value
            outcome = self.failover(*argv)
            self.assertEqual(1, outcome.code, outcome.stdout + outcome.stderr)
            self.assertEqual(1, len(outcome.error_lines), outcome.stderr)
            self.assertIn(expected, outcome.error_lines[0])
        self.assertEqual([], self.services())
        self.assertIsInstance(yaml.safe_load(self.pools.read_text()), list)
