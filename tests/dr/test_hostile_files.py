"""pools.yaml and zone lists as hostile input: one ``error:`` line and exit 1, never a traceback.

Through ``designate-dist dr check``'s real ``main()``, with an empty zone list: a pools.yaml
that parses ends in "no zones to check", one that does not in its own error, so every
input must give exit 1 and exactly one line.  A fixed seed keeps the fuzzing repeatable;
``DR_FUZZ_SEED`` and ``DR_FUZZ_CASES`` run other cases.
"""
from __future__ import annotations

import os
import random
import re
from pathlib import Path

import fixtures
from oslotest import base

from designate_dr.ops import check
from designate_dr.ops.errors import PoolsError
from tests.fixtures.cli import run_cli

VALID = """\
- name: default
  description: two regions
  ns_records:
  - hostname: ns1.example.org.
    priority: 1
  nameservers:
  - host: 127.0.0.1
    port: 20001
  - host: 127.0.0.1
    port: 20002
  also_notifies:
  - host: 127.0.0.9
    port: 53
  targets:
  - type: pdns4_dr
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
      region_addresses: 127.0.0.9
  - type: bind9_dr
    masters:
    - host: 127.0.0.3
      port: 20200
    options:
      host: 127.0.0.1
      port: 20002
      region: region2
      region_preference: region2, region1
      masters_region1: 127.0.0.2:20100, [::1]:5354
"""
VALUES = ["[a, b]", "{x: 1}", "70000", "0", "-1", "abc", "!!binary aGk=", "true", "1.5", '""', "~",
          "2026-01-01", "'127.0.0.1:99999'", "'[::1]:x'", "'host name'", "&a [*a]", "!!set {a}",
          "'\u00e9t\u00e9'", "1e400", "'10.0.0.1:53, 10.0.0.2:'", "'[::1'", "'::1'", ":", "{", "'a\\0b'"]
SEED = int(os.environ.get("DR_FUZZ_SEED", "15"))
CASES = int(os.environ.get("DR_FUZZ_CASES", "300"))


def mutate(rng: random.Random, data: bytes) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:  # flip, insert or drop bytes
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(out) or 1)
            choice = rng.randrange(3)
            if choice == 0 and out:
                out[at] = rng.randrange(256)
            elif choice == 1:
                out.insert(at, rng.randrange(256))
            elif out:
                del out[at]
        return bytes(out)
    lines = data.decode("utf-8", "replace").split("\n")
    at = rng.randrange(len(lines))
    if kind == 1:  # a value replaced by something of another type or out of range
        lines[at] = re.sub(r":( .*)?$", ": " + rng.choice(VALUES), lines[at], count=1)
    elif kind == 2:  # a line dropped or doubled
        if rng.random() < 0.5:
            del lines[at]
        else:
            lines.insert(at, lines[at])
    elif kind == 3:  # indentation changed
        lines[at] = " " * rng.randrange(8) + lines[at].lstrip()
    else:  # a line from elsewhere
        lines[at] = rng.choice(lines)
    return "\n".join(lines).encode("utf-8", "surrogateescape")


class TestHostileFiles(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.pools = self.tmp / "pools.yaml"
        self.no_zones = self.tmp / "none.txt"
        self.no_zones.write_text("# no zones\n")
        self.zones = self.tmp / "zones.txt"

    def check_pools(self, data: bytes):
        self.pools.write_bytes(data)
        return run_cli("dr", "check", "--pools", str(self.pools), "--zones", str(self.no_zones))

    def assertOneLine(self, outcome, note: object = None) -> str:
        lines = outcome.stderr.splitlines()
        self.assertEqual(1, outcome.code, (note, outcome.stderr[-2000:]))
        self.assertEqual(1, len(lines), (note, outcome.stderr[-2000:]))
        self.assertTrue(lines[0].startswith("error: "), (note, lines[0]))
        self.assertEqual("", outcome.stdout, note)
        return lines[0]

    def test_valid_file_reaches_the_zone_list(self) -> None:
        self.assertEqual("error: no zones to check (give --zones FILE or --from-api URL)",
                         self.assertOneLine(self.check_pools(VALID.encode())))

    def test_option_types_and_ranges(self) -> None:
        where = f"error: {self.pools}: pool default: target #1"
        for old, new, line in (
                ("      port: '20001'", "      port: 'abc'", f"{where}: option port: port 'abc' is not a number"),
                ("      port: '20001'", "      port: 70000", f"{where}: option port: port 70000 out of range 1-65535"),
                ("      port: '20001'", "      port: true", f"{where}: option port: port True is not a number"),
                ("      port: '20001'", "      port: 53.0", f"{where}: option port: port 53.0 is not a number"),
                ("masters_region2: 127.0.0.3:20200", "masters_region2: 127.0.0.3:70000",
                 f"{where}: option masters_region2: port 70000 out of range 1-65535"),
                ("masters_region2: 127.0.0.3:20200", "masters_region2: '[::1]:x'",
                 f"{where}: option masters_region2: port 'x' is not a number"),
                ("masters_region2: 127.0.0.3:20200", "masters_region2: mdns.example:5354",
                 f"{where}: option masters_region2: 'mdns.example' is not an IP address"),
                ("masters_region2: 127.0.0.3:20200", "masters_region2: 5354",
                 f"{where}: option masters_region2: 5354 is not a list of host[:port]"),
                ("masters_region2: 127.0.0.3:20200", "'masters_': 127.0.0.3",
                 f"{where}: option masters_: does not end in a region name"),
                ("region_addresses: 127.0.0.9", "region_addresses: 127.0.0.9:0",
                 f"{where}: option region_addresses: port 0 out of range 1-65535"),
                ("region: region1", "region: [region1]", f"{where}: option region must be a plain value "
                                                         "(Designate stores options as strings)"),
                ("region: region1", "region: 'region 1'",
                 f"{where}: option region: 'region 1' is not a region name (letters, digits, '_', '.', '-')"),
                ("      host: 127.0.0.1\n      port: '20001'", "      host: 7\n      port: '20001'",
                 f"{where}: option host: 7 is not a host name or address"),
                ("      api_token: secret1", "      1: secret1", f"{where}: option name 1 is not a string"),
                ("  - type: pdns4_dr", "  - type: [pdns4_dr]", f"{where}: type ['pdns4_dr'] is not a string")):
            self.assertIn(old, VALID)
            self.assertEqual(line, self.assertOneLine(self.check_pools(VALID.replace(old, new, 1).encode())))

    def test_pool_fields(self) -> None:
        prefix = f"error: {self.pools}: "
        for old, new, line in (
                ("- name: default", "- name: [a, b]", "pool #1: name ['a', 'b'] is not a string"),
                ("- name: default", "- name: {a: 1}", "pool #1: name {'a': 1} is not a string"),
                ("  description: two regions", "  description: [x]", "pool default: description must be a string"),
                ("    priority: 1", "    priority: high", "pool default: ns_records: {'hostname': 'ns1.example.org.', "
                                                         "'priority': 'high'} is not a mapping with a hostname and "
                                                         "an integer priority"),
                ("  - host: 127.0.0.9\n    port: 53", "  - host: [127.0.0.9]\n    port: 53",
                 "pool default: also_notify: host ['127.0.0.9'] is not a host name or address"),
                ("    port: 20001\n  - host", "    port: 99999\n  - host",
                 "pool default: nameserver: port 99999 out of range 1-65535"),
                ("    - host: 127.0.0.2\n      port: 20100", "    - host: 127.0.0.2\n      port: 2.5",
                 "pool default: target #1: master: port 2.5 is not a number")):
            self.assertIn(old, VALID)
            self.assertEqual(prefix + line, self.assertOneLine(self.check_pools(VALID.replace(old, new, 1).encode())))

    def test_not_yaml(self) -> None:
        for data, end in ((b"\xff\xfe- name: x\n", "cannot read: 'utf-8' codec can't decode byte 0xff in position 0: "
                                                   "invalid start byte"),
                          (b"- name: a\x00b\n", "not valid YAML at character 10: special characters are not allowed"),
                          (b"[" * 5000 + b"]" * 5000, "not valid YAML: nested too deeply"),
                          (b"", "expected a non-empty list of pools")):
            self.assertEqual(f"error: {self.pools}: {end}", self.assertOneLine(self.check_pools(data)))

    def test_fuzzed_pools_files(self) -> None:
        rng = random.Random(SEED)
        for case in range(CASES):
            data = mutate(rng, VALID.encode()) if case % 4 else rng.randbytes(rng.randrange(200))
            self.assertOneLine(self.check_pools(data), (SEED, case, data))

    def zone_list(self, data: bytes):
        self.zones.write_bytes(data)
        self.pools.write_text(VALID)
        return run_cli("dr", "check", "--pools", str(self.pools), "--zones", str(self.zones))

    def test_zone_list_errors(self) -> None:
        rule = "use letters, digits, '-' and '_' in dot-separated labels of 1-63 characters"
        long = "a" * 64 + ".example"
        for data, line in (
                (f"# zones\nok.example\n{long}\n".encode(), f"line 3: invalid zone name {long[:80]!r}: {rule}"),
                (b"ok.example\n\xe9t\xe9.example\n", "zone list is not UTF-8 text (byte 11)"),
                (b"a..example\n", f"line 1: invalid zone name 'a..example': {rule}"),
                (b"exa mple.org\n", f"line 1: invalid zone name 'exa mple.org': {rule}"),
                ("\u00e9t\u00e9.example\n".encode(), f"line 1: invalid zone name '\u00e9t\u00e9.example': {rule}"),
                (("x." * 127 + "org\n").encode(), f"line 1: invalid zone name {('x.' * 40)!r}: {rule}")):
            self.assertEqual(f"error: {self.zones}: {line}", self.assertOneLine(self.zone_list(data)))

    def test_fuzzed_zone_lists(self) -> None:
        rng = random.Random(SEED)
        valid = b"# zones\nzone1.example.\nZone2.Example\n\n_srv.x-y.example  # comment\n"
        for case in range(CASES):
            data = mutate(rng, valid) if case % 4 else rng.randbytes(rng.randrange(200))
            self.zones.write_bytes(data)
            try:
                zones = check.read_zone_file(self.zones)
            except PoolsError:
                self.assertOneLine(self.zone_list(data), (SEED, case, data))
                continue
            for zone in zones:  # what is accepted is what DNS and the plugins take
                self.assertRegex(zone, r"^([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)+$", (SEED, case, data))
                self.assertLessEqual(len(zone), 254)

