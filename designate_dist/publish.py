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

The indexes themselves are :mod:`designate_dist.repo_index`'s.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from designate_dist import locking
from designate_dist.atomic import write_bytes
from designate_dist.cache import cache_root
from designate_dist.deb import read_lock
from designate_dist.debversion import DEB_VERSION
from designate_dist.digest import sha256_of
from designate_dist.errors import (
    BuildLocked,
    ConfigError,
    PublishConflict,
    VerificationError,
)
from designate_dist.manifest import MANIFEST, artifact_problem
from designate_dist.repo_index import Deb, Wheel, indexes, read_deb, read_wheel
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
#: The repository's public key (armored), written by a signed publish.
KEY_FILE = "signing-key.asc"
SIGNATURES = ("Release.gpg", "InRelease")  # written after Release, in this order
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


@dataclass
class _Plan:
    manifest: dict[str, Any]
    manifest_bytes: bytes
    files: list[_File] = field(default_factory=list)
    debs: list[Deb] = field(default_factory=list)
    wheels: list[Wheel] = field(default_factory=list)     # every wheel of this release
    own_wheels: list[Wheel] = field(default_factory=list)

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
    if not isinstance(debian, str) or not DEB_VERSION.match(debian):
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
        wheel = read_wheel(path, digest)
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
            wheel = read_wheel(path, artifact["sha256"])
            result.own_wheels.append(wheel)
            result.wheels.append(wheel)
            result.files.append(_File(f"wheels/{path.name}", artifact["sha256"], artifact["size"],
                                      source=path))
        elif path.suffix == ".deb":
            deb = read_deb(path)
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
    """Hold the fcntl lock of ``repo/.lock``, waiting up to ``timeout`` seconds (None: as long as it takes).

    The file itself is never rewritten.
    """
    repo.mkdir(parents=True, exist_ok=True)

    def busy(_: str) -> BuildLocked:
        return BuildLocked(f"another designate-dist publish holds {repo / '.lock'}", hint="wait for it to finish")

    with locking.hold(repo / ".lock", wait=timeout, busy=busy):
        yield


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
        wanted = _signed_indexes(repo, indexes(repo, release_entry(planned), planned.wheels, planned.debs),
                                 key, public_key)
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
