"""tree_apply against git itself: the same tree ``git apply --cached`` gives, or a failure where git fails.

Real git repositories, real patches made by ``git diff``/``git format-patch``,
applied to the tree they were made on and to trees changed under them (lines
moved, context edited), with git as the oracle.
"""
from __future__ import annotations

import random
import subprocess
from dataclasses import replace
from pathlib import Path

import fixtures
from oslotest import base

from designate_dist.apply import _apply_series_with_git, apply_series
from designate_dist.distro import load_distro
from designate_dist.fetch import fetch
from designate_dist.gitrepo import Identity, WorkTree
from designate_dist.series import read_series
from designate_dist.tree_apply import HunkFailed, TreePatcher, Unsupported, apply_hunks, parse_patch
from designate_dist.tree_state import read_tree_state, write_tree_state
from designate_dist.upstream_import import import_upstream
from tests.fixtures.cache import shared_test_cache
from tests.fixtures.distro import git, write_file
from tests.fixtures.rebase import RebaseFixture

WHO = Identity("Distro Maintainer", "distro@example.org", 1_700_000_000)


class Repo:
    """A scratch repository: commit file sets, make patches between them, apply both ways."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree = WorkTree.init(path, "main")
        self.patcher = TreePatcher(self.tree.read_object, self.tree.write_object)

    def commit(self, files: dict[str, bytes | None], modes: dict[str, str] | None = None) -> str:
        for rel, data in files.items():
            target = self.path / rel
            if data is None:
                if target.is_symlink() or target.exists():
                    git(self.path, "rm", "-q", "--", rel)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink():
                target.unlink()
            target.write_bytes(data)
        for rel, mode in (modes or {}).items():
            git(self.path, "update-index", "--add", f"--chmod={mode}", rel)
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "--allow-empty", "-m", "state")
        return git(self.path, "rev-parse", "HEAD").strip()

    def patch(self, old: str, new: str, *extra: str) -> Path:
        out = self.path.parent / f"p-{old[:7]}-{new[:7]}-{len(extra)}.patch"
        out.write_bytes(subprocess.run(["git", "diff", "--full-index", *extra, old, new], cwd=self.path,
                                       check=True, stdout=subprocess.PIPE).stdout)
        return out

    def both_ways(self, base_commit: str, patch: Path) -> tuple[str | None, str | None]:
        """(our tree, git's tree) of ``patch`` on ``base_commit``; None where it does not apply."""
        root = self.tree.tree_of(base_commit)
        try:
            ours: str | None = self.patcher.apply(root, patch.read_bytes())
        except HunkFailed:
            ours = None
        except Unsupported:
            ours = "unsupported"
        theirs, _ = self.tree.apply_to_tree(root, patch)
        return ours, theirs


class TestAgainstGit(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.repo = Repo(Path(self.useFixture(fixtures.TempDir()).path) / "repo")

    def assert_same(self, base_commit: str, patch: Path) -> str | None:
        ours, theirs = self.repo.both_ways(base_commit, patch)
        self.assertEqual(theirs, ours, patch.read_text(errors="replace"))
        return ours

    def test_random_edits_on_moved_trees(self) -> None:
        """Hundreds of generated patches, applied where they were made and on shifted, edited trees."""
        rng = random.Random(1313)
        words = ["alpha", "beta", "gamma", "delta", "", "    return x", "pass", "# note", "x = 1", "}"]

        def text(lines: int) -> list[str]:
            return [rng.choice(words) + (str(rng.randint(0, 3)) if rng.random() < 0.5 else "")
                    for _ in range(lines)]

        def render(lines: list[str], eol: bool = True) -> bytes:
            return ("\n".join(lines) + ("\n" if eol else "")).encode()

        outcomes: list[tuple[bool, str | None]] = []
        for _ in range(60):
            files = {f"pkg/m{i}.py": text(rng.randint(0, 40)) for i in range(3)}
            base_commit = self.repo.commit({k: render(v) for k, v in files.items()})
            # our change: a few line edits, inserts and deletes per file, sometimes the last newline
            changed = {}
            for name, lines in files.items():
                lines = list(lines)
                for _ in range(rng.randint(0, 4)):
                    where = rng.randint(0, len(lines))
                    action = rng.random()
                    if action < 0.4 or not lines:
                        lines[where:where] = text(rng.randint(1, 3))
                    elif action < 0.7 and where < len(lines):
                        lines[where] = rng.choice(words) + "!"
                    elif where < len(lines):
                        del lines[where:where + rng.randint(1, 3)]
                changed[name] = render(lines, eol=rng.random() > 0.1)
            ours_commit = self.repo.commit(changed)
            context = rng.choice(["-U3", "-U1", "-U5", "-U2"])
            patch = self.repo.patch(base_commit, ours_commit, context)
            # upstream's move: lines inserted or removed above, a context line edited
            moved = {}
            for name, lines in files.items():
                lines = list(lines)
                if rng.random() < 0.6:
                    lines[0:0] = text(rng.randint(1, 4))
                if rng.random() < 0.3 and len(lines) > 5:
                    del lines[rng.randint(0, len(lines) - 1)]
                if rng.random() < 0.3 and lines:
                    lines[rng.randint(0, len(lines) - 1)] = "edited"
                moved[name] = render(lines)
            self.repo.commit({k: render(v) for k, v in files.items()})
            moved_commit = self.repo.commit(moved)
            for target in (base_commit, moved_commit):
                outcomes.append((target == base_commit, self.assert_same(target, patch)))
        # every patch applies where it was made; on the moved trees some apply (offsets) and some fail
        self.assertTrue(all(tree not in (None, "unsupported") for made_here, tree in outcomes if made_here))
        moved_results = [tree for made_here, tree in outcomes if not made_here]
        self.assertGreater(sum(tree is None for tree in moved_results), 5)
        self.assertGreater(sum(tree is not None for tree in moved_results), 10)

    def test_file_operations(self) -> None:
        repo = self.repo
        start = repo.commit({"a.txt": b"one\ntwo\nthree\n", "dir/b.txt": b"b\n", "c.sh": b"#!/bin/sh\n",
                             "crlf.txt": b"x\r\ny\r\nz\r\n", "noeol.txt": b"last line"})
        end = repo.commit({"a.txt": None, "dir/new.txt": b"new\n", "empty.txt": b"", "c.sh": b"#!/bin/sh\necho\n",
                           "crlf.txt": b"x\r\nY\r\nz\r\n", "noeol.txt": b"last line\nand more",
                           "dir/b.txt": None, "dir/sub/b2.txt": b"b\n"}, modes={"c.sh": "+x"})
        for extra in ((), ("-M",), ("--no-renames",)):
            tree = self.assert_same(start, repo.patch(start, end, *extra))
            self.assertNotIn(tree, (None, "unsupported"))
            self.assertEqual(repo.tree.tree_of(end), tree)
        # a symlink, and a file that becomes one
        link = repo.commit({"link": None})
        (repo.path / "link").symlink_to("a.txt")
        linked = repo.commit({})
        self.assert_same(link, repo.patch(link, linked))

    def test_what_git_refuses_we_refuse(self) -> None:
        repo = self.repo
        start = repo.commit({"a.txt": b"one\ntwo\nthree\n"})
        end = repo.commit({"a.txt": b"one\n2\nthree\n", "b.txt": b"new\n"})
        patch = repo.patch(start, end)
        # the file to change is gone, the new file exists already, the context changed
        for state in ({"a.txt": None}, {"b.txt": b"already\n"}, {"a.txt": b"ONE\nTWO\nTHREE\n"}):
            repo.commit({"a.txt": b"one\ntwo\nthree\n", "b.txt": None})
            broken = repo.commit(state)
            self.assertEqual((None, None), repo.both_ways(broken, patch), state)

    def test_binary_and_traditional_patches_are_left_to_git(self) -> None:
        repo = self.repo
        start = repo.commit({"bin.dat": b"\0\1\2", "a.txt": b"a\n"})
        end = repo.commit({"bin.dat": b"\0\1\3", "a.txt": b"b\n"})
        ours, theirs = repo.both_ways(start, repo.patch(start, end, "--binary"))
        self.assertEqual("unsupported", ours)
        self.assertIsNotNone(theirs)
        plain = repo.path.parent / "plain.patch"
        plain.write_text("Description: plain\n\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-a\n+b\n")
        self.assertRaises(Unsupported, parse_patch, plain.read_bytes())


class TestHunkRules(base.BaseTestCase):
    """git apply's rules, each on its own: where the search starts, the ends, lines already patched."""

    def hunks(self, diff: str):
        return parse_patch(("diff --git a/f b/f\n--- a/f\n+++ b/f\n" + diff).encode())[0].hunks

    def test_a_hunk_at_line_one_must_match_at_the_beginning(self) -> None:
        hunks = self.hunks("@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n")
        self.assertEqual(b"a\nB\nc\n", apply_hunks(b"a\nb\nc\n", hunks, "f"))
        self.assertRaises(HunkFailed, apply_hunks, b"x\na\nb\nc\n", hunks, "f")
        # the same hunk one line further down moves with an offset
        moved = self.hunks("@@ -2,3 +2,3 @@\n a\n-b\n+B\n c\n")
        self.assertEqual(b"y\nx\na\nB\nc\n", apply_hunks(b"y\nx\na\nb\nc\n", moved, "f"))

    def test_a_hunk_without_trailing_context_must_match_at_the_end(self) -> None:
        hunks = self.hunks("@@ -2,2 +2,2 @@\n b\n-c\n+C\n")
        self.assertEqual(b"a\nb\nC\n", apply_hunks(b"a\nb\nc\n", hunks, "f"))
        self.assertRaises(HunkFailed, apply_hunks, b"a\nb\nc\nd\n", hunks, "f")

    def test_the_nearest_match_wins_searching_down_first(self) -> None:
        hunks = self.hunks("@@ -3,3 +3,2 @@\n k\n-v\n k\n")
        # it fits two lines above and two lines below its own line: git tries below first
        self.assertEqual(b"k\nv\nk\nx\nk\nk\n", apply_hunks(b"k\nv\nk\nx\nk\nv\nk\n", hunks, "f"))

    def test_lines_an_earlier_hunk_wrote_are_not_matched_again(self) -> None:
        hunks = self.hunks("@@ -1,3 +1,3 @@\n a\n-b\n+c\n z\n@@ -3,2 +3,2 @@\n z\n-d\n+e\n")
        with self.assertRaises(HunkFailed) as caught:
            apply_hunks(b"a\nb\nz\nd\n", hunks, "f")
        self.assertEqual(2, caught.exception.hunk)

    def test_no_newline_at_end_of_file(self) -> None:
        hunks = self.hunks("@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n")
        self.assertEqual(b"a\nb\n", apply_hunks(b"a\nb", hunks, "f"))
        self.assertRaises(HunkFailed, apply_hunks, b"a\nb\n", hunks, "f")


class TestBatchedObjects(base.BaseTestCase):
    def test_one_pack_git_reads_and_checks(self) -> None:
        path = Path(self.useFixture(fixtures.TempDir()).path) / "repo"
        tree = WorkTree.init(path, "main")
        with tree.batched_objects():
            blobs = [tree.write_object("blob", (f"line {n}\n" * n).encode()) for n in range(200)]
            self.assertEqual(b"line 3\n" * 3, tree.read_object(blobs[3]))  # readable before the pack is written
            root = TreePatcher(tree.read_object, tree.write_object).edit(
                "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
                {f"dir/f{n}.txt": (b"100644", sha) for n, sha in enumerate(blobs)})
            commit = tree.commit_tree(root, None, "Subject\n", WHO, WHO)
        self.assertEqual([], list((path / ".git/objects").glob("??/*")))  # no loose object
        packs = list((path / ".git/objects/pack").glob("*.idx"))
        self.assertEqual(1, len(packs))
        git(path, "verify-pack", str(packs[0]))
        git(path, "update-ref", "refs/heads/main", commit)
        git(path, "fsck", "--strict", "--no-dangling")
        self.assertEqual("line 5\n" * 5, git(path, "show", "main:dir/f5.txt"))


class TestSameCommitsAsBefore(base.BaseTestCase):
    """apply_series gives the commits one git apply --index and one commit per patch gave."""

    def test_the_fixture_series_both_ways(self) -> None:
        fx = self.useFixture(RebaseFixture())
        # a DEP-3 patch (maintainer identity) and one whose author git would clean up
        mail = fx.patches.make(write_file("designate/plain.py", "X = 1\n"), "x", keep=False)
        fx.add_patch("customs", "0009-dep3.patch", "Description: plain\nAuthor: Plain Person <plain@example.org>\n\n"
                     + mail[mail.index("diff --git"):])
        fx.add_patch("customs", "0010-odd-author.patch", fx.patches.make(
            write_file("designate/odd.py", "Y = 2\n"), "Odd author", author=("Dev, Jr.", "dev@example.org"),
            keep=False))
        distro = load_distro(fx.root)
        series = read_series(fx.root)
        imported = import_upstream(distro, fetch(distro))
        ours = apply_series(distro, imported, series)
        tree = WorkTree(imported.work_tree)
        write_tree_state(tree.git_dir, replace(read_tree_state(tree.git_dir), series=None))
        theirs = _apply_series_with_git(distro, imported, series, tree, read_tree_state(tree.git_dir))
        self.assertEqual(len(series), len(ours.applied))
        self.assertEqual([a.commit for a in theirs.applied], [a.commit for a in ours.applied])
        self.assertEqual([], tree.dirty_paths())

    def test_the_shipped_series_on_the_pinned_release(self) -> None:
        """The real series on the real pinned release (22.0.1 from the shared test cache)."""
        self.useFixture(fixtures.EnvironmentVariable("DESIGNATE_DIST_CACHE", str(shared_test_cache())))
        repo = Path(__file__).resolve().parents[2]
        distro = load_distro(repo, Path(self.useFixture(fixtures.TempDir()).path) / "work")
        series = read_series(repo)
        imported = import_upstream(distro, fetch(distro))
        ours = apply_series(distro, imported, series)
        tree = WorkTree(imported.work_tree)
        write_tree_state(tree.git_dir, replace(read_tree_state(tree.git_dir), series=None))
        theirs = _apply_series_with_git(distro, imported, series, tree, read_tree_state(tree.git_dir))
        self.assertEqual([a.commit for a in theirs.applied], [a.commit for a in ours.applied])
