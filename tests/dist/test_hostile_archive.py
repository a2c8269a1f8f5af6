"""A hostile upstream archive: refused whole (exit 5, naming the member), nothing written outside.

Each case is a real sdist of the test upstream with hostile members added, pinned
by its sha256 as a ``file`` source, and run through ``prepare`` as a developer would.
"""
from __future__ import annotations

import gzip
import io
import os
import tarfile
import uuid
from pathlib import Path

from oslotest import base

from tests.fixtures.cli import run_cli
from tests.fixtures.distro import RELEASE_TIME, DistroFixture, git, sha256

TOP = "designate-1.0.0"


def _info(name: str, kind: bytes, **fields) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = RELEASE_TIME
    info.mode = 0o755 if kind in (tarfile.DIRTYPE, tarfile.SYMTYPE) else 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def file_(name: str, text: str = "escaped\n") -> tuple[tarfile.TarInfo, bytes]:
    data = text.encode()
    return _info(name, tarfile.REGTYPE, size=len(data)), data


def dir_(name: str) -> tuple[tarfile.TarInfo, None]:
    return _info(name, tarfile.DIRTYPE), None


def symlink(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    return _info(name, tarfile.SYMTYPE, linkname=target), None


def hardlink(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    return _info(name, tarfile.LNKTYPE, linkname=target), None


def device(name: str, kind: bytes = tarfile.CHRTYPE) -> tuple[tarfile.TarInfo, None]:
    return _info(name, kind, devmajor=1, devminor=3), None


class HostileArchiveTest(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.distro = self.useFixture(DistroFixture())
        # A name no other test or run uses: an escape into /tmp would show up as this file.
        self.tmp_target = Path("/tmp") / f"designate-dist-escape-{uuid.uuid4().hex}"
        self.addCleanup(lambda: self.tmp_target.unlink(missing_ok=True))

    def pin_archive(self, extra: list, *, first: list | None = None) -> None:
        """Replace the pinned sdist with the upstream tree plus ``extra`` members (``first``: before it)."""
        good = tarfile.open(self.distro.archive)
        upstream = [(m, good.extractfile(m).read() if m.isfile() else None) for m in good.getmembers()]
        good.close()
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for info, data in [*(first or []), *upstream, *extra]:
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        self.distro.archive.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
        self.distro.write_pin(sha=sha256(self.distro.archive))

    def snapshot(self) -> set[str]:
        """Every path below the test's base directory, the cache and work directory left out."""
        root = self.distro.base
        found = set()
        for dirpath, dirnames, filenames in os.walk(root):
            rel = Path(dirpath).relative_to(root)
            dirnames[:] = [d for d in dirnames if (rel / d).parts[:2] not in (("distro", ".work"),)
                           and (rel / d).parts[:1] != ("cache",)]
            found.update(str(rel / name) for name in dirnames + filenames)
        return found

    def assert_refused(self, member: str, why: str) -> None:
        before = self.snapshot()
        outcome = run_cli("--distro", str(self.distro.root), "-q", "prepare")
        self.assertEqual(5, outcome.code, outcome.stderr)
        self.assertEqual(1, len(outcome.error_lines), outcome.stderr)
        self.assertEqual(f"error: {TOP}.tar.gz: member {member!r} {why}; the archive is refused "
                         "(check the pin in build/upstream.toml)", outcome.error_lines[0])
        self.assertNotIn("Traceback", outcome.stderr)
        # nothing landed anywhere: not next to the distro, not in /tmp, no work tree, no scratch
        self.assertEqual(before, self.snapshot())
        self.assertFalse(self.tmp_target.exists())
        work = self.distro.root / ".work"
        self.assertEqual([], sorted(p.name for p in work.iterdir() if p.name != "build.lock")
                         if work.is_dir() else [])

    def deep_chain(self, length: int = 48) -> list:
        """``l0 -> .``, ``l1 -> l0/..``, ... : each link one directory further up, as text each looks harmless."""
        links = [symlink(f"{TOP}/l0", ".")]
        links += [symlink(f"{TOP}/l{n}", f"l{n - 1}/..") for n in range(1, length)]
        return links

    def test_symlink_chain_to_the_distro_root(self) -> None:
        self.pin_archive([symlink(f"{TOP}/l1", "."), symlink(f"{TOP}/l2", "l1/.."),
                          file_(f"{TOP}/l2/escaped.txt")])
        self.assert_refused(f"{TOP}/l2", "is a link to 'l1/..', which leads outside the tree (or into a loop)")

    def test_long_symlink_chain_into_tmp(self) -> None:
        chain = self.deep_chain()
        self.pin_archive([*chain, file_(f"{TOP}/l47{self.tmp_target}")])
        self.assert_refused(f"{TOP}/l1", "is a link to 'l0/..', which leads outside the tree (or into a loop)")

    def test_link_to_the_parent_of_the_top_directory(self) -> None:
        # "designate-1.0.0/up -> .." stays inside the extraction directory, but the work tree
        # is the top directory: once moved into .work/ the link would point at .work/.
        self.pin_archive([symlink(f"{TOP}/up", "..")])
        self.assert_refused(f"{TOP}/up", "is a link to '..', which leads outside the tree (or into a loop)")

    def test_a_later_link_makes_an_earlier_one_escape(self) -> None:
        self.pin_archive([symlink(f"{TOP}/a", "b/.."), symlink(f"{TOP}/b", ".")])
        self.assert_refused(f"{TOP}/a", "is a link to 'b/..', which leads outside the tree (or into a loop)")

    def test_link_loop(self) -> None:
        self.pin_archive([symlink(f"{TOP}/a", "b"), symlink(f"{TOP}/b", "a")])
        self.assert_refused(f"{TOP}/b", "is a link to 'a', which leads outside the tree (or into a loop)")

    def test_absolute_symlink(self) -> None:
        self.pin_archive([symlink(f"{TOP}/designate/leak.txt", "/etc/hostname")])
        self.assert_refused(f"{TOP}/designate/leak.txt", "is a link to '/etc/hostname', outside the tree")

    def test_file_through_an_in_tree_link(self) -> None:
        self.pin_archive([symlink(f"{TOP}/d", "designate"), file_(f"{TOP}/d/sneaky.py")])
        self.assert_refused(f"{TOP}/d/sneaky.py", f"is written through the link '{TOP}/d'")

    def test_link_replacing_a_directory(self) -> None:
        self.pin_archive([symlink(f"{TOP}/designate", "/tmp")])
        self.assert_refused(f"{TOP}/designate", "replaces another member of the same name")

    def test_hardlink_to_a_host_file(self) -> None:
        self.pin_archive([hardlink(f"{TOP}/passwd", "/etc/passwd")])
        self.assert_refused(f"{TOP}/passwd", "is a hard link to '/etc/passwd', outside the tree")

    def test_hardlink_out_of_the_tree(self) -> None:
        target = f"{TOP}/../../../../../../../../etc/passwd"
        self.pin_archive([hardlink(f"{TOP}/passwd", target)])
        self.assert_refused(f"{TOP}/passwd", f"is a hard link to {target!r}, outside the tree")

    def test_hardlink_through_a_symlink(self) -> None:
        self.pin_archive([symlink(f"{TOP}/l0", "."), hardlink(f"{TOP}/h", f"{TOP}/l0/README.rst")])
        self.assert_refused(f"{TOP}/h", f"is a hard link to '{TOP}/l0/README.rst', which is not a "
                                        "file of the archive before it")

    def test_hardlink_to_a_symlink(self) -> None:
        self.pin_archive([symlink(f"{TOP}/readme", "README.rst"), hardlink(f"{TOP}/h", f"{TOP}/readme")])
        self.assert_refused(f"{TOP}/h", f"is a hard link to '{TOP}/readme', which is not a file of "
                                        "the archive before it")

    def test_absolute_member(self) -> None:
        self.pin_archive([file_(str(self.tmp_target))])
        self.assert_refused(str(self.tmp_target), "has an absolute path")

    def test_dot_dot_member(self) -> None:
        self.pin_archive([file_(f"{TOP}/../../escaped.txt")])
        self.assert_refused(f"{TOP}/../../escaped.txt", "has '..' in its path")

    def test_git_directory_with_hooks(self) -> None:
        # git runs in the imported tree: an archive's own .git would bring its hooks and config
        self.pin_archive([dir_(f"{TOP}/.git"), file_(f"{TOP}/.git/config", "[core]\n\tfsmonitor = touch x\n")])
        self.assert_refused(f"{TOP}/.git", "is in a .git directory")

    def test_git_directory_as_a_link(self) -> None:
        self.pin_archive([symlink(f"{TOP}/designate/.GIT", "../etc")])
        self.assert_refused(f"{TOP}/designate/.GIT", "is in a .git directory")

    def test_link_into_the_git_directory_the_import_makes(self) -> None:
        # harmless as text inside the tree, but the tree becomes a git repository
        self.pin_archive([symlink(f"{TOP}/cfg", ".git/config")])
        self.assert_refused(f"{TOP}/cfg", "is a link to '.git/config', which leads into .git")

    def test_link_into_the_git_directory_through_other_links(self) -> None:
        self.pin_archive([symlink(f"{TOP}/designate/a", "."), symlink(f"{TOP}/hooks", "designate/a/../.GIT/hooks")])
        self.assert_refused(f"{TOP}/hooks", "is a link to 'designate/a/../.GIT/hooks', which leads into .git")

    def test_device_file(self) -> None:
        self.pin_archive([device(f"{TOP}/null")])
        self.assert_refused(f"{TOP}/null", "is a device, fifo or other special file")

    def test_fifo(self) -> None:
        self.pin_archive([device(f"{TOP}/pipe", tarfile.FIFOTYPE)])
        self.assert_refused(f"{TOP}/pipe", "is a device, fifo or other special file")

    def test_top_directory_as_a_link(self) -> None:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            info, _ = symlink(TOP, ".")
            tar.addfile(info)
            info, data = file_(f"{TOP}/PKG-INFO", "Metadata-Version: 2.1\nName: designate\nVersion: 1.0.0\n")
            tar.addfile(info, io.BytesIO(data))
        self.distro.archive.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
        self.distro.write_pin(sha=sha256(self.distro.archive))
        self.assert_refused(TOP, "is the top directory but not a directory")

    def test_refused_archive_leaves_the_existing_work_tree_alone(self) -> None:
        self.assertEqual(0, run_cli("--distro", str(self.distro.root), "-q", "prepare").code)
        head = git(self.distro.work_tree, "rev-parse", "HEAD")
        self.pin_archive([symlink(f"{TOP}/l1", "."), symlink(f"{TOP}/l2", "l1/.."),
                          file_(f"{TOP}/l2/escaped.txt")])
        outcome = run_cli("--distro", str(self.distro.root), "-q", "prepare", "--force")
        self.assertEqual(5, outcome.code, outcome.stderr)
        self.assertEqual(head, git(self.distro.work_tree, "rev-parse", "HEAD"))
        self.assertEqual("", git(self.distro.work_tree, "ls-files", "l1", "l2"))
        self.assertFalse((self.distro.root / ".work" / "escaped.txt").exists())
        self.assertEqual(["build.lock", TOP] if (self.distro.root / ".work" / "build.lock").exists() else [TOP],
                         sorted(p.name for p in (self.distro.root / ".work").iterdir()))

    def test_links_that_stay_inside_are_imported_as_links(self) -> None:
        self.pin_archive([symlink(f"{TOP}/doc-readme", "README.rst"),
                          symlink(f"{TOP}/designate/api/up", "../storage")])
        outcome = run_cli("--distro", str(self.distro.root), "-q", "prepare")
        self.assertEqual(0, outcome.code, outcome.stderr)
        tree = self.distro.work_tree
        self.assertEqual("README.rst", os.readlink(tree / "doc-readme"))
        self.assertEqual("../storage", os.readlink(tree / "designate" / "api" / "up"))
        self.assertIn("120000", git(tree, "ls-files", "-s", "doc-readme"))


class UnreadableArchiveTest(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.distro = self.useFixture(DistroFixture())

    def pin_bytes(self, data: bytes) -> None:
        self.distro.archive.write_bytes(data)
        self.distro.write_pin(sha=sha256(self.distro.archive))

    def prepare(self):
        return run_cli("--distro", str(self.distro.root), "-q", "prepare")

    def test_not_an_archive(self) -> None:
        self.pin_bytes(b"this is not a tar archive\n" * 10)
        outcome = self.prepare()
        self.assertEqual(5, outcome.code, outcome.stderr)
        self.assertEqual(1, len(outcome.error_lines), outcome.stderr)
        self.assertTrue(outcome.error_lines[0].startswith(
            f"error: {self.distro.archive}: not a readable tar archive: "), outcome.error_lines[0])

    def test_truncated_archive(self) -> None:
        data = self.distro.archive.read_bytes()
        self.pin_bytes(data[: len(data) // 2])
        outcome = self.prepare()
        self.assertEqual(5, outcome.code, outcome.stderr)
        self.assertEqual(1, len(outcome.error_lines), outcome.stderr)
        self.assertIn("not a readable tar archive", outcome.error_lines[0])
        self.assertFalse(self.distro.work_tree.exists())
