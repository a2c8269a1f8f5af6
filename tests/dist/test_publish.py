"""publish: a build into a local apt + pip repository, read back by real apt and real pip.

The builds are small but real: .deb files made by ``dpkg-deb --build``, wheels
that pip installs, a wheelhouse with SHA256SUMS in the cache layout of the
deb stage, and a manifest shaped like the build's.  The Designate build itself
is too slow to run here.
"""
from __future__ import annotations

import getpass
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

import fixtures
from oslotest import base

from designate_dist.errors import BuildLocked, ConfigError, VerificationError
from designate_dist.errors import PublishConflict
from designate_dist.debversion import compare_debian_versions
from designate_dist.publish import PublishRequest, publish, repo_lock
from designate_dist.repo_index import Deb, packages_index, read_deb
from tests.fixtures.cli import run_cli
from tests.fixtures.publish import (
    BuildsTestCase,
    AptRoot,
    Builds,
    DEPENDENCY,
    EPOCHS,
    HEADS,
    INDEXES,
    index_bytes,
    make_deb,
    make_wheel,
    make_wheelhouse,
    pip_env,
    sha256,
    snapshot,
    write_manifest,
)
from tests.fixtures.gnupg import GnupgFixture, GnupgHome

class TestDebianVersions(base.BaseTestCase):
    PAIRS = [("1:1.0.0-1", "1:1.0.0-2"), ("1.0", "1.0-0"), ("1.0~rc1-1", "1.0-1"),
             ("1:22.0.1-10", "1:22.0.1-9"), ("23.0.0~rc1-1", "22.0.1-1"), ("1.0a", "1.0+"),
             ("2:0.1", "1:9.9"), ("1.0.0-1", "1.0.0-1"), ("1.002", "1.2"), ("1.0~~", "1.0~"),
             ("0.9+dfsg-1", "0.9-1"), ("7", "7.0")]

    def test_agrees_with_dpkg(self) -> None:
        for a, b in self.PAIRS:
            ours = compare_debian_versions(a, b)
            for op, expected in (("lt", ours < 0), ("eq", ours == 0), ("gt", ours > 0)):
                dpkg = subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0
                self.assertEqual(dpkg, expected, f"{a} {op} {b}")


class TestTwoReleases(BuildsTestCase):
    """Revision 2 then revision 1 published into one repository, read by apt and pip."""

    publish_revisions = (2, 1)

    def test_no_temporary_files_are_left(self) -> None:
        hidden = [p.name for p in self.repo.rglob(".*")]
        self.assertEqual([".lock"], hidden)

    def test_summaries(self) -> None:
        self.assertEqual(["1.0.0.post2", "1.0.0.post1"], [r.pep440 for r in self.results])
        second = self.results[1]
        self.assertIn("pool/designate_1.0.0-1_all.deb", second.added)
        self.assertIn("wheels/tinydep-0.1-py3-none-any.whl", second.added)
        self.assertFalse(second.already_published)
        self.assertTrue(second.summary().startswith(
            f"published 1.0.0.post1 (1:1.0.0-1) into {self.repo}: added 1 deb, 3 wheels"))

    def test_releases_json_sorted_with_migration_heads(self) -> None:
        data = json.loads((self.repo / "releases.json").read_text())
        self.assertEqual(1, data["format"])
        first, second = data["releases"]
        self.assertEqual(["1.0.0.post1", "1.0.0.post2"], [first["pep440"], second["pep440"]])
        self.assertEqual("a1b2c3d4e5f6", first["migration_head"])
        self.assertIsNone(second["migration_head"])
        deb = self.builds.builds[1] / "designate_1.0.0-1_all.deb"
        self.assertEqual({
            "pep440": "1.0.0.post1", "debian": "1:1.0.0-1", "upstream": "1.0.0", "revision": 1,
            "migration_head": "a1b2c3d4e5f6",
            "debs": [{"package": "designate", "file": "pool/designate_1.0.0-1_all.deb",
                      "sha256": sha256(deb.read_bytes())}],
            "wheels": [
                {"project": "designate", "file": "wheels/designate-1.0.0.post1-py3-none-any.whl",
                 "sha256": sha256((self.builds.builds[1] /
                                   "designate-1.0.0.post1-py3-none-any.whl").read_bytes())},
                {"project": "designate-dist",
                 "file": "wheels/designate_dist-1.0.0.post1-py3-none-any.whl",
                 "sha256": sha256((self.builds.builds[1] /
                                   "designate_dist-1.0.0.post1-py3-none-any.whl").read_bytes())}],
            "constraints": "constraints/1.0.0.post1.txt", "manifest": "manifests/1.0.0.post1.json",
            "source_date_epoch": EPOCHS[1]}, first)
        for release in data["releases"]:
            for item in release["debs"] + release["wheels"]:
                self.assertEqual(item["sha256"], sha256((self.repo / item["file"]).read_bytes()))

    def test_manifests_and_constraints_byte_for_byte(self) -> None:
        for revision in (1, 2):
            pep440 = f"1.0.0.post{revision}"
            self.assertEqual((self.builds.builds[revision] / "manifest.json").read_bytes(),
                             (self.repo / "manifests" / f"{pep440}.json").read_bytes())
            self.assertEqual(self.builds.locks[revision].read_bytes(),
                             (self.repo / "constraints" / f"{pep440}.txt").read_bytes())
        self.assertFalse((self.repo / "pool" / "tests.log").exists())

    def test_packages_is_what_dpkg_scanpackages_writes(self) -> None:
        packages = (self.repo / "Packages").read_text()
        self.assertEqual(["Version: 1:1.0.0-1", "Version: 1:1.0.0-2"],
                         [line for line in packages.splitlines() if line.startswith("Version:")])
        scanned = subprocess.run(["dpkg-scanpackages", "-m", "pool", "/dev/null"], cwd=self.repo,
                                 check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
        # the same stanzas, byte for byte; dpkg-scanpackages lists them in directory order
        self.assertEqual(sorted(scanned.decode().split("\n\n")), sorted(packages.split("\n\n")))
        with gzip.open(self.repo / "Packages.gz") as handle:
            self.assertEqual(packages.encode(), handle.read())
        self.assertEqual(b"\0\0\0\0", (self.repo / "Packages.gz").read_bytes()[4:8])  # mtime 0

    def test_release_is_dated_by_the_newest_release_and_hashes_the_indexes(self) -> None:
        release = (self.repo / "Release").read_text()
        self.assertIn("Origin: designate-dist\nLabel: designate-dist\n", release)
        self.assertIn("Date: Wed, 15 Nov 2023 22:13:20 UTC\n", release)  # EPOCHS[2]
        self.assertIn("Architectures: all\n", release)
        for name in ("Packages", "Packages.gz"):
            data = (self.repo / name).read_bytes()
            for algorithm in (hashlib.md5, hashlib.sha1, hashlib.sha256):
                self.assertIn(f" {algorithm(data).hexdigest()} {len(data):>16} {name}\n", release)

    def test_simple_index(self) -> None:
        root = (self.repo / "simple" / "index.html").read_text()
        self.assertTrue(root.startswith("<!DOCTYPE html>"))
        self.assertEqual(['<a href="designate/">designate</a><br>',
                          '<a href="designate-dist/">designate-dist</a><br>',
                          '<a href="tinydep/">tinydep</a><br>'],
                         [line.strip() for line in root.splitlines() if "<a " in line])
        page = (self.repo / "simple" / "designate" / "index.html").read_text()
        links = [line.strip() for line in page.splitlines() if "<a " in line]
        self.assertEqual(2, len(links))
        for revision, link in zip((1, 2), links):
            name = f"designate-1.0.0.post{revision}-py3-none-any.whl"
            digest = sha256((self.repo / "wheels" / name).read_bytes())
            self.assertEqual(f'<a href="../../wheels/{name}#sha256={digest}" '
                             f'data-requires-python="&gt;=3.8">{name}</a><br>', link)
        dist_page = (self.repo / "simple" / "designate-dist" / "index.html").read_text()
        self.assertNotIn("data-requires-python", dist_page)
        tinydep = (self.repo / "simple" / "tinydep" / "index.html").read_text()
        self.assertIn("tinydep-0.1-py3-none-any.whl", tinydep)
        self.assertIn("tinydep-0.2-py3-none-any.whl", tinydep)

    def test_real_apt_sees_both_versions_and_downloads_the_older(self) -> None:
        apt = AptRoot(self.base / "apt", self.repo)
        apt.run("apt-get", "update")
        madison = apt.run("apt-cache", "madison", "designate")
        self.assertIn("1:1.0.0-1", madison)
        self.assertIn("1:1.0.0-2", madison)
        self.assertIn("Candidate: 1:1.0.0-2", apt.run("apt-cache", "policy", "designate"))
        apt.run("apt-get", "download", "designate=1:1.0.0-1", cwd=self.base / "apt" / "download")
        [got] = (self.base / "apt" / "download").glob("*.deb")
        self.assertEqual((self.builds.builds[1] / "designate_1.0.0-1_all.deb").read_bytes(),
                         got.read_bytes())

    def test_real_pip_downloads_and_installs_offline_with_the_constraints(self) -> None:
        index = f"file://{self.repo}/simple"
        target = self.base / "pip"
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--index-url", index,
                        "designate==1.0.0.post1", "-d", str(target / "download")],
                       check=True, env=pip_env(), stdout=subprocess.DEVNULL)
        name = "designate-1.0.0.post1-py3-none-any.whl"
        self.assertEqual((self.builds.builds[1] / name).read_bytes(),
                         (target / "download" / name).read_bytes())
        # The old release with its own lock: tinydep 0.1, although 0.2 is in the index too.
        subprocess.run([sys.executable, "-m", "pip", "install", "--index-url", index,
                        "-c", f"file://{self.repo}/constraints/1.0.0.post1.txt",
                        "--target", str(target / "site"), "designate==1.0.0.post1"],
                       check=True, env=pip_env(), stdout=subprocess.DEVNULL)
        self.assertEqual("VERSION = '0.1'\n", (target / "site" / "tinydep" / "__init__.py").read_text())
        self.assertTrue((target / "site" / "designate-1.0.0.post1.dist-info").is_dir())


class TestRules(BuildsTestCase):
    """Idempotence, refusals that write nothing, reproducible indexes."""


    def setUp(self) -> None:
        super().setUp()
        self.repo = self.tmp / "repo"

    def published(self, *revisions: int) -> Path:
        for revision in revisions:
            publish(self.builds.request(self.repo, revision))
        return self.repo

    def test_publishing_again_changes_nothing(self) -> None:
        self.published(1, 2)
        before = snapshot(self.repo)
        result = publish(self.builds.request(self.repo, 1))
        self.assertTrue(result.already_published)
        self.assertEqual((), result.indexes)
        self.assertEqual(f"1.0.0.post1 (1:1.0.0-1) already published in {self.repo}; nothing changed",
                         result.summary())
        self.assertEqual(before, snapshot(self.repo))

    def test_lost_indexes_are_rewritten_identically(self) -> None:
        self.published(1)
        before = index_bytes(self.repo)
        (self.repo / "Packages").unlink()
        (self.repo / "simple" / "tinydep" / "index.html").unlink()
        result = publish(self.builds.request(self.repo, 1))
        self.assertTrue(result.already_published)
        self.assertEqual(("Packages", "simple/tinydep/index.html"), result.indexes)
        self.assertEqual(before, index_bytes(self.repo))

    def test_the_same_releases_give_byte_identical_indexes(self) -> None:
        first = index_bytes(self.published(1, 2))
        self.repo = self.tmp / "other"
        second = index_bytes(self.published(2, 1))
        self.assertEqual(sorted(first), sorted(second))
        self.assertEqual(first, second)

    def test_a_different_deb_of_a_published_version_is_refused_and_nothing_written(self) -> None:
        self.published(1)
        other = self.builds.make_build(1, into=self.tmp / "rebuilt", note="rebuilt differently\n")
        before = snapshot(self.repo)
        with self.assertRaises(PublishConflict) as caught:
            publish(self.builds.request(self.repo, 1, build_dir=other))
        message = str(caught.exception)
        self.assertIn("refusing to overwrite pool/designate_1.0.0-1_all.deb (repository sha256 "
                      f"{sha256((self.repo / 'pool/designate_1.0.0-1_all.deb').read_bytes())[:12]}, "
                      f"this build {sha256((other / 'designate_1.0.0-1_all.deb').read_bytes())[:12]})",
                      message)
        self.assertIn("nothing was written", message)
        self.assertEqual(before, snapshot(self.repo))

    def test_a_dependency_wheel_with_other_bytes_is_refused(self) -> None:
        self.published(1)
        lock = self.builds.locks[1].read_bytes()
        changed = make_wheel(self.tmp / "deps", "tinydep", "0.1", payload="# other bytes\n")
        house = make_wheelhouse(self.tmp / "cache", lock, [changed])
        before = snapshot(self.repo)
        with self.assertRaises(PublishConflict) as caught:
            publish(self.builds.request(self.repo, 1, wheelhouse=house))
        self.assertIn("wheels/tinydep-0.1-py3-none-any.whl", str(caught.exception))
        self.assertEqual(before, snapshot(self.repo))

    def test_a_corrupted_build_is_refused(self) -> None:
        build = self.tmp / "build"
        shutil.copytree(self.builds.builds[2], build)
        deb = build / "designate_1.0.0-2_all.deb"
        data = bytearray(deb.read_bytes())
        data[-1] ^= 0xFF
        deb.write_bytes(bytes(data))
        with self.assertRaises(VerificationError) as caught:
            publish(self.builds.request(self.repo, 2, build_dir=build))
        self.assertIn("designate_1.0.0-2_all.deb has sha256", str(caught.exception))
        self.assertIn("(corrupted build)", str(caught.exception))
        self.assertEqual({}, snapshot(self.repo))

    def test_a_corrupted_wheelhouse_is_refused(self) -> None:
        house = self.tmp / "house"
        shutil.copytree(self.builds.request(self.repo, 1).wheelhouse, house)
        make_wheel(house, "tinydep", "0.1", payload="# tampered\n")
        with self.assertRaises(VerificationError) as caught:
            publish(self.builds.request(self.repo, 1, wheelhouse=house))
        self.assertIn("tinydep-0.1-py3-none-any.whl has sha256", str(caught.exception))

    def test_a_wheelhouse_lacking_a_pin_of_the_lock_is_refused(self) -> None:
        lock = self.builds.locks[1].read_bytes()
        house = make_wheelhouse(self.tmp / "cache", lock,
                                [make_wheel(self.tmp / "deps", "tinydep", "0.3")])
        with self.assertRaises(VerificationError) as caught:
            publish(self.builds.request(self.repo, 1, wheelhouse=house))
        self.assertIn("has no wheel for tinydep==0.1 of the lock", str(caught.exception))

    def test_a_missing_wheelhouse_is_refused_with_how_to_make_it(self) -> None:
        lock_sha = sha256(self.builds.locks[1].read_bytes())
        with self.assertRaises(ConfigError) as caught:
            publish(self.builds.request(self.repo, 1, wheelhouse=self.tmp / "nowhere"))
        self.assertEqual(f"no wheelhouse for lock {lock_sha[:16]}... at {self.tmp / 'nowhere'}",
                         str(caught.exception))
        self.assertIn("deb stage", caught.exception.hint)
        self.assertIn("--wheelhouse", caught.exception.hint)

    def test_a_lock_other_than_the_builds_is_refused(self) -> None:
        with self.assertRaises(VerificationError) as caught:
            publish(self.builds.request(self.repo, 1, lock_file=self.builds.locks[2]))
        self.assertIn(f"but build 1.0.0.post1 was made with the lock "
                      f"{sha256(self.builds.locks[1].read_bytes())[:16]}...", str(caught.exception))

    def test_concurrent_publishers_take_turns(self) -> None:
        errors = []

        def run(revision: int) -> None:
            try:
                publish(self.builds.request(self.repo, revision))
            except Exception as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(revision,)) for revision in (1, 2, 1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual([], errors)
        releases = json.loads((self.repo / "releases.json").read_text())["releases"]
        self.assertEqual(["1.0.0.post1", "1.0.0.post2"], [r["pep440"] for r in releases])
        self.assertEqual(2, (self.repo / "Packages").read_text().count("Package: designate\n"))

    def test_a_second_publisher_waits_for_the_lock(self) -> None:
        with repo_lock(self.repo, None):
            with self.assertRaises(BuildLocked):
                publish(self.builds.request(self.repo, 1, lock_timeout=0))
        self.assertEqual([".lock"], [p.name for p in self.repo.iterdir()])
        self.assertFalse(publish(self.builds.request(self.repo, 1, lock_timeout=0)).already_published)


class TestCli(base.BaseTestCase):
    """``designate-dist publish`` through main(): defaults from the distro, one-line errors."""

    def setUp(self) -> None:
        super().setUp()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.builds = Builds(self.tmp)
        self.distro = self.tmp / "distro"
        (self.distro / "build").mkdir(parents=True)
        (self.distro / "build" / "upstream.toml").write_text(
            '[upstream]\nname = "designate"\nversion = "1.0.0"\nsource = "pypi"\n'
            f'sha256 = "{"0" * 64}"\n\n[distro]\nrevision = 2\n')
        shutil.copyfile(self.builds.locks[2], self.distro / "build" / "constraints.txt")
        self.useFixture(fixtures.EnvironmentVariable("DESIGNATE_DIST_CACHE", str(self.builds.cache)))
        self.repo = self.tmp / "repo"

    def test_publish_the_pinned_build_by_default(self) -> None:
        outcome = run_cli("--distro", str(self.distro), "-q", "publish", "--repo", str(self.repo),
                          "--output", str(self.builds.dist))
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertEqual(f"published 1.0.0.post2 (1:1.0.0-2) into {self.repo}: added 1 deb, 3 wheels, "
                         "constraints, manifest; 0 file(s) already present\n", outcome.stdout)
        again = run_cli("--distro", str(self.distro), "publish", "--repo", str(self.repo),
                        "--output", str(self.builds.dist))
        self.assertEqual(0, again.code)
        self.assertIn("already published", again.stdout)

    def test_an_explicit_build_lock_and_wheelhouse_need_no_distro(self) -> None:
        request = self.builds.request(self.repo, 1)
        outcome = run_cli("--distro", str(self.tmp / "not-a-distro"), "publish", "--repo", str(self.repo),
                          "--build", str(request.build_dir), "--lock", str(request.lock_file),
                          "--wheelhouse", str(request.wheelhouse))
        self.assertEqual(0, outcome.code, outcome.stderr)
        self.assertTrue((self.repo / "manifests" / "1.0.0.post1.json").is_file())

    def test_missing_wheelhouse_is_one_error_line(self) -> None:
        shutil.rmtree(self.builds.cache / "wheelhouse")
        outcome = run_cli("--distro", str(self.distro), "publish", "--repo", str(self.repo),
                          "--output", str(self.builds.dist))
        self.assertEqual(1, outcome.code)
        lock_sha = sha256(self.builds.locks[2].read_bytes())
        [line] = outcome.error_lines
        self.assertTrue(line.startswith(f"error: no wheelhouse for lock {lock_sha[:16]}... at "), line)
        self.assertIn("(run a build with the deb stage", line)
        self.assertNotIn("Traceback", outcome.stderr)

    def test_corrupted_build_exits_with_the_verification_code(self) -> None:
        deb = self.builds.builds[2] / "designate_1.0.0-2_all.deb"
        deb.write_bytes(deb.read_bytes() + b"x")
        outcome = run_cli("--distro", str(self.distro), "publish", "--repo", str(self.repo),
                          "--output", str(self.builds.dist))
        self.assertEqual(5, outcome.code)
        self.assertEqual(1, len(outcome.error_lines))
        self.assertFalse(self.repo.exists())

    def test_no_build_for_the_pin(self) -> None:
        outcome = run_cli("--distro", str(self.distro), "publish", "--repo", str(self.repo))
        self.assertEqual(1, outcome.code)
        self.assertEqual([f"error: {self.distro / 'dist' / '1.0.0.post2'}: no manifest.json (not a "
                          "finished build) (run `designate-dist build` first, or pass --build DIR)"],
                         outcome.error_lines)

    def test_repo_is_required(self) -> None:
        outcome = run_cli("--distro", str(self.distro), "publish")
        self.assertEqual(2, outcome.code)
        self.assertIn("--repo", outcome.stderr)


class TestPackagesOrder(base.BaseTestCase):
    def test_versions_in_debian_order_whatever_the_directory_order(self) -> None:
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        made = {revision: make_deb(tmp, f"1:1.0.0-{revision}") for revision in range(1, 12)}
        outputs = []
        for name, order in (("one", sorted(made)), ("two", sorted(made, reverse=True))):
            pool = tmp / name / "pool"
            pool.mkdir(parents=True)
            for revision in order:
                shutil.copyfile(made[revision], pool / made[revision].name)
            debs = [Deb(d.control, d.path, f"pool/{d.path.name}") for d in map(read_deb, pool.iterdir())]
            outputs.append(packages_index(debs))
        self.assertEqual(outputs[0], outputs[1])
        versions = [line for line in outputs[0].decode().splitlines() if line.startswith("Version:")]
        self.assertEqual([f"Version: 1:1.0.0-{n}" for n in range(1, 12)], versions)


class TestSigned(BuildsTestCase):
    """Two releases published with --sign-key, read by real apt with signed-by=."""

    publish_revisions = (1, 2)
    sign_with = "uid"

    def copy(self) -> Path:
        repo = self.tmp / "repo"
        shutil.copytree(self.repo, repo)
        return repo

    def apt(self, repo: Path, keyring: Path | None = None) -> AptRoot:
        keyring = keyring or repo / "signing-key.asc"
        return AptRoot(self.tmp / "apt", repo, f"signed-by={keyring}")

    def test_summaries_name_the_key(self) -> None:
        self.assertEqual([self.gnupg.fingerprint] * 2, [r.signed_by for r in self.results])
        self.assertTrue(self.results[1].summary().endswith(f"; signed by {self.gnupg.fingerprint}"))
        self.assertEqual(("Release", "Release.gpg", "InRelease"), self.results[1].indexes[-3:])

    def test_real_apt_accepts_the_signed_repository(self) -> None:
        apt = self.apt(self.copy())
        output = apt.run("apt-get", "update")
        self.assertNotIn("W:", output)
        madison = apt.run("apt-cache", "madison", "designate")
        self.assertIn("1:1.0.0-1", madison)
        self.assertIn("1:1.0.0-2", madison)

    def test_the_signatures_are_good_and_by_the_key(self) -> None:
        release = (self.repo / "Release").read_bytes()
        status = self.gnupg.gpg("--status-fd", "1", "--verify", str(self.repo / "Release.gpg"),
                                str(self.repo / "Release"))
        self.assertIn(f"VALIDSIG {self.gnupg.fingerprint}", status)
        signed = self.tmp / "signed"
        self.gnupg.gpg("--output", str(signed), "--decrypt", str(self.repo / "InRelease"))
        self.assertEqual(release, signed.read_bytes())
        self.assertEqual(self.gnupg.export(), (self.repo / "signing-key.asc").read_bytes())

    def test_apt_refuses_an_inrelease_altered_after_signing(self) -> None:
        repo = self.copy()
        inrelease = (repo / "InRelease").read_text()
        self.assertIn("Description: designate-dist releases", inrelease)
        (repo / "InRelease").write_text(inrelease.replace("Description: designate-dist releases",
                                                          "Description: designate-dist RELEASES"))
        self.assertIn("BADSIG", self.apt(repo).refused())

    def test_apt_refuses_a_release_altered_after_signing(self) -> None:
        repo = self.copy()
        (repo / "InRelease").unlink()  # apt falls back to Release + Release.gpg
        release = (repo / "Release").read_text()
        (repo / "Release").write_text(release.replace("Label: designate-dist", "Label: evil"))
        self.assertIn("BADSIG", self.apt(repo).refused())
        (repo / "Release").write_text(release)  # the control: unaltered, accepted
        self.apt(repo).run("apt-get", "update")

    def test_apt_refuses_a_repository_signed_by_another_key(self) -> None:
        other = GnupgHome("someone else <else@example.org>")
        self.addCleanup(other.close)
        keyring = self.tmp / "other.asc"
        keyring.write_bytes(other.export())
        self.assertIn("NO_PUBKEY", self.apt(self.copy(), keyring).refused())

    def test_apt_refuses_an_unsigned_repository_with_signed_by(self) -> None:
        repo = self.copy()
        for name in ("InRelease", "Release.gpg"):
            (repo / name).unlink()
        self.assertIn("is not signed", self.apt(repo, self.repo / "signing-key.asc").refused())

    def test_the_secret_key_never_lands_in_the_repository(self) -> None:
        secret = self.gnupg.gpg("--armor", "--export-secret-keys", self.gnupg.fingerprint).encode()
        body = b"".join(secret.splitlines(keepends=True)[2:8])  # a piece of the secret block
        for path in self.repo.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                self.assertNotIn(b"PRIVATE KEY", data, path)
                self.assertNotIn(body, data, path)
        packets = subprocess.run(["gpg", "--list-packets", str(self.repo / "signing-key.asc")],
                                 text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 env={**os.environ, "GNUPGHOME": str(self.tmp)}).stdout
        self.assertIn(":public key packet:", packets)
        self.assertNotIn("secret", packets)
        self.assertEqual(0o644, (self.repo / "signing-key.asc").stat().st_mode & 0o777)

    def test_publishing_again_keeps_the_signatures(self) -> None:
        repo = self.copy()
        before = snapshot(repo)
        result = publish(self.builds.request(repo, 2, sign_key=self.gnupg.fingerprint,
                                             gnupg_home=self.gnupg.home))
        self.assertEqual((), result.indexes)
        self.assertEqual(before, snapshot(repo))

    def test_a_stale_signature_is_remade(self) -> None:
        repo = self.copy()
        (repo / "InRelease").write_bytes((repo / "Release.gpg").read_bytes())
        result = publish(self.builds.request(repo, 2, sign_key=self.gnupg.fingerprint,
                                             gnupg_home=self.gnupg.home))
        self.assertIn("InRelease", result.indexes)
        self.apt(repo).run("apt-get", "update")

    def test_an_unsigned_publish_into_a_signed_repository_is_refused(self) -> None:
        repo = self.copy()
        before = snapshot(repo)
        with self.assertRaises(ConfigError) as caught:
            publish(self.builds.request(repo, 1))
        self.assertEqual(f"{repo} is a signed repository (Release.gpg): an unsigned publish would "
                         "leave a signature that no longer matches Release; nothing was written",
                         str(caught.exception))
        self.assertEqual("publish with --sign-key KEY", caught.exception.hint)
        self.assertEqual(before, snapshot(repo))


class TestSigningErrors(BuildsTestCase):
    """Keys that cannot sign: one error line, nothing written, no key material shown."""


    def setUp(self) -> None:
        super().setUp()
        self.repo = self.tmp / "repo"

    def publish_cli(self, gnupg: GnupgHome, key: str):
        request = self.builds.request(self.repo, 1)
        return run_cli("publish", "--repo", str(self.repo), "--build", str(request.build_dir),
                       "--lock", str(request.lock_file), "--wheelhouse", str(request.wheelhouse),
                       "--sign-key", key, "--gnupg-home", str(gnupg.home))

    def test_an_unknown_key(self) -> None:
        gnupg = self.useFixture(GnupgFixture()).home
        outcome = self.publish_cli(gnupg, "nobody@example.org")
        self.assertEqual(1, outcome.code)
        self.assertEqual([f"error: no secret key 'nobody@example.org' in GnuPG's keyring {gnupg.home} "
                          "(`gpg --list-secret-keys` lists them; --gnupg-home or GNUPGHOME selects "
                          "another keyring)"], outcome.error_lines)
        self.assertFalse(self.repo.exists())

    def test_a_name_matching_two_keys(self) -> None:
        gnupg = self.useFixture(GnupgFixture(uid="first <same@example.org>")).home
        gnupg.gpg("--passphrase", "", "--pinentry-mode", "loopback", "--quick-gen-key",
                  "second <same@example.org>", "ed25519", "sign", "never")
        outcome = self.publish_cli(gnupg, "same@example.org")
        self.assertEqual(1, outcome.code)
        [line] = outcome.error_lines
        self.assertTrue(line.startswith("error: --sign-key 'same@example.org' matches 2 secret keys ("),
                        line)
        self.assertTrue(line.endswith("(name the key by its fingerprint)"), line)
        self.assertFalse(self.repo.exists())

    def test_an_expired_key(self) -> None:
        gnupg = self.useFixture(GnupgFixture(expire="1d", faked_time="20200101T000000")).home
        outcome = self.publish_cli(gnupg, gnupg.fingerprint)
        self.assertEqual(1, outcome.code)
        self.assertEqual([f"error: the key {gnupg.fingerprint} cannot sign: expired"],
                         outcome.error_lines)
        self.assertFalse(self.repo.exists())

    def test_a_key_whose_passphrase_the_agent_does_not_hold(self) -> None:
        passphrase = "correct horse battery staple"
        gnupg = self.useFixture(GnupgFixture(passphrase=passphrase)).home
        outcome = self.publish_cli(gnupg, gnupg.fingerprint)
        self.assertEqual(1, outcome.code)
        [line] = outcome.error_lines
        self.assertTrue(line.startswith(f"error: sign Release with {gnupg.fingerprint} failed"), line)
        self.assertTrue(line.endswith("(a key with a passphrase must be unlocked in gpg-agent first)"),
                        line)
        self.assertNotIn(passphrase, outcome.stderr + outcome.stdout)
        self.assertFalse(self.repo.exists())
