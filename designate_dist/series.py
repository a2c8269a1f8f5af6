"""The patch series data model: what a series file lists and what a patch file holds.

A series directory (``cherry-pick/`` or ``customs/``) has a ``series`` file:
one patch file name per line, in order; blank lines and ``#`` comments are
ignored.  Kinds, by directory and suffix:

``cherry-pick/*.upstream``  ``upstream``: an original upstream change, in mail
                            format (``git format-patch``), applied verbatim.  It
                            must say where it came from in an ``Upstream:`` line:
                            a mail header after ``Subject:`` (``Upstream: commit
                            <id> (<branch or release>)``), so that upstream's
                            message stays verbatim, or a line of the message.
``cherry-pick/*.patch``     ``backport``: an upstream change adapted to apply.
``customs/*.patch``         ``custom``: our requirements changes and fixes.

A patch file is either mail format (``From:``/``Date:``/``Subject:`` headers,
message, ``---``, diff) or a plain diff with optional DEP-3 headers
(``Description:``, ``Author:``, ``Origin:``...) above it.
"""
from __future__ import annotations

import email
import email.policy
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path

from designate_dist.distro import read_utf8
from designate_dist.errors import SeriesError
from designate_dist.unidiff import diff_files, split_head

SERIES_FILE = "series"
KIND_UPSTREAM = "upstream"
KIND_BACKPORT = "backport"
KIND_CUSTOM = "custom"
_KINDS_BY_DIR = {
    "cherry-pick": {".upstream": KIND_UPSTREAM, ".patch": KIND_BACKPORT},
    "customs": {".patch": KIND_CUSTOM},
}
_ENTRY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
# Only the "[PATCH ...]" groups format-patch adds (git mailinfo -b): upstream's own
# "[trivial]" or "[docs]" is part of its subject.
_SUBJECT_PREFIX = re.compile(r"^\s*(\[[^\]]*\bPATCH\b[^\]]*\]\s*)+")
_PROVENANCE = re.compile(r"^Upstream:[ \t]*(\S.*)$", re.M)
_PROVENANCE_COMMIT = re.compile(r"\bcommit ([0-9a-f]{7,40})\b")
_CHANGE_ID = re.compile(r"^Change-Id:\s*(I[0-9a-f]{40})\s*$", re.M)
_CHERRY = re.compile(r"\(cherry picked from commit ([0-9a-f]{7,40})\)")
_DEP3_KEYS = ("Description", "Subject", "Author", "From", "Origin", "Bug", "Forwarded",
              "Last-Update", "Reviewed-by", "Applied-Upstream", "Upstream")


@dataclass(frozen=True)
class Author:
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


@dataclass(frozen=True)
class PatchFile:
    """One patch of a series, parsed."""

    series: str            # "cherry-pick" or "customs"
    name: str              # file name inside the series directory
    path: Path
    kind: str              # upstream | backport | custom
    mail: bool             # mail format (git format-patch) or plain diff
    author: Author | None  # None: plain diff without an author (the maintainer is used)
    date: int | None       # author date as a UNIX time, if the file has one
    subject: str
    body: str
    diff: str
    sha256: str
    upstream_header: str = ""  # the ``Upstream:`` mail header, if any

    @property
    def ref(self) -> str:
        """``series/name``, how messages name the patch."""
        return f"{self.series}/{self.name}"

    @property
    def message(self) -> str:
        """The commit message: subject, blank line, body."""
        return self.subject + ("\n\n" + self.body if self.body else "") + "\n"

    @property
    def change_ids(self) -> tuple[str, ...]:
        return change_ids_in(self.body)

    @property
    def cherry_picked_from(self) -> tuple[str, ...]:
        return cherry_picked_from_in(self.body)

    @property
    def provenance(self) -> tuple[str, ...]:
        """The ``Upstream:`` values: the mail header first, then lines of the message."""
        found = [self.upstream_header] if self.upstream_header else []
        return tuple(found + [value.strip() for value in _PROVENANCE.findall(self.body)])

    @property
    def has_provenance(self) -> bool:
        return bool(self.provenance)

    @property
    def upstream_commits(self) -> tuple[str, ...]:
        """Upstream commit ids the ``Upstream:`` values name (``commit <id>``)."""
        return tuple(sha for value in self.provenance for sha in _PROVENANCE_COMMIT.findall(value))

    def touched_files(self) -> list[str]:
        return diff_files(self.diff)


def change_ids_in(message: str) -> tuple[str, ...]:
    """The ``Change-Id:`` trailers of a commit message (Gerrit's)."""
    return tuple(_CHANGE_ID.findall(message))


def cherry_picked_from_in(message: str) -> tuple[str, ...]:
    """The commits a ``(cherry picked from commit ...)`` line of a message names."""
    return tuple(_CHERRY.findall(message))


def _clean_body(lines: list[str]) -> str:
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(line.rstrip() for line in lines)


def parse_patch(path: Path, series: str, kind: str) -> PatchFile:
    """Parse one patch file; raise :class:`SeriesError` when it is not a patch."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SeriesError(f"{series}/{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    head, diff = split_head(text)
    if not diff.strip():
        raise SeriesError(f"{series}/{path.name}: contains no diff")
    first = head.lstrip("\n").split("\n", 1)[0]
    mail = first.startswith("From ") or (bool(re.search(r"^From: ", head, re.M))
                                         and bool(re.search(r"^Subject: ", head, re.M))
                                         and not re.search(r"^(Description|Author): ", head, re.M))
    digest = hashlib.sha256(raw).hexdigest()
    upstream = ""
    if mail:
        author, date, subject, body, upstream = _parse_mail_head(head, f"{series}/{path.name}")
    else:
        author, date, subject, body = _parse_dep3_head(head, path.name)
    return PatchFile(series=series, name=path.name, path=path, kind=kind, mail=mail,
                     author=author, date=date, subject=subject, body=body, diff=diff,
                     sha256=digest, upstream_header=upstream)


def _parse_mail_head(head: str, ref: str) -> tuple[Author | None, int | None, str, str, str]:
    lines = head.split("\n")
    if lines and lines[0].startswith("From ") and not lines[0].startswith("From: "):
        lines = lines[1:]  # the mbox separator line
    message = email.message_from_string("\n".join(lines), policy=email.policy.default)
    subject = _SUBJECT_PREFIX.sub("", str(message.get("Subject", "")).replace("\n", " ")).strip()
    if not subject:
        raise SeriesError(f"{ref}: mail-format patch without a Subject")
    name, addr = parseaddr(str(message.get("From", "")))
    author = Author(name or addr, addr) if addr else None
    date = None
    if message.get("Date"):
        try:
            date = int(parsedate_to_datetime(str(message["Date"])).timestamp())
        except (TypeError, ValueError) as exc:
            raise SeriesError(f"{ref}: unreadable Date header {message['Date']!r}") from exc
    payload = message.get_payload()
    body_text = payload if isinstance(payload, str) else ""
    body_lines = []
    for line in body_text.split("\n"):
        if line.rstrip() == "---":
            break
        body_lines.append(line)
    upstream = " ".join(str(message.get("Upstream", "")).split())
    return author, date, subject, _clean_body(body_lines), upstream


def _parse_dep3_head(head: str, name: str) -> tuple[Author | None, int | None, str, str]:
    fields: dict[str, str] = {}
    free: list[str] = []
    current = None
    for line in head.split("\n"):
        key, sep, value = line.partition(":")
        if sep and key in _DEP3_KEYS:
            current = key
            fields[key] = value.strip()
        elif current in ("Description", "Subject") and line.startswith((" ", "\t")):
            fields[current] += "\n" + (line.strip() if line.strip() != "." else "")
        else:
            current = None
            free.append(line)
    description = fields.get("Description") or fields.get("Subject") or ""
    subject, _, rest = description.partition("\n")
    subject = subject.strip() or Path(name).stem
    body_lines = rest.split("\n") + [""] + [f"{k}: {v}" for k, v in fields.items()
                                               if k not in ("Description", "Subject", "Author", "From")]
    extra = _clean_body(free)
    if extra:
        body_lines += ["", extra]
    who = fields.get("Author") or fields.get("From")
    author = None
    if who:
        n, addr = parseaddr(who)
        author = Author(n or addr, addr or "unknown@localhost")
    return author, None, subject, _clean_body(body_lines)


_NUMBER = re.compile(r"^(\d{4})-")


def patch_slug(subject: str) -> str:
    """The file-name part of a subject: ``Fix RPC server`` -> ``fix-rpc-server``."""
    slug = re.sub(r"[^a-z0-9]+", "-", subject.lower()).strip("-")
    return slug[:48].rstrip("-") or "change"


def next_patch_number(directory: Path, taken: set[str] | frozenset[str] = frozenset()) -> int:
    """One more than the highest ``NNNN-`` of the files in ``directory`` and of ``taken``."""
    names = set(taken) | ({p.name for p in directory.iterdir()} if directory.is_dir() else set())
    return max((int(m.group(1)) for name in names if (m := _NUMBER.match(name))), default=0) + 1


def next_patch_name(directory: Path, subject: str, suffix: str = ".patch",
                    taken: Iterable[str] = ()) -> str:
    """``NNNN-<slug><suffix>``: the name of the next patch of the series in ``directory``.

    ``taken``: names already chosen but not yet written (several commits added at once).
    """
    return f"{next_patch_number(directory, frozenset(taken)):04d}-{patch_slug(subject)}{suffix}"


def series_with_entry(series_file: Path, *names: str) -> str:
    """The text of ``series_file`` with ``names`` listed last, in order (comments and order kept)."""
    text = series_file.read_text(encoding="utf-8") if series_file.is_file() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    return text + "".join(f"{name}\n" for name in names)


def read_series_entries(series_file: Path) -> list[tuple[int, str]]:
    """The (line number, file name) entries of a series file, validated for form."""
    if not series_file.is_file():
        return []
    entries = []
    seen: dict[str, int] = {}
    rel = f"{series_file.parent.name}/{series_file.name}"
    for number, raw in enumerate(read_utf8(series_file, rel).splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not _ENTRY.match(line):
            raise SeriesError(f"{rel}: line {number}: malformed entry {line!r} "
                              "(one patch file name per line, no paths or options)")
        if line in seen:
            raise SeriesError(f"{rel}: line {number}: {line} is already listed on line {seen[line]}")
        seen[line] = number
        entries.append((number, line))
    return entries


@dataclass(frozen=True)
class PatchSeries:
    """The whole ordered series: cherry-pick/ first, then customs/."""

    patches: tuple[PatchFile, ...]

    def __iter__(self):
        return iter(self.patches)

    def __len__(self) -> int:
        return len(self.patches)

    def fingerprint(self) -> str:
        """A hash of the ordered series: changes when any patch or the order changes."""
        digest = hashlib.sha256()
        for patch in self.patches:
            digest.update(f"{patch.ref}\0{patch.sha256}\n".encode())
        return digest.hexdigest()


def read_series(root: Path) -> PatchSeries:
    """Read and validate ``cherry-pick/`` and ``customs/`` of the distro at ``root``.

    Everything is checked before anything is applied: every entry exists and
    has the right suffix, every patch file in a directory is listed, every
    ``.upstream`` patch says where it came from.
    """
    patches: list[PatchFile] = []
    for series, kinds in _KINDS_BY_DIR.items():
        directory = root / series
        if not directory.is_dir():
            continue
        series_file = directory / SERIES_FILE
        entries = read_series_entries(series_file)
        listed = {name for _, name in entries}
        for candidate in sorted(directory.iterdir()):
            if candidate.name == SERIES_FILE or candidate.name.startswith("."):
                continue
            if candidate.suffix in kinds and candidate.name not in listed:
                raise SeriesError(f"{series}/{candidate.name} is not listed in {series}/{SERIES_FILE}",
                                  hint=f"add it to {series}/{SERIES_FILE} or remove the file")
        for number, name in entries:
            path = directory / name
            suffix = Path(name).suffix
            if suffix not in kinds:
                allowed = " or ".join(sorted(kinds))
                raise SeriesError(f"{series}/{SERIES_FILE}: line {number}: {name}: "
                                  f"a {series} patch must end in {allowed}")
            if not path.is_file():
                raise SeriesError(f"{series}/{SERIES_FILE}: line {number}: {name}: no such file "
                                  f"in {series}/")
            patch = parse_patch(path, series, kinds[suffix])
            if patch.kind == KIND_UPSTREAM:
                if not patch.mail:
                    raise SeriesError(f"{patch.ref}: an .upstream patch must be in mail format "
                                      "(git format-patch) with its original author and message")
                if not patch.has_provenance:
                    raise SeriesError(f"{patch.ref}: no upstream provenance: add an 'Upstream:' line "
                                      "naming the upstream release and commit or Change-Id")
            patches.append(patch)
    return PatchSeries(tuple(patches))
