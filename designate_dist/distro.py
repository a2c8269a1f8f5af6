"""The distribution repository: its layout and the pin of upstream.

A distribution repository (this repo's root is one) holds::

    build/upstream.toml   the pin of upstream (name, version, source, sha256) and distro revision
    build/constraints.txt the lock file: every dependency as name==version
    build/test-exclusions.txt  upstream tests we do not run, each with a reason
    cherry-pick/series    upstream backports, applied first
    customs/series        our own changes, applied second
    patches/              the exported series for the Debian source package (generated)
    dist/                 build outputs (the default --output; not committed)
    debian/               packaging of the patched Designate
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from designate_dist.atomic import write_text
from designate_dist.errors import ConfigError
from designate_dist.versions import DistroVersion

PIN_FILE = Path("build") / "upstream.toml"
LOCK_FILE = Path("build") / "constraints.txt"
EXCLUSIONS_FILE = Path("build") / "test-exclusions.txt"
SERIES_DIRS = ("cherry-pick", "customs")
#: Where builds go unless told otherwise (``--output``): ``DISTRO/dist``.
OUTPUT_DIR = Path("dist")
SOURCE_KINDS = ("pypi", "git", "file")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GIT_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
#: A project name as PEP 508 allows it: it becomes a directory and file name, so nothing more.
_PROJECT_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
#: The characters a PEP 440 version can hold (it is checked as one too): no separators, no spaces.
_VERSION_CHARS = re.compile(r"^[A-Za-z0-9.!+_-]+$")
#: How a git source may be reached; no remote helpers (``ext::``, ``fd::``) or unknown transports.
_GIT_SCHEMES = ("https", "http", "ssh", "git", "git+ssh", "ssh+git", "file")
DEFAULT_MAINTAINER = "designate-dist <designate-dist@localhost>"


@dataclass(frozen=True)
class Pin:
    """The pinned upstream release and the distro revision built on it."""

    name: str
    version: str
    source: str
    sha256: str
    revision: int
    url: str | None = None
    tag: str | None = None
    path: str | None = None
    commit: str | None = None
    maintainer: str = DEFAULT_MAINTAINER

    @property
    def distro_version(self) -> DistroVersion:
        return DistroVersion(self.version, self.revision)

    def describe_source(self) -> str:
        if self.source == "git":
            return f"git {self.url} {self.tag}"
        if self.source == "file":
            return f"file {self.path}"
        return f"pypi {self.name}=={self.version}"


def _require(table: dict, key: str, where: str, kind: type) -> object:
    if key not in table:
        raise ConfigError(f"{where}: missing key {key!r}")
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(f"{where}: {key!r} must be a {kind.__name__}, not {value!r}")
    return value


def _optional_str(table: dict, key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: {key!r} must be a string, not {value!r}")
    return value


def check_git_url(url: str, where: str) -> None:
    """A git source URL: a known transport, an scp-like ``host:path`` or a local path (relative: the distro's)."""
    scheme, sep, _ = url.partition("://")
    if "::" in url.split("://", 1)[0]:
        raise ConfigError(f"{where}: git url {url!r}: remote helper {url.split('::', 1)[0]!r}:: is not "
                          "allowed (it runs a command)")
    if url.startswith("-") or any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise ConfigError(f"{where}: git url {url!r} is not a URL")
    if sep and scheme.lower() not in _GIT_SCHEMES:
        raise ConfigError(f"{where}: git url {url!r}: transport {scheme!r} is not allowed "
                          f"(use one of {', '.join(_GIT_SCHEMES)})")


def parse_pin(text: str, where: str = str(PIN_FILE)) -> Pin:
    """Parse the text of a pin file (TOML) into a :class:`Pin`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from exc
    upstream = data.get("upstream")
    if not isinstance(upstream, dict):
        raise ConfigError(f"{where}: missing [upstream] table")
    distro = data.get("distro", {})
    if not isinstance(distro, dict):
        raise ConfigError(f"{where}: [distro] must be a table")
    name = str(_require(upstream, "name", where, str))
    if not _PROJECT_NAME.match(name):
        raise ConfigError(f"{where}: name {name!r} is not a package name "
                          "(letters, digits, '.', '_' and '-' only)")
    version = str(_require(upstream, "version", where, str))
    if not _VERSION_CHARS.match(version):
        raise ConfigError(f"{where}: version {version!r} is not a PEP 440 version")
    for key in ("source", "sha256", "url", "tag", "path", "commit"):
        _optional_str(upstream, key, where)
    _optional_str(distro, "maintainer", where)
    source = str(upstream.get("source", "pypi"))
    if source not in SOURCE_KINDS:
        raise ConfigError(f"{where}: source must be one of {', '.join(SOURCE_KINDS)}, not {source!r}")
    sha256 = str(upstream.get("sha256", "")).lower()
    commit = upstream.get("commit")
    if source == "git":
        if not upstream.get("url") or not upstream.get("tag"):
            raise ConfigError(f"{where}: a git source needs 'url' and 'tag'")
        check_git_url(upstream["url"], where)
        if upstream["tag"].startswith("-") or not all(c.isprintable() and not c.isspace()
                                                      for c in upstream["tag"]):
            raise ConfigError(f"{where}: tag {upstream['tag']!r} is not a tag name")
        if not isinstance(commit, str) or not _GIT_COMMIT.match(commit.lower()):
            raise ConfigError(f"{where}: a git source needs 'commit', the full commit id the tag must point to")
        commit = commit.lower()
    elif not _SHA256.match(sha256):
        raise ConfigError(f"{where}: 'sha256' must be 64 hex digits, not {sha256!r}")
    if source == "file" and not upstream.get("path"):
        raise ConfigError(f"{where}: a file source needs 'path'")
    revision = distro.get("revision", 1)
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 1:
        raise ConfigError(f"{where}: [distro] revision must be an integer >= 1, not {revision!r}")
    pin = Pin(name=name, version=version, source=source, sha256=sha256, revision=revision,
              url=upstream.get("url"), tag=upstream.get("tag"), path=upstream.get("path"),
              commit=commit, maintainer=str(distro.get("maintainer", DEFAULT_MAINTAINER)))
    _ = pin.distro_version  # validates the version and revision
    return pin


def render_pin(pin: Pin) -> str:
    """The TOML text of ``pin``, with the comments that document the file."""
    def q(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        "# The pinned upstream release this distribution is built from.",
        "# Read by designate-dist; rewritten by `designate-dist rebase` and `release`.",
        "#",
        "# source: pypi (the sdist from the package index, verified by sha256),",
        "#         git  (url + tag, verified by the commit the tag must point to),",
        "#         file (path to a local tarball or mirror copy, verified by sha256).",
        "[upstream]",
        f"name = {q(pin.name)}",
        f"version = {q(pin.version)}",
        f"source = {q(pin.source)}",
    ]
    if pin.sha256:
        lines.append(f"sha256 = {q(pin.sha256)}")
    for key in ("url", "tag", "commit", "path"):
        value = getattr(pin, key)
        if value:
            lines.append(f"{key} = {q(value)}")
    lines += [
        "",
        "# The distro revision N: the wheel is <version>.post<N>, the deb 1:<version>-<N>.",
        "# Bump it for every release of the same upstream version; a rebase resets it to 1.",
        "[distro]",
        f"revision = {pin.revision}",
        f"maintainer = {q(pin.maintainer)}",
        "",
    ]
    return "\n".join(lines)


def read_utf8(path: Path, where: str) -> str:
    """The text of ``path``; a file that is not UTF-8 is a :class:`ConfigError`, not a traceback."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


@dataclass(frozen=True)
class Distro:
    """A distribution repository on disk."""

    root: Path
    pin: Pin
    work_root: Path = field(default=Path())

    @property
    def pin_file(self) -> Path:
        return self.root / PIN_FILE

    @property
    def lock_file(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def exclusions_file(self) -> Path:
        return self.root / EXCLUSIONS_FILE

    def series_dir(self, name: str) -> Path:
        return self.root / name

    @property
    def work_tree(self) -> Path:
        """Where the patched upstream tree of the pinned version lives."""
        return self.work_root / f"{self.pin.name}-{self.pin.version}"

    def output_root(self, output: Path | None = None) -> Path:
        """Where builds go: ``output``, else ``DISTRO/dist``."""
        return output or self.root / OUTPUT_DIR

    @property
    def state_dir(self) -> Path:
        return self.work_root / "state"

    def with_pin(self, pin: Pin) -> Distro:
        return replace(self, pin=pin)

    def save_pin(self, pin: Pin) -> None:
        write_text(self.pin_file, render_pin(pin))


def load_distro(root: str | os.PathLike[str] | None = None,
                work_root: str | os.PathLike[str] | None = None) -> Distro:
    """Load the distribution repository at ``root`` (default: the current directory)."""
    base = Path(root or ".").resolve()
    pin_path = base / PIN_FILE
    if not pin_path.is_file():
        raise ConfigError(f"{base} is not a distribution repository: {PIN_FILE} not found",
                          hint="pass --distro DIR")
    pin = parse_pin(read_utf8(pin_path, str(PIN_FILE)), str(PIN_FILE))
    work = Path(work_root).resolve() if work_root else base / ".work"
    return Distro(root=base, pin=pin, work_root=work)
