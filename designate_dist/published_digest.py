"""The sha256 the package index publishes for an sdist: shown to the user, never trusted.

``rebase --onto VERSION`` needs ``--sha256`` for a pypi source: the archive is
verified like the pin.  When it is missing, the error shows the digest the
index publishes for ``NAME-VERSION.tar.gz`` so that the user can check it
against a second source (a release announcement, a signed tag, a colleague's
download) and pass it on; nothing here is used to verify anything.

The index's JSON API is at ``$DESIGNATE_DIST_INDEX_JSON`` (default: PyPI's).
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

INDEX_JSON_ENV = "DESIGNATE_DIST_INDEX_JSON"
DEFAULT_INDEX_JSON = "https://pypi.org/pypi"


def published_sha256(name: str, version: str, *, timeout: float = 10.0) -> tuple[str, str] | None:
    """``(file name, sha256)`` of the sdist the index lists for ``name==version``, or None."""
    base = os.environ.get(INDEX_JSON_ENV) or DEFAULT_INDEX_JSON
    url = f"{base.rstrip('/')}/{name}/{version}/json"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (https or a test's http)
            data = json.loads(response.read(4 << 20))
    except (OSError, ValueError, urllib.error.URLError):
        return None
    for item in data.get("urls", []) if isinstance(data, dict) else []:
        if not isinstance(item, dict) or item.get("packagetype") != "sdist":
            continue
        digest = str((item.get("digests") or {}).get("sha256", "")).lower()
        if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
            return str(item.get("filename", f"{name}-{version}.tar.gz")), digest
    return None


def sha256_hint(name: str, version: str) -> str:
    """How to get the sha256 of ``name==version``'s sdist, with the index's digest when it answers."""
    found = published_sha256(name, version)
    if found:
        filename, digest = found
        return (f"the package index publishes sha256 {digest} for {filename}: confirm it from a second "
                f"source (never take it on the index's word alone), then pass --sha256 {digest}")
    return (f"take the sha256 of {name}-{version}.tar.gz from the release's files on the package index "
            f"or from a copy you trust (`sha256sum {name}-{version}.tar.gz`), then pass --sha256")
