"""bind9_dr's texts: what ``rndc showzone`` prints and the primaries file the lists mode writes."""
from __future__ import annotations

import uuid

from oslotest import base

from designate_dr.backend import bind9_dr, common

R1 = [common.Master.parse("127.0.0.2:5354"), common.Master.parse("127.0.0.12:5354")]
R2 = [common.Master.parse("127.0.0.3:5354"), common.Master.parse("[::1]:5355"),
      common.Master.parse("127.0.0.13:5354")]


class TestShowzone(base.BaseTestCase):

    def test_a_zone_on_a_list(self) -> None:
        conf = bind9_dr.parse_showzone('zone "a.example" { type secondary; file "a.db"; '
                                       'primaries { "designate-dr-7"; }; };')
        self.assertEqual(("secondary", [], ("designate-dr-7",), "a.db"),
                         (conf.type, conf.masters, conf.lists, conf.file))

    def test_addresses_keys_and_list_names_that_look_like_hex(self) -> None:
        # "dead-beef" starts like an address: it is a list name all the same
        conf = bind9_dr.parse_showzone('zone "b.example" { type slave; masters { 127.0.0.2 port 5354 key '
                                       '"k1"; ::1 port 53; dead-beef; "cafe"; }; file "b.db"; };')
        self.assertEqual(["127.0.0.2:5354", "[::1]:53"], [str(m) for m in conf.masters])
        self.assertEqual(("k1", None), conf.keys)
        self.assertEqual(("dead-beef", "cafe"), conf.lists)


class TestListsFile(base.BaseTestCase):

    def test_render_and_read_back(self) -> None:
        text = bind9_dr.render_lists("designate-dr", 6, [R1, R2], "transfer-key")
        lists = bind9_dr.parse_lists(text)
        self.assertEqual([f"designate-dr-{i}" for i in range(6)], list(lists))
        first = lists["designate-dr-1"]
        self.assertEqual(["127.0.0.12:5354", "127.0.0.2:5354", "[::1]:5355", "127.0.0.13:5354", "127.0.0.3:5354"],
                         [str(m) for m in first.masters])
        self.assertEqual({"transfer-key"}, set(first.keys))
        self.assertTrue(text.startswith("#"))  # says who writes it
        unsigned = bind9_dr.parse_lists(bind9_dr.render_lists("designate-dr", 6, [R1, R2], None))
        self.assertEqual({None}, {k for lst in unsigned.values() for k in lst.keys})

    def test_a_zones_list_gives_the_per_zone_order_when_the_region_sizes_divide_the_count(self) -> None:
        groups = [R1, R2]  # 2 and 3 mdns: both divide the default 60
        lists = bind9_dr.parse_lists(bind9_dr.render_lists("p", bind9_dr.DEFAULT_LISTS, groups, None))
        for _ in range(200):
            zone = f"z{uuid.uuid4().hex[:12]}.example"
            listed = lists[f"p-{common.zone_key(zone, bind9_dr.DEFAULT_LISTS)}"].masters
            self.assertEqual(common.masters_for(zone, groups), list(listed))
            self.assertEqual(common.masters_for(zone, groups), common.masters_for(zone, groups, bind9_dr.DEFAULT_LISTS))

    def test_every_list_is_used(self) -> None:
        seen = {common.zone_key(f"zone{i}.example", 60) for i in range(3000)}
        self.assertEqual(set(range(60)), seen)
