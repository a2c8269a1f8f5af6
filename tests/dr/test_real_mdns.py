"""``dr check``, ``dr failover`` and ``dr failback`` with real designate-mdns as the masters.

Region 1: designate-mdns on 127.0.0.2, a PowerDNS and a BIND secondary on 127.0.0.1;
region 2: designate-mdns on 127.0.0.3 (its database a copy of region 1's), a PowerDNS
secondary on 127.0.0.4.  Zones are made by Designate's ``central.create_zone`` (a few)
and copied in the database (the rest); the secondaries get them through the DR plugins,
by real transfers from mdns.  Real mdns answers ~100 queries a second: the checks must
wait for it rather than call its zones missing.
"""
from __future__ import annotations

import importlib
import json
import shlex
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import fixtures
from oslotest import base

from tests.fixtures import dns
from tests.fixtures.cli import run_dr
from tests.fixtures.designate_mdns import DesignateMdns
from tests.fixtures.designate_objects import designate_ready, zone_object
from tests.fixtures.pools import pools_yaml, region_targets

N_CENTRAL = 3  # zones made by central.create_zone
N_ZONES = 120


class _Regions(fixtures.Fixture):
    """Two regions of real mdns and the secondaries they feed, zones loaded everywhere."""

    def __init__(self, n_zones: int = N_ZONES, bind_lists: bool = False) -> None:
        super().__init__()
        self.n_zones = n_zones
        self.bind_lists = bind_lists  # region 1's BIND in bind9_dr's lists mode

    def _setUp(self) -> None:
        designate_ready()
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.tmp = tmp
        self.r1 = DesignateMdns(tmp / "r1", "127.0.0.2", "region1")
        self.zones = [f"real{i}.example." for i in range(self.n_zones)]
        self.serials = self.r1.create_zones(self.zones[:N_CENTRAL])
        self.r1.clone_zones(self.zones[N_CENTRAL:], like=self.zones[0])
        self.r2 = DesignateMdns(tmp / "r2", "127.0.0.3", "region2")
        self.r1.copy_database_to(self.r2)
        self.useFixture(self.r1)
        self.useFixture(self.r2)
        self.p1 = self.useFixture(dns.PdnsSecondary(tmp / "p1", "127.0.0.1"))
        self.b1 = self.useFixture(dns.BindSecondary(tmp / "b1", "127.0.0.1", primaries_lists=self.bind_lists))
        self.p2 = self.useFixture(dns.PdnsSecondary(tmp / "p2", "127.0.0.4"))
        self.secondaries = [self.p1, self.b1, self.p2]
        self.targets = region_targets(self.r1.master, self.r2.master, self.p1, self.b1, self.p2)
        self.pools = tmp / "pools.yaml"
        if self.bind_lists:
            self.targets[1].options.update(primaries_list="designate-dr",
                                           primaries_file=str(self.b1.primaries_path))
            # set-up: the lists exist before the first zone refers to one
            self.pools.write_text(pools_yaml(self.targets, ns_records=True))
            written = run_dr("bind-lists", "--pools", str(self.pools))
            if written.code != 0:
                raise AssertionError(f"bind-lists: {written.stdout}{written.stderr}")
        serial = self.serials[self.zones[0]]
        for target in self.targets:
            target.create_zones(self.zones, serial)
        for zone in self.zones:
            for secondary in self.secondaries:
                got = dns.wait_for_serial(zone, secondary, self.r1.serials()[zone])
                if got is None:
                    raise AssertionError(f"{zone} never reached {secondary.address}:{secondary.port}; "
                                         f"log:\n{secondary.log_tail()}\nmdns log:\n{self.r1.log_tail()}")
        self.pools.write_text(pools_yaml(self.targets, ns_records=True))
        self.zone_file = tmp / "zones.txt"
        self.zone_file.write_text("\n".join(self.zones) + "\n")


class TestCheckWithRealMdns(base.BaseTestCase):
    regions: _Regions

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.regions = _Regions()
        cls.regions.setUp()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.regions.cleanUp()
        super().tearDownClass()

    def check(self, *extra: str):
        return run_dr("check", "--pools", str(self.regions.pools), "--zones", str(self.regions.zone_file),
                       "--format", "json", *extra)

    def test_every_zone_in_sync_on_the_nameservers_and_the_masters(self) -> None:
        outcome = self.check()
        self.assertEqual(0, outcome.code, outcome.stdout + outcome.stderr)
        report = json.loads(outcome.stdout)
        self.assertEqual(N_ZONES, report["zones_in_sync"])
        masters = {m["server"]: m for m in report["masters"]}
        self.assertEqual({self.regions.r1.master, self.regions.r2.master}, set(masters))
        for master in masters.values():
            self.assertEqual((True, N_ZONES, 0, 0), (master["reachable"], master["in_sync"], master["missing"],
                                                       master["no_answer"]))
            self.assertIsNotNone(master["rtt_ms"])

    def test_a_zone_without_answer_in_time_is_not_called_missing(self) -> None:
        # a total time far too short for mdns: what is not answered yet is "no answer"
        outcome = self.check("--max-time", "0.3", "--window", "2")
        self.assertEqual(1, outcome.code, outcome.stdout + outcome.stderr)
        report = json.loads(outcome.stdout)
        states = {(p["role"], p["state"]) for p in report["problems"]}
        self.assertIn(("master", "no-answer"), states)
        self.assertNotIn(("master", "missing"), states)
        self.assertTrue(all(m["reachable"] for m in report["masters"]))

    def test_a_zone_mdns_does_not_have_is_missing_there(self) -> None:
        zones = self.regions.zone_file.with_name("more.txt")
        zones.write_text("\n".join(self.regions.zones[:5] + ["nowhere.example."]) + "\n")
        outcome = run_dr("check", "--pools", str(self.regions.pools), "--zones", str(zones),
                          "--format", "json")
        self.assertEqual(1, outcome.code, outcome.stdout + outcome.stderr)
        report = json.loads(outcome.stdout)
        missing = {(p["zone"], p["role"], p["reason"]) for p in report["problems"] if p["state"] == "missing"}
        self.assertIn(("nowhere.example.", "master", "REFUSED"), missing)
        self.assertEqual(5, report["zones_in_sync"])


class TestFailoverWithRealMdns(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.regions = self.useFixture(_Regions())

    def dr(self, *argv: str):
        return run_dr(*argv, "--pools", str(self.regions.pools), "--wait", "60")

    def test_failover_and_failback_exit_0_and_converge(self) -> None:
        reg = self.regions
        for server in (reg.r1, reg.p1, reg.b1):
            server.stop()
        # the serials from region 2's database; mdns is asked about a sample
        fail = self.dr("failover", "--lost", "region1", "--designate-conf", str(reg.r2.config_path))
        self.assertEqual(0, fail.code, fail.stdout + fail.stderr)
        self.assertIn(f"{N_ZONES}/{N_ZONES} zones served with the masters' serial", fail.stdout)
        again = self.dr("failover", "--lost", "region1")  # every serial from mdns this time
        self.assertEqual(0, again.code, again.stdout + again.stderr)
        self.assertIn("nothing to do", again.stdout)

        # region 2 goes on: a few zones change (its worker tells its own nameservers)
        changed = reg.zones[:N_CENTRAL]
        new = reg.r2.bump_serials(changed)
        for zone in changed:
            reg.p2.api("PUT", f"/zones/{zone}/axfr-retrieve").raise_for_status()
            self.assertEqual(new[zone], dns.wait_for_serial(zone, reg.p2, new[zone]))

        # region 1 is back with its database restored from region 2's
        reg.r2.copy_database_to(reg.r1)
        for server in (reg.r1, reg.p1, reg.b1):
            server.start()
        back = self.dr("failback", "--restore", "region1")
        self.assertEqual(0, back.code, back.stdout + back.stderr)
        for zone in changed:
            for secondary in reg.secondaries:
                self.assertEqual(new[zone], dns.soa_serial(zone, secondary), f"{zone} on {secondary.address}")
        check = run_dr("check", "--pools", str(reg.pools), "--zones", str(reg.zone_file))
        self.assertEqual(0, check.code, check.stdout + check.stderr)
        again = self.dr("failback", "--restore", "region1")
        self.assertEqual(0, again.code, again.stdout + again.stderr)
        self.assertIn("nothing to do", again.stdout)


class TestFailoverOfBindInTheListsMode(base.BaseTestCase):
    """Region 1's BIND refers its zones to named primaries lists: a failover of region 2 and the
    failback rewrite the lists (one rndc reconfig), no zone is modified one by one."""

    def setUp(self) -> None:
        super().setUp()
        self.regions = self.useFixture(_Regions(bind_lists=True))

    def dr(self, *argv: str):
        return run_dr(*argv, "--pools", str(self.regions.pools), "--wait", "60")

    def test_failover_and_failback_move_the_lists_not_the_zones(self) -> None:
        reg = self.regions
        bind = importlib.import_module("designate_dr.backend.bind9_dr")
        options = reg.targets[1].options
        self.assertEqual({z: [reg.r1.master, reg.r2.master] for z in reg.zones}, bind.list_zones(options))
        mark = reg.b1.log_mark()
        for server in (reg.r2, reg.p2):
            server.stop()
        fail = self.dr("failover", "--lost", "region2", "--designate-conf", str(reg.r1.config_path))
        self.assertEqual(0, fail.code, fail.stdout + fail.stderr)
        self.assertIn(f"{N_ZONES} through the primaries lists", fail.stdout)
        self.assertIn(f"{N_ZONES}/{N_ZONES} zones served with the masters' serial", fail.stdout)
        commands = reg.b1.control_commands(mark)
        self.assertEqual((1, 0), (commands.count("reconfig"), commands.count("modzone")), commands)
        self.assertEqual({z: [reg.r1.master] for z in reg.zones}, bind.list_zones(options))

        # region 1 goes on; BIND transfers from it (the list's only master now)
        changed = reg.zones[:N_CENTRAL]
        new = reg.r1.bump_serials(changed)
        for zone in changed:
            reg.b1.rndc("refresh", zone.rstrip("."))
            self.assertEqual(new[zone], dns.wait_for_serial(zone, reg.b1, new[zone]))

        reg.r1.copy_database_to(reg.r2)
        for server in (reg.r2, reg.p2):
            server.start()
        back = self.dr("failback", "--restore", "region2")
        self.assertEqual(0, back.code, back.stdout + back.stderr)
        self.assertEqual({z: [reg.r1.master, reg.r2.master] for z in reg.zones}, bind.list_zones(options))
        self.assertEqual(0, reg.b1.control_commands(mark).count("modzone"))
        again = self.dr("failback", "--restore", "region2")
        self.assertEqual(0, again.code, again.stdout + again.stderr)
        self.assertIn("nothing to do", again.stdout)


class TestZonesOfAnotherPool(base.BaseTestCase):
    """mdns answers unsigned queries for the default pool only: the DR tools sign with the pool's key."""

    def setUp(self) -> None:
        super().setUp()
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.mdns = DesignateMdns(tmp / "mdns", "127.0.0.2", "region1")
        pool_id = self.mdns.create_pool("pool2")
        self.key = dns.TsigKey.new("pool2-transfer")
        self.mdns.add_tsig_key(self.key, pool_id)
        self.zones = ["p2a.example.", "p2b.example."]
        self.serials = self.mdns.create_zones(self.zones, pool_id=pool_id)
        self.useFixture(self.mdns)
        self.nameserver = self.useFixture(dns.PdnsSecondary(tmp / "ns", "127.0.0.1"))
        self.pools = tmp / "pools.yaml"
        self.pools.write_text(f"""- name: pool2
  nameservers:
  - {{host: 127.0.0.1, port: {self.nameserver.port}}}
  targets:
  - type: pdns4_dr
    masters: [{{host: 127.0.0.2, port: {self.mdns.port}}}]
    options: {{host: 127.0.0.1, port: '{self.nameserver.port}', region: region1,
               tsigkey_name: {self.key.name}, api_endpoint: '{self.nameserver.api_endpoint}'}}
""")
        self.keys = tmp / "tsig.keys"
        self.keys.write_text(dns.TsigKey.new("other").named_conf() + self.key.named_conf())
        self.keys.chmod(0o600)
        self.zone_file = tmp / "zones.txt"
        self.zone_file.write_text("\n".join(self.zones) + "\n")

    def master_view(self, *extra: str) -> dict:
        outcome = run_dr("check", "--pools", str(self.pools), "--zones", str(self.zone_file),
                          "--format", "json", *extra)
        self.assertNotIn(self.key.secret, outcome.stdout + outcome.stderr)
        (master,) = json.loads(outcome.stdout)["masters"]
        return master

    def test_queries_are_signed_with_the_pools_key(self) -> None:
        unsigned = self.master_view()
        self.assertEqual((0, 2), (unsigned["in_sync"], unsigned["missing"]))  # REFUSED: not the default pool
        signed = self.master_view("--tsig-keys", str(self.keys))
        self.assertEqual((2, 0), (signed["in_sync"], signed["missing"]))
        bad = run_dr("check", "--pools", str(self.pools), "--zones", str(self.zone_file),
                      "--tsig-keys", str(self.zone_file))
        self.assertEqual([f'error: {self.zone_file}: no key statement (key "name" {{ algorithm ...; '
                          'secret "..."; };)'], bad.error_lines)


class TestSerialsFromTheDatabase(base.BaseTestCase):
    """``--designate-conf``: serials read from the database mdns serves from; bad input is one line."""

    def setUp(self) -> None:
        super().setUp()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)

    def test_zone_serials_are_those_mdns_serves(self) -> None:
        from designate_dr.ops.database import zone_serials
        mdns = self.useFixture(DesignateMdns(self.tmp / "m", "127.0.0.2"))
        made = mdns.create_zones(["db1.example.", "db2.example."])
        mdns.set_serial("db2.example.", 12345)
        self.assertEqual({"db1.example.": made["db1.example."], "db2.example.": 12345},
                         zone_serials(mdns.config_path))
        self.assertEqual(12345, dns.soa_serial("db2.example.", mdns))

    def test_bad_config_is_one_line_without_the_password(self) -> None:
        pools = self.tmp / "pools.yaml"
        pools.write_text("- name: default\n  nameservers: [{host: 127.0.0.1, port: 53}, "
                         "{host: 127.0.0.4, port: 53}]\n  targets:\n"
                         "  - type: pdns4_dr\n    options: {host: 127.0.0.1, port: '53', region: region1,\n"
                         "               masters_region2: '127.0.0.3:5354', api_endpoint: 'http://127.0.0.1:1'}\n"
                         "  - type: pdns4_dr\n    options: {host: 127.0.0.4, port: '53', region: region2,\n"
                         "               masters_region2: '127.0.0.3:5354', api_endpoint: 'http://127.0.0.4:1'}\n")
        conf = self.tmp / "designate.conf"
        cases = [("[database]\nconnection = sqlite:////nonexistent/s3cret-pw/designate.sqlite\n",
                  "cannot be read (OperationalError)"),
                 ("[storage:sqlalchemy]\nconnection = nosuchdb+nodriver://designate:s3cret-pw@127.0.0.9:1/d\n",
                  "cannot use its database connection"),
                 ("[DEFAULT]\ndebug = True\n", "no [storage:sqlalchemy] or [database] connection"),
                 ("connection = x\n", "not an INI file")]
        for text, expected in cases:
            conf.write_text(text)
            outcome = run_dr("failover", "--lost", "region1", "--pools", str(pools),
                              "--designate-conf", str(conf))
            self.assertEqual(1, outcome.code, outcome.stdout + outcome.stderr)
            self.assertEqual(1, len(outcome.error_lines), outcome.stderr)
            self.assertIn(expected, outcome.error_lines[0])
            self.assertNotIn("s3cret-pw", outcome.stdout + outcome.stderr)


class TestFailbackAfterTheOutage(base.BaseTestCase):
    """Region 1's servers come back with the data they had, or empty (issue 16 item 3, issue 17 item 4)."""

    def setUp(self) -> None:
        super().setUp()
        self.regions = self.useFixture(_Regions(n_zones=12))
        reg = self.regions
        for server in (reg.r1, reg.p1, reg.b1):
            server.stop()
        fail = self.dr("failover", "--lost", "region1")
        self.assertEqual(0, fail.code, fail.stdout + fail.stderr)

    def dr(self, *argv: str):
        return run_dr(*argv, "--pools", str(self.regions.pools), "--wait", "60")

    def served_by(self, zone: str, servers) -> list[str]:
        return [f"{s.address}:{s.port}" for s in servers if dns.soa_serial(zone, s) is not None]

    def test_zones_deleted_in_designate_meanwhile_are_removed_from_the_returning_servers(self) -> None:
        reg = self.regions
        deleted, kept = reg.zones[0], reg.zones[1]
        # region 2 deletes a zone (its worker removes it from region 2's server) and creates one
        reg.r2.delete_zones([deleted])
        reg.targets[2].backend().delete_zone(
            None, zone_object(deleted, 1))
        created = "during.example."
        serial = reg.r2.create_zones([created])[created]
        reg.targets[2].backend().create_zone(
            None, zone_object(created, serial))
        self.assertEqual(serial, dns.wait_for_serial(created, reg.p2, serial))
        # region 1 is back: its database restored from region 2's, its servers with their old data
        reg.r2.copy_database_to(reg.r1)
        for server in (reg.r1, reg.p1, reg.b1):
            server.start()
        returning = [reg.p1, reg.b1]
        self.assertEqual(2, len(self.served_by(deleted, returning)))

        dry = self.dr("failback", "--restore", "region1", "--dry-run")
        self.assertEqual(0, dry.code, dry.stdout + dry.stderr)
        for kind, server in (("pdns4_dr", reg.p1), ("bind9_dr", reg.b1)):
            self.assertIn(f"  remove zone {deleted} from target {kind} 127.0.0.1:{server.port} (region1): "
                          f"deleted in Designate (every master refuses it; pdns4_dr 127.0.0.4:{reg.p2.port} "
                          "(region2) no longer hold(s) it)", dry.stdout)
            self.assertIn(f"target {kind} 127.0.0.1:{server.port} (region1): ", dry.stdout)
        self.assertIn("; 1 to create (Designate has them, the pool's other targets hold them); "
                      "1 to remove (deleted in Designate)", dry.stdout)
        self.assertNotIn(f"zone {kept}", dry.stdout)
        self.assertEqual(2, len(self.served_by(deleted, returning)))  # a dry run changes nothing

        # one master down: Designate's zone list is not certain, nothing is removed
        reg.r1.stop()
        unsure = self.dr("failback", "--restore", "region1")
        self.assertEqual(1, unsure.code, unsure.stdout + unsure.stderr)
        self.assertIn(f"zone {deleted}: no master of the remaining regions serves it (served serial ", unsure.stdout)
        self.assertIn(f"it cannot be told whether Designate deleted it (master {reg.r1.master} does not answer",
                      unsure.stdout)
        self.assertEqual([f"error: 1 zone(s) not served by any master of the remaining regions (first: {deleted}); "
                          "see the fixes above"], unsure.error_lines)
        self.assertEqual(2, len(self.served_by(deleted, returning)))
        for zone in reg.zones[1:] + [created]:
            self.assertEqual(3, len(self.served_by(zone, reg.secondaries)), zone)

        # every master answers: removed (here with the database's word too), the rest converges
        reg.r1.start()
        back = self.dr("failback", "--restore", "region1", "--designate-conf", str(reg.r2.config_path))
        self.assertEqual(0, back.code, back.stdout + back.stderr)
        for kind, server in (("pdns4_dr", reg.p1), ("bind9_dr", reg.b1)):
            self.assertIn(f"target {kind} 127.0.0.1:{server.port} (region1): removed zone {deleted} (deleted in "
                          "Designate: every master refuses it; its database has it deleted; ", back.stdout)
        self.assertIn("2 removed (deleted in Designate)", back.stdout)
        self.assertEqual([], self.served_by(deleted, reg.secondaries))
        for zone in reg.zones[1:] + [created]:
            self.assertEqual(3, len(self.served_by(zone, reg.secondaries)), zone)
        check = run_dr("check", "--pools", str(reg.pools))
        self.assertEqual(0, check.code, check.stdout + check.stderr)
        again = self.dr("failback", "--restore", "region1")
        self.assertEqual(0, again.code, again.stdout + again.stderr)
        self.assertIn("nothing to do", again.stdout)

    def test_a_zone_lost_from_the_database_is_not_removed(self) -> None:
        # every server still holds it and no master serves it: lost, not deleted
        reg = self.regions
        lost = reg.zones[3]
        for mdns in (reg.r2, reg.r1):
            with closing(sqlite3.connect(mdns.db_path)) as con, con:
                con.execute("DELETE FROM zones WHERE name = ?", (lost,))
        for server in (reg.r1, reg.p1, reg.b1):
            server.start()
        back = self.dr("failback", "--restore", "region1")
        self.assertEqual(1, back.code, back.stdout + back.stderr)
        self.assertIn(f"zone {lost}: no master of the remaining regions serves it (served serial ", back.stdout)
        self.assertIn("create it in Designate or restore its database", back.stdout)
        self.assertEqual(3, len(self.served_by(lost, reg.secondaries)))

    def test_failback_onto_empty_servers_converges_in_one_run(self) -> None:
        reg = self.regions
        for server in (reg.r1, reg.p1, reg.b1):
            server.start()
        for target in reg.targets[:2]:
            module = importlib.import_module(f"designate_dr.backend.{target.kind}")
            result = module.delete_zones(target.options, reg.zones)
            self.assertEqual((len(reg.zones), {}), (len(result.changed), result.failed))
        for zone in reg.zones:
            self.assertEqual([], self.served_by(zone, [reg.p1, reg.b1]))
        services = reg.tmp / "services.log"
        apply = ["--apply-pools", "--pool-update-command", reg.r1.manage_command("update"),
                 "--pool-show-command", reg.r1.manage_command("generate_file"),
                 "--service-command", shlex.join([sys.executable, "-c", SERVICE_SCRIPT, str(services)])
                 + " {action} {service}"]
        back = self.dr("failback", "--restore", "region1", *apply)
        self.assertEqual(0, back.code, back.stdout + back.stderr)
        for kind, server in (("pdns4_dr", reg.p1), ("bind9_dr", reg.b1)):
            self.assertIn(f"target {kind} 127.0.0.1:{server.port} (region1): {len(reg.zones)} zones created as "
                          "secondaries of ", back.stdout)
        self.assertIn(f"{len(reg.zones)}/{len(reg.zones)} zones served with the masters' serial", back.stdout)
        serials = reg.r1.serials()
        for zone in reg.zones:
            for server in reg.secondaries:
                self.assertEqual(serials[zone], dns.soa_serial(zone, server), f"{zone} on {server.address}")
        again = self.dr("failback", "--restore", "region1", *apply)
        self.assertEqual(0, again.code, again.stdout + again.stderr)
        self.assertIn("nothing to do", again.stdout)


SERVICE_SCRIPT = """import sys
with open(sys.argv[1], "a") as log:
    log.write(" ".join(sys.argv[2:]) + "\\n")
"""
