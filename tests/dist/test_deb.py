"""deb: the self-contained virtualenv package, built for real with dpkg-buildpackage + dh-virtualenv.

The packaging is this repository's own ``debian/``; the upstream is the tiny
fixture release; the lock file pins pbr only, which pip really fetches into the
wheelhouse.  The package is checked with dpkg-deb and its extracted virtualenv
is run.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import fixtures
from oslotest import base

from designate_dist.changelog import changelog, changelog_top_version, merge_changelog
from designate_dist.deb import (
    DebRequest,
    Wheelhouse,
    build_debs,
    failure_reason,
    prepare_source,
    read_lock,
)
from designate_dist.errors import CommandFailed, ConfigError, ToolNotFound
from designate_dist.versions import DistroVersion
from designate_dist.wheel import WheelRequest, build_wheel
from tests.fixtures.cli import run_cli
from tests.fixtures.distro import DistroFixture, copy_upstream

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "debian"
VERSION = DistroVersion("1.0.0", 1)
EPOCH = 1_700_001_000
MAINTAINER = "Distro Maintainer <distro@example.org>"
VENV = "/opt/venvs/designate"
#: The drivers a region needs (designate[mysql,memcached]), at the versions of our real lock.
DRIVERS = {name: version for name, version in read_lock(REPO / "build" / "constraints.txt")
           if name in ("PyMySQL", "pymemcache")}
FIXTURE_LOCK = "pbr==7.1.3\n" + "".join(f"{n}=={v}\n" for n, v in sorted(DRIVERS.items()))


def dpkg_deb(*args: str) -> str:
    return subprocess.run(["dpkg-deb", *args], check=True, text=True,
                          stdout=subprocess.PIPE).stdout


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class DebInputs:
    """A tiny upstream tree, its wheel and a lock file (pbr and the drivers) in ``base``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.tree = copy_upstream(base / "upstream", VERSION.upstream)
        (self.tree / "PKG-INFO").unlink()
        shutil.rmtree(self.tree / "designate.egg-info")
        self.wheel = build_wheel(WheelRequest(self.tree, VERSION.pep440, EPOCH, base / "wheels"))
        self.lock = base / "constraints.txt"
        self.lock.write_text("# test lock\n" + FIXTURE_LOCK)
        # the packaging without a released changelog, so the build entry is generated
        self.packaging = base / "packaging"
        shutil.copytree(PACKAGING, self.packaging, ignore=shutil.ignore_patterns("changelog"))
        self.cache = base / "cache"

    def request(self, output: str, **changes) -> DebRequest:
        fields = dict(packaging_dir=self.packaging, work_tree=self.tree, wheels=(self.wheel,),
                      lock_file=self.lock, version=VERSION, maintainer=MAINTAINER,
                      source_date_epoch=EPOCH, output_dir=self.base / output,
                      cache_dir=self.cache)
        fields.update(changes)
        return DebRequest(**fields)


class TestBuiltPackage(base.BaseTestCase):
    """One real build, inspected from several sides."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.base = Path(tempfile.mkdtemp(prefix="test-deb-"))
        cls.inputs = DebInputs(cls.base)
        cls.result = build_debs(cls.inputs.request("out1"))
        [cls.deb] = cls.result.debs
        cls.root = cls.base / "extracted"
        subprocess.run(["dpkg-deb", "-x", str(cls.deb), str(cls.root)], check=True)

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.base, ignore_errors=True)
        super().tearDownClass()

    def field(self, name: str) -> str:
        return dpkg_deb("-f", str(self.deb), name).strip()

    def test_control_fields(self) -> None:
        arch = subprocess.run(["dpkg", "--print-architecture"], check=True, text=True,
                              stdout=subprocess.PIPE).stdout.strip()
        self.assertEqual(f"designate_{VERSION.debian_noepoch}_{arch}.deb", self.deb.name)
        self.assertEqual(self.inputs.base / "out1", self.deb.parent)
        self.assertEqual("designate", self.field("Package"))
        self.assertEqual("1:1.0.0-1", self.field("Version"))
        self.assertEqual(arch, self.field("Architecture"))
        self.assertEqual(MAINTAINER, self.field("Maintainer"))
        depends = [d.strip() for d in self.field("Depends").split(",")]
        self.assertIn("python3.11", depends)
        self.assertIn("adduser", depends)
        self.assertIn("python3-designate", self.field("Conflicts"))
        self.assertIn("Version: 1:1.0.0-1", dpkg_deb("-I", str(self.deb)))

    def test_contents(self) -> None:
        listing = dpkg_deb("-c", str(self.deb))
        names = {line.split()[5] for line in listing.splitlines()}
        for expected in (f".{VENV}/bin/designate-manage", f".{VENV}/pyvenv.cfg",
                         "./etc/designate/api-paste.ini",
                         "./lib/systemd/system/designate-api.service",
                         "./lib/systemd/system/designate-mdns.service"):
            self.assertIn(expected, names)
        self.assertIn(f"./usr/bin/designate-manage -> {VENV}/bin/designate-manage", listing)
        self.assertNotIn("__pycache__", listing)
        self.assertNotIn(".pyc", listing)
        # every file as of the SOURCE_DATE_EPOCH (2023-11-14 22:30 UTC), owned by root
        self.assertEqual({"2023-11-14 22:30"},
                         {" ".join(line.split()[3:5]) for line in listing.splitlines()})
        self.assertEqual({"root/root"}, {line.split()[1] for line in listing.splitlines()})

    def test_readme_says_how_to_make_designate_conf_on_this_system(self) -> None:
        readme = (self.root / "etc" / "designate" / "README-designate.conf.txt").read_text()
        self.assertIn("cp /etc/designate/designate.conf.sample /etc/designate/designate.conf", readme)
        self.assertIn("/opt/venvs/designate/bin/oslo-config-generator", readme)
        self.assertNotIn("\n    tox -e genconfig", readme)

    def test_console_script_points_at_the_installed_venv(self) -> None:
        script = self.root / VENV.lstrip("/") / "bin" / "designate-manage"
        self.assertEqual(f"#!{VENV}/bin/python", script.read_text().splitlines()[0])
        cfg = (self.root / VENV.lstrip("/") / "pyvenv.cfg").read_text()
        self.assertIn(f"command = /usr/bin/python3.11 -m venv {VENV}\n", cfg)
        self.assertEqual("/usr/bin/python3.11",
                         str((self.root / VENV.lstrip("/") / "bin" / "python3.11").readlink()))

    def test_extracted_venv_imports_the_patched_designate(self) -> None:
        venv = self.root / VENV.lstrip("/")
        code = ("import designate, importlib.metadata as m, sys;"
                "print(m.version('designate'), m.version('pbr'), designate.__file__.startswith(sys.prefix))")
        out = subprocess.run([str(venv / "bin" / "python"), "-c", code], check=True, text=True,
                             stdout=subprocess.PIPE).stdout
        self.assertEqual("1.0.0.post1 7.1.3 True\n", out)

    def test_the_region_drivers_are_in_the_venv(self) -> None:
        # designate[mysql,memcached]: PyMySQL for mysql+pymysql://, pymemcache for tooz
        self.assertEqual({"PyMySQL": "1.2.4", "pymemcache": "4.0.0"}, DRIVERS)
        venv = self.root / VENV.lstrip("/")
        code = ("import importlib.metadata as m, pymysql, pymemcache, sys;"
                "print(m.version('PyMySQL'), m.version('pymemcache'),"
                " pymysql.__file__.startswith(sys.prefix), pymemcache.__file__.startswith(sys.prefix))")
        out = subprocess.run([str(venv / "bin" / "python"), "-c", code], check=True, text=True,
                             stdout=subprocess.PIPE).stdout
        self.assertEqual(f"{DRIVERS['PyMySQL']} {DRIVERS['pymemcache']} True True\n", out)
        listing = dpkg_deb("-c", str(self.deb))
        for module in ("pymysql/__init__.py", "pymemcache/client/base.py"):
            self.assertIn(f"/site-packages/{module}\n", listing)
        manage = subprocess.run([str(venv / "bin" / "python"), str(venv / "bin" / "designate-manage")],
                                check=True, text=True, stdout=subprocess.PIPE).stdout
        self.assertEqual("designate-manage 1.0.0.post1\n", manage)

    def test_every_record_matches_the_shipped_files(self) -> None:
        venv = self.root / VENV.lstrip("/")
        code = (
            "import importlib.metadata as m, hashlib, base64\n"
            "bad = []\n"
            "for dist in m.distributions():\n"
            "    for f in dist.files or []:\n"
            "        if f.hash is None: continue\n"
            "        data = f.locate().read_bytes()\n"
            "        got = base64.urlsafe_b64encode(hashlib.new(f.hash.mode, data).digest()).rstrip(b'=').decode()\n"
            "        if got != f.hash.value: bad.append(str(f))\n"
            "print(len(list(m.distributions())), bad)\n")
        out = subprocess.run([str(venv / "bin" / "python"), "-c", code], check=True, text=True,
                             stdout=subprocess.PIPE).stdout
        count, bad = out.split(" ", 1)
        self.assertEqual("[]\n", bad)
        self.assertGreaterEqual(int(count), 5)  # designate, pbr, pip, PyMySQL, pymemcache

    def test_changelog_is_dated_from_source_date_epoch(self) -> None:
        path = self.root / "usr/share/doc/designate/changelog.Debian.gz"
        self.assertEqual(changelog(VERSION, MAINTAINER, EPOCH), gzip.decompress(path.read_bytes()).decode())
        self.assertIn(" -- Distro Maintainer <distro@example.org>  Tue, 14 Nov 2023 22:30:00 +0000",
                      changelog(VERSION, MAINTAINER, EPOCH))

    def test_a_second_build_is_byte_identical_and_reuses_the_wheelhouse(self) -> None:
        self.assertFalse(self.result.wheelhouse.reused)
        again = build_debs(self.inputs.request("out2"))
        self.assertTrue(again.wheelhouse.reused)
        self.assertEqual([self.deb.name], [d.name for d in again.debs])
        self.assertEqual(sha256(self.deb), sha256(again.debs[0]))
        self.assertEqual({"pymysql", "pbr", "pymemcache"},
                         {w.name.split("-")[0] for w in again.wheelhouse.wheels})

    def test_the_distro_repository_is_not_written(self) -> None:
        self.assertFalse((self.inputs.packaging / "changelog").exists())
        self.assertEqual([], list((self.inputs.cache / "deb-build").iterdir()))


class TestDebErrors(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.base = Path(self.useFixture(fixtures.TempDir()).path)

    def test_missing_tool_is_a_clear_error(self) -> None:
        empty = self.base / "empty-bin"
        empty.mkdir()
        request = DebRequest(packaging_dir=PACKAGING, work_tree=self.base, wheels=(),
                             lock_file=self.base / "none.txt", version=VERSION,
                             maintainer=MAINTAINER, source_date_epoch=EPOCH,
                             output_dir=self.base / "out", cache_dir=self.base / "cache",
                             tool_path=str(empty))
        error = self.assertRaises(ToolNotFound, build_debs, request)
        self.assertEqual("dpkg-buildpackage is not installed: the deb stage needs it", str(error))
        self.assertEqual("apt-get install dpkg-dev", error.hint)
        self.assertFalse((self.base / "out").exists())

    def test_lock_file_lines_must_be_pins(self) -> None:
        lock = self.base / "constraints.txt"
        lock.write_text("# comment\npbr==7.1.3\nDesignate==22.0.1\nrequests>=2\n")
        error = self.assertRaises(ConfigError, read_lock, lock)
        self.assertEqual(f"{lock}:4: not a `name==version` pin: 'requests>=2'", str(error))
        lock.write_text("pbr==7.1.3  # pinned\nDesignate==22.0.1\ndesignate_dist==1\n")
        self.assertEqual([("pbr", "7.1.3")], read_lock(lock))

    def test_failure_reason_is_the_real_error_not_the_wrappers(self) -> None:
        pip_failure = (
            " debian/rules binary\n"
            "ERROR: Could not find a version that satisfies the requirement oslo.log==9.9 (from versions: none)\n"
            "ERROR: No matching distribution found for oslo.log==9.9\n"
            "Traceback (most recent call last):\n"
            '  File "/usr/bin/dh_virtualenv", line 106, in <module>\n'
            "subprocess.CalledProcessError: Command '['pip', 'install']' returned non-zero exit status 1.\n"
            "make[1]: *** [debian/rules:30: override_dh_virtualenv] Error 1\n"
            "make: *** [debian/rules:27: binary] Error 2\n"
            "dpkg-buildpackage: error: debian/rules binary subprocess returned exit status 2\n")
        self.assertEqual("ERROR: No matching distribution found for oslo.log==9.9",
                         failure_reason(pip_failure))
        self.assertEqual("normalize-venv: 1 file(s) still mention the build directory: x",
                         failure_reason("normalize-venv: 1 file(s) still mention the build directory: x\n"
                                        "make[1]: *** [debian/rules:30: override_dh_virtualenv] Error 1\n"))

    def test_an_upstream_without_the_driver_extras_is_refused(self) -> None:
        inputs = DebInputs(self.base)
        setup = inputs.tree / "setup.cfg"
        setup.write_text(setup.read_text().split("\n[extras]", 1)[0] + "\n")
        inputs.wheel.unlink()
        inputs.wheel = build_wheel(WheelRequest(inputs.tree, VERSION.pep440, EPOCH, self.base / "wheels"))
        error = self.assertRaises(CommandFailed, build_debs, inputs.request("out"))
        self.assertEqual("dpkg-buildpackage failed (exit 2): error: the virtualenv lacks the MySQL or "
                         "memcached driver (designate[mysql,memcached])", str(error))
        self.assertFalse((self.base / "out").exists())

    def test_failing_packaging_reports_the_tail_and_keeps_the_log(self) -> None:
        inputs = DebInputs(self.base)
        broken = self.base / "debian"
        shutil.copytree(PACKAGING, broken)
        rules = broken / "rules"
        rules.write_text(rules.read_text().replace(
            "override_dh_virtualenv:\n",
            "override_dh_virtualenv:\n\t@echo 'broken-rules: no virtualenv today' >&2; exit 7\n"
            "never_run:\n"))
        error = self.assertRaises(CommandFailed, build_debs, inputs.request("out", packaging_dir=broken))
        self.assertEqual("dpkg-buildpackage failed (exit 2): broken-rules: no virtualenv today", str(error))
        self.assertIn("broken-rules: no virtualenv today", error.stderr)
        log = Path(error.hint.removeprefix("full build log: "))
        self.assertIn("broken-rules: no virtualenv today", log.read_text())
        self.assertFalse((self.base / "out").exists())
        self.assertEqual([log.name], [p.name for p in (inputs.cache / "deb-build").iterdir()])


class TestChangelog(base.BaseTestCase):
    """debian/changelog of the build: the released entry as it is, else a build entry on top."""

    RELEASED = ("designate (1:1.0.0-1) bookworm; urgency=medium\n\n"
                "  * added customs/0001-extra.patch: Add extra module\n\n"
                " -- Release Manager <rm@example.org>  Mon, 13 Nov 2023 10:00:00 +0000\n")
    OLDER = RELEASED.replace("1:1.0.0-1", "1:0.9.0-3")

    def setUp(self) -> None:
        super().setUp()
        self.base = Path(self.useFixture(fixtures.TempDir()).path)

    def parse(self, text: str) -> list[str]:
        path = self.base / "changelog"
        path.write_text(text)
        out = subprocess.run(["dpkg-parsechangelog", "-l", str(path), "--all", "--format", "rfc822"],
                             check=True, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual("", out.stderr)
        return [line[9:] for line in out.stdout.splitlines() if line.startswith("Version: ")]

    def test_a_released_entry_of_the_version_is_used_unchanged(self) -> None:
        self.assertEqual("1:1.0.0-1", changelog_top_version("\n" + self.RELEASED))
        self.assertEqual(self.RELEASED, merge_changelog(self.RELEASED, VERSION, MAINTAINER, EPOCH))

    def test_a_build_entry_goes_above_the_history(self) -> None:
        merged = merge_changelog(self.OLDER, VERSION, MAINTAINER, EPOCH)
        self.assertEqual(changelog(VERSION, MAINTAINER, EPOCH) + "\n" + self.OLDER, merged)
        self.assertEqual(["1:1.0.0-1", "1:0.9.0-3"], self.parse(merged))
        self.assertEqual(merged, merge_changelog(self.OLDER, VERSION, MAINTAINER, EPOCH))
        self.assertEqual(changelog(VERSION, MAINTAINER, EPOCH),
                         merge_changelog(None, VERSION, MAINTAINER, EPOCH))
        self.assertEqual(["1:1.0.0-1"], self.parse(changelog(VERSION, MAINTAINER, EPOCH)))

    def test_prepare_source_takes_the_packaging_changelog(self) -> None:
        packaging = self.base / "debian"
        shutil.copytree(PACKAGING, packaging, ignore=shutil.ignore_patterns("changelog"))
        wheel = self.base / "designate-1.0.0.post1-py3-none-any.whl"
        wheel.write_bytes(b"not read here")
        lock = self.base / "constraints.txt"
        lock.write_text("pbr==7.1.3\n")
        request = DebRequest(packaging_dir=packaging, work_tree=self.base, wheels=(wheel,),
                             lock_file=lock, version=VERSION, maintainer=MAINTAINER,
                             source_date_epoch=EPOCH, output_dir=self.base / "out",
                             cache_dir=self.base / "cache")
        wheelhouse = Wheelhouse(self.base / "wheelhouse", (), reused=True)
        cases = [(self.RELEASED, self.RELEASED),
                 (self.OLDER, changelog(VERSION, MAINTAINER, EPOCH) + "\n" + self.OLDER)]
        for number, (packaged, built) in enumerate(cases):
            (packaging / "changelog").write_text(packaged)
            scratch = self.base / f"scratch{number}"
            scratch.mkdir()
            source = prepare_source(request, wheelhouse, scratch)
            self.assertEqual(built, (source / "debian" / "changelog").read_text())
            self.assertEqual(packaged, (packaging / "changelog").read_text())


class TestBuildCommandMakesTheDeb(base.BaseTestCase):
    """`designate-dist build --skip-tests` on a fixture distro with our debian/."""

    def test_build_writes_wheel_deb_and_manifest(self) -> None:
        distro = self.useFixture(DistroFixture())
        shutil.rmtree(distro.root / "debian")
        shutil.copytree(PACKAGING, distro.root / "debian", ignore=shutil.ignore_patterns("changelog"))
        (distro.root / "build" / "constraints.txt").write_text(FIXTURE_LOCK)
        distro.commit("packaging")
        outcome = run_cli("--distro", str(distro.root), "-q", "build", "--skip-tests")
        self.assertEqual(0, outcome.code, outcome.stderr)
        out = distro.root / "dist" / "1.0.0.post1"
        manifest = json.loads((out / "manifest.json").read_text())
        arts = {a["file"]: a for a in manifest["artifacts"]}
        deb_name = f"designate_1.0.0-1_{_arch()}.deb"
        self.assertEqual(sorted(["designate-1.0.0.post1-py3-none-any.whl", deb_name]), sorted(arts))
        deb = out / deb_name
        self.assertEqual((deb.stat().st_size, sha256(deb)),
                         (arts[deb_name]["size"], arts[deb_name]["sha256"]))
        self.assertEqual("1:1.0.0-1\n", dpkg_deb("-f", str(deb), "Version"))
        self.assertFalse((distro.root / "debian" / "changelog").exists())


def _arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], check=True, text=True,
                          stdout=subprocess.PIPE).stdout.strip()
