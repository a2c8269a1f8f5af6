"""The tree cache: a fresh clone with a warm cache imports upstream from git objects, not the archive."""
from __future__ import annotations

import shutil
from pathlib import Path

from oslotest import base

from tests.fixtures.cli import run_cli
from tests.fixtures.distro import git
from tests.fixtures.rebase import RebaseFixture


class TestTreeCache(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.fx = self.useFixture(RebaseFixture(with_conflict=False))
        self.root = self.fx.root

    def prepare(self) -> Path:
        outcome = run_cli("--distro", str(self.root), "-q", "prepare")
        self.assertEqual(0, outcome.code, outcome.stderr)
        return Path(outcome.stdout.strip())

    def test_a_fresh_clone_gets_the_same_commits_from_the_cache(self) -> None:
        tree = self.prepare()
        first = (git(tree, "rev-parse", "HEAD", "upstream/1.0.0", "upstream/1.0.0^{commit}"),
                 git(tree, "status", "--porcelain", "--ignored"))
        stored = list((self.fx.cache / "trees").rglob("import.json"))
        self.assertEqual(1, len(stored))
        shutil.rmtree(self.root / ".work")  # a fresh clone: no work tree
        # the archive is not even read: a cache hit needs only the verified hash
        tree = self.prepare()
        self.assertEqual(first, (git(tree, "rev-parse", "HEAD", "upstream/1.0.0", "upstream/1.0.0^{commit}"),
                                 git(tree, "status", "--porcelain", "--ignored")))
        git(tree, "fsck", "--strict", "--no-dangling")
        self.assertEqual(stored, list((self.fx.cache / "trees").rglob("import.json")))

    def test_an_unfinished_store_is_never_used(self) -> None:
        self.prepare()
        meta = next((self.fx.cache / "trees").rglob("import.json"))
        meta.unlink()  # a store killed before its last step
        shutil.rmtree(self.root / ".work")
        tree = self.prepare()
        git(tree, "fsck", "--strict")
        self.assertTrue(meta.is_file())  # stored again by the fresh import
