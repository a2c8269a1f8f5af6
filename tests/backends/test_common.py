"""Region options -> ordered masters, master and zone name parsing, rndc key files."""
from __future__ import annotations

import base64
import os
import tempfile

from designate import exceptions, objects
from oslotest import base

from designate_dr.backend import common, rndc


class TestRegionMasters(base.BaseTestCase):

    def masters(self, options, target_masters=()):
        return [str(m) for m in common.region_masters(options, target_masters)]

    def test_own_region_first_then_the_others_by_name(self) -> None:
        options = {"region": "region2", "masters_region1": "192.0.2.1:5354, 192.0.2.2",
                   "masters_region3": "192.0.2.3:53", "masters_region2": "[2001:db8::2]:5354"}
        self.assertEqual(["[2001:db8::2]:5354", "192.0.2.1:5354", "192.0.2.2:5354",
                          "192.0.2.3:53"], self.masters(options))

    def test_region_preference_orders_and_duplicates_go(self) -> None:
        options = {"region": "region1", "region_preference": "region3, region1",
                   "masters_region1": "192.0.2.1", "masters_region2": "192.0.2.2 192.0.2.1",
                   "masters_region3": "192.0.2.3"}
        self.assertEqual(["192.0.2.3:5354", "192.0.2.1:5354", "192.0.2.2:5354"],
                         self.masters(options))

    def test_target_masters_are_the_own_regions(self) -> None:
        target = objects.PoolTargetMasterList(objects=[
            objects.PoolTargetMaster(host="198.51.100.1", port=5354)])
        options = objects.PoolTargetOptionList(objects=[
            objects.PoolTargetOption(key="region", value="r1"),
            objects.PoolTargetOption(key="masters_r2", value="198.51.100.2:5354")])
        self.assertEqual(["198.51.100.1:5354", "198.51.100.2:5354"],
                         self.masters(options, target))
        self.assertEqual(["198.51.100.1:5354"], self.masters({}, target))

    def test_bad_master_is_a_backend_error(self) -> None:
        error = self.assertRaises(exceptions.Backend, common.region_masters,
                                  {"masters_r1": "mdns.example.org:5354"})
        self.assertIn("not an IP address", str(error))


class TestMastersOfAZone(base.BaseTestCase):
    """Region order kept; a region's masters rotated per zone, the same every time (issue 16 item 9)."""

    groups = [[common.Master.parse(f"192.0.2.{i}") for i in (1, 2, 3)],
              [common.Master.parse("198.51.100.1"), common.Master.parse("198.51.100.2")]]

    def test_each_region_shares_the_zones_and_keeps_its_place(self) -> None:
        firsts: dict[str, int] = {}
        for i in range(300):
            zone = f"z{i}.example."
            masters = common.masters_for(zone, self.groups)
            self.assertEqual(sorted(self.groups[0]), sorted(masters[:3]))  # region 1 first, whole
            self.assertEqual(sorted(self.groups[1]), sorted(masters[3:]))
            self.assertEqual(masters, common.masters_for(zone.upper().rstrip("."), self.groups))  # stable
            firsts[str(masters[0])] = firsts.get(str(masters[0]), 0) + 1
        self.assertEqual({"192.0.2.1:5354", "192.0.2.2:5354", "192.0.2.3:5354"}, set(firsts))
        self.assertGreater(min(firsts.values()), 60)  # spread, not all on one mdns

    def test_a_flat_list_keeps_its_order(self) -> None:
        groups = common.repoint_masters("pdns4_dr", ["192.0.2.2:5354", "192.0.2.1:5354"])
        for zone in ("a.example.", "b.example.", "c.example."):
            self.assertEqual(["192.0.2.2:5354", "192.0.2.1:5354"],
                             [str(m) for m in common.masters_for(zone, groups)])


class TestNames(base.BaseTestCase):

    def test_zone_names(self) -> None:
        self.assertEqual("example.org", common.zone_name("Example.ORG."))
        self.assertEqual("_srv.x-y.example", common.zone_name("_srv.x-y.example"))
        for bad in ("", ".", "a..b", "-a.b", 'a"b.c', "a b.c", "a;b.c", "x" * 64 + ".org",
                    # "$" would match before a newline: an rndc statement injection
                    "ab\n.example.org", "example\n.org.", "b\n};\nzone x {.org"):
            self.assertRaises(exceptions.Backend, common.zone_name, bad)

    def test_scrub(self) -> None:
        self.assertEqual("key *** was\nwrong".replace("\n", " "),
                         common.scrub("key s3cret was\nwrong", "s3cret", None))


class TestRndcKeys(base.BaseTestCase):

    def write(self, text: str) -> str:
        fd, path = tempfile.mkstemp()
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return path

    def test_key_file_and_rndc_conf_default_key(self) -> None:
        key = rndc.load_key(self.write('key "rndc-key" {\n algorithm hmac-sha256;\n'
                                       ' secret "c2VjcmV0"; };\n'))
        self.assertEqual(("rndc-key", "hmac-sha256", b"secret"),
                         (key.name, key.algorithm, key.secret))
        self.assertNotIn("secret", repr(key).replace("secret=", ""))
        conf = self.write('# comment\nkey "a" { algorithm hmac-md5; secret "YQ=="; };\n'
                          'key "b" { algorithm hmac-sha512; secret "Yg=="; };\n'
                          'options { default-key "b"; default-port 953; };\n')
        self.assertEqual("b", rndc.load_key(config_file=conf).name)

    def test_secret_with_double_slash_and_comments_of_every_kind(self) -> None:
        # about 1 in 100 random base64 secrets holds "//": it is not a comment inside quotes
        key = rndc.load_key(self.write(
            '/* made by rndc-confgen */\nkey "rndc-key" { // the control channel key\n'
            ' algorithm hmac-sha256; # sha256\n secret "QGaw7csW8sAK9/T/7ZQSCjIIvVJ//NPSWQLTJHjtt6s=";\n};\n'))
        self.assertEqual(base64.b64decode("QGaw7csW8sAK9/T/7ZQSCjIIvVJ//NPSWQLTJHjtt6s="), key.secret)
        commented = self.write('// key "old" { algorithm hmac-md5; secret "YQ=="; };\n'
                               '/* key "older" { algorithm hmac-md5; secret "Yg=="; }; */\n'
                               'key "new" { algorithm hmac-sha256; secret "Yw=="; };\n')
        self.assertEqual(("new", b"c"), (rndc.load_key(commented).name, rndc.load_key(commented).secret))

    def test_unusable_key_files(self) -> None:
        self.assertRaises(rndc.RndcError, rndc.load_key, self.write("options { };\n"))
        self.assertRaises(rndc.RndcError, rndc.load_key,
                          self.write('key "k" { algorithm hmac-foo; secret "YQ=="; };'))
        self.assertRaises(rndc.RndcError, rndc.load_key, "/nonexistent/key")
