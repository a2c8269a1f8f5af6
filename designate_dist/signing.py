"""OpenPGP signatures of the apt repository's ``Release``, made with Debian's GnuPG.

Every gpg call of the tool is here.  The key is named by the release manager
(a fingerprint, key id or user id of a *secret* key in the GnuPG home) and must
match exactly one key that can sign.  Only two things leave GnuPG: the
signatures (``InRelease``, ``Release.gpg``) and the public key (``gpg --export``);
the secret key never does, and no key material is written to a log.

A key with a passphrase is used through gpg-agent: unlock it there first
(``gpg --sign`` anything once), the tool never asks for nor handles a passphrase.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from designate_dist.errors import CommandFailed, ConfigError
from designate_dist.runner import run

_PUBLIC_BLOCK = b"-----BEGIN PGP PUBLIC KEY BLOCK-----"
_SECRET_BLOCK = b"PRIVATE KEY BLOCK"
_UNUSABLE = {"e": "expired", "r": "revoked", "d": "disabled", "i": "invalid"}


@dataclass(frozen=True)
class SigningKey:
    """A secret key GnuPG can sign with: its primary key's fingerprint and first user id."""

    fingerprint: str
    uid: str
    gnupg_home: Path | None = None

    def describe(self) -> str:
        return f"{self.fingerprint} ({self.uid})" if self.uid else self.fingerprint


def _gpg(args: list[str], home: Path | None, *, what: str, check: bool = True):
    """gpg, never interactive, in ``home`` (default: GNUPGHOME, else ~/.gnupg)."""
    env = {"LC_ALL": "C.UTF-8", **({"GNUPGHOME": str(home)} if home is not None else {})}
    return run(["gpg", "--batch", "--no-tty", *args], extra_env=env, what=what, check=check)


def _home_text(home: Path | None) -> str:
    return str(home or os.environ.get("GNUPGHOME") or Path.home() / ".gnupg")


def find_key(name: str, home: Path | None = None) -> SigningKey:
    """The one secret key ``name`` designates, checked to be able to sign."""
    if not name.strip() or name.startswith("-"):
        raise ConfigError(f"--sign-key {name!r} is not a key name")
    listed = _gpg(["--with-colons", "--list-secret-keys", "--", name], home, check=False,
                  what=f"look up the signing key {name}")
    keys: list[dict[str, str]] = []
    for line in listed.stdout.splitlines():
        fields = line.split(":")
        if fields[0] == "sec":
            keys.append({"validity": fields[1], "caps": fields[11] if len(fields) > 11 else ""})
        elif keys and fields[0] == "fpr" and "fpr" not in keys[-1]:
            keys[-1]["fpr"] = fields[9]
        elif keys and fields[0] == "uid" and "uid" not in keys[-1]:
            keys[-1]["uid"] = fields[9]
    if not keys:
        raise ConfigError(f"no secret key {name!r} in GnuPG's keyring {_home_text(home)}",
                          hint="`gpg --list-secret-keys` lists them; --gnupg-home or GNUPGHOME "
                               "selects another keyring")
    if len(keys) > 1:
        raise ConfigError(f"--sign-key {name!r} matches {len(keys)} secret keys "
                          f"({', '.join(k.get('fpr', '?') for k in keys)})",
                          hint="name the key by its fingerprint")
    [key] = keys
    if "S" not in key["caps"]:
        reason = _UNUSABLE.get(key["validity"], "it has no usable signing (sub)key")
        raise ConfigError(f"the key {key.get('fpr', name)} cannot sign: {reason}")
    return SigningKey(key["fpr"], _unescape(key.get("uid", "")), home)


def _unescape(text: str) -> str:
    """gpg's colon listings escape ``:`` and control characters as ``\\xNN``."""
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape", "replace")


def sign_release(release: bytes, key: SigningKey) -> tuple[bytes, bytes]:
    """``(InRelease, Release.gpg)``: a clear-signed copy and a detached armored signature."""
    with tempfile.TemporaryDirectory(prefix="designate-dist-sign-") as tmp:
        source = Path(tmp) / "Release"
        source.write_bytes(release)
        outputs = []
        for mode, name in (("--clearsign", "InRelease"), ("--detach-sign", "Release.gpg")):
            target = Path(tmp) / name
            try:
                # pinentry-mode error: a passphrase gpg-agent does not hold fails at once
                # instead of waiting for a prompt nobody sees.
                _gpg(["--pinentry-mode", "error", "--local-user", key.fingerprint, "--armor", mode,
                      "--output", str(target), str(source)], key.gnupg_home,
                     what=f"sign Release with {key.fingerprint}")
            except CommandFailed as exc:
                raise CommandFailed(
                    exc.message, cmd=exc.cmd, returncode=exc.returncode, stderr=exc.stderr,
                    hint="a key with a passphrase must be unlocked in gpg-agent first") from None
            outputs.append(target.read_bytes())
    return outputs[0], outputs[1]


def export_public_key(key: SigningKey) -> bytes:
    """The armored public key (primary key, subkeys, self-signatures): never a secret part."""
    data = _gpg(["--armor", "--export-options", "export-minimal", "--export", key.fingerprint],
                key.gnupg_home, what=f"export the public key {key.fingerprint}").stdout.encode()
    if not data.startswith(_PUBLIC_BLOCK) or _SECRET_BLOCK in data:
        raise CommandFailed(f"gpg --export {key.fingerprint} did not give a public key block")
    return data


def _valid_signer(status: str) -> str | None:
    """The primary key fingerprint of a VALIDSIG status line, or None."""
    for line in status.splitlines():
        fields = line.split()
        if fields[:2] == ["[GNUPG:]", "VALIDSIG"] and len(fields) >= 12:
            return fields[-1]
    return None


def signatures_valid(release: bytes, inrelease: bytes, detached: bytes, key: SigningKey) -> bool:
    """Whether ``inrelease`` and ``detached`` are good signatures of ``release`` by ``key``."""
    with tempfile.TemporaryDirectory(prefix="designate-dist-verify-") as tmp:
        base = Path(tmp)
        (base / "Release").write_bytes(release)
        (base / "Release.gpg").write_bytes(detached)
        (base / "InRelease").write_bytes(inrelease)
        detached_check = _gpg(["--status-fd", "1", "--verify", str(base / "Release.gpg"),
                               str(base / "Release")], key.gnupg_home, check=False,
                              what="verify Release.gpg")
        if detached_check.returncode != 0 or _valid_signer(detached_check.stdout) != key.fingerprint:
            return False
        clear = _gpg(["--status-fd", "2", "--output", str(base / "signed"), "--decrypt",
                      str(base / "InRelease")], key.gnupg_home, check=False, what="verify InRelease")
        return (clear.returncode == 0 and _valid_signer(clear.stderr) == key.fingerprint
                and (base / "signed").read_bytes() == release)
