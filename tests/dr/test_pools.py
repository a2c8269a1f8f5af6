"""pools.yaml with regions: parsing, errors, removing a region and putting it back."""
from __future__ import annotations

from pathlib import Path

import fixtures
import yaml
from oslotest import base

from designate_dr.ops import pools as P
from designate_dr.ops.errors import PoolsError, UnknownRegion

SAMPLE = """\
- name: default
  description: two regions, one pool
  attributes: {}
  ns_records:
  - hostname: ns1.example.org.
    priority: 1
  nameservers:
  - host: 127.0.0.1
    port: 20001
  - host: 127.0.0.1
    port: 20002
  - host: 127.0.0.1
    port: 20003
  targets:
  - type: pdns4_dr
    description: region1 PowerDNS
    masters:
    - host: 127.0.0.2
      port: 20100
    options:
      host: 127.0.0.1
      port: '20001'
      api_endpoint: http://127.0.0.1:20011
      api_token: secret1
      region: region1
      masters_region2: 127.0.0.3:20200
  - type: bind9_dr
    description: region1 BIND
    masters:
    - host: 127.0.0.2
      port: 20100
    options:
      host: 127.0.0.1
      port: '20002'
      rndc_host: 127.0.0.1
      rndc_port: '20012'
      rndc_key_file: /etc/designate/rndc.key
      region: region1
      region_addresses: 127.0.0.9
      masters_region2: 127.0.0.3:20200
  - type: pdns4_dr
    description: region2 PowerDNS
    masters:
    - host: 127.0.0.2
      port: 20100
    - host: 127.0.0.3
      port: 20200
    options:
      host: 127.0.0.1
      port: '20003'
      api_endpoint: http://127.0.0.1:20013
      api_token: secret2
      region: region2
      masters_region1: 127.0.0.2:20100
      masters_region2: 127.0.0.3:20200
      region_preference: region2,region1
  also_notifies:
  - host: 127.0.0.9
    port: 53
  - host: 127.0.0.1
    port: 20003
"""


def _sample_with(extra: str = "", replace: tuple[str, str] | None = None) -> str:
    text = SAMPLE
    if replace:
        text = text.replace(*replace)
    return text + extra


class TestParse(base.BaseTestCase):
    def test_regions_of_everything(self) -> None:
        pools = P.parse_pools(SAMPLE)
        self.assertEqual(("region1", "region2"), pools.regions)
        self.assertEqual(["region1", "region1", "region2"], [t.region for t in pools.targets])
        self.assertEqual(["region1", "region1", "region2"], [s.region for s in pools.nameservers])
        self.assertEqual(["region1", "region2"], [s.region for s in pools.also_notifies])
        self.assertEqual({P.Address("127.0.0.2", 20100): "region1", P.Address("127.0.0.3", 20200): "region2"},
                         dict(pools.masters()))

    def test_errors_are_one_line_naming_the_file(self) -> None:
        cases = {
            "- name: [unclosed\n": "not valid YAML at line 2",
            "{}": "expected a non-empty list of pools",
            _sample_with(replace=("      region: region2\n", "")): "has no options region",
            _sample_with(replace=("  also_notifies:", "  regions: {}\n  also_notifies:")):
                "unknown key(s) regions",
            _sample_with(replace=("  - host: 127.0.0.9\n", "  - host: 127.0.0.99\n")):
                "cannot tell the region of also_notify 127.0.0.99:53",
            _sample_with(replace=("    port: 20003\n  targets", "    port: notaport\n  targets")):
                "port 'notaport' is not a number",
            _sample_with(replace=("      api_token: secret2\n", "      api_token: [a, b]\n")):
                "option api_token must be a plain value",
        }
        for text, expected in cases.items():
            message = str(self.assertRaises(PoolsError, P.parse_pools, text, "/etc/designate/pools.yaml"))
            self.assertIn(expected, message)
            self.assertTrue(message.startswith("/etc/designate/pools.yaml: "), message)
            self.assertNotIn("\n", message)

    def test_missing_file(self) -> None:
        error = self.assertRaises(PoolsError, P.load_pools, "/nonexistent/pools.yaml")
        self.assertEqual("/nonexistent/pools.yaml: no such file", str(error))


def _valid_for_designate(test: base.BaseTestCase, text: str) -> None:
    """designate-manage pool update parses pools.yaml with this adapter: it must accept ours."""
    try:
        from designate import objects
        from designate.objects.adapters import DesignateAdapter
    except ImportError as exc:  # pragma: no cover - Designate is in the test environment
        test.fail(f"Designate is needed to check pools.yaml: {exc}")
    for pool in yaml.safe_load(text):
        parsed = DesignateAdapter.parse("YAML", pool, objects.Pool())
        test.assertEqual(pool["name"], parsed.name)
        test.assertEqual(len(pool["targets"]), len(parsed.targets))


class TestRegionOut(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.pools = P.parse_pools(SAMPLE, "pools.yaml")

    def test_without_region1(self) -> None:
        data = P.without_region(self.pools, "region1")
        text = P.dump_pools(data)
        after = P.parse_pools(text)
        self.assertEqual(("region2",), after.regions)
        (target,) = after.targets
        self.assertEqual((P.Address("127.0.0.3", 20200),), target.masters)
        self.assertNotIn("masters_region1", target.options)
        self.assertEqual([P.Address("127.0.0.1", 20003)], [s.address for s in after.nameservers])
        self.assertEqual([P.Address("127.0.0.1", 20003)], [s.address for s in after.also_notifies])
        self.assertNotIn("127.0.0.9", text)
        self.assertEqual(self.pools.data[0]["ns_records"], data[0]["ns_records"])
        _valid_for_designate(self, text)
        _valid_for_designate(self, SAMPLE)

    def test_unknown_region(self) -> None:
        error = self.assertRaises(UnknownRegion, P.without_region, self.pools, "region3")
        self.assertEqual("pools.yaml: no region 'region3' (regions: region1, region2)", str(error))

    def test_only_region_left_is_refused(self) -> None:
        after = P.parse_pools(P.dump_pools(P.without_region(self.pools, "region1")))
        error = self.assertRaises(PoolsError, P.without_region, after, "region2")
        self.assertIn("would be left with none", str(error))

    def test_back_again_is_the_same_data(self) -> None:
        after = P.parse_pools(P.dump_pools(P.without_region(self.pools, "region1")))
        restored = P.with_region(after, self.pools, "region1")
        self.assertEqual(self.pools.data, restored)

    def test_back_again_keeps_changes_made_meanwhile(self) -> None:
        data = P.without_region(self.pools, "region1")
        data[0]["nameservers"].append({"host": "127.0.0.1", "port": 20003})  # dup is fine for the merge
        data[0]["targets"][0]["options"]["timeout"] = "5"
        after = P.parse_pools(P.dump_pools(data))
        restored = P.with_region(after, self.pools, "region1")
        self.assertEqual(3, len(restored[0]["targets"]))
        self.assertEqual("5", restored[0]["targets"][2]["options"]["timeout"])
        self.assertEqual(["region1", "region1", "region2"],
                         [t["options"]["region"] for t in restored[0]["targets"]])

    def test_dump_is_loadable_text(self) -> None:
        path = Path(self.useFixture(fixtures.TempDir()).path, "pools.yaml")
        path.write_text(P.dump_pools(self.pools.data))
        self.assertEqual(self.pools.data, P.load_pools(path).data)
