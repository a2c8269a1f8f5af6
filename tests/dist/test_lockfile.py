"""The lock file: its format, `designate-dist lock` on the fixture upstream, and the venv's use of it."""
from __future__ import annotations

import shutil
from pathlib import Path

import fixtures
import testtools
from oslotest import base

from designate_dist.errors import ConfigError
from designate_dist.lockfile import Hold, Lock, parse_lock, read_lock
from designate_dist.testsuite import ensure_venv
from tests.fixtures.cli import run_cli
from tests.fixtures.distro import DATA, DistroFixture

REPO = Path(__file__).resolve().parents[2]
# read before any test fakes HOME: pip keeps its download cache there
PIP_CACHE = Path.home() / ".cache" / "pip"


class TestLockFormat(base.BaseTestCase):
    def test_pins_holds_and_comments(self) -> None:
        lock = parse_lock("# a header\n# hold: dnspython==2.8.0  # 2.9 breaks zone import\n\n"
                          "PyYAML==6.0.4\ndnspython==2.8.0  # held\noslo.config==10.1.0\n", "lock")
        self.assertEqual("6.0.4", lock.version_of("pyyaml"))
        self.assertEqual("10.1.0", lock.version_of("oslo-config"))
        self.assertEqual((Hold("dnspython", "2.8.0", "2.9 breaks zone import"),), lock.holds)

    def test_errors_name_the_line(self) -> None:
        cases = {
            "a==1\nb>=2\n": "lock:2: not a `name==version` pin: 'b>=2'",
            "PyYAML==6\npyyaml==6\n": "lock:2: pyyaml is pinned twice",
            "# hold: a==1\na==1\n": "lock:1: the hold of a==1 has no reason",
            "# hold: a>=1  # why\n": "lock:1: a hold must be `# hold: name==version  # reason`",
            "# hold: a==1  # why\na==2\n": "lock: a is held at 1 but pinned at 2",
        }
        for text, message in cases.items():
            error = self.assertRaises(ConfigError, parse_lock, text, "lock")
            self.assertEqual(message, str(error)[:len(message)], text)

    def test_render_is_sorted_and_round_trips(self) -> None:
        lock = Lock({"zope-interface": ("zope.interface", "7.0"), "alembic": ("alembic", "1.2"),
                     "pyyaml": ("PyYAML", "6.0")}, (Hold("alembic", "1.2", "pinned for a test"),))
        text = lock.render()
        self.assertEqual(["alembic==1.2", "PyYAML==6.0", "zope.interface==7.0"],
                         [line for line in text.splitlines() if not line.startswith("#")])
        self.assertIn("# hold: alembic==1.2  # pinned for a test\n", text)
        self.assertEqual(lock, parse_lock(text, "lock"))

    def test_the_shipped_lock_is_valid_and_holds_dnspython(self) -> None:
        lock = read_lock(REPO / "build" / "constraints.txt")
        self.assertEqual("2.8.0", lock.version_of("dnspython"))
        self.assertGreater(len(lock.pins), 100)


class TestRelock(base.BaseTestCase):
    """Real pip installs (the fixture upstream needs only pbr + stestr): a few seconds each."""

    def setUp(self) -> None:
        super().setUp()
        self.useFixture(fixtures.Timeout(600, gentle=True))
        self.useFixture(fixtures.EnvironmentVariable("PIP_CACHE_DIR", str(PIP_CACHE)))
        self.distro = self.useFixture(DistroFixture())

    def test_lock_command_rewrites_the_lock_and_keeps_holds(self) -> None:
        lock_file = self.distro.root / "build" / "constraints.txt"
        lock_file.write_text("# hold: pbr==6.1.1  # testing that holds are kept\n"
                             "pbr==6.1.1\nnot-needed-any-more==1.0\n")
        outcome = run_cli("--distro", str(self.distro.root), "lock")
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertEqual(str(lock_file), outcome.stdout.strip())
        lock = read_lock(lock_file)
        self.assertEqual("6.1.1", lock.version_of("pbr"))
        self.assertIsNone(lock.version_of("not-needed-any-more"))
        for tool in ("stestr", "python-subunit", "testtools"):
            self.assertIsNotNone(lock.version_of(tool), tool)
        self.assertEqual((Hold("pbr", "6.1.1", "testing that holds are kept"),), lock.holds)
        pins = [line for line in lock_file.read_text().splitlines() if not line.startswith("#")]
        self.assertEqual(sorted(pins, key=lambda p: p.split("==")[0].lower().replace("_", "-")), pins)
        self.assertEqual(["constraints.txt"], [p.name for p in lock_file.parent.iterdir()
                                               if p.name.startswith(".") or "constraints" in p.name])

    def test_venv_refuses_a_package_the_lock_does_not_pin(self) -> None:
        lock_file = self.distro.base / "partial-lock.txt"
        lock_file.write_text("".join(line + "\n" for line in
                                     (DATA / "fixture-constraints.txt").read_text().splitlines()
                                     if not line.startswith("wcwidth==")))
        cache = self.distro.base / "venv-cache"
        error = self.assertRaises(ConfigError, ensure_venv, lock_file, DATA / "upstream", cache)
        self.assertIn(f"{lock_file} does not pin 1 installed packages: wcwidth==", str(error))
        self.assertEqual("run `designate-dist lock`", error.hint)
        self.assertEqual([], [p for p in (cache / "venvs").iterdir() if p.is_dir()])
        shutil.rmtree(cache)
