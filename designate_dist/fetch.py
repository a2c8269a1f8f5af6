"""Stage: fetch the pinned upstream archive into a content-addressed cache and verify it.

Cache layout (root: :func:`designate_dist.cache.cache_root`)::

    archives/sha256/<sha256>/<name>-<version>.tar.gz     pypi and file sources
    archives/git/<commit>/<name>-<version>.tar            git sources (git archive of the tag)

A cached archive is re-hashed before every use; a download that does not match
the pin is deleted and the stage fails with exit code 5.  So does an archive
that is not the pinned version, whatever its hash: an sdist's file name and its
``PKG-INFO`` (Name, Version) must name the pin, and so must a git tag.
"""
from __future__ import annotations

import email.parser
import lzma
import os
import re
import shutil
import sys
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from designate_dist import gitrepo, scratch
from designate_dist.cache import cache_root
from designate_dist.digest import sha256_of
from designate_dist.distro import Distro, Pin
from designate_dist.errors import CommandFailed, ConfigError, DistError, VerificationError, os_failure
from designate_dist.lockfile import canonical
from designate_dist.runner import run
from designate_dist.versions import same_version

#: Scratch the stage makes in the cache root (see designate_dist.scratch).
SCRATCH_KINDS = (".download-", ".clone-", ".copy-")


@dataclass(frozen=True)
class FetchResult:
    """A verified upstream archive in the cache."""

    archive: Path
    sha256: str
    source: str       # how the pin describes the source
    cached: bool      # True when no download was needed


def _publish(tmp_file: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp_file, final)


def _verify(path: Path, expected: str, what: str, *, delete: bool) -> str:
    actual = sha256_of(path)
    if actual != expected:
        if delete:
            path.unlink(missing_ok=True)
        raise VerificationError(
            f"{what}: sha256 mismatch: expected {expected}, got {actual}"
            + ("; the download was deleted" if delete else ""),
            hint="check the pin in build/upstream.toml")
    return actual


def fetch(distro: Distro, pin: Pin | None = None, cache: Path | None = None) -> FetchResult:
    """Get ``pin`` (default: the distro's pin) into the cache and verify it."""
    pin = pin or distro.pin
    root = cache or cache_root()
    scratch.sweep(root, *SCRATCH_KINDS)
    if pin.source == "pypi":
        return _fetch_pypi(pin, root)
    if pin.source == "file":
        return _fetch_file(distro, pin, root)
    if pin.source == "git":
        return _fetch_git(distro, pin, root)
    raise ConfigError(f"unknown source kind {pin.source!r}")


def _wrong_version(pin: Pin, what: str, claimed: str) -> VerificationError:
    return VerificationError(f"{what} is {pin.name} {claimed}, not the pinned version {pin.version}",
                             hint="the pin's version and its sha256/commit must be of the same release; "
                                  "check build/upstream.toml")


_ARCHIVE_SUFFIX = re.compile(r"\.(tar\.gz|tgz|tar\.bz2|tar\.xz|tar)$")


def check_file_name(pin: Pin, name: str) -> None:
    """An sdist's file name ``<name>-<version>.tar.gz``, if it is one of the pin's project, names the pin."""
    stem = _ARCHIVE_SUFFIX.sub("", name)
    project, _, version = stem.rpartition("-")
    if stem != name and project and canonical(project) == canonical(pin.name) \
            and not same_version(version, pin.version):
        raise _wrong_version(pin, name, version)


def archive_error(exc: BaseException, what: str, doing: str, where: Path | None = None) -> DistError | None:
    """The error for ``exc``, met while ``doing`` something with the archive ``what``; None: not an archive's.

    A tar or decompression error is an unreadable archive (exit 5).  Decompression
    errors are OSErrors without an errno (BadGzipFile, bz2's "Invalid data stream");
    an OSError with one is the file system's (a full disk is not a bad archive).
    """
    if isinstance(exc, OSError) and exc.errno is not None:
        return os_failure(exc, doing, where)
    if isinstance(exc, (OSError, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError)):
        return VerificationError(f"{what}: not a readable tar archive: {exc}",
                                 hint="check the pin in build/upstream.toml")
    return None


def _pkg_info(archive: Path, what: str) -> tuple[str, str] | None:
    """``(Name, Version)`` of the ``PKG-INFO`` at the top of an sdist; None when it has none."""
    try:
        with tarfile.open(archive) as tar:
            top = None
            for member in tar:
                parts = PurePosixPath(member.name).parts
                top = top or (parts[0] if parts else None)
                if parts == (top, "PKG-INFO") and member.isfile() and member.size < (1 << 20):
                    handle = tar.extractfile(member)
                    headers = email.parser.BytesHeaderParser().parsebytes(handle.read() if handle else b"")
                    return str(headers.get("Name", "")), str(headers.get("Version", ""))
    except Exception as exc:
        error = archive_error(exc, what, f"read {what}")
        if error is None:
            raise
        raise error from exc
    return None


def check_sdist(pin: Pin, archive: Path, what: str) -> None:
    """The sdist ``archive`` (verified by sha256) is the pinned release, by its ``PKG-INFO``.

    Exit 5 naming both versions otherwise; an archive without ``PKG-INFO`` cannot
    say which release it is and is refused too.
    """
    info = _pkg_info(archive, what)
    if info is None:
        raise VerificationError(f"{what} has no PKG-INFO: it cannot show that it is {pin.name} {pin.version}",
                                hint="pin the sdist of the release, or use a git source")
    name, version = info
    if canonical(name) != canonical(pin.name):
        raise VerificationError(f"{what} is the project {name!r} (PKG-INFO), not the pinned {pin.name}")
    if not same_version(version, pin.version):
        raise _wrong_version(pin, f"{what} (PKG-INFO)", version)


def check_tag(pin: Pin) -> None:
    """A git source's tag names the pinned version (``22.0.1`` or ``v22.0.1``)."""
    assert pin.tag is not None
    claimed = pin.tag[1:] if pin.tag[:1] in ("v", "V") else pin.tag
    if not same_version(claimed, pin.version):
        raise _wrong_version(pin, f"git tag {pin.tag!r}", claimed)


def _cached(final: Path, pin: Pin) -> FetchResult | None:
    if final.is_file():
        _verify(final, pin.sha256, f"cached {final.name}", delete=True)
        try:
            check_sdist(pin, final, f"cached {final.name}")
        except VerificationError:
            final.unlink(missing_ok=True)  # another release under this name: never a hit again
            raise
        return FetchResult(final, pin.sha256, pin.describe_source(), cached=True)
    return None


def _fetch_pypi(pin: Pin, root: Path) -> FetchResult:
    # Only the file of this name and version: another release's sdist under the same hash is no hit.
    final = root / "archives" / "sha256" / pin.sha256 / f"{pin.name}-{pin.version}.tar.gz"
    hit = _cached(final, pin)
    if hit:
        return hit
    root.mkdir(parents=True, exist_ok=True)
    with scratch.directory(root, ".download-") as tmp:
        requirement = Path(tmp) / "requirement.txt"
        # pip checks the hash itself before it builds anything from the sdist.
        requirement.write_text(f"{pin.name}=={pin.version} --hash=sha256:{pin.sha256}\n")
        out = Path(tmp) / "out"
        try:
            run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--no-binary", ":all:", "--require-hashes", "-r", str(requirement),
                 "-d", str(out)], what=f"download {pin.name}=={pin.version}")
        except CommandFailed as exc:
            if "DO NOT MATCH THE HASHES" in exc.stderr or "do not match the hashes" in exc.stderr.lower():
                raise VerificationError(
                    f"{pin.name}=={pin.version}: sha256 mismatch: the package index serves an "
                    f"archive whose sha256 is not {pin.sha256}; the download was deleted",
                    hint="check the pin in build/upstream.toml") from exc
            raise
        archives = sorted(out.glob("*.tar.gz"))
        if len(archives) != 1:
            raise CommandFailed(f"pip download of {pin.name}=={pin.version} gave no sdist")
        digest = _verify(archives[0], pin.sha256, archives[0].name, delete=True)
        check_file_name(pin, archives[0].name)
        check_sdist(pin, archives[0], archives[0].name)
        _publish(archives[0], final)
    return FetchResult(final, digest, pin.describe_source(), cached=False)


def _fetch_file(distro: Distro, pin: Pin, root: Path) -> FetchResult:
    assert pin.path is not None
    source = Path(pin.path).expanduser()
    if not source.is_absolute():
        source = distro.root / source
    if source.is_dir():
        matches = sorted(source.glob(f"{pin.name}-{pin.version}.tar.gz"))
        if not matches:
            raise ConfigError(f"{source}: no {pin.name}-{pin.version}.tar.gz in the mirror")
        source = matches[0]
    # The pin names this file: gone is an error even when a copy of its hash is cached.
    if not source.is_file():
        raise ConfigError(f"upstream archive {source} not found",
                          hint="restore it, or change 'path' in build/upstream.toml")
    check_file_name(pin, source.name)
    final = root / "archives" / "sha256" / pin.sha256 / f"{pin.name}-{pin.version}.tar.gz"
    hit = _cached(final, pin)
    if hit:
        return hit
    # Verify the user's file in place; never delete it, only our copy.
    _verify(source, pin.sha256, str(source), delete=False)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = scratch.make_file(root, ".copy-")
    os.close(fd)
    try:
        try:
            shutil.copyfile(source, tmp)
        except OSError as exc:
            raise os_failure(exc, f"copy {source} into the cache") from exc
        digest = _verify(Path(tmp), pin.sha256, str(source), delete=True)
        check_sdist(pin, Path(tmp), str(source))
        _publish(Path(tmp), final)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return FetchResult(final, digest, pin.describe_source(), cached=False)


def git_source_url(distro: Distro, pin: Pin) -> str:
    """The pin's git URL; a relative local path is taken from the distro repository, like a file source."""
    assert pin.url
    if pin.url.startswith("-"):
        raise ConfigError(f"{pin.url!r} is not a git URL or path")
    if gitrepo.is_url(pin.url):
        return pin.url
    path = Path(pin.url).expanduser()
    return str(path if path.is_absolute() else distro.root / path)


def _fetch_git(distro: Distro, pin: Pin, root: Path) -> FetchResult:
    assert pin.url and pin.tag and pin.commit
    check_tag(pin)
    final = root / "archives" / "git" / pin.commit / f"{pin.name}-{pin.version}.tar"
    if final.is_file():
        return FetchResult(final, sha256_of(final), pin.describe_source(), cached=True)
    root.mkdir(parents=True, exist_ok=True)
    with scratch.directory(root, ".clone-") as tmp:
        clone = Path(tmp) / "repo"
        commit = gitrepo.clone_at_tag(git_source_url(distro, pin), pin.tag, clone)
        if commit != pin.commit:
            raise VerificationError(
                f"{pin.url} tag {pin.tag} points to {commit}, not the pinned commit {pin.commit}; "
                "the clone was deleted", hint="check the pin in build/upstream.toml")
        out = Path(tmp) / "archive.tar"
        gitrepo.archive(clone, commit, f"{pin.name}-{pin.version}/", out)
        final.parent.mkdir(parents=True, exist_ok=True)
        _publish(out, final)
    return FetchResult(final, sha256_of(final), pin.describe_source(), cached=False)
