"""BIND ``key`` statements (rndc.key, named.conf includes, TSIG key files), read once for everyone.

``key "name" { algorithm hmac-sha256; secret "base64"; };``: the rndc client uses it for
its control-channel key, the DR operations for the TSIG keys that sign their queries to
mdns.  Comments of named.conf's three kinds are ignored outside quoted strings.  The
secret is kept out of ``repr`` and of every error message.
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

HMAC_ALGORITHMS = ("hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512")

#: A quoted string (kept: a base64 secret may hold "//"), or a comment of named.conf's
#: three kinds (dropped).
_STRING_OR_COMMENT = re.compile(r'"[^"]*"|#[^\n]*|//[^\n]*|/\*.*?\*/', re.S)


class KeyFileError(ValueError):
    """A key statement that cannot be used; the message never holds the secret."""


@dataclass(frozen=True)
class Key:
    name: str
    algorithm: str
    secret: bytes = field(repr=False)


def strip_comments(text: str) -> str:
    return _STRING_OR_COMMENT.sub(lambda m: m.group(0) if m.group(0).startswith('"') else " ", text)


def key_statements(text: str) -> dict[str, Key]:
    """Every usable ``key`` statement of ``text``, by name, in file order."""
    text = strip_comments(text)
    keys = {}
    for match in re.finditer(r'key\s+"?([^"\s{]+)"?\s*\{(.*?)\}\s*;', text, re.S):
        body = match.group(2)
        algorithm = re.search(r'algorithm\s+"?([\w-]+)"?\s*;', body)
        secret = re.search(r'secret\s+"([^"]+)"\s*;', body)
        if not (algorithm and secret):
            continue
        name = algorithm.group(1).lower()
        if name not in HMAC_ALGORITHMS:
            raise KeyFileError(f"key {match.group(1)!r} uses unsupported algorithm {name}")
        try:
            raw = base64.b64decode(secret.group(1), validate=True)
        except ValueError:
            raise KeyFileError(f"key {match.group(1)!r}: secret is not base64") from None
        keys[match.group(1)] = Key(match.group(1), name, raw)
    return keys
