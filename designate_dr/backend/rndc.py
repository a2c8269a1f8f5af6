"""A small client of BIND's control channel (the protocol ``rndc`` speaks).

Why not run the ``rndc`` binary: it costs a process and a TCP handshake per
command (~20 ms here); bulk re-pointing 10,000 zones is three commands per
zone.  :class:`RndcConnection` logs in once (nonce exchange) and sends many
commands on one TCP connection, each signed with the shared key (HMAC, as in
BIND's lib/isccc).  Commands are the same text ``rndc`` sends
(``modzone example.org { ... };``).

The key comes from an rndc key file (``key "name" { algorithm hmac-sha256;
secret "..."; };``, as written by ``rndc-confgen -a``) or from the ``key``
statements of an rndc.conf.  The secret is never put into a message or log.
"""
from __future__ import annotations

import base64
import hmac
import random
import re
import socket
import struct
import threading
import time
from pathlib import Path

from designate import exceptions

from designate_dr.keyfile import Key, KeyFileError, key_statements

DEFAULT_KEY_FILE = "/etc/bind/rndc.key"
_ALGORITHMS = {  # name -> (hashlib name, isccc algorithm code)
    "hmac-md5": ("md5", 157), "hmac-sha1": ("sha1", 161), "hmac-sha224": ("sha224", 162),
    "hmac-sha256": ("sha256", 163), "hmac-sha384": ("sha384", 164),
    "hmac-sha512": ("sha512", 165),
}
_BINARY, _TABLE, _LIST = 1, 2, 3


class RndcError(exceptions.Backend):
    """An rndc failure; ``str()`` is one readable line without the key."""


class RndcCommandFailed(RndcError):
    """named ran the command and said no (``err`` holds its reason, e.g. ``not found``)."""

    def __init__(self, message: str, err: str, text: str) -> None:
        super().__init__(message)
        self.err = err
        self.text = text


RndcKey = Key


def _key_statements(text: str) -> dict[str, RndcKey]:
    try:
        return key_statements(text)
    except KeyFileError as exc:
        raise RndcError(f"rndc {exc}") from None


def load_key(key_file: str | None = None, config_file: str | None = None) -> RndcKey:
    """The key of an rndc key file, or the default (else first) key of an rndc.conf."""
    path = Path(config_file or key_file or DEFAULT_KEY_FILE)
    try:
        text = path.read_text()
    except OSError as exc:
        raise RndcError(f"cannot read rndc key from {path}: {exc.strerror}") from None
    keys = _key_statements(text)
    if not keys:
        raise RndcError(f"no usable key statement in {path} ({len(text)} bytes)")
    if config_file:
        default = re.search(r'default-key\s+"?([^";\s]+)"?\s*;', text)
        if default and default.group(1) in keys:
            return keys[default.group(1)]
    return next(iter(keys.values()))


def _encode_table(items: dict, skip_auth: bool = False) -> bytes:
    out = bytearray()
    for key, value in items.items():
        if skip_auth and key == "_auth":
            continue
        raw_key = key.encode("ascii")
        out += struct.pack("B", len(raw_key)) + raw_key
        if isinstance(value, dict):
            inner = _encode_table(value)
            out += struct.pack(">BI", _TABLE, len(inner)) + inner
        else:
            data = value.encode() if isinstance(value, str) else bytes(value)
            out += struct.pack(">BI", _BINARY, len(data)) + data
    return bytes(out)


def _decode_table(data: bytes) -> dict:
    table: dict = {}
    pos = 0
    while pos < len(data):
        key_len = data[pos]
        key = data[pos + 1:pos + 1 + key_len].decode("ascii", "replace")
        pos += 1 + key_len
        kind, length = struct.unpack(">BI", data[pos:pos + 5])
        pos += 5
        value = data[pos:pos + length]
        pos += length
        if kind == _TABLE:
            table[key] = _decode_table(value)
        elif kind == _LIST:
            table[key] = value  # not used by the commands we send
        else:
            table[key] = value
    return table


def _text(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return "" if value is None else str(value)


class RndcConnection:
    """One logged-in control channel connection; not thread-safe (one per thread)."""

    def __init__(self, host: str, port: int, key: RndcKey, timeout: float = 10.0) -> None:
        self.host, self.port, self.timeout = host, int(port), timeout
        self._key = key
        self._hash, self._code = _ALGORITHMS[key.algorithm]
        self._serial = random.randint(0, 1 << 24)
        self._nonce: bytes | None = None
        self._sock: socket.socket | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def _fail(self, reason: str) -> RndcError:
        return RndcError(f"rndc at {self.where} {reason}")

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._nonce = None

    def _connect(self) -> None:
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except ConnectionRefusedError:
            raise self._fail("refused the connection (is named running with a "
                             "controls statement on that address and port?)") from None
        except TimeoutError:
            raise self._fail(f"did not accept a connection within {self.timeout:g}s") from None
        except OSError as exc:
            raise self._fail(f"is unreachable: {exc.strerror or exc}") from None
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reply = self._exchange({"type": "null"})
        nonce = reply.get("_ctrl", {}).get("_nonce")
        if nonce is None:
            self.close()
            raise self._fail("sent no login nonce")
        self._nonce = bytes(nonce)

    def _sign(self, payload: bytes) -> dict:
        digest = hmac.new(self._key.secret, payload, self._hash).digest()
        b64 = base64.b64encode(digest)
        if self._key.algorithm == "hmac-md5":
            return {"hmd5": b64.rstrip(b"=").ljust(22, b"\0")[:22]}
        return {"hsha": struct.pack("B", self._code) + b64.ljust(88, b"\0")}

    def _exchange(self, data: dict) -> dict:
        assert self._sock is not None
        self._serial += 1
        now = int(time.time())
        ctrl = {"_ser": str(self._serial), "_tim": str(now), "_exp": str(now + 60)}
        if self._nonce is not None:
            ctrl["_nonce"] = self._nonce
        body = _encode_table({"_ctrl": ctrl, "_data": data})
        wire = _encode_table({"_auth": self._sign(body)}) + body
        try:
            self._sock.sendall(struct.pack(">II", len(wire) + 4, 1) + wire)
            header = self._recv(8)
            length, version = struct.unpack(">II", header)
            if version != 1 or length < 4:
                raise self._fail(f"answered an unknown protocol version {version}")
            raw = self._recv(length - 4)
        except TimeoutError:
            self.close()
            raise self._fail(f"did not answer within {self.timeout:g}s") from None
        except ConnectionError:
            self.close()
            raise self._fail("closed the connection: wrong rndc key, or this host is not "
                             "allowed by named's controls statement (check rndc_key_file)"
                             ) from None
        reply = _decode_table(raw)
        if not self._verify(raw, reply):
            self.close()
            raise self._fail("answered with a bad signature (wrong rndc key?)")
        return reply

    def _recv(self, size: int) -> bytes:
        assert self._sock is not None
        chunks = bytearray()
        while len(chunks) < size:
            chunk = self._sock.recv(size - len(chunks))
            if not chunk:
                raise ConnectionResetError("closed")
            chunks += chunk
        return bytes(chunks)

    def _verify(self, raw: bytes, reply: dict) -> bool:
        auth = reply.get("_auth")
        if not isinstance(auth, dict) or not raw.startswith(b"\x05_auth"):
            return False
        auth_len = struct.unpack(">I", raw[7:11])[0]
        signed = raw[11 + auth_len:]
        digest = hmac.new(self._key.secret, signed, self._hash).digest()
        if "hsha" in auth:
            theirs = bytes(auth["hsha"])[1:]
        else:
            theirs = bytes(auth.get("hmd5", b""))
        theirs = theirs.rstrip(b"\0").rstrip(b"=")
        ours = base64.b64encode(digest).rstrip(b"=")
        return hmac.compare_digest(theirs, ours)

    def command(self, text: str) -> str:
        """Run one rndc command (``"showzone example.org"``); return named's text output."""
        for attempt in (0, 1):
            fresh = self._sock is None
            if fresh:
                self._connect()
            try:
                reply = self._exchange({"type": text})
                break
            except RndcError:
                # a connection idle for long may have been closed by named: one fresh try
                if fresh or attempt:
                    raise
        data = reply.get("_data", {})
        result = _text(data.get("result", b"0")).strip() or "0"
        out = _text(data.get("text"))
        if result != "0":
            err = _text(data.get("err")).strip() or f"error {result}"
            verb = text.split(None, 1)[0]
            detail = f"{err}: {out.strip()}" if out.strip() else err
            raise RndcCommandFailed(f"rndc at {self.where}: '{verb}' failed: {detail}", err, out)
        return out


class RndcPool:
    """Connections to one named, one per thread, reused across commands."""

    def __init__(self, host: str, port: int, key: RndcKey, timeout: float = 10.0) -> None:
        self.host, self.port, self.timeout = host, int(port), timeout
        self._key = key
        self._local = threading.local()
        self._all: list[RndcConnection] = []
        self._lock = threading.Lock()

    def command(self, text: str) -> str:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = RndcConnection(self.host, self.port, self._key, self.timeout)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn.command(text)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
