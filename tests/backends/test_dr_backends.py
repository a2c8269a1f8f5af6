"""pdns4_dr and bind9_dr against real PowerDNS and BIND secondaries fed by two regions.

Zones are created through the plugins with Designate's own objects; the
secondaries are then asked over DNS (dnspython) for the SOA serial, which only
arrives by a real AXFR from a region primary.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import secrets
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fixtures
from designate import exceptions, objects
from designate.backend.base import Backend
from oslotest import base

from designate_dr.backend import bind9_dr, pdns4_dr
from tests.fixtures import dns
from tests.fixtures.cli import run_dr
from tests.fixtures.designate_objects import designate_ready, make_backend, pool_target, zone_object
from tests.fixtures.pools import PoolTarget, pools_yaml


class TestEntryPoints(base.BaseTestCase):

    def test_plugins_load_through_the_designate_backend_entry_points(self) -> None:
        found = {ep.name: ep for ep in importlib.metadata.entry_points(group="designate.backend")}
        self.assertIs(pdns4_dr.PDNS4DRBackend, found["pdns4_dr"].load())
        self.assertIs(bind9_dr.Bind9DRBackend, found["bind9_dr"].load())
        # the way Designate's worker loads a target's backend
        self.assertIs(pdns4_dr.PDNS4DRBackend, Backend.get_driver("pdns4_dr"))
        self.assertIs(bind9_dr.Bind9DRBackend, Backend.get_driver("bind9_dr"))


class _Base:
    """Two regions and one secondary of ``secondary_kind``; subclasses say how to reach it."""

    kind = ""
    module = pdns4_dr
    regions: dns.Regions
    tsig = False
    bind_lists = False

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        designate_ready()
        cls.regions = dns.Regions(2, secondaries=(cls.secondary_kind,), tsig=cls.tsig,
                                  bind_lists=cls.bind_lists)
        cls.regions.setUp()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.regions.cleanUp()
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        for primary in self.regions.primaries:  # a test may have stopped one
            self.addCleanup(primary.start)

    @property
    def secondary(self) -> dns.Server:
        return self.regions.secondaries[0]

    def options(self, **extra: str) -> dict[str, str]:
        opts = {**self.secondary.target_options(), **self.regions.masters_options(),
                "region": "region1", "region_preference": "region1,region2"}
        if self.regions.tsig_key is not None:
            opts["tsigkey_name"] = self.regions.tsig_key.name
        opts.update(extra)
        return opts

    def backend(self, **extra: str):
        return make_backend(self.kind, self.options(**extra))

    def deploy(self, options: dict[str, str]) -> None:
        """What setting up the server for a pool's ``options`` takes before zones are created
        (nothing here; BIND's lists mode writes its primaries lists)."""

    def new_zone(self, serial: int = 1) -> objects.Zone:
        name = f"z{uuid.uuid4().hex[:10]}.example."
        self.regions.add_zone(name, serial)
        return zone_object(name, serial)

    def assertArrives(self, zone: str, serial: int) -> None:
        self.assertEqual(serial, dns.wait_for_serial(zone, self.secondary, serial),
                         f"{zone} serial {serial} did not reach the {self.kind} secondary; "
                         f"log:\n{self.secondary.log_tail()}")

    def assertOneLineWithout(self, error: Exception, *hidden: str) -> str:
        text = str(error)
        self.assertNotIn("\n", text)
        for secret in hidden:
            self.assertNotIn(secret, text)
        return text


class _TsigScenarios(_Base):
    """Every master refuses unsigned transfers; the pool's ``tsigkey_name`` signs them."""

    tsig = True

    def test_create_transfers_signed_with_the_pools_key(self) -> None:
        zone = self.new_zone(10)
        self.backend().create_zone(None, zone)
        self.assertArrives(zone.name, 10)
        self.regions.set_serial(zone.name, 11)
        self.assertArrives(zone.name, 11)

    def test_an_unsigned_zone_does_not_transfer_until_converged(self) -> None:
        zone = self.new_zone(20)
        unsigned = {k: v for k, v in self.options().items() if k != "tsigkey_name"}
        make_backend(self.kind, unsigned).create_zone(None, zone)
        # the masters really require the key: nothing arrives without it
        self.assertIsNone(dns.wait_for_serial(zone.name, self.secondary, 20, timeout=3))
        self.backend().update_zone(None, zone)  # the pool's key is set on the existing zone
        self.assertArrives(zone.name, 20)

    def test_repointed_zones_keep_transferring_signed(self) -> None:
        zone = self.new_zone(30)
        self.backend().create_zone(None, zone)
        self.assertArrives(zone.name, 30)
        r1, r2 = self.regions.primaries
        result = self.module.repoint_zones(self.options(), [r2.master], zones=[zone.name])
        self.assertEqual([zone.name], result.changed)
        r1.stop()
        self.regions.set_serial(zone.name, 31)
        self.assertArrives(zone.name, 31)


class _Scenarios(_Base):
    """The same story for both plugins."""

    # -- the scenarios ---------------------------------------------------------
    def test_create_transfers_and_follows_primary_changes(self) -> None:
        zone = self.new_zone(10)
        backend = self.backend()
        backend.create_zone(None, zone)
        self.assertArrives(zone.name, 10)
        self.regions.set_serial(zone.name, 11)
        self.assertArrives(zone.name, 11)
        r1, r2 = self.regions.primaries
        self.assertEqual({zone.name: [r1.master, r2.master]},
                         {k: v for k, v in self.module.list_zones(self.options()).items()
                          if k == zone.name})

    def test_parallel_creates_as_worker_threads_make_them(self) -> None:
        zones = [zone_object(f"p{uuid.uuid4().hex[:10]}.example.", 15) for _ in range(24)]
        self.regions.add_zones([z.name for z in zones], 15)
        backend = self.backend()
        with ThreadPoolExecutor(max_workers=12) as pool:
            list(pool.map(lambda z: backend.create_zone(None, z), zones))
        for zone in zones:
            self.assertArrives(zone.name, 15)

    def test_create_existing_zone_converges_in_place(self) -> None:
        zone = self.new_zone(20)
        self.backend(region_preference="region2,region1").create_zone(None, zone)
        self.assertArrives(zone.name, 20)
        self.backend().create_zone(None, zone)  # retried create, other preference
        # no delete/re-create: the zone keeps answering right after the converge
        self.assertEqual(20, dns.soa_serial(zone.name, self.secondary))
        r1, r2 = self.regions.primaries
        self.assertEqual([r1.master, r2.master], self.module.list_zones(self.options())[zone.name])
        self.backend().create_zone(None, zone)  # nothing to change: still fine
        self.assertEqual(20, dns.soa_serial(zone.name, self.secondary))

    def test_update_zone_converges_masters(self) -> None:
        zone = self.new_zone(30)
        r1, r2 = self.regions.primaries
        only_r1 = {k: v for k, v in self.options().items() if k != "masters_region2"}
        make_backend(self.kind, only_r1).create_zone(None, zone)
        self.assertArrives(zone.name, 30)
        self.assertEqual([r1.master], self.module.list_zones(self.options())[zone.name])
        self.backend().update_zone(None, zone)
        self.assertEqual([r1.master, r2.master], self.module.list_zones(self.options())[zone.name])

    def test_zone_keeps_refreshing_from_region2_when_region1_is_gone(self) -> None:
        zone = self.new_zone(40)
        self.backend().create_zone(None, zone)
        self.assertArrives(zone.name, 40)
        r1, _ = self.regions.primaries
        r1.stop()
        self.regions.set_serial(zone.name, 41)  # only region 2 is up to NOTIFY and serve
        self.assertArrives(zone.name, 41)

    def test_bulk_create_and_delete_in_parallel_are_idempotent(self) -> None:
        # the DR operations' paths for a server back empty and for zones deleted in Designate;
        # 40 zones 8 at a time: PowerDNS on SQLite hits "database is locked" under it
        r1, r2 = self.regions.primaries
        names = [f"bulk{uuid.uuid4().hex[:8]}.example." for _ in range(40)]
        for name in names:
            self.regions.add_zone(name, 7)
        created = self.module.create_zones(self.options(), [[r1.master], [r2.master]], names, concurrency=8)
        self.assertEqual((sorted(names), [], {}), (sorted(created.changed), created.unchanged, created.failed))
        for name in names[:3]:
            self.assertArrives(name, 7)
        listed = self.module.list_zones(self.options())
        self.assertTrue(all(set(listed[n]) == {r1.master, r2.master} for n in names), listed)
        again = self.module.create_zones(self.options(), [[r1.master], [r2.master]], names, concurrency=8)
        self.assertEqual(([], {}), (again.changed, again.failed))
        deleted = self.module.delete_zones(self.options(), names + ["never.example."], concurrency=8)
        self.assertEqual((sorted(names), ["never.example."], {}),
                         (sorted(deleted.changed), deleted.unchanged, deleted.failed))
        self.assertFalse(set(names) & set(self.module.list_zones(self.options())))
        self.assertIsNone(dns.soa_serial(names[0], self.secondary))

    def test_bulk_repoint_is_idempotent_and_transfers_from_the_new_master(self) -> None:
        zones = [self.new_zone(50) for _ in range(4)]
        backend = self.backend()
        for zone in zones:
            backend.create_zone(None, zone)
        names = [z.name for z in zones]
        r1, r2 = self.regions.primaries
        result = self.module.repoint_zones(self.options(), [r2.master], zones=names,
                                           concurrency=3)
        self.assertEqual((sorted(names), [], {}),
                         (sorted(result.changed), result.unchanged, result.failed))
        self.assertGreaterEqual(result.seconds, 0)
        listed = self.module.list_zones(self.options())
        self.assertEqual([[r2.master]] * 4, [listed[n] for n in names])
        again = self.module.repoint_zones(self.options(), [r2.master], zones=names + ["gone.example."])
        self.assertEqual(([], sorted(names)), (again.changed, sorted(again.unchanged)))
        self.assertEqual(["gone.example."], list(again.failed))
        # without a zone list: every secondary zone on the target
        everything = self.module.repoint_zones(self.options(), [r2.master])
        self.assertTrue(set(names) <= set(everything.unchanged))
        self.assertEqual({}, everything.failed)
        # region 1 is gone for good; zones follow region 2 alone
        r1.stop()
        self.regions.set_serial(names[0], 51)
        self.assertArrives(names[0], 51)

    def test_repoint_to_a_region_with_a_lower_serial_forces_the_transfer(self) -> None:
        r1, r2 = self.regions.primaries
        name = f"low{uuid.uuid4().hex[:8]}.example."
        r1.add_zone(name, 70)
        r2.add_zone(name, 65)  # region 2's mdns restored from an older state
        only_r1 = {k: v for k, v in self.options().items() if k != "masters_region2"}
        make_backend(self.kind, only_r1).create_zone(
            None, zone_object(name, 70))
        self.assertArrives(name, 70)
        result = self.module.repoint_zones(self.options(), [r2.master], zones=[name])
        self.assertEqual([name], result.changed)
        self.assertEqual(65, dns.wait_for_serial_below(name, self.secondary, 70),
                         f"log:\n{self.secondary.log_tail()}")

    def test_a_regions_masters_are_rotated_per_zone_and_stay_put(self) -> None:
        r1, r2 = self.regions.primaries
        # both primaries in region 1 (two mdns of one region), no other region
        options = {k: v for k, v in self.options(masters_region1=f"{r1.master}, {r2.master}").items()
                   if k not in ("masters_region2", "region_preference")}
        self.deploy(options)
        backend = make_backend(self.kind, options)
        zones = [zone_object(f"rot{i}.example.", 90) for i in range(8)]  # names that go both ways
        self.regions.add_zones([z.name for z in zones], 90)
        for zone in zones:
            backend.create_zone(None, zone)
        listed = self.module.list_zones(options)
        orders = {tuple(listed[z.name]) for z in zones}
        self.assertEqual({(r1.master, r2.master), (r2.master, r1.master)}, orders)  # both mdns lead some
        for zone in zones:
            self.assertArrives(zone.name, 90)
            backend.update_zone(None, zone)  # the same order again: nothing to change
        self.assertEqual(listed, self.module.list_zones(options))
        result = self.module.repoint_zones(options, [[r1.master, r2.master]], zones=[z.name for z in zones])
        self.assertEqual(([], 8), (result.changed, len(result.unchanged)))

    def test_delete_and_delete_again(self) -> None:
        zone = self.new_zone(60)
        backend = self.backend()
        backend.create_zone(None, zone)
        self.assertArrives(zone.name, 60)
        backend.delete_zone(None, zone)
        self.assertIsNone(dns.soa_serial(zone.name, self.secondary))
        self.assertNotIn(zone.name, self.module.list_zones(self.options()))
        backend.delete_zone(None, zone)  # missing zone: success
        backend.delete_zone(None, zone, {"hard_delete": True})

    def test_bad_zone_name_is_a_backend_error(self) -> None:
        for bad in ('bad"zone.', "a..b.", "x" * 64 + ".example.", "sp ace.example."):
            error = self.assertRaises(exceptions.Backend, self.backend().create_zone, None,
                                      {"name": bad, "id": str(uuid.uuid4())})
            self.assertIn("invalid zone name", self.assertOneLineWithout(error))

    def test_unreachable_server_is_a_backend_error(self) -> None:
        port = str(dns.free_port("127.0.0.1"))
        down = self.down_options(port)
        error = self.assertRaises(exceptions.Backend, lambda: make_backend(
            self.kind, down).create_zone(None, zone_object("down.example.")))
        self.assertIn(port, self.assertOneLineWithout(error, *self.secrets()))
        self.assertRaises(exceptions.Backend, self.module.repoint_zones, down, ["127.0.0.2:53"])


class TestPdns4DR(_Scenarios, base.BaseTestCase):
    kind = "pdns4_dr"
    module = pdns4_dr
    secondary_kind = "pdns"

    def secrets(self) -> list[str]:
        return [self.regions.pdns.api_key]

    def down_options(self, port: str) -> dict[str, str]:
        return self.options(api_endpoint=f"http://127.0.0.1:{port}")

    def test_wrong_api_key_is_a_backend_error_without_the_key(self) -> None:
        wrong = "wrong-" + secrets.token_hex(8)
        error = self.assertRaises(exceptions.Backend,
                                  self.backend(api_token=wrong).create_zone, None,
                                  zone_object("key.example."))
        text = self.assertOneLineWithout(error, wrong, self.regions.pdns.api_key)
        self.assertIn("rejected the API key", text)
        error = self.assertRaises(exceptions.Backend, pdns4_dr.repoint_zones,
                                  self.options(api_token=wrong), ["127.0.0.2:53"])
        self.assertIn("rejected the API key", self.assertOneLineWithout(error, wrong))


    def test_update_of_a_zone_that_is_right_is_one_read(self) -> None:
        zone = self.new_zone(35)
        backend = self.backend()
        backend.create_zone(None, zone)
        self.assertArrives(zone.name, 35)
        log = self.regions.pdns.log_path
        before = len(log.read_text(errors="replace").splitlines())
        backend.update_zone(None, zone)  # what the worker calls on every record change

        def logged() -> list[str]:
            return [line for line in log.read_text(errors="replace").splitlines()[before:] if "[webserver]" in line]

        # PowerDNS may log a request after it has answered it: wait for the first line, then
        # give any further call of the update as long again to show up
        deadline = time.monotonic() + 5
        while not logged() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        calls = logged()
        self.assertEqual(1, len(calls), calls)
        self.assertIn(f'"GET /api/v1/servers/localhost/zones/{zone.name} HTTP', calls[0])


class TestBind9DR(_Scenarios, base.BaseTestCase):
    kind = "bind9_dr"
    module = bind9_dr
    secondary_kind = "bind"

    def secrets(self) -> list[str]:
        text = self.regions.bind.rndc_key_file.read_text()
        return [text.split('secret "')[1].split('"')[0]]

    def down_options(self, port: str) -> dict[str, str]:
        return self.options(rndc_port=port)

    def test_rndc_refused_with_wrong_key_is_a_backend_error_without_the_secret(self) -> None:
        wrong = "c2VjcmV0" + secrets.token_hex(12)
        tmp = tempfile.mkdtemp()
        self.addCleanup(lambda: __import__("shutil").rmtree(tmp))
        key_file = os.path.join(tmp, "wrong.key")
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f'key "rndc-key" {{ algorithm hmac-sha256; secret "{wrong}"; }};\n')
        error = self.assertRaises(exceptions.Backend,
                                  self.backend(rndc_key_file=key_file).create_zone, None,
                                  zone_object("key.example."))
        text = self.assertOneLineWithout(error, wrong, *self.secrets())
        self.assertIn("wrong rndc key", text)
        error = self.assertRaises(exceptions.Backend, bind9_dr.repoint_zones,
                                  self.options(rndc_key_file=key_file), ["127.0.0.2:53"])
        self.assertIn("wrong rndc key", self.assertOneLineWithout(error, wrong))

    def test_missing_key_file_is_a_backend_error(self) -> None:
        backend = self.backend(rndc_key_file="/nonexistent/rndc.key")  # the worker can still build the pool
        error = self.assertRaises(exceptions.Backend, backend.create_zone, None, zone_object("k.example."))
        self.assertIn("/nonexistent/rndc.key", self.assertOneLineWithout(error))


class TestPdns4DRTsig(_TsigScenarios, base.BaseTestCase):
    kind = "pdns4_dr"
    module = pdns4_dr
    secondary_kind = "pdns"


class TestBind9DRTsig(_TsigScenarios, base.BaseTestCase):
    kind = "bind9_dr"
    module = bind9_dr
    secondary_kind = "bind"


class _ListsMode:
    """BIND in the lists mode: zones refer to named primaries lists in a file named.conf includes."""

    kind = "bind9_dr"
    module = bind9_dr
    secondary_kind = "bind"
    bind_lists = True

    def options(self, **extra: str) -> dict[str, str]:
        return super().options(**{"primaries_list": "designate-dr",
                                  "primaries_file": str(self.regions.bind.primaries_path), **extra})

    def deploy(self, options: dict[str, str]) -> None:
        bind9_dr.write_lists(options)

    def down_options(self, port: str) -> dict[str, str]:
        return self.options(rndc_port=port)

    def secrets(self) -> list[str]:
        return TestBind9DR.secrets(self)

    def setUp(self) -> None:
        super().setUp()
        self.deploy(self.options())  # a test before may have re-pointed the lists

    def commands_during(self, func):
        """``func()``'s result and the rndc commands named received meanwhile."""
        mark = self.secondary.log_mark()
        result = func()
        return result, self.secondary.control_commands(mark)


class TestBind9DRLists(_ListsMode, _Scenarios, base.BaseTestCase):

    def test_update_zone_converges_masters(self) -> None:
        # a zone made before the lists mode (masters of its own) moves to its list on update
        zone = self.new_zone(30)
        r1, r2 = self.regions.primaries
        per_zone = {k: v for k, v in self.options().items()
                    if k not in ("masters_region2", "primaries_list", "primaries_file")}
        make_backend(self.kind, per_zone).create_zone(None, zone)
        self.assertArrives(zone.name, 30)
        self.assertEqual([r1.master], self.module.list_zones(self.options())[zone.name])
        self.backend().update_zone(None, zone)
        self.assertEqual([r1.master, r2.master], self.module.list_zones(self.options())[zone.name])
        self.assertIn('primaries { "designate-dr-', self.secondary.rndc("showzone", zone.name.rstrip(".")))

    def test_repoint_moves_every_zone_with_one_reconfig_and_no_modzone(self) -> None:
        r1, r2 = self.regions.primaries
        names = [f"many{uuid.uuid4().hex[:8]}.example." for _ in range(30)]
        self.regions.add_zones(names, 80)
        self.module.create_zones(self.options(), [[r1.master], [r2.master]], names)
        for name in (names[0], names[-1]):
            self.assertArrives(name, 80)
        result, commands = self.commands_during(lambda: self.module.repoint_zones(
            self.options(), [[r2.master]], zones=names, serials=dict.fromkeys(names, 80)))
        self.assertEqual((sorted(names), sorted(names), "the primaries lists", {}),
                         (sorted(result.changed), result.in_bulk, result.via, result.failed))
        self.assertEqual(1, commands.count("reconfig"), commands)
        self.assertEqual([], [c for c in commands if c in ("modzone", "retransfer", "addzone")])
        # the zones really follow region 2 alone now: region 1 gone, a change arrives
        r1.stop()
        self.regions.set_serial(names[0], 81)
        self.assertArrives(names[0], 81)
        self.assertEqual({n: [r2.master] for n in names},
                         {n: m for n, m in self.module.list_zones(self.options()).items() if n in names})

    def test_zones_with_masters_of_their_own_move_to_their_list(self) -> None:
        zone = self.new_zone(85)
        r1, r2 = self.regions.primaries
        per_zone = {k: v for k, v in self.options().items() if k not in ("primaries_list", "primaries_file")}
        make_backend(self.kind, per_zone).create_zone(None, zone)
        self.assertArrives(zone.name, 85)
        result, commands = self.commands_during(lambda: self.module.repoint_zones(
            self.options(), [[r2.master], [r1.master]], serials={zone.name: 85}))
        self.assertIn(zone.name, result.changed)
        self.assertNotIn(zone.name, result.in_bulk)
        self.assertEqual(1, commands.count("modzone"), commands)
        self.assertEqual([r2.master, r1.master], self.module.list_zones(self.options())[zone.name])
        again = self.module.repoint_zones(self.options(), [[r2.master], [r1.master]], zones=[zone.name])
        self.assertEqual(([], [zone.name]), (again.changed, again.unchanged))

    def test_lists_are_rewritten_only_when_they_change_and_keep_their_mode(self) -> None:
        path = self.regions.bind.primaries_path
        os.chmod(path, 0o640)
        self.assertEqual(set(), bind9_dr.write_lists(self.options()))
        r1, r2 = self.regions.primaries
        text = path.read_text()
        self.assertEqual(bind9_dr.DEFAULT_LISTS, text.count('primaries "designate-dr-'))
        self.assertIn(f"{r1.address} port {r1.port}; {r2.address} port {r2.port};", text)
        moved = bind9_dr.write_lists(self.options(region_preference="region2,region1"))
        self.assertEqual(bind9_dr.DEFAULT_LISTS, len(moved))
        self.assertEqual(0o640, path.stat().st_mode & 0o777)
        self.assertEqual([], [f for f in os.listdir(path.parent) if f.endswith(".tmp")])

    def test_only_a_lists_file_is_ever_replaced(self) -> None:
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        theirs = tmp / "named.conf.local"
        theirs.write_text('zone "precious.example" { type primary; file "p.db"; };\n')
        link = tmp / "link.conf"
        link.symlink_to(theirs)
        for path, text in ((theirs, "was not written by designate-dr"), (link, "is not a regular file"),
                           (tmp, "is not a regular file"), ("relative.conf", "is not an absolute path")):
            error = self.assertRaises(exceptions.Backend, bind9_dr.write_lists, self.options(primaries_file=str(path)))
            self.assertIn(text, self.assertOneLineWithout(error))
        self.assertEqual('zone "precious.example" { type primary; file "p.db"; };\n', theirs.read_text())
        self.assertTrue(link.is_symlink())
        empty = tmp / "empty.conf"
        empty.write_text("")
        bind9_dr.write_lists(self.options(primaries_file=str(empty)))  # an empty or missing file is fine
        self.assertIn('primaries "designate-dr-0"', empty.read_text())

    def test_a_list_named_conf_does_not_know_is_one_clear_error(self) -> None:
        error = self.assertRaises(exceptions.Backend, self.backend(primaries_list="unknown").create_zone,
                                  None, zone_object("nolist.example."))
        text = self.assertOneLineWithout(error)
        self.assertIn("does not know the primaries list unknown-", text)
        self.assertIn("designate-dr bind-lists", text)

    def test_re_point_without_the_lists_file_is_refused(self) -> None:
        options = {k: v for k, v in self.options().items() if k != "primaries_file"}
        error = self.assertRaises(exceptions.Backend, bind9_dr.repoint_zones, options, ["127.0.0.2:53"])
        self.assertIn("primaries_file", self.assertOneLineWithout(error))
        bad = make_backend(self.kind, {**options, "primaries_lists": "0"})  # fails its own zone actions only
        error = self.assertRaises(exceptions.Backend, bad.create_zone, None, zone_object("bad.example."))
        self.assertIn("primaries_lists must be between 1 and 1000", self.assertOneLineWithout(error))


class TestBindListsCommands(_ListsMode, _Base, base.BaseTestCase):
    """``designate-dr bind-lists`` and what failover says about the lists before it changes anything."""

    def pools(self, *targets_options: dict[str, str]) -> Path:
        bind = self.secondary
        targets = [PoolTarget("bind9_dr", bind, {"host": bind.address, "port": str(bind.port), **options})
                   for options in targets_options]
        path = Path(self.useFixture(fixtures.TempDir()).path) / "pools.yaml"
        path.write_text(pools_yaml(targets))
        return path

    def test_bind_lists_writes_reconfigures_and_prints(self) -> None:
        r1, r2 = self.regions.primaries
        pools = self.pools(self.options(region_preference="region2,region1"))
        done = run_dr("bind-lists", "--pools", str(pools))
        self.assertEqual(0, done.code, done.stdout + done.stderr)
        self.assertIn(f"{bind9_dr.DEFAULT_LISTS} list(s) changed; rndc reconfig done", done.stdout)
        zone = self.new_zone(12)
        self.backend().create_zone(None, zone)  # refers to its list: region 2 first now
        self.assertEqual([r2.master, r1.master], self.module.list_zones(self.options())[zone.name])
        self.assertArrives(zone.name, 12)
        again = run_dr("bind-lists", "--pools", str(pools), "--target", self.secondary.address)
        self.assertIn("0 list(s) changed", again.stdout)
        printed = run_dr("bind-lists", "--pools", str(pools), "--print")
        self.assertEqual((0, self.regions.bind.primaries_path.read_text()), (printed.code, printed.stdout))

    def test_a_lists_command_ships_the_file_to_a_bind_host_this_host_cannot_write_to(self) -> None:
        # named includes primaries_path; this host writes a staging copy and the command copies it over
        r1, r2 = self.regions.primaries
        staging = Path(self.useFixture(fixtures.TempDir()).path) / "staged.conf"
        included = str(self.regions.bind.primaries_path)
        options = self.options(primaries_file=str(staging), region_preference="region2,region1")
        done = run_dr("bind-lists", "--pools", str(self.pools(options)), "--lists-command", f"cp {{file}} {included}")
        self.assertEqual(0, done.code, done.stdout + done.stderr)
        self.assertEqual(staging.read_text(), self.regions.bind.primaries_path.read_text())
        zone = self.new_zone(14)
        self.backend().create_zone(None, zone)
        self.assertEqual([r2.master, r1.master], self.module.list_zones(self.options())[zone.name])
        self.assertArrives(zone.name, 14)
        # a failover's re-point: the new lists reach named before its reconfig
        result = bind9_dr.repoint_zones(options, [[r1.master]], zones=[zone.name],
                                        lists_command=["cp", "{file}", included])
        self.assertEqual([zone.name], result.in_bulk)
        self.assertEqual([r1.master], self.module.list_zones(self.options())[zone.name])
        failed = run_dr("bind-lists", "--pools", str(self.pools(options)), "--lists-command", "false {file}")
        self.assertEqual(1, failed.code)
        self.assertIn(f"the lists command false {staging} failed (exit 1)", failed.stderr)
        self.assertEqual(1, len(failed.stderr.splitlines()))

    def test_dr_check_says_when_the_lists_are_not_what_pools_yaml_says(self) -> None:
        # in the lists mode zones take their masters from the file: a pools.yaml change not
        # followed by bind-lists would leave them on the old masters without a word
        zone = self.new_zone(16)
        self.backend().create_zone(None, zone)
        self.assertArrives(zone.name, 16)
        zones = Path(self.useFixture(fixtures.TempDir()).path) / "zones.txt"
        zones.write_text(zone.name + "\n")
        in_step = self.pools(self.options())
        done = run_dr("check", "--pools", str(in_step), "--zones", str(zones), "--no-masters", "--format", "json")
        self.assertEqual(0, done.code, done.stdout + done.stderr)
        self.assertEqual([False], [s["stale"] for s in json.loads(done.stdout)["bind_lists"]])
        changed = self.pools(self.options(region_preference="region2,region1"))  # and no bind-lists
        done = run_dr("check", "--pools", str(changed), "--zones", str(zones), "--no-masters")
        self.assertEqual(1, done.code, done.stdout + done.stderr)
        self.assertIn(f"{self.regions.bind.primaries_path} differs from pools.yaml: run designate-dr bind-lists",
                      done.stdout)
        prom = run_dr("check", "--pools", str(changed), "--zones", str(zones), "--no-masters", "--format",
                      "prometheus")
        self.assertIn("designate_dr_bind_lists_stale{target=", prom.stdout)
        self.assertTrue([line for line in prom.stdout.splitlines()
                         if line.startswith("designate_dr_bind_lists_stale{") and line.endswith(" 1")])
        self.assertEqual(0, run_dr("bind-lists", "--pools", str(changed)).code)
        done = run_dr("check", "--pools", str(changed), "--zones", str(zones), "--no-masters")
        self.assertEqual(0, done.code, done.stdout + done.stderr)

    def test_bind_lists_errors_are_one_line(self) -> None:
        per_zone = {k: v for k, v in self.options().items() if k != "primaries_list"}
        for argv, code, text in (
                (("--pools", str(self.pools(per_zone))), 1, "no bind9_dr target has the primaries_list option"),
                (("--pools", str(self.pools(self.options())), "--target", "127.0.0.99"), 2,
                 "no BIND target in the lists mode has the server 127.0.0.99"),
                (("--pools", str(self.pools(self.options(rndc_port=str(dns.free_port()))))), 1,
                 "writing the primaries lists failed"),
                (("--pools", str(self.pools(self.options(primaries_lists="many")))), 1,
                 "primaries_lists is not a number"),
                (("--pools", str(self.pools(self.options())), "--lists-command", "cp {file} {dest}"), 1,
                 "unknown placeholder {dest}"),
                (("--pools", str(self.pools(self.options(), self.options(view="other", port="5399")))), 1,
                 "with the same primaries list designate-dr")):
            done = run_dr("bind-lists", *argv)
            self.assertEqual((code, 1), (done.code, len(done.stderr.splitlines())), done.stderr)
            self.assertIn(text, done.stderr)

    def test_failover_stops_before_any_change_when_the_lists_cannot_be_written(self) -> None:
        r1, r2 = self.regions.primaries
        # the BIND target is region 2's: it stays when region 1 is lost
        for options, text in (({k: v for k, v in self.options(region="region2").items() if k != "primaries_file"},
                               "primaries_list is set but primaries_file is not"),
                              (self.options(region="region2", primaries_file="/proc/designate-dr-primaries.conf"),
                               "cannot write primaries_file /proc/designate-dr-primaries.conf")):
            pools = self.pools(options)
            before = pools.read_bytes()
            done = run_dr("failover", "--lost", "region1", "--pools", str(pools))
            self.assertEqual(1, done.code, done.stdout + done.stderr)
            self.assertIn(text, done.stderr)
            self.assertEqual(before, pools.read_bytes())
            self.assertEqual([], list(pools.parent.glob("*.bak")))


class TestBind9DRListsTsig(_ListsMode, _TsigScenarios, base.BaseTestCase):

    def test_an_unsigned_zone_does_not_transfer_until_converged(self) -> None:
        # the lists carry the key: lists written without it, nothing transfers; with it, the zone arrives
        zone = self.new_zone(20)
        self.deploy({k: v for k, v in self.options().items() if k != "tsigkey_name"})
        self.backend().create_zone(None, zone)
        self.assertIsNone(dns.wait_for_serial(zone.name, self.secondary, 20, timeout=3))
        self.deploy(self.options())
        self.assertArrives(zone.name, 20)


class TestPdns4DRCreateDuringOutage(_Base, base.BaseTestCase):
    """A region's mdns is down while zones are created (issue 16 item 4).

    PowerDNS's axfr-retrieve picks a random master and, after a failure, waits
    for its refresh cycle (an hour here): every zone must transfer anyway, from
    a master that answers, and still list the masters of all regions.
    """

    kind = "pdns4_dr"
    module = pdns4_dr
    secondary_kind = "pdns"

    @classmethod
    def setUpClass(cls) -> None:
        super(_Base, cls).setUpClass()
        designate_ready()
        cls.regions = dns.Regions(2, secondaries=("pdns",), xfr_cycle_interval=3600)
        cls.regions.setUp()

    def create_with_one_region_down(self, down: int) -> None:
        primaries = self.regions.primaries
        names = [f"out{uuid.uuid4().hex[:10]}.example." for _ in range(8)]
        self.regions.add_zones(names, 80)  # no NOTIFY: the transfer is the plugin's doing
        primaries[down].stop()
        backend = self.backend()
        for name in names:
            backend.create_zone(None, zone_object(name, 80))
        for name in names:
            self.assertArrives(name, 80)
        listed = self.module.list_zones(self.options())
        self.assertEqual([[p.master for p in primaries]] * len(names), [listed[n] for n in names])

    def test_create_with_the_preferred_region_down(self) -> None:
        self.create_with_one_region_down(0)

    def test_create_with_the_other_region_down(self) -> None:
        self.create_with_one_region_down(1)


class TestMisconfiguredTarget(base.BaseTestCase):
    """One target with a bad option fails alone: the worker builds the pool, the others work."""

    def setUp(self) -> None:
        super().setUp()
        designate_ready()
        self.regions = self.useFixture(dns.Regions(2, secondaries=("pdns", "bind")))

    def test_a_bad_target_fails_its_own_zone_actions_only(self) -> None:
        from designate import objects
        from designate.worker import service as worker_service
        masters = {**self.regions.masters_options(), "region": "region1"}
        good = pool_target("pdns4_dr", {**self.regions.pdns.target_options(), **masters})
        bad = [pool_target("bind9_dr", {**self.regions.bind.target_options(), **masters, "rndc_port": "95x3"}),
               pool_target("bind9_dr", {**self.regions.bind.target_options(), **masters,
                                        "rndc_key_file": "/nonexistent/rndc.key"}),
               pool_target("pdns4_dr", {**self.regions.pdns.target_options(), **masters,
                                        "api_endpoint": "http://127.0.0.1:80xx"}),
               pool_target("pdns4_dr", {**self.regions.pdns.target_options(), "region": "region1",
                                        "masters_region1": "not-an-address"})]
        pool = objects.Pool(targets=objects.PoolTargetList(objects=bad + [good]))
        with self.assertLogs("designate_dr.backend.common", "ERROR") as logs:
            worker_service.Service._setup_target_backends(pool)  # as the worker does: must not raise
        self.assertEqual(len(bad), len(logs.records))
        zone = zone_object(f"g{uuid.uuid4().hex[:8]}.example.", 5)
        self.regions.add_zone(zone.name, 5)
        good.backend.create_zone(None, zone)
        self.assertEqual(5, dns.wait_for_serial(zone.name, self.regions.pdns, 5))
        reasons = ["rndc_port is not a number", "/nonexistent/rndc.key", "is not an http(s)://host[:port] URL",
                   "bad masters option"]
        for target, reason in zip(bad, reasons):
            error = self.assertRaises(exceptions.Backend, target.backend.create_zone, None, zone)
            self.assertIn(reason, str(error))
            self.assertIn("misconfigured target", str(error))
            self.assertNotIn("\n", str(error))
