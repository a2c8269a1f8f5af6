"""pdns4_dr's HTTP client: TLS verified against ``api_ca_cert``, no redirect or proxy ever
gets the API key, an idle connection the server closed is not an error.

PowerDNS 4.7 serves its API over plain HTTP and closes every connection; TLS and
keep-alive come from a proxy in front of it, played here by the stand-in API server.
"""
from __future__ import annotations

import socket
import threading
from pathlib import Path

import fixtures
from designate import exceptions
from oslotest import base

from designate_dr.backend import pdns4_dr
from designate_dr.backend.httpclient import Endpoint, HttpError
from tests.fixtures.designate_api import FakeDesignateAPI, json_reply, self_signed_tls
from tests.fixtures.designate_objects import designate_ready

KEY = "k3y-never-elsewhere"
ZONES = [{"name": "a.example.", "kind": "Slave", "masters": ["127.0.0.2:53"], "serial": 1}]
LISTED = {"a.example.": ["127.0.0.2:53"]}  # what list_zones makes of ZONES


def _zones(request):
    return json_reply(ZONES) if request.path == "/api/v1/servers/localhost/zones" else json_reply({}, 404)


class TestPdnsApiHttp(base.BaseTestCase):

    def setUp(self) -> None:
        super().setUp()
        designate_ready()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)

    def options(self, url: str, **extra: str) -> dict[str, str]:
        return {"api_endpoint": url, "api_token": KEY, "api_timeout": "3", **extra}

    def assertOneLineWithoutKey(self, error: Exception, *expected: str) -> None:
        text = str(error)
        self.assertNotIn("\n", text)
        self.assertNotIn(KEY, text)
        for part in expected:
            self.assertIn(part, text)

    def test_https_is_verified_with_api_ca_cert(self) -> None:
        cert, tls = self_signed_tls(self.tmp)
        api = self.useFixture(FakeDesignateAPI(tls=tls, reply=_zones))
        self.assertTrue(api.url.startswith("https://"))
        self.assertEqual(LISTED, pdns4_dr.list_zones(self.options(api.url, api_ca_cert=str(cert))))
        self.assertEqual([KEY], [r.headers.get("X-API-Key") for r in api.received])
        # without the CA: the system's CAs do not know the certificate
        error = self.assertRaises(exceptions.Backend, pdns4_dr.list_zones, self.options(api.url))
        self.assertOneLineWithoutKey(error, "failed the TLS handshake (check api_ca_cert)")
        # Designate's placeholder value means "not set"
        error = self.assertRaises(exceptions.Backend, pdns4_dr.list_zones,
                                  self.options(api.url, api_ca_cert="changeme"))
        self.assertOneLineWithoutKey(error, "TLS handshake")

    def test_a_redirect_is_not_followed(self) -> None:
        elsewhere = self.useFixture(FakeDesignateAPI(reply=_zones, host="127.0.0.5"))
        for status in (301, 302, 307, 308):
            api = self.useFixture(FakeDesignateAPI(reply=lambda request, s=status: (
                s, {"Location": elsewhere.url + request.path}, b""), host="127.0.0.4"))
            error = self.assertRaises(exceptions.Backend, pdns4_dr.list_zones, self.options(api.url))
            self.assertOneLineWithoutKey(error, f"answered HTTP {status} (a redirect: not followed")
        self.assertEqual([], elsewhere.received)

    def test_proxy_variables_do_not_get_the_key(self) -> None:
        proxy = self.useFixture(FakeDesignateAPI(reply=_zones, host="127.0.0.5"))
        api = self.useFixture(FakeDesignateAPI(reply=_zones, host="127.0.0.4"))
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "ALL_PROXY"):
            self.useFixture(fixtures.EnvironmentVariable(name, proxy.url))
        self.useFixture(fixtures.EnvironmentVariable("NO_PROXY"))
        self.assertEqual(LISTED, pdns4_dr.list_zones(self.options(api.url)))
        self.assertEqual(([], 1), (proxy.received, len(api.received)))

    def test_nothing_listening_and_no_answer_are_one_line(self) -> None:
        with socket.socket() as sock:  # bound, never listening: refused
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            error = self.assertRaises(exceptions.Backend, pdns4_dr.list_zones,
                                      self.options(f"http://127.0.0.1:{port}"))
        self.assertOneLineWithoutKey(error, "is unreachable (connection refused or reset)")
        silent = _OneReplyServer(reply=False)
        self.addCleanup(silent.close)
        error = self.assertRaises(exceptions.Backend, pdns4_dr.list_zones,
                                  self.options(silent.url, api_timeout="0.5"))
        self.assertOneLineWithoutKey(error, "did not answer within 0.5s")


class TestKeepAlive(base.BaseTestCase):

    def test_an_idle_connection_the_server_closed_is_replaced(self) -> None:
        # a proxy that keeps connections alive, then drops each one after its reply
        server = _OneReplyServer()
        self.addCleanup(server.close)
        host, port = server.url.split("//")[1].split(":")
        endpoint = Endpoint("http", host, int(port), timeout=3, headers={"X-API-Key": KEY})
        self.addCleanup(endpoint.close)
        for _ in range(3):
            self.assertEqual((200, {"ok": True}), (lambda r: (r.status_code, r.json()))(
                endpoint.request("GET", "/api/v1/servers/localhost")))
        self.assertEqual(3, server.accepted)

    def test_a_post_is_not_sent_twice_on_a_fresh_connection(self) -> None:
        server = _OneReplyServer(reply=False, close_at_once=True)
        self.addCleanup(server.close)
        host, port = server.url.split("//")[1].split(":")
        endpoint = Endpoint("http", host, int(port), timeout=3, headers={})
        self.addCleanup(endpoint.close)
        error = self.assertRaises(HttpError, endpoint.request, "POST", "/zones", {"name": "a."})
        self.assertEqual("unreachable", error.kind)
        self.assertEqual(1, server.accepted)


class _OneReplyServer:
    """On 127.0.0.1: each connection gets one reply that promises keep-alive (HTTP/1.1,
    no ``Connection: close``) and is then closed; ``reply=False``: no reply at all (the
    connection stays open and silent, or with ``close_at_once`` is closed)."""

    def __init__(self, reply: bool = True, close_at_once: bool = False) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.reply, self.close_at_once = reply, close_at_once
        self.accepted = 0
        self._open: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.recv(65536)
            if self.reply:
                conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n'
                             b'Content-Length: 12\r\n\r\n{"ok": true}')
            if self.reply or self.close_at_once:
                conn.close()
            else:
                self._open.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self._open:
            conn.close()
