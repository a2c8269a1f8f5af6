"""Stage: fetch the pinned upstream archive into a content-addressed cache and verify it.

Cache layout (root: ``$DESIGNATE_DIST_CACHE``, else ``$XDG_CACHE_HOME/designate-dist``,
else ``~/.cache/designate-dist``)::

    archives/sha256/<sha256>/<name>-<version>.tar.gz     pypi and file sources
    archives/git/<commit>/<name>-<version>.tar            git sources (git archive of the tag)

A cached archive is re-hashed before every use; a download that does not match
the pin is deleted and the stage fails with exit code 5.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from designate_dist import gitrepo
from designate_dist.distro import Distro, Pin
from designate_dist.errors import CommandFailed, ConfigError, VerificationError
from designate_dist.runner import run

CACHE_ENV = "DESIGNATE_DIST_CACHE"


def cache_root() -> Path:
    """The user cache directory of designate-dist."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "designate-dist"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    if pin.source == "pypi":
        return _fetch_pypi(pin, root)
    if pin.source == "file":
        return _fetch_file(distro, pin, root)
    if pin.source == "git":
        return _fetch_git(distro, pin, root)
    raise ConfigError(f"unknown source kind {pin.source!r}")


def _cached(final: Path, pin: Pin) -> FetchResult | None:
    if final.is_file():
        _verify(final, pin.sha256, f"cached {final.name}", delete=True)
        return FetchResult(final, pin.sha256, pin.describe_source(), cached=True)
    return None


def _fetch_pypi(pin: Pin, root: Path) -> FetchResult:
    final_dir = root / "archives" / "sha256" / pin.sha256
    for existing in sorted(final_dir.glob("*.tar.gz")) if final_dir.is_dir() else []:
        hit = _cached(existing, pin)
        if hit:
            return hit
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
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
        final = final_dir / f"{pin.name}-{pin.version}.tar.gz"
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
    final = root / "archives" / "sha256" / pin.sha256 / f"{pin.name}-{pin.version}.tar.gz"
    hit = _cached(final, pin) if final.is_file() else None
    if hit:
        return hit
    if not source.is_file():
        raise ConfigError(f"upstream archive {source} not found")
    # Verify the user's file in place; never delete it, only our copy.
    _verify(source, pin.sha256, str(source), delete=False)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".copy-")
    os.close(fd)
    shutil.copyfile(source, tmp)
    digest = _verify(Path(tmp), pin.sha256, str(source), delete=True)
    _publish(Path(tmp), final)
    return FetchResult(final, digest, pin.describe_source(), cached=False)


def git_source_url(distro: Distro, pin: Pin) -> str:
    """The pin's git URL; a relative local path is taken from the distro repository, like a file source."""
    assert pin.url
    from designate_dist.history import is_url
    if pin.url.startswith("-"):
        raise ConfigError(f"{pin.url!r} is not a git URL or path")
    if is_url(pin.url):
        return pin.url
    path = Path(pin.url).expanduser()
    return str(path if path.is_absolute() else distro.root / path)


def _fetch_git(distro: Distro, pin: Pin, root: Path) -> FetchResult:
    assert pin.url and pin.tag and pin.commit
    final = root / "archives" / "git" / pin.commit / f"{pin.name}-{pin.version}.tar"
    if final.is_file():
        return FetchResult(final, sha256_of(final), pin.describe_source(), cached=True)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".clone-") as tmp:
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
