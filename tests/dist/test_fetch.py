"""fetch: every source kind, verified, into a content-addressed cache."""
from __future__ import annotations

import hashlib
from pathlib import Path

import fixtures
from oslotest import base

from tests.fixtures.cli import run_cli
from tests.fixtures.distro import DistroFixture, git

DESIGNATE_22_0_1 = "a92466860c008ed9cd43f9fc5118e72d2480133c2b6528761187b459bec5ece1"


class TestFetchFile(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.distro = self.useFixture(DistroFixture())

    def fetch(self):
        return run_cli("--distro", str(self.distro.root), "fetch")

    def test_file_source_lands_in_content_addressed_cache(self) -> None:
        outcome = self.fetch()
        self.assertEqual(0, outcome.code, outcome.stderr)
        cached = Path(outcome.stdout.strip())
        digest = hashlib.sha256(self.distro.archive.read_bytes()).hexdigest()
        self.assertEqual(self.distro.cache / "archives" / "sha256" / digest / "designate-1.0.0.tar.gz",
                         cached)
        self.assertEqual(self.distro.archive.read_bytes(), cached.read_bytes())

    def test_checksum_mismatch_exits_5_and_keeps_the_users_file(self) -> None:
        self.distro.write_pin(sha="0" * 64)
        outcome = self.fetch()
        self.assertEqual(5, outcome.code)
        self.assertEqual(1, len(outcome.error_lines))
        self.assertIn(f"sha256 mismatch: expected {'0' * 64}, got ", outcome.error_lines[0])
        self.assertTrue(self.distro.archive.exists())
        self.assertEqual([], [p for p in self.distro.cache.rglob("*.tar.gz")])

    def test_corrupted_cache_entry_is_deleted(self) -> None:
        cached = Path(self.fetch().stdout.strip())
        cached.write_bytes(b"tampered")
        outcome = self.fetch()
        self.assertEqual(5, outcome.code)
        self.assertIn("cached designate-1.0.0.tar.gz: sha256 mismatch", outcome.stderr)
        self.assertFalse(cached.exists())
        self.assertEqual(0, self.fetch().code)  # a new copy is made from the source

    def test_malformed_pin(self) -> None:
        (self.distro.root / "build" / "upstream.toml").write_text("[upstream]\nname = 'designate'\n")
        outcome = self.fetch()
        self.assertEqual(1, outcome.code)
        self.assertEqual(["error: build/upstream.toml: missing key 'version'"], outcome.error_lines)

    def test_not_a_distro(self) -> None:
        empty = self.useFixture(fixtures.TempDir()).path
        outcome = run_cli("--distro", empty, "fetch")
        self.assertEqual(1, outcome.code)
        self.assertIn("is not a distribution repository: build/upstream.toml not found", outcome.stderr)


class TestFetchGit(base.BaseTestCase):
    """A git URL + tag, against a local bare repository standing in for upstream's server."""

    def setUp(self) -> None:
        super().setUp()
        self.distro = self.useFixture(DistroFixture())
        bare = self.distro.base / "upstream.git"
        src = self.distro.patches.repo
        git(src, "tag", "-a", "1.0.0", "-m", "1.0.0")
        git(self.distro.base, "clone", "-q", "--bare", str(src), str(bare))
        self.commit = git(src, "rev-parse", "1.0.0^{commit}").strip()
        self.url = bare.as_uri()

    def pin(self, commit: str) -> None:
        self.distro.write_pin(sha="", source="git",
                              extra=f'url = "{self.url}"\ntag = "1.0.0"\ncommit = "{commit}"\n')

    def test_git_tag_at_pinned_commit(self) -> None:
        self.pin(self.commit)
        outcome = run_cli("--distro", str(self.distro.root), "-q", "prepare")
        self.assertEqual(0, outcome.code, outcome.stderr)
        tree = Path(outcome.stdout.strip())
        self.assertTrue((tree / "designate" / "api" / "middleware.py").is_file())
        self.assertIn(f"Source: git {self.url} 1.0.0", git(tree, "log", "-1", "--format=%B"))

    def test_tag_moved_is_a_verification_failure(self) -> None:
        self.pin("1" * 40)
        outcome = run_cli("--distro", str(self.distro.root), "fetch")
        self.assertEqual(5, outcome.code)
        self.assertIn(f"tag 1.0.0 points to {self.commit}, not the pinned commit {'1' * 40}",
                      outcome.stderr)

    def test_unreachable_url(self) -> None:
        self.url = (self.distro.base / "nowhere.git").as_uri()
        self.pin(self.commit)
        outcome = run_cli("--distro", str(self.distro.root), "fetch")
        self.assertEqual(1, outcome.code)
        self.assertEqual(1, len(outcome.error_lines))
        self.assertIn("git clone", outcome.error_lines[0])


class TestFetchPyPI(base.BaseTestCase):
    """The default source: the real Designate sdist from the package index."""

    def setUp(self) -> None:
        super().setUp()
        self.distro = self.useFixture(DistroFixture(version="22.0.1"))

    def test_real_designate_sdist(self) -> None:
        self.distro.write_pin(sha=DESIGNATE_22_0_1, source="pypi")
        outcome = run_cli("--distro", str(self.distro.root), "fetch")
        self.assertEqual(0, outcome.code, outcome.stderr)
        archive = Path(outcome.stdout.strip())
        self.assertEqual(DESIGNATE_22_0_1, hashlib.sha256(archive.read_bytes()).hexdigest())

    def test_real_sdist_with_wrong_hash(self) -> None:
        self.distro.write_pin(sha="f" * 64, source="pypi")
        outcome = run_cli("--distro", str(self.distro.root), "fetch")
        self.assertEqual(5, outcome.code, outcome.stderr)
        self.assertIn("designate==22.0.1: sha256 mismatch", outcome.stderr)
        self.assertEqual([], list(self.distro.cache.rglob("*.tar.gz")))
