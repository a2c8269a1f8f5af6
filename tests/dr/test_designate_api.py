"""The Designate API client of the DR commands against real local HTTP servers.

The token (``OS_AUTH_TOKEN``) goes only to the server named on the command line:
``links.next`` and redirects to another scheme, host or port are not followed, and
plain http needs ``--insecure-http``.  The other servers here record what they
received, so a leak shows as a request (and a token) that reached them.
"""
from __future__ import annotations

import http.server
import json
import os
import ssl
import subprocess
import tempfile
import threading
import unittest
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from designate_dr.ops.designate_api import DesignateAPI
from tests.dr.servers import free_port
from tests.fixtures.cli import run_cli

TOKEN = "s3cret-admin-token"
Reply = tuple[int, dict[str, str], bytes]

POOLS = """\
- name: default
  nameservers:
  - host: 127.0.0.1
    port: 5399
  targets:
  - type: pdns4_dr
    masters:
    - host: 127.0.0.40
      port: 5354
    options:
      host: 127.0.0.1
      port: '5399'
      region: region1
      masters_region2: 127.0.0.41:5354
  - type: pdns4_dr
    masters:
    - host: 127.0.0.41
      port: 5354
    options:
      host: 127.0.0.1
      port: '5398'
      region: region2
      masters_region1: 127.0.0.40:5354
"""


def json_reply(body: Any, status: int = 200) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


class RecordingServer(http.server.ThreadingHTTPServer):
    """An HTTP(S) server on a loopback address: answers with ``reply(path)`` and records
    every request's method, path and headers."""

    def __init__(self, host: str, reply: Callable[[str], Reply] | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.reply = reply or (lambda path: json_reply({"zones": [], "links": {}}))
        self.received: list[tuple[str, str, dict[str, str]]] = []
        super().__init__((host, free_port(host)), _RecordingHandler)
        scheme = "http"
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
            scheme = "https"
        self.origin = f"{scheme}://{host}:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def tokens(self) -> list[str | None]:
        return [headers.get("X-Auth-Token") for _, _, headers in self.received]


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
    server: RecordingServer

    def log_message(self, *args) -> None:
        pass

    def _answer(self) -> None:
        self.server.received.append((self.command, self.path, dict(self.headers)))
        status, headers, body = self.server.reply(self.path)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PATCH = _answer


class TestTokenStaysHome(unittest.TestCase):
    def setUp(self) -> None:
        tmp = Path(self.enterContext(tempfile.TemporaryDirectory()))
        self.pools = tmp / "pools.yaml"
        self.pools.write_text(POOLS)
        self.enterContext(mock.patch.dict(os.environ, {"OS_AUTH_TOKEN": TOKEN}))
        # the other host, and another port of the API's own host
        self.elsewhere = self.server("127.0.0.2")
        self.other_port = self.server("127.0.0.1")

    def server(self, host: str, reply: Callable[[str], Reply] | None = None,
               tls: ssl.SSLContext | None = None) -> RecordingServer:
        server = RecordingServer(host, reply, tls)
        self.addCleanup(server.stop)
        return server

    def api_with_next(self, next_link: Callable[[RecordingServer], Any]) -> RecordingServer:
        def reply(path: str) -> Reply:
            if "marker" in path:
                return json_reply({"zones": [{"id": "2", "name": "b.example."}], "links": {}})
            return json_reply({"zones": [{"id": "1", "name": "a.example."}],
                               "links": {"next": next_link(api)}})
        api = self.server("127.0.0.1", reply)
        return api

    def check(self, url: str, *extra: str):
        return run_cli("dr", "check", "--pools", str(self.pools), "--from-api", url, *extra)

    def assertOneError(self, outcome, line: str) -> None:
        self.assertEqual(1, outcome.code, outcome.stderr)
        self.assertEqual([line], outcome.stderr.splitlines())
        self.assertNotIn(TOKEN, outcome.stdout + outcome.stderr)

    def assertNothingElsewhere(self) -> None:
        self.assertEqual([], self.elsewhere.received)
        self.assertEqual([], self.other_port.received)

    def test_next_link_to_another_server_is_not_followed(self) -> None:
        for name, link in (
                ("other host", lambda api: f"{self.elsewhere.origin}/v2/zones?marker=1"),
                ("other port", lambda api: f"{self.other_port.origin}/v2/zones?marker=1"),
                ("network-path reference", lambda api: f"//127.0.0.2:{self.elsewhere.server_address[1]}"
                                                       "/v2/zones?marker=1"),
                ("https", lambda api: api.origin.replace("http:", "https:") + "/v2/zones?marker=1"),
                ("host with user info", lambda api: f"http://127.0.0.1:{api.server_address[1]}@127.0.0.2:"
                                                    f"{self.elsewhere.server_address[1]}/v2/zones?marker=1")):
            api = self.api_with_next(link)
            outcome = self.check(api.origin, "--insecure-http")

            self.assertEqual(1, outcome.code, name)
            self.assertRegex(outcome.stderr, rf"^error: Designate API at {api.origin} sent a link to another "
                                             r"server \(listing zones\): '.*' not followed\n$")
            self.assertNotIn(TOKEN, outcome.stdout + outcome.stderr)
            self.assertEqual([TOKEN], api.tokens(), name)
        self.assertNothingElsewhere()

    def test_redirect_is_not_followed(self) -> None:
        for status in (301, 302, 307, 308):
            api = self.server("127.0.0.1", lambda path, status=status: (
                status, {"Location": f"{self.elsewhere.origin}/v2/zones"}, b""))
            outcome = self.check(api.origin + "/v2", "--insecure-http")

            self.assertOneError(outcome, f"error: Designate API at {api.origin} answered listing zones with a "
                                         f"redirect (HTTP {status}): not followed (give the URL the API really "
                                         "serves)")
        self.assertNothingElsewhere()

    def test_same_server_links_are_followed(self) -> None:
        absolute = self.api_with_next(lambda api: f"{api.origin}/v2/zones?limit=1&marker=1")
        relative = self.api_with_next(lambda api: "/v2/zones?limit=1&marker=1")
        for api in (absolute, relative):
            client = DesignateAPI(api.origin + "/v2/", insecure_http=True)
            self.addCleanup(client.close)

            self.assertEqual(["a.example.", "b.example."], [z["name"] for z in client.list_zones()])
            self.assertEqual([TOKEN, TOKEN], api.tokens())
            self.assertEqual("True", api.received[0][2]["X-Auth-All-Projects"])

    def test_plain_http_needs_insecure_http(self) -> None:
        api = self.server("127.0.0.1")
        outcome = self.check(api.origin)

        self.assertOneError(outcome, f"error: refusing to send the token (OS_AUTH_TOKEN) over plain http to "
                                     f"{api.origin} (use the API's https:// URL, or --insecure-http on a "
                                     "trusted network)")
        self.assertEqual([], api.received)

        # user:password@ in the URL is not repeated in the error
        outcome = self.check(api.origin.replace("://", "://admin:pw@"))
        self.assertOneError(outcome, f"error: refusing to send the token (OS_AUTH_TOKEN) over plain http to "
                                     f"{api.origin} (use the API's https:// URL, or --insecure-http on a "
                                     "trusted network)")

        # no token, nothing to leak: plain http is fine
        with mock.patch.dict(os.environ, {"OS_AUTH_TOKEN": ""}):
            self.assertEqual(["a.example."], [z["name"] for z in DesignateAPI(
                self.api_with_next(lambda api: None).origin).list_zones()])

    def test_failover_api_needs_insecure_http(self) -> None:
        api = self.server("127.0.0.1")
        before = self.pools.read_bytes()
        outcome = run_cli("dr", "failover", "--pools", str(self.pools), "--lost", "region2",
                          "--fix-serials", "--api", api.origin)

        self.assertOneError(outcome, f"error: refusing to send the token (OS_AUTH_TOKEN) over plain http to "
                                     f"{api.origin} (use the API's https:// URL, or --insecure-http on a "
                                     "trusted network)")
        self.assertEqual(before, self.pools.read_bytes())
        self.assertEqual([], list(self.pools.parent.glob("pools.yaml.*")))
        self.assertEqual([], api.received)

    def test_https(self) -> None:
        tmp = Path(self.enterContext(tempfile.TemporaryDirectory()))
        key, cert = tmp / "key.pem", tmp / "cert.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        self.enterContext(mock.patch.dict(os.environ, {"REQUESTS_CA_BUNDLE": str(cert)}))

        def reply(path: str) -> Reply:
            if "marker" in path:
                return json_reply({"zones": [{"id": "2", "name": "b.example."}], "links": {}})
            return json_reply({"zones": [{"id": "1", "name": "a.example."}],
                               "links": {"next": f"{api.origin}/v2/zones?marker=1"}})
        api = self.server("127.0.0.1", reply, tls)
        client = DesignateAPI(api.origin)
        self.addCleanup(client.close)

        self.assertEqual(["a.example.", "b.example."], [z["name"] for z in client.list_zones()])
        self.assertEqual([TOKEN, TOKEN], api.tokens())

        # a next link that drops to plain http on the same host and port is another server
        downgrade = self.server("127.0.0.1", lambda path: json_reply(
            {"zones": [{"id": "1", "name": "a.example."}],
             "links": {"next": downgrade.origin.replace("https:", "http:") + "/v2/zones?marker=1"}}), tls)
        outcome = self.check(downgrade.origin)
        self.assertEqual(1, outcome.code, outcome.stderr)
        self.assertIn("sent a link to another server", outcome.stderr)
        self.assertEqual([TOKEN], downgrade.tokens())

    def test_hostile_replies_are_one_line(self) -> None:
        not_a_list = "error: Designate API answered listing zones with something that is not a zone list"
        for reply, line in (
                (json_reply([1, 2]), not_a_list),
                (json_reply({"zones": {"a": 1}}), not_a_list),
                (json_reply({"zones": [{"id": "1"}]}), not_a_list),
                (json_reply({"zones": [{"id": "1", "name": ["x"]}]}), not_a_list),
                (json_reply({"zones": ["a.example."]}), not_a_list),
                (json_reply({"zones": [], "links": "next"}), not_a_list),
                (json_reply({"zones": [{"name": "a."}], "links": {"next": 42}}),
                 "error: Designate API at {origin} sent a bad next link while listing zones (not a URL, or one "
                 "already followed)"),
                (json_reply({"zones": [], "links": {"next": "/v2/zones?marker=x"}}),
                 "error: Designate API at {origin} sent an empty page with a next link while listing zones"),
                ((200, {}, b"\xff\xfe<html>"),
                 "error: Designate API answered listing zones with something that is not JSON"),
                (json_reply(["boom"], status=500),
                 "error: Designate API failed listing zones: HTTP 500 Internal Server Error"),
                (json_reply({"message": "line one\nerror: forged line"}, status=500),
                 "error: Designate API failed listing zones: HTTP 500 line one error: forged line")):
            api = self.server("127.0.0.1", lambda path, reply=reply: reply)
            self.assertOneError(self.check(api.origin, "--insecure-http"), line.format(origin=api.origin))

    def test_pagination_that_goes_round_in_circles(self) -> None:
        api = self.server("127.0.0.1", lambda path: json_reply(
            {"zones": [{"id": "1", "name": "a.example."}], "links": {"next": f"{api.origin}/v2/zones?limit=1000"}}))
        outcome = self.check(api.origin, "--insecure-http")

        self.assertOneError(outcome, f"error: Designate API at {api.origin} sent a bad next link while listing "
                                     "zones (not a URL, or one already followed)")
        self.assertEqual(1, len(api.received))

    def test_bad_url(self) -> None:
        for url in ("ftp://127.0.0.1/v2", "127.0.0.1:9001", "http://", "http://127.0.0.1:99999/",
                    "http://127.0.0.1:port/"):
            outcome = self.check(url)

            self.assertOneError(outcome, f"error: Designate API URL {url!r} is not an http:// or https:// URL "
                                         "with a host")


if __name__ == "__main__":
    unittest.main()
