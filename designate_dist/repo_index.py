"""The indexes of a publish repository: ``Packages``, ``Release``, the PEP 503 pages, ``releases.json``.

Made from the repository's content -- every .deb in ``pool/``, every wheel in
``wheels/``, every release in ``releases.json`` -- plus the release being
published, so the same releases always give byte-identical indexes.  A
``Packages`` stanza is byte for byte what ``dpkg-scanpackages -m`` writes, but the
versions of a package are listed in Debian version order (the standard tools
list them in directory order, which differs between two copies of a repository).
"""
from __future__ import annotations

import email.utils
import gzip
import hashlib
import html
import io
import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import HeaderParser
from functools import cmp_to_key
from pathlib import Path
from typing import Any
from urllib.parse import quote

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from designate_dist.debversion import DEB_VERSION, compare_debian_versions, without_epoch
from designate_dist.digest import sha256_of
from designate_dist.errors import ConfigError, VerificationError
from designate_dist.runner import run

RELEASES_FORMAT = 1
ORIGIN = "designate-dist"
#: Fields an index adds to a .deb's control fields, and the fields they go before
#: (dpkg-scanpackages' order, so that both tools write the same stanza).
_INDEX_FIELDS = ("Filename", "Size", "MD5sum", "SHA1", "SHA256")
_AFTER_INDEX_FIELDS = frozenset({"Section", "Priority", "Multi-Arch", "Homepage", "Description",
                                 "Tag", "Task"})


@dataclass(frozen=True)
class Deb:
    control: tuple[tuple[str, str], ...]   # (field, value with continuation lines)
    path: Path                            # where its bytes are now
    filename: str                         # pool/...

    def field(self, name: str) -> str:
        return next((v for k, v in self.control if k.lower() == name.lower()), "")


@dataclass(frozen=True)
class Wheel:
    file: str
    project: str                            # canonical name
    version: str
    sha256: str
    requires_python: str | None


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


def read_wheel(path: Path, sha256: str) -> Wheel:
    project, version, requires = wheel_metadata(path)
    return Wheel(path.name, project, version, sha256, requires)


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


def read_deb(path: Path) -> Deb:
    control = deb_control(path)
    values = dict(control)
    if not (_DEB_NAME.match(values["Package"]) and DEB_VERSION.match(values["Version"])
            and _DEB_NAME.match(values["Architecture"])):
        raise VerificationError(f"{path.name}: unusable Package/Version/Architecture "
                                f"{values['Package']!r} {values['Version']!r} {values['Architecture']!r}")
    name = f"{values['Package']}_{without_epoch(values['Version'])}_{values['Architecture']}.deb"
    return Deb(control, path, f"pool/{name}")


def read_releases(repo: Path) -> list[dict[str, Any]]:
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


def packages_index(debs: Iterable[Deb]) -> bytes:
    """The ``Packages`` file: each deb's control fields plus Filename/Size/hashes."""
    def key(a: Deb, b: Deb) -> int:
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


def simple_project(project: str, wheels: Iterable[Wheel]) -> bytes:
    def order(wheel: Wheel) -> tuple:
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


def _existing_wheels(repo: Path, planned: dict[str, Wheel]) -> list[Wheel]:
    wheels = dict(planned)
    directory = repo / "wheels"
    if directory.is_dir():
        for path in sorted(directory.glob("*.whl")):
            if path.name.startswith(".") or path.name in wheels:
                continue
            wheels[path.name] = read_wheel(path, sha256_of(path))
    return list(wheels.values())


def _existing_debs(repo: Path, planned: list[Deb]) -> list[Deb]:
    debs = {d.filename: d for d in planned}
    directory = repo / "pool"
    if directory.is_dir():
        for path in sorted(directory.glob("*.deb")):
            name = f"pool/{path.name}"
            if path.name.startswith(".") or name in debs:
                continue
            deb = read_deb(path)
            debs[name] = Deb(deb.control, path, name)  # as it is named in the pool
    return list(debs.values())


def indexes(repo: Path, entry: dict[str, Any], wheels: Iterable[Wheel], debs: Iterable[Deb]) -> dict[str, bytes]:
    """Every index of ``repo`` with a release added: ``{relative path: bytes}``.

    ``entry``: the release's ``releases.json`` entry (it replaces one of the same
    version); ``wheels``, ``debs``: its own, named as they will be in the repository.
    """
    releases = [r for r in read_releases(repo) if r.get("pep440") != entry["pep440"]]
    releases.append(entry)
    wheels = _existing_wheels(repo, {w.file: w for w in wheels})
    debs = _existing_debs(repo, list(debs))
    out: dict[str, bytes] = {"releases.json": releases_json(releases)}
    by_project: dict[str, list[Wheel]] = {}
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
