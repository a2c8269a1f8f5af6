"""ansible/dr-failover.yml and dr-failback.yml on localhost, as the upgrade playbooks are tested.

One "host" (localhost, connection local) runs real designate-worker and designate-producer
(Designate from the venv, oslo.messaging's in-memory transport) under start-stop-daemon
(the role's ``process`` service manager), with its pools in a real Designate database
that ``designate-dr --apply-pools`` changes through Designate's own ``PoolCommands``.
The masters are PowerDNS stand-ins (127.0.0.2, 127.0.0.3), the targets PowerDNS
secondaries (127.0.0.1, 127.0.0.4).  A second run of each playbook changes nothing.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import fixtures
from oslotest import base

from tests.fixtures import dns
from tests.fixtures.designate_mdns import DesignateMdns
from tests.fixtures.designate_objects import designate_ready, make_backend, zone_object

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent
SERIAL = 1_700_000_000
SERVICES = ("designate-worker", "designate-producer")


class TestDRPlaybooks(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        designate_ready()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)
        tmp = self.tmp
        self.designate = DesignateMdns(tmp / "designate", "127.0.0.2", "region2")
        self.p1 = self.useFixture(dns.PdnsSecondary(tmp / "p1", "127.0.0.1"))
        self.p2 = self.useFixture(dns.PdnsSecondary(tmp / "p2", "127.0.0.4"))
        self.r1 = self.useFixture(dns.PdnsPrimary(tmp / "r1", "127.0.0.2", "region1"))
        self.r2 = self.useFixture(dns.PdnsPrimary(tmp / "r2", "127.0.0.3", "region2"))
        self.zones = [f"play{i}.example." for i in range(3)]
        for primary in (self.r1, self.r2):
            primary.add_zones(self.zones, SERIAL)
        lines = ["- name: default", "  ns_records:", "  - {hostname: ns1.example.org., priority: 1}",
                 "  nameservers:", f"  - {{host: 127.0.0.1, port: {self.p1.port}}}",
                 f"  - {{host: 127.0.0.4, port: {self.p2.port}}}", "  targets:"]
        masters = {"masters_region1": self.r1.master, "masters_region2": self.r2.master}
        for secondary, region in ((self.p1, "region1"), (self.p2, "region2")):
            options = {"host": secondary.address, "port": str(secondary.port), **secondary.target_options(),
                       "region": region, **masters}
            lines += ["  - type: pdns4_dr", f"    description: pdns4_dr {region}", "    options:"]
            lines += [f"      {k}: '{v}'" for k, v in options.items()]
            backend = make_backend("pdns4_dr", options)
            for zone in self.zones:
                backend.create_zone(None, zone_object(zone, SERIAL))
        self.pools = tmp / "pools.yaml"
        self.pools.write_text("\n".join(lines) + "\n")
        self.pools.chmod(0o640)
        self.designate.pool_update(self.pools)
        self.run_dir, self.log_dir = tmp / "run", tmp / "log"
        self.variables = {
            "designate_hosts": "localhost", "designate_service_manager": "process",
            "designate_run_dir": str(self.run_dir), "designate_log_dir": str(self.log_dir),
            "designate_config_file": str(self.designate.dir / "helper.conf"),
            "designate_dr_prefix": str(BIN.parent), "designate_dr_command": str(BIN / "designate-dr"),
            "designate_dr_pools": str(self.pools),
            "designate_dr_args": ["--pool-update-command", self.designate.manage_command("update"),
                                  "--pool-show-command", self.designate.manage_command("generate_file"),
                                  "--wait", "20"]}
        self.start_services()
        self.addCleanup(self.stop_services)

    def start_services(self) -> None:
        self.run_dir.mkdir(exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        for service in SERVICES:
            subprocess.run(["start-stop-daemon", "--start", "--quiet", "--background", "--make-pidfile",
                            "--pidfile", str(self.run_dir / f"{service}.pid"), "--output",
                            str(self.log_dir / f"{service}.log"), "--startas", str(BIN / service), "--",
                            "--config-file", self.variables["designate_config_file"]], check=True)

    def stop_services(self) -> None:
        for service in SERVICES:
            subprocess.run(["start-stop-daemon", "--stop", "--quiet", "--pidfile",
                            str(self.run_dir / f"{service}.pid"), "--remove-pidfile", "--retry", "TERM/20/KILL/5"],
                           check=False)

    def pids(self) -> dict[str, int]:
        out = {}
        for service in SERVICES:
            pid = int((self.run_dir / f"{service}.pid").read_text())
            os.kill(pid, 0)  # running
            out[service] = pid
        return out

    def play(self, playbook: str, region: str) -> tuple[int, dict, str]:
        variables = self.tmp / "vars.json"
        variables.write_text(json.dumps({**self.variables, "designate_dr_region": region}))
        env = {**os.environ, "ANSIBLE_HOME": str(self.tmp / "ansible-home"), "ANSIBLE_NOCOLOR": "1",
               "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
        proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                               "-e", f"@{variables}", playbook], cwd=ANSIBLE, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900, check=False)
        recap = re.search(r"^localhost\s*:\s*(.*)$", proc.stdout, re.M)
        self.assertIsNotNone(recap, proc.stdout[-3000:])
        return proc.returncode, {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", recap.group(1))}, proc.stdout

    def live_targets(self) -> list[str]:
        return sorted(t["description"] for pool in self.designate.pool_generate() for t in pool["targets"])

    def test_failover_and_failback_playbooks(self) -> None:
        before = self.pids()
        self.r1.stop()
        self.p1.stop()
        code, stats, out = self.play("dr-failover.yml", "region1")
        self.assertEqual(0, code, out[-4000:])
        self.assertGreater(stats["changed"], 0)
        self.assertEqual(["pdns4_dr region2"], self.live_targets())
        after = self.pids()  # running again, restarted
        self.assertNotEqual(before, after)
        self.assertEqual(0o640, self.pools.stat().st_mode & 0o777)
        code, stats, out = self.play("dr-failover.yml", "region1")
        self.assertEqual((0, 0), (code, stats["changed"]), out[-4000:])
        self.assertEqual(after, self.pids())  # nothing to do: the services were not touched

        self.r1.start()
        self.p1.start()
        code, stats, out = self.play("dr-failback.yml", "region1")
        self.assertEqual(0, code, out[-4000:])
        self.assertEqual(["pdns4_dr region1", "pdns4_dr region2"], self.live_targets())
        code, stats, out = self.play("dr-failback.yml", "region1")
        self.assertEqual((0, 0), (code, stats["changed"]), out[-4000:])

    def test_a_missing_region_is_refused(self) -> None:
        code, stats, out = self.play("dr-failover.yml", "")
        self.assertNotEqual(0, code)
        self.assertIn("set designate_dr_region", out)
