"""Authoritative servers with many zones loaded fast, for ``dr check`` tests and the bench.

BIND serves zone files listed in its config; PowerDNS gets its zones inserted straight
into its sqlite3 database.  Both run in the foreground on a loopback address and high
port, in a temp dir, and stop with the test.  (The DR drill uses tests/fixtures/dns.py;
these two exist because loading 10,000 zones through an API or rndc would take minutes.)
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

PDNS_SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")


def have_servers() -> str | None:
    """Why the servers cannot run here, or None."""
    for tool in ("named", "pdns_server"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"{tool} is not installed"
    if not PDNS_SCHEMA.exists():
        return "pdns-backend-sqlite3 is not installed"
    return None


def free_port(host: str) -> int:
    """A port free for both UDP and TCP on ``host``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
            if port > 10000:
                return port
    raise RuntimeError(f"no free port on {host}")


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def soa_text(zone: str, serial: int) -> str:
    return f"ns1.{zone} hostmaster.{zone} {serial} 3600 600 86400 60"


class _Server:
    host: str
    port: int
    proc: subprocess.Popen | None = None
    probe_zone: str

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        query = dns.message.make_query(self.probe_zone, dns.rdatatype.SOA)
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{type(self).__name__} exited: {self.log_tail()}")
            try:
                answer = dns.query.udp(query, self.host, port=self.port, timeout=0.3)
                if answer.answer:
                    return
            except (OSError, dns.exception.Timeout):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{type(self).__name__} on {self.host}:{self.port} did not answer")

    def log_tail(self) -> str:
        path = Path(self.workdir, "server.log")
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class BindPrimary(_Server):
    """named serving ``zones`` (name -> serial) from zone files; :meth:`set_serial` reloads.

    named listens only on addresses configured on an interface: on a stock loopback that
    is 127.0.0.1 alone (PowerDNS binds any 127.0.0.0/8 address).
    """

    def __init__(self, host: str, zones: dict[str, int], port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.workdir = tempfile.mkdtemp(prefix="dr-bind-")
        self.zones = dict(zones)
        self.probe_zone = next(iter(zones))
        lines = [
            "options {", f'  directory "{self.workdir}";', '  pid-file none;',
            f"  listen-on port {self.port} {{ {host}; }};", "  listen-on-v6 { none; };",
            "  recursion no;", "  allow-query { any; };", "  allow-transfer { any; };",
            "  notify no;", "};", "controls { };",
        ]
        zone_dir = Path(self.workdir, "zones")
        zone_dir.mkdir()
        for zone, serial in zones.items():
            self._write_zone(zone, serial)
            lines.append(f'zone "{zone}" {{ type primary; file "zones/{zone}db"; }};')
        Path(self.workdir, "named.conf").write_text("\n".join(lines) + "\n")

    def _write_zone(self, zone: str, serial: int, extra: str = "") -> None:
        Path(self.workdir, "zones", f"{zone}db").write_text(
            f"$TTL 60\n@ IN SOA {soa_text(zone, serial)}\n@ IN NS ns1.{zone}\nns1 IN A 127.0.0.1\n{extra}")

    def start(self) -> BindPrimary:
        log = open(Path(self.workdir, "server.log"), "ab")
        self.proc = subprocess.Popen([_tool("named"), "-g", "-c", str(Path(self.workdir, "named.conf"))],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.wait_ready(timeout=60)
        return self

    def set_serial(self, zone: str, serial: int) -> None:
        self.zones[zone] = serial
        self._write_zone(zone, serial)
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGHUP)


class PdnsServer(_Server):
    """pdns_server on sqlite3 with ``zones`` (name -> serial) inserted directly as NATIVE zones."""

    def __init__(self, host: str, zones: dict[str, int], port: int | None = None,
                 caches: bool = False) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.workdir = tempfile.mkdtemp(prefix="dr-pdns-")
        self.probe_zone = next(iter(zones))
        self.db = Path(self.workdir, "pdns.sqlite3")
        with sqlite3.connect(self.db) as db:
            db.executescript(PDNS_SCHEMA.read_text())
            db.executemany("INSERT INTO domains (id, name, type) VALUES (?, ?, 'NATIVE')",
                           [(i, z.rstrip(".")) for i, z in enumerate(zones, 1)])
            db.executemany("INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth)"
                           " VALUES (?, ?, 'SOA', ?, 60, 0, 0, 1)",
                           [(i, z.rstrip("."), soa_text(z, s)) for i, (z, s) in enumerate(zones.items(), 1)])
        conf = [
            "launch=gsqlite3", f"gsqlite3-database={self.db}", f"local-address={host}:{self.port}",
            f"socket-dir={self.workdir}", "daemon=no", "guardian=no", "security-poll-suffix=",
            "disable-syslog=yes", "loglevel=3", "webserver=no", "api=no", "zone-cache-refresh-interval=0",
        ]
        if not caches:
            conf += ["cache-ttl=0", "query-cache-ttl=0", "negquery-cache-ttl=0"]
        Path(self.workdir, "pdns.conf").write_text("\n".join(conf) + "\n")

    def start(self) -> PdnsServer:
        log = open(Path(self.workdir, "server.log"), "ab")
        self.proc = subprocess.Popen([_tool("pdns_server"), f"--config-dir={self.workdir}"],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.wait_ready()
        return self

    def set_serial(self, zone: str, serial: int) -> None:
        with sqlite3.connect(self.db) as db:
            db.execute("UPDATE records SET content = ? WHERE type = 'SOA' AND name = ?",
                       (soa_text(zone, serial), zone.rstrip(".")))

    def drop_zone(self, zone: str) -> None:
        with sqlite3.connect(self.db) as db:
            (domain_id,) = db.execute("SELECT id FROM domains WHERE name = ?", (zone.rstrip("."),)).fetchone()
            db.execute("DELETE FROM records WHERE domain_id = ?", (domain_id,))
            db.execute("DELETE FROM domains WHERE id = ?", (domain_id,))
