"""Stage: publish a build into a local repository that serves both apt and pip.

Operators upgrade and roll back with Ansible from one directory::

    DIR/
      Packages, Packages.gz, Release   flat apt repository: deb [signed-by=KEYRING] URL ./
      InRelease, Release.gpg           with --sign-key: Release clear-signed and signed (GnuPG)
      signing-key.asc                  with --sign-key: the public key, for signed-by=
      pool/<name>_<ver>_<arch>.deb     every published .deb
      wheels/<file>.whl                our wheels and every locked dependency wheel
      simple/index.html                PEP 503 root, simple/<project>/index.html per project
      constraints/<pep440>.txt         each release's lock file (pip -c)
      manifests/<pep440>.json          each build's manifest.json, byte for byte
      releases.json                    every release, ascending by version
      .lock                            fcntl lock serializing publishers

Every earlier release stays (rollback needs it).  Publishing is all or
nothing: the build is verified against its manifest, the wheelhouse against
its SHA256SUMS, and every file that would be written is compared with the
repository's before anything is written; a file of the same name with other
bytes is refused.  Artifacts are written first (temp file + rename), then the
indexes, ``Release`` and its signatures last (``InRelease``, which apt reads
first, at the very end); an index whose bytes do not change is not rewritten,
so publishing the same build again changes nothing.  The indexes depend only
on the repository's content: the same releases give byte-identical indexes
(the signatures carry their signing time: a valid one is kept, not remade).

The indexes are ours, not apt-ftparchive's or dpkg-scanpackages': a stanza is
byte-for-byte what ``dpkg-scanpackages -m`` writes, but both standard tools
list the versions of a package in directory order, which differs between two
copies of the same repository; ours are in Debian version order.
"""
from __future__ import annotations

import email.utils
import fcntl
import gzip
import hashlib
import html
import io
import json
import os
import re
import shutil
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import HeaderParser
from functools import cmp_to_key
from pathlib import Path
from typing import Any
from urllib.parse import quote

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from designate_dist.atomic import write_bytes
from designate_dist.deb import read_lock
from designate_dist.errors import (
    BuildLocked,
    ConfigError,
    PublishConflict,
    VerificationError,
)
from designate_dist.fetch import cache_root, sha256_of
from designate_dist.manifest import MANIFEST, artifact_problem
from designate_dist.runner import run
from designate_dist.scratch import make_file, sweep_temp_files
from designate_dist.signing import (
    SigningKey,
    export_public_key,
    find_key,
    sign_release,
    signatures_valid,
)
from designate_dist.versions import same_version

Progress = Callable[[str], None]
RELEASES_FORMAT = 1
ORIGIN = "designate-dist"
#: The repository's public key (armored), written by a signed publish.
KEY_FILE = "signing-key.asc"
SIGNATURES = ("Release.gpg", "InRelease")  # written after Release, in this order
#: Fields an index adds to a .deb's control fields, and the fields they go before
#: (dpkg-scanpackages' order, so that both tools write the same stanza).
_INDEX_FIELDS = ("Filename", "Size", "MD5sum", "SHA1", "SHA256")
_AFTER_INDEX_FIELDS = frozenset({"Section", "Priority", "Multi-Arch", "Homepage", "Description",
                                 "Tag", "Task"})


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class PublishRequest:
    repo: Path                      # the repository directory (created if missing)
    build_dir: Path                 # holds manifest.json and the artifacts
    lock_file: Path                 # the lock the build was made with (sha256 = inputs.lock)
    wheelhouse: Path | None = None  # default: <cache>/wheelhouse/<inputs.lock>
    #: Seconds to wait for another publisher's lock; None waits as long as it takes.
    lock_timeout: float | None = None
    #: The GnuPG secret key that signs Release (fingerprint, key id or user id); None: unsigned.
    sign_key: str | None = None
    #: The GnuPG home holding it (default: GNUPGHOME, else ~/.gnupg).
    gnupg_home: Path | None = None


@dataclass(frozen=True)
class PublishResult:
    repo: Path
    pep440: str
    debian: str
    added: tuple[str, ...]          # artifacts written (relative to repo)
    present: tuple[str, ...]        # artifacts already there with the same bytes
    indexes: tuple[str, ...]        # indexes written (unchanged ones are not)
    signed_by: str | None = None    # the signing key's fingerprint

    @property
    def already_published(self) -> bool:
        return not self.added

    def summary(self) -> str:
        signed = f"; signed by {self.signed_by}" if self.signed_by else ""
        if self.already_published:
            line = f"{self.pep440} ({self.debian}) already published in {self.repo}"
            return line + (f"; rewrote {', '.join(self.indexes)}" if self.indexes else
                           "; nothing changed") + signed

        def count(prefix: str) -> int:
            return sum(path.startswith(prefix) for path in self.added)

        debs, wheels = count("pool/"), count("wheels/")
        parts = ([f"{debs} deb{'s' * (debs != 1)}"] if debs else []) + \
            ([f"{wheels} wheel{'s' * (wheels != 1)}"] if wheels else []) + \
            (["constraints"] if count("constraints/") else []) + (["manifest"] if count("manifests/") else [])
        return (f"published {self.pep440} ({self.debian}) into {self.repo}: added {', '.join(parts)}; "
                f"{len(self.present)} file(s) already present{signed}")


# --- Debian versions -------------------------------------------------------------------------

def _order(char: str) -> int:
    if not char or char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    if char == "~":
        return -1
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: non-digit runs by _order, digit runs numerically."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i] if i < len(a) else "")
            bc = _order(b[j] if j < len(b) else "")
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        start_i, start_j = i, j
        while i < len(a) and a[i].isdigit():
            i += 1
        while j < len(b) and b[j].isdigit():
            j += 1
        na, nb = int(a[start_i:i] or 0), int(b[start_j:j] or 0)
        if na != nb:
            return -1 if na < nb else 1
    return 0


def _split_version(version: str) -> tuple[int, str, str]:
    epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch or 0), upstream, revision


def compare_debian_versions(a: str, b: str) -> int:
    """Like ``dpkg --compare-versions``: negative, zero or positive."""
    ea, ua, ra = _split_version(a)
    eb, ub, rb = _split_version(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


def _noepoch(version: str) -> str:
    return version.split(":", 1)[1] if ":" in version else version


# --- reading the inputs ----------------------------------------------------------------------

@dataclass(frozen=True)
class _File:
    """A file the repository must hold: ``dest`` relative to the repository."""

    dest: str
    sha256: str
    size: int
    source: Path | None = None
    data: bytes | None = None

    def content(self) -> bytes:
        return self.data if self.data is not None else self.source.read_bytes()


@dataclass(frozen=True)
class _Deb:
    control: tuple[tuple[str, str], ...]   # (field, value with continuation lines)
    path: Path                            # where its bytes are now
    filename: str                         # pool/...

    def field(self, name: str) -> str:
        return next((v for k, v in self.control if k.lower() == name.lower()), "")


@dataclass(frozen=True)
class _Wheel:
    file: str
    project: str                            # canonical name
    version: str
    sha256: str
    requires_python: str | None


@dataclass
class _Plan:
    manifest: dict[str, Any]
    manifest_bytes: bytes
    files: list[_File] = field(default_factory=list)
    debs: list[_Deb] = field(default_factory=list)
    wheels: list[_Wheel] = field(default_factory=list)     # every wheel of this release
    own_wheels: list[_Wheel] = field(default_factory=list)

    @property
    def pep440(self) -> str:
        return self.manifest["distro_version"]["pep440"]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(build_dir: Path) -> tuple[dict[str, Any], bytes]:
    path = build_dir / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{build_dir}: no {MANIFEST} (not a finished build)",
                          hint="run `designate-dist build` first, or pass --build DIR") from None
    try:
        data = json.loads(raw)
        data["distro_version"]["pep440"], data["distro_version"]["debian"]  # noqa: B018
        data["artifacts"], data["source_date_epoch"]  # noqa: B018
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a designate-dist build manifest ({exc})") from None
    _check_manifest(data, path)
    return data, raw


_ARTIFACT_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+~-]*(/[A-Za-z0-9_][A-Za-z0-9._+~-]*)?$")


def _check_manifest(data: Any, path: Path) -> None:
    """The fields publish turns into file names and index entries, checked before any is used."""
    def bad(what: str) -> ConfigError:
        return ConfigError(f"{path}: not a designate-dist build manifest ({what})")

    if not isinstance(data, dict) or not isinstance(data.get("distro_version"), dict):
        raise bad("no distro_version table")
    pep440, debian = data["distro_version"]["pep440"], data["distro_version"]["debian"]
    try:
        if not isinstance(pep440, str) or not re.fullmatch(r"[A-Za-z0-9.!+_-]+", pep440):
            raise InvalidVersion(pep440)
        Version(pep440)
    except InvalidVersion:
        raise bad(f"distro_version.pep440 {pep440!r} is not a PEP 440 version") from None
    if not isinstance(debian, str) or not _DEB_VERSION.match(debian):
        raise bad(f"distro_version.debian {debian!r} is not a Debian version")
    epoch = data["source_date_epoch"]
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise bad(f"source_date_epoch {epoch!r} is not a UNIX time")
    if not isinstance(data["artifacts"], list):
        raise bad("artifacts is not a list")
    for artifact in data["artifacts"]:
        if not (isinstance(artifact, dict) and isinstance(artifact.get("file"), str)
                and _ARTIFACT_FILE.match(artifact["file"])
                and isinstance(artifact.get("size"), int) and isinstance(artifact.get("sha256"), str)
                and re.fullmatch(r"[0-9a-f]{64}", artifact["sha256"])):
            raise bad(f"artifact entry {artifact!r} is not a file name, size and sha256")


def verify_build(build_dir: Path, manifest: dict[str, Any]) -> list[Path]:
    """Every artifact of the manifest, checked for size and sha256; returns their paths."""
    paths = []
    for artifact in manifest["artifacts"]:
        problem = artifact_problem(build_dir, artifact)
        if problem == "missing":
            raise VerificationError(f"build {build_dir}: artifact {artifact['file']} is missing",
                                    hint="rebuild with `designate-dist build --rebuild`")
        if problem:
            raise VerificationError(f"build {build_dir}: {artifact['file']} {problem} (corrupted build)",
                                    hint="rebuild with `designate-dist build --rebuild`")
        paths.append(build_dir / artifact["file"])
    return paths


def read_sums(wheelhouse: Path) -> dict[str, str]:
    """``{file name: sha256}`` of a wheelhouse's SHA256SUMS."""
    sums = {}
    for number, line in enumerate((wheelhouse / "SHA256SUMS").read_text().splitlines(), 1):
        if not line.strip():
            continue
        digest, _, name = line.partition(" ")
        name = name[1:] if name[:1] in (" ", "*") else name  # text or binary mode of sha256sum
        if not re.fullmatch(r"[0-9a-f]{64}", digest) or "/" in name or not name.endswith(".whl") \
                or name.startswith("."):
            raise VerificationError(f"{wheelhouse}/SHA256SUMS:{number}: malformed line {line!r}")
        sums[name] = digest
    return sums


def wheel_metadata(path: Path) -> tuple[str, str, str | None]:
    """``(canonical project, version, Requires-Python or None)`` of a wheel file."""
    try:
        name, version, _, _ = parse_wheel_filename(path.name)
        project, version_text = str(name), str(version)
    except (InvalidWheelFilename, InvalidVersion):
        project = version_text = ""
    try:
        with zipfile.ZipFile(path) as archive:
            meta = next((n for n in archive.namelist()
                         if n.count("/") == 1 and n.endswith(".dist-info/METADATA")), None)
            if meta is None:
                raise VerificationError(f"{path.name}: not a wheel (no .dist-info/METADATA)")
            headers = HeaderParser().parsestr(archive.read(meta).decode("utf-8", "replace"))
    except zipfile.BadZipFile:
        raise VerificationError(f"{path.name}: not a wheel (not a zip file)") from None
    project = project or canonicalize_name(headers.get("Name", ""))
    version_text = version_text or headers.get("Version", "")
    if not project:
        raise VerificationError(f"{path.name}: a wheel without a project name")
    requires = headers.get("Requires-Python")
    return project, version_text, (requires.strip() if requires and requires.strip() else None)


def _wheel(path: Path, sha256: str) -> _Wheel:
    project, version, requires = wheel_metadata(path)
    return _Wheel(path.name, project, version, sha256, requires)


def deb_control(path: Path) -> tuple[tuple[str, str], ...]:
    """The control fields of a .deb, in their order, continuation lines kept."""
    text = run(["dpkg-deb", "-f", str(path)], what=f"read the control fields of {path.name}").stdout
    fields: list[list[str]] = []
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and fields:
            fields[-1][1] += "\n" + line
        elif ":" in line:
            name, _, value = line.partition(":")
            fields.append([name.strip(), value.strip()])
    control = tuple((k, v) for k, v in fields)
    names = {k for k, _ in control}
    if not {"Package", "Version", "Architecture"} <= names:
        raise VerificationError(f"{path.name}: control fields lack Package, Version or Architecture")
    return control


_DEB_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]*$")
_DEB_VERSION = re.compile(r"^([0-9]+:)?[A-Za-z0-9][A-Za-z0-9.+~-]*$")


def _deb(path: Path) -> _Deb:
    control = deb_control(path)
    values = dict(control)
    if not (_DEB_NAME.match(values["Package"]) and _DEB_VERSION.match(values["Version"])
            and _DEB_NAME.match(values["Architecture"])):
        raise VerificationError(f"{path.name}: unusable Package/Version/Architecture "
                                f"{values['Package']!r} {values['Version']!r} {values['Architecture']!r}")
    name = f"{values['Package']}_{_noepoch(values['Version'])}_{values['Architecture']}.deb"
    return _Deb(control, path, f"pool/{name}")


def default_wheelhouse(lock_sha256: str) -> Path:
    return cache_root() / "wheelhouse" / lock_sha256


def plan(request: PublishRequest) -> _Plan:
    """Verify the build, its lock and its wheelhouse; what the repository must hold for it."""
    manifest, raw = read_manifest(request.build_dir)
    result = _Plan(manifest, raw)
    pep440 = result.pep440
    artifacts = verify_build(request.build_dir, manifest)
    by_path = {p: a for p, a in zip(artifacts, manifest["artifacts"])}

    lock_sha = manifest.get("inputs", {}).get("lock", "")
    if not lock_sha:
        raise ConfigError(f"build {pep440}: its manifest records no lock file (inputs.lock)")
    try:
        lock_bytes = request.lock_file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{request.lock_file}: cannot read the lock file: {exc.strerror}") from None
    if _sha256(lock_bytes) != lock_sha:
        raise VerificationError(
            f"{request.lock_file} has sha256 {_sha256(lock_bytes)[:16]}..., but build {pep440} "
            f"was made with the lock {lock_sha[:16]}...",
            hint="check out the distro commit of that build, or pass --lock FILE")

    wheelhouse = request.wheelhouse or default_wheelhouse(lock_sha)
    if not (wheelhouse / "SHA256SUMS").is_file():
        raise ConfigError(
            f"no wheelhouse for lock {lock_sha[:16]}... at {wheelhouse}",
            hint="run a build with the deb stage (it makes the wheelhouse), or pass --wheelhouse DIR")
    sums = read_sums(wheelhouse)
    for name, digest in sorted(sums.items()):
        path = wheelhouse / name
        if not path.is_file():
            raise VerificationError(f"wheelhouse {wheelhouse}: {name} is listed in SHA256SUMS but missing")
        actual = sha256_of(path)
        if actual != digest:
            raise VerificationError(f"wheelhouse {wheelhouse}: {name} has sha256 {actual[:16]}..., "
                                    f"SHA256SUMS says {digest[:16]}...")
        wheel = _wheel(path, digest)
        result.files.append(_File(f"wheels/{name}", digest, path.stat().st_size, source=path))
        result.wheels.append(wheel)
    for pin_name, pin_version in read_lock(request.lock_file):
        found = next((w for w in result.wheels if w.project == canonicalize_name(pin_name)
                      and same_version(w.version, pin_version)), None)
        if found is None:
            raise VerificationError(f"wheelhouse {wheelhouse} has no wheel for {pin_name}=={pin_version} "
                                    f"of the lock")

    for path in artifacts:
        artifact = by_path[path]
        if path.parent != request.build_dir:
            continue  # tests/ and other reports stay with the build
        if path.suffix == ".whl":
            wheel = _wheel(path, artifact["sha256"])
            result.own_wheels.append(wheel)
            result.wheels.append(wheel)
            result.files.append(_File(f"wheels/{path.name}", artifact["sha256"], artifact["size"],
                                      source=path))
        elif path.suffix == ".deb":
            deb = _deb(path)
            result.debs.append(deb)
            result.files.append(_File(deb.filename, artifact["sha256"], artifact["size"], source=path))
    if not result.debs and not result.own_wheels:
        raise ConfigError(f"build {pep440} has neither a .deb nor a wheel to publish")
    result.files.append(_File(f"constraints/{pep440}.txt", lock_sha, len(lock_bytes), data=lock_bytes))
    result.files.append(_File(f"manifests/{pep440}.json", _sha256(raw), len(raw), data=raw))

    seen: dict[str, _File] = {}
    for item in result.files:
        other = seen.setdefault(item.dest, item)
        if other.sha256 != item.sha256:
            raise PublishConflict(f"build {pep440}: two different files would become {item.dest}")
    result.files = list(seen.values())
    return result


# --- the repository --------------------------------------------------------------------------

@contextmanager
def repo_lock(repo: Path, timeout: float | None) -> Iterator[None]:
    """Hold the fcntl lock of ``repo/.lock`` (the file itself is never rewritten)."""
    repo.mkdir(parents=True, exist_ok=True)
    handle = open(repo / ".lock", "a")
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise BuildLocked(f"another designate-dist publish holds {repo / '.lock'}",
                                      hint="wait for it to finish") from None
                time.sleep(0.1)
        yield
    finally:
        handle.close()


def install_file(repo: Path, item: _File) -> None:
    """Write one artifact: a temp file in the same directory, fsync, rename."""
    dest = repo / item.dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    if item.data is not None:
        write_bytes(dest, item.data, mode=0o644)
        return
    fd, tmp = make_file(dest.parent, f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, open(item.source, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        if sha256_of(Path(tmp)) != item.sha256:  # the source changed under us
            raise VerificationError(f"{item.source} changed while it was being published")
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _conflicts(repo: Path, files: Iterable[_File]) -> tuple[list[_File], list[_File], list[str]]:
    new, present, conflicts = [], [], []
    for item in files:
        dest = repo / item.dest
        if not dest.exists():
            new.append(item)
            continue
        actual = sha256_of(dest) if dest.is_file() else "not-a-file"
        if actual == item.sha256:
            present.append(item)
        else:
            conflicts.append(f"{item.dest} (repository sha256 {actual[:12]}, "
                             f"this build {item.sha256[:12]})")
    return new, present, conflicts


def _read_releases(repo: Path) -> list[dict[str, Any]]:
    path = repo / "releases.json"
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
        releases = data["releases"]
        if data.get("format") != RELEASES_FORMAT or not isinstance(releases, list):
            raise ValueError(f"format {data.get('format')!r}")
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a releases.json of this tool ({exc})") from None
    return releases


def release_entry(plan_: _Plan) -> dict[str, Any]:
    manifest = plan_.manifest
    version = manifest["distro_version"]
    return {
        "pep440": version["pep440"],
        "debian": version["debian"],
        "upstream": manifest.get("upstream", {}).get("version", ""),
        "revision": int(version.get("revision", 0)),
        "migration_head": (manifest.get("database") or {}).get("migration_head"),
        "debs": [{"package": d.field("Package"), "file": d.filename,
                  "sha256": next(f.sha256 for f in plan_.files if f.dest == d.filename)}
                 for d in plan_.debs],
        "wheels": [{"project": w.project, "file": f"wheels/{w.file}", "sha256": w.sha256}
                   for w in plan_.own_wheels],
        "constraints": f"constraints/{version['pep440']}.txt",
        "manifest": f"manifests/{version['pep440']}.json",
        "source_date_epoch": int(manifest["source_date_epoch"]),
    }


def releases_json(releases: list[dict[str, Any]]) -> bytes:
    ordered = sorted(releases, key=lambda r: Version(r["pep440"]))
    return (json.dumps({"format": RELEASES_FORMAT, "releases": ordered}, indent=2, sort_keys=True)
            + "\n").encode()


def _hashes(path: Path) -> tuple[int, str, str, str]:
    md5, sha1, sha256 = hashlib.md5(), hashlib.sha1(), hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            size += len(block)
            md5.update(block)
            sha1.update(block)
            sha256.update(block)
    return size, md5.hexdigest(), sha1.hexdigest(), sha256.hexdigest()


def packages_index(debs: Iterable[_Deb]) -> bytes:
    """The ``Packages`` file: each deb's control fields plus Filename/Size/hashes."""
    def key(a: _Deb, b: _Deb) -> int:
        return ((a.field("Package") > b.field("Package")) - (a.field("Package") < b.field("Package"))
                or compare_debian_versions(a.field("Version"), b.field("Version"))
                or (a.filename > b.filename) - (a.filename < b.filename))

    stanzas = []
    for deb in sorted(debs, key=cmp_to_key(key)):
        size, md5, sha1, sha256 = _hashes(deb.path)
        extra = dict(zip(_INDEX_FIELDS, (deb.filename, str(size), md5, sha1, sha256)))
        lines = []
        for name, value in deb.control:
            if name in extra:
                continue
            if name in _AFTER_INDEX_FIELDS:
                lines += [f"{k}: {v}" for k, v in extra.items()]
                extra = {}
            lines.append(f"{name}: {value}")
        lines += [f"{k}: {v}" for k, v in extra.items()]
        stanzas.append("\n".join(lines) + "\n")
    return "".join(stanza + "\n" for stanza in stanzas).encode()


def gzip_bytes(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buffer.getvalue()


def release_file(indexes: dict[str, bytes], architectures: Iterable[str], epoch: int) -> bytes:
    """``Release`` of a flat repository, dated by the newest release (reproducible)."""
    lines = [f"Origin: {ORIGIN}", f"Label: {ORIGIN}",
             f"Date: {email.utils.formatdate(epoch, usegmt=True).replace('GMT', 'UTC')}",
             f"Architectures: {' '.join(sorted(set(architectures))) or 'all'}",
             "Description: designate-dist releases (apt and pip)"]
    for title, algorithm in (("MD5Sum", hashlib.md5), ("SHA1", hashlib.sha1),
                             ("SHA256", hashlib.sha256)):
        lines.append(f"{title}:")
        for name, data in sorted(indexes.items()):
            lines.append(f" {algorithm(data).hexdigest()} {len(data):>16} {name}")
    return ("\n".join(lines) + "\n").encode()


_PAGE = ("<!DOCTYPE html>\n<html>\n  <head>\n"
         '    <meta name="pypi:repository-version" content="1.0">\n'
         "    <title>{title}</title>\n  </head>\n  <body>\n{body}  </body>\n</html>\n")


def simple_root(projects: Iterable[str]) -> bytes:
    body = "".join(f'    <a href="{quote(p)}/">{html.escape(p)}</a><br>\n' for p in sorted(set(projects)))
    return _PAGE.format(title="Simple index", body=body).encode()


def simple_project(project: str, wheels: Iterable[_Wheel]) -> bytes:
    def order(wheel: _Wheel) -> tuple:
        try:
            return (0, Version(wheel.version), wheel.file)
        except InvalidVersion:
            return (1, Version("0"), wheel.file)

    body = ""
    for wheel in sorted(wheels, key=order):
        requires = (f' data-requires-python="{html.escape(wheel.requires_python, quote=True)}"'
                    if wheel.requires_python else "")
        body += (f'    <a href="../../wheels/{quote(wheel.file)}#sha256={wheel.sha256}"{requires}>'
                 f"{html.escape(wheel.file)}</a><br>\n")
    return _PAGE.format(title=f"Links for {html.escape(project)}", body=body).encode()


def _existing_wheels(repo: Path, planned: dict[str, _Wheel]) -> list[_Wheel]:
    wheels = dict(planned)
    directory = repo / "wheels"
    if directory.is_dir():
        for path in sorted(directory.glob("*.whl")):
            if path.name.startswith(".") or path.name in wheels:
                continue
            wheels[path.name] = _wheel(path, sha256_of(path))
    return list(wheels.values())


def _existing_debs(repo: Path, planned: list[_Deb]) -> list[_Deb]:
    debs = {d.filename: d for d in planned}
    directory = repo / "pool"
    if directory.is_dir():
        for path in sorted(directory.glob("*.deb")):
            name = f"pool/{path.name}"
            if path.name.startswith(".") or name in debs:
                continue
            deb = _deb(path)
            debs[name] = _Deb(deb.control, path, name)  # as it is named in the pool
    return list(debs.values())


def indexes(repo: Path, plan_: _Plan) -> dict[str, bytes]:
    """Every index of the repository with this release in it: ``{relative path: bytes}``."""
    releases = [r for r in _read_releases(repo) if r.get("pep440") != plan_.pep440]
    releases.append(release_entry(plan_))
    wheels = _existing_wheels(repo, {w.file: w for w in plan_.wheels})
    debs = _existing_debs(repo, plan_.debs)
    out: dict[str, bytes] = {"releases.json": releases_json(releases)}
    by_project: dict[str, list[_Wheel]] = {}
    for wheel in wheels:
        by_project.setdefault(wheel.project, []).append(wheel)
    for project, items in sorted(by_project.items()):
        out[f"simple/{project}/index.html"] = simple_project(project, items)
    out["simple/index.html"] = simple_root(by_project)
    packages = packages_index(debs)
    apt = {"Packages": packages, "Packages.gz": gzip_bytes(packages)}
    out.update(apt)
    epoch = max(int(r["source_date_epoch"]) for r in releases)
    out["Release"] = release_file(apt, (d.field("Architecture") for d in debs), epoch)
    return out


def _signed_indexes(repo: Path, wanted: dict[str, bytes], key: SigningKey | None,
                    public_key: bytes | None) -> dict[str, bytes]:
    """Add ``InRelease``, ``Release.gpg`` and the public key; keep signatures that still hold."""
    if key is None:
        signed = [name for name in SIGNATURES if (repo / name).exists()]
        if signed:
            raise ConfigError(f"{repo} is a signed repository ({signed[0]}): an unsigned publish "
                              "would leave a signature that no longer matches Release; nothing "
                              "was written", hint="publish with --sign-key KEY")
        return wanted
    out = dict(wanted, **{KEY_FILE: public_key})
    current = [repo / name for name in SIGNATURES]
    if all(p.is_file() for p in current) and signatures_valid(
            wanted["Release"], (repo / "InRelease").read_bytes(), (repo / "Release.gpg").read_bytes(),
            key):
        out.update({name: (repo / name).read_bytes() for name in SIGNATURES})
    else:
        inrelease, detached = sign_release(wanted["Release"], key)
        out.update({"InRelease": inrelease, "Release.gpg": detached})
    return out


def _write_order(name: str) -> tuple[int, str]:
    """Indexes first, then Release, Release.gpg, InRelease (apt reads InRelease first)."""
    last = ("Release", *SIGNATURES)
    return (last.index(name) + 1 if name in last else 0, name)


def publish(request: PublishRequest, *, progress: Progress = _quiet) -> PublishResult:
    """Publish the build of ``request.build_dir`` into ``request.repo`` (see the module doc)."""
    key = public_key = None
    if request.sign_key is not None:
        key = find_key(request.sign_key, request.gnupg_home)
        public_key = export_public_key(key)
        sign_release(b"designate-dist: can this key sign?\n", key)  # fail before the repository is touched
        progress(f"publish: signing with {key.describe()}")
    progress(f"publish: verifying {request.build_dir}")
    planned = plan(request)
    repo = request.repo.resolve()
    with repo_lock(repo, request.lock_timeout):
        sweep_temp_files(repo)  # what a killed publisher left half-copied
        new, present, conflicts = _conflicts(repo, planned.files)
        if conflicts:
            more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
            raise PublishConflict(f"refusing to overwrite {conflicts[0]}{more}: nothing was written",
                                  hint="a published file never changes; bump the distro revision")
        # The indexes and signatures are made before anything is written: a failure there
        # writes nothing.
        wanted = _signed_indexes(repo, indexes(repo, planned), key, public_key)
        progress(f"publish: {len(new)} new file(s), {len(present)} already present")
        for item in new:
            install_file(repo, item)
        written = []
        for name in sorted(wanted, key=_write_order):
            path = repo / name
            if path.is_file() and path.read_bytes() == wanted[name]:
                continue
            write_bytes(path, wanted[name], mode=0o644)
            written.append(name)
    version = planned.manifest["distro_version"]
    return PublishResult(repo, version["pep440"], version["debian"],
                         tuple(sorted(f.dest for f in new)), tuple(sorted(f.dest for f in present)),
                         tuple(written), key.fingerprint if key else None)
