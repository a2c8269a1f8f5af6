"""Bad input of every kind: one ``error:`` line and the documented exit code, never a traceback.

Pins, series files and manifests are written as a clumsy operator or an attacker
would write them, and run through the CLI's ``main([...])``.  The fuzz cases
are seeded, so a failure is reproducible from the seed in its message.
"""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import fixtures
from oslotest import base

from designate_dist.errors import GitError
from designate_dist.gitrepo import clone_at_tag
from tests.fixtures.cli import Outcome, run_cli
from tests.fixtures.distro import DistroFixture, git, sha256, write_file


def assert_one_line(test: base.BaseTestCase, outcome: Outcome, code: int, context: str = "") -> str:
    test.assertEqual(code, outcome.code, f"{context}\n{outcome.stderr}")
    test.assertEqual(1, len(outcome.error_lines), f"{context}\n{outcome.stderr}")
    test.assertNotIn("Traceback", outcome.stderr, context)
    return outcome.error_lines[0]


class PinTest(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.distro = self.useFixture(DistroFixture())
        self.pin_file = self.distro.root / "build" / "upstream.toml"

    def fetch(self) -> Outcome:
        return run_cli("--distro", str(self.distro.root), "fetch")

    def edit_pin(self, old: str, new: str) -> None:
        text = self.pin_file.read_text()
        self.assertIn(old, text)
        self.pin_file.write_text(text.replace(old, new, 1))

    def test_name_must_be_a_package_name(self) -> None:
        for name in ("../../outside", "designate/../x", "/abs", "a b", "", ".hidden", "x\ny"):
            with self.subTest(name=name):
                self.pin_file.write_text(self.pin_file.read_text().split("\n", 1)[0] + "\n"
                                         + f"name = {json.dumps(name)}\n"
                                         + self.pin_file.read_text().split("\n", 2)[2])
                line = assert_one_line(self, self.fetch(), 1, name)
                self.assertEqual(f"error: build/upstream.toml: name {name!r} is not a package name "
                                 "(letters, digits, '.', '_' and '-' only)", line)
                self.distro.write_pin(sha=sha256(self.distro.archive))
        self.assertEqual([], [p for p in self.distro.base.rglob("outside*")])
        self.assertFalse((self.distro.cache / "archives").exists())

    def test_version_must_not_hold_a_path(self) -> None:
        self.edit_pin('version = "1.0.0"', 'version = "1.0.0/../../../x"')
        line = assert_one_line(self, self.fetch(), 1)
        self.assertEqual("error: build/upstream.toml: version '1.0.0/../../../x' is not a PEP 440 version", line)

    def test_fields_of_the_wrong_type(self) -> None:
        for old, new, key in (('source = "file"', "source = 1", "source"),
                              (f'path = "{self.distro.archive.parent}"', "path = [1, 2]", "path"),
                              ('maintainer = "Distro', 'maintainer = 3\nx = "', "maintainer")):
            with self.subTest(key=key):
                self.edit_pin(old, new)
                line = assert_one_line(self, self.fetch(), 1, key)
                self.assertIn(f"build/upstream.toml: {key!r} must be a string", line)
                self.distro.write_pin(sha=sha256(self.distro.archive))

    def test_pin_that_is_not_utf8(self) -> None:
        self.pin_file.write_bytes(self.pin_file.read_bytes().replace(b"designate", b"design\xe9te", 1))
        line = assert_one_line(self, self.fetch(), 1)
        self.assertEqual("error: build/upstream.toml: not UTF-8 text (invalid continuation byte at byte 25)",
                         line)

    def git_pin(self, url: str, tag: str = "1.0.0", commit: str = "1" * 40) -> None:
        self.distro.write_pin(sha="", source="git", extra=f'url = "{url}"\ntag = "{tag}"\ncommit = "{commit}"\n')

    def test_git_remote_helpers_are_refused(self) -> None:
        marker = self.distro.base / "pwned"
        for url in (f"ext::sh -c touch% {marker}", "fd::17", f"ext::touch {marker}"):
            with self.subTest(url=url):
                self.git_pin(url)
                line = assert_one_line(self, self.fetch(), 1, url)
                self.assertIn(f"git url {url!r}: remote helper {url.split('::')[0]!r}:: is not allowed", line)
        self.assertFalse(marker.exists())

    def test_unknown_git_transports_and_options_are_refused(self) -> None:
        for url, why in (("testgit::/x", "remote helper"), ("foo://host/repo", "transport 'foo' is not allowed"),
                         ("--upload-pack=touch /tmp/x", "is not a URL"), ("a\\tpath", "is not a URL")):
            with self.subTest(url=url):
                self.git_pin(url)
                line = assert_one_line(self, self.fetch(), 1, url)
                self.assertIn(why, line)

    def test_clone_refuses_ext_even_without_the_pin_check(self) -> None:
        marker = self.distro.base / "pwned"
        with self.assertRaises(GitError) as caught:
            clone_at_tag(f"ext::sh -c touch% {marker}", "1.0.0", self.distro.base / "clone")
        self.assertIn("refused", str(caught.exception))
        self.assertFalse(marker.exists())

    def test_allowed_git_urls_parse(self) -> None:
        from designate_dist.distro import check_git_url
        for url in ("https://opendev.example/openstack/designate", "ssh://git@host/x.git",
                    "git@host.example:openstack/designate.git", "file:///srv/git/designate.git",
                    "/srv/git/designate.git", "../upstream.git", "upstream.git", "/home/me/My Repos/designate.git"):
            check_git_url(url, "pin")  # no error


class VersionOfWhatWasVerifiedTest(base.BaseTestCase):
    """Issue 13.1: a pin naming one version must not verify and hand out another."""

    def setUp(self) -> None:
        super().setUp()
        self.distro = self.useFixture(DistroFixture())
        self.pin_file = self.distro.root / "build" / "upstream.toml"
        # a pip that never reaches an index: any pypi download fails locally
        self.useFixture(fixtures.EnvironmentVariable("PIP_NO_INDEX", "1"))
        self.useFixture(fixtures.EnvironmentVariable("PIP_FIND_LINKS", str(self.distro.base / "no-links")))

    def set_version(self, version: str, source: str = "file", path: Path | None = None) -> None:
        self.distro.write_pin(sha=sha256(self.distro.archive), source=source)
        text = self.pin_file.read_text().replace('version = "1.0.0"', f'version = "{version}"')
        if path is not None:
            text = text.replace(f'path = "{self.distro.archive.parent}"', f'path = "{path}"')
        self.pin_file.write_text(text)

    def fetch(self) -> Outcome:
        return run_cli("--distro", str(self.distro.root), "fetch")

    def test_sdist_renamed_to_the_pinned_version(self) -> None:
        renamed = self.distro.archive.with_name("designate-1.0.1.tar.gz")
        shutil.copyfile(self.distro.archive, renamed)
        self.set_version("1.0.1")
        line = assert_one_line(self, self.fetch(), 5)
        self.assertEqual(f"error: {renamed} (PKG-INFO) is designate 1.0.0, not the pinned version 1.0.1 "
                         "(the pin's version and its sha256/commit must be of the same release; check "
                         "build/upstream.toml)", line)
        self.assertEqual([], list(self.distro.cache.rglob("*.tar.gz")))
        self.assertEqual([], [p.name for p in self.distro.cache.rglob(".copy-*")])

    def test_file_name_of_another_version(self) -> None:
        self.set_version("1.0.1", path=self.distro.archive)
        line = assert_one_line(self, self.fetch(), 5)
        self.assertTrue(line.startswith("error: designate-1.0.0.tar.gz is designate 1.0.0, not the pinned "
                                        "version 1.0.1"), line)

    def test_sdist_without_pkg_info_cannot_show_its_version(self) -> None:
        bare = self.distro.base / "bare"
        shutil.copytree(self.distro.upstream_tree, bare)
        (bare / "PKG-INFO").unlink()
        from tests.fixtures.distro import make_sdist
        archive = make_sdist(bare, self.distro.base / "bare-mirror")
        self.distro.write_pin(sha=sha256(archive))
        self.pin_file.write_text(self.pin_file.read_text().replace(str(self.distro.archive.parent),
                                                                   str(archive.parent)))
        line = assert_one_line(self, self.fetch(), 5)
        self.assertIn("has no PKG-INFO: it cannot show that it is designate 1.0.0", line)

    def test_cache_does_not_hand_out_another_release_under_the_hash(self) -> None:
        self.assertEqual(0, self.fetch().code)  # 1.0.0 is now cached under its hash
        cached = self.distro.cache / "archives" / "sha256" / sha256(self.distro.archive)
        self.assertEqual(["designate-1.0.0.tar.gz"], sorted(p.name for p in cached.iterdir()))
        # a pypi pin of 1.0.1 with 1.0.0's hash: the old cache handed out 1.0.0
        self.set_version("1.0.1", source="pypi")
        outcome = self.fetch()
        self.assertNotEqual(0, outcome.code, outcome.stdout)
        assert_one_line(self, outcome, outcome.code)
        self.assertEqual("", outcome.stdout)

    def test_mislabelled_cache_entry_is_refused_and_dropped(self) -> None:
        cached = self.distro.cache / "archives" / "sha256" / sha256(self.distro.archive)
        cached.mkdir(parents=True)
        shutil.copyfile(self.distro.archive, cached / "designate-1.0.1.tar.gz")
        self.set_version("1.0.1", source="pypi")
        line = assert_one_line(self, self.fetch(), 5)
        self.assertTrue(line.startswith("error: cached designate-1.0.1.tar.gz (PKG-INFO) is designate 1.0.0, "
                                        "not the pinned version 1.0.1"), line)
        self.assertFalse((cached / "designate-1.0.1.tar.gz").exists())

    def pin_git_tag(self, tag: str) -> None:
        """A git source at ``tag`` (made on the test upstream), pinned at its commit."""
        src = self.distro.patches.repo
        git(src, "tag", "-a", tag, "-m", tag)
        commit = git(src, "rev-parse", f"{tag}^{{commit}}").strip()
        self.distro.write_pin(sha="", source="git",
                              extra=f'url = "{src.as_uri()}"\ntag = "{tag}"\ncommit = "{commit}"\n')

    def test_git_tag_of_another_version(self) -> None:
        self.pin_git_tag("1.0.0")
        self.pin_file.write_text(self.pin_file.read_text().replace('version = "1.0.0"', 'version = "1.0.1"'))
        line = assert_one_line(self, self.fetch(), 5)
        self.assertTrue(line.startswith("error: git tag '1.0.0' is designate 1.0.0, not the pinned version 1.0.1"),
                        line)
        self.assertFalse((self.distro.cache / "archives").exists())

    def test_v_prefixed_tag_of_the_pinned_version_is_fine(self) -> None:
        self.pin_git_tag("v1.0.0")
        outcome = self.fetch()
        self.assertEqual(0, outcome.code, outcome.stderr)


class MissingFileSourceTest(base.BaseTestCase):
    """Issue 15.8: the pin names a file; a cached copy does not make it exist."""

    def test_file_gone_but_cached(self) -> None:
        distro = self.useFixture(DistroFixture())
        self.assertEqual(0, run_cli("--distro", str(distro.root), "fetch").code)
        distro.archive.unlink()
        outcome = run_cli("--distro", str(distro.root), "fetch")
        line = assert_one_line(self, outcome, 1)
        self.assertEqual(f"error: {distro.archive.parent}: no designate-1.0.0.tar.gz in the mirror", line)
        distro.write_pin(sha=sha256(distro.cache.rglob("*.tar.gz").__next__()))
        text = (distro.root / "build" / "upstream.toml").read_text()
        (distro.root / "build" / "upstream.toml").write_text(
            text.replace(f'path = "{distro.archive.parent}"', f'path = "{distro.archive}"'))
        line = assert_one_line(self, run_cli("--distro", str(distro.root), "fetch"), 1)
        self.assertEqual(f"error: upstream archive {distro.archive} not found (restore it, or change 'path' in "
                         "build/upstream.toml)", line)


class SeriesTest(base.BaseTestCase):
    def test_series_file_that_is_not_utf8(self) -> None:
        distro = self.useFixture(DistroFixture())
        (distro.root / "customs" / "series").write_bytes(b"# ours\n0001-caf\xe9.patch\n")
        line = assert_one_line(self, run_cli("--distro", str(distro.root), "prepare"), 1)
        self.assertEqual("error: customs/series: not UTF-8 text (invalid continuation byte at byte 15)", line)
        self.assertFalse(distro.work_tree.exists())

    def test_lock_and_exclusions_that_are_not_utf8(self) -> None:
        from designate_dist.errors import ConfigError
        from designate_dist.lockfile import read_lock
        from designate_dist.testsuite import read_exclusions
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        bad = tmp / "constraints.txt"
        bad.write_bytes(b"pbr==7.1.3 # caf\xe9\n")
        for read in (read_lock, read_exclusions):
            with self.subTest(read=read.__name__):
                with self.assertRaises(ConfigError) as caught:
                    read(bad)
                self.assertIn("not UTF-8 text", str(caught.exception))


class ManifestTest(base.BaseTestCase):
    """publish reads a build's manifest.json: its versions become file names."""

    def test_versions_that_are_not_versions(self) -> None:
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        build = tmp / "build"
        build.mkdir()
        lock = tmp / "constraints.txt"
        lock.write_text("pbr==7.1.3\n")
        good = {"distro_version": {"pep440": "1.0.0.post1", "debian": "1:1.0.0-1"},
                "artifacts": [], "source_date_epoch": 1_700_000_000, "inputs": {"lock": sha256(lock)}}
        cases = [("pep440", "../../../etc/x", "distro_version.pep440 '../../../etc/x' is not a PEP 440 version"),
                 ("pep440", "banana", "distro_version.pep440 'banana' is not a PEP 440 version"),
                 ("pep440", 1.0, "distro_version.pep440 1.0 is not a PEP 440 version"),
                 ("debian", "1:1.0/../x", "distro_version.debian '1:1.0/../x' is not a Debian version"),
                 ("source_date_epoch", "soon", "source_date_epoch 'soon' is not a UNIX time"),
                 ("artifacts", [{"file": "../../x.deb", "size": 1, "sha256": "0" * 64}],
                  "artifact entry {'file': '../../x.deb', 'size': 1, 'sha256': '" + "0" * 64 + "'} is not")]
        for key, value, why in cases:
            with self.subTest(key=key, value=value):
                data = json.loads(json.dumps(good))
                if key in ("pep440", "debian"):
                    data["distro_version"][key] = value
                else:
                    data[key] = value
                (build / "manifest.json").write_text(json.dumps(data))
                repo = tmp / "repo"
                outcome = run_cli("publish", "--repo", str(repo), "--build", str(build), "--lock", str(lock),
                                  "--wheelhouse", str(tmp / "wh"))
                line = assert_one_line(self, outcome, 1, why)
                self.assertIn(why, line)
                self.assertFalse(repo.exists())


def mutations(rng: random.Random, data: bytes, count: int) -> list[bytes]:
    """``count`` variants of ``data``: bytes flipped, dropped, duplicated, spliced or truncated."""
    out = []
    for _ in range(count):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            if not buf:
                break
            at = rng.randrange(len(buf))
            kind = rng.randrange(6)
            if kind == 0:
                buf[at] = rng.randrange(256)
            elif kind == 1:
                del buf[at:at + rng.randint(1, 8)]
            elif kind == 2:
                buf[at:at] = buf[at:at + rng.randint(1, 16)]
            elif kind == 3:
                buf[at:at] = rng.choice([b"\"", b"'", b"[", b"]", b"=", b"\n", b"#", b"\\", b"\x00",
                                         b"\xff", b"..", b"/", b"[upstream]\n", b"::", b"-"])
            elif kind == 4:
                del buf[at:]
            else:
                buf[at] = rng.choice(b"0123456789abcdef")
        out.append(bytes(buf))
    return out


class FuzzTest(base.BaseTestCase):
    """Random bytes and mutated valid files through the CLI: exit 1 (or success), exactly one line."""

    SEED = 15

    def setUp(self) -> None:
        super().setUp()
        self.distro = self.useFixture(DistroFixture())
        self.useFixture(fixtures.EnvironmentVariable("PIP_NO_INDEX", "1"))
        self.rng = random.Random(self.SEED)

    def check(self, outcome: Outcome, context: str, allowed: tuple[int, ...]) -> None:
        self.assertNotIn("Traceback", outcome.stderr, context)
        self.assertIn(outcome.code, allowed, f"{context}\n{outcome.stderr}")
        if outcome.code != 0:
            self.assertEqual(1, len(outcome.error_lines), f"{context}\n{outcome.stderr}")
            self.assertEqual(outcome.stderr.strip(), outcome.error_lines[0], context)

    def test_random_pins(self) -> None:
        pin = self.distro.root / "build" / "upstream.toml"
        for number in range(150):
            data = self.rng.randbytes(self.rng.randint(0, 400))
            pin.write_bytes(data)
            self.check(run_cli("--distro", str(self.distro.root), "-q", "fetch"),
                       f"seed {self.SEED} random pin {number}: {data!r}", (1,))

    def test_mutated_pins(self) -> None:
        pin = self.distro.root / "build" / "upstream.toml"
        valid = pin.read_bytes()
        for number, data in enumerate(mutations(self.rng, valid, 250)):
            pin.write_bytes(data)
            # a mutation may leave a valid pin (0) or change the sha256 (5): never a traceback
            self.check(run_cli("--distro", str(self.distro.root), "-q", "fetch"),
                       f"seed {self.SEED} mutated pin {number}: {data!r}", (0, 1, 5))

    def test_random_series(self) -> None:
        series = self.distro.root / "customs" / "series"
        for number in range(150):
            data = self.rng.randbytes(self.rng.randint(0, 200))
            series.write_bytes(data)
            # only a series of blanks and comments is valid (and empty)
            try:
                empty = all(not line.split("#", 1)[0].strip() for line in data.decode().splitlines())
            except UnicodeDecodeError:
                empty = False
            self.check(run_cli("--distro", str(self.distro.root), "-q", "prepare"),
                       f"seed {self.SEED} random series {number}: {data!r}", (0,) if empty else (1,))

    def test_mutated_series_and_patches(self) -> None:
        distro = self.distro
        for number in range(3):
            text = distro.patches.make(write_file(f"designate/m{number}.py", f"M = {number}\n"),
                                       f"Add m{number}")
            distro.add_patch("customs", f"000{number + 1}-m{number}.patch", text)
        series = distro.root / "customs" / "series"
        patch = distro.root / "customs" / "0002-m1.patch"
        originals = {series: series.read_bytes(), patch: patch.read_bytes()}
        for target, count in ((series, 120), (patch, 120)):
            for number, data in enumerate(mutations(self.rng, originals[target], count)):
                target.write_bytes(data)
                # still valid (0), malformed (1), or a patch that no longer applies (3)
                self.check(run_cli("--distro", str(distro.root), "-q", "prepare", "--force"),
                           f"seed {self.SEED} mutated {target.name} {number}: {data!r}", (0, 1, 3))
            target.write_bytes(originals[target])
