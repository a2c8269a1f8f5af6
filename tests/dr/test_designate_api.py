"""The Designate API client of the DR commands against real local HTTP servers.

The token (``OS_AUTH_TOKEN``) goes only to the server named on the command line:
``links.next`` and redirects to another scheme, host or port are not followed, and
plain http needs ``--insecure-http``.  The other servers here record what they
received, so a leak shows as a request (and a token) that reached them.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import fixtures
from oslotest import base

from designate_dr.ops.designate_api import DesignateAPI
from tests.fixtures.cli import run_cli
from tests.fixtures.designate_api import FakeDesignateAPI, json_reply, self_signed_tls

TOKEN = "s3cret-admin-token"

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


class TestTokenStaysHome(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.pools = self.tmp / "pools.yaml"
        self.pools.write_text(POOLS)
        self.useFixture(fixtures.EnvironmentVariable("OS_AUTH_TOKEN", TOKEN))
        # the other host, and another port of the API's own host
        self.elsewhere = self.server("127.0.0.2")
        self.other_port = self.server("127.0.0.1")

    def server(self, host: str = "127.0.0.1", **kwargs: Any) -> FakeDesignateAPI:
        return self.useFixture(FakeDesignateAPI(host=host, **kwargs))

    def api_with_next(self, next_link: Callable[[FakeDesignateAPI, str], Any], **kwargs: Any) -> FakeDesignateAPI:
        """An API listing a.example. then b.example., one a page, the next page where ``next_link`` says."""
        return self.server(zones=["a.example.", "b.example."], page_size=1, next_link=next_link, **kwargs)

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
                ("other host", lambda api: f"{self.elsewhere.url}/v2/zones?marker=a.example"),
                ("other port", lambda api: f"{self.other_port.url}/v2/zones?marker=a.example"),
                ("network-path reference", lambda api: f"//127.0.0.2:{self.elsewhere.port}"
                                                       "/v2/zones?marker=a.example"),
                ("https", lambda api: api.url.replace("http:", "https:") + "/v2/zones?marker=a.example"),
                ("host with user info", lambda api: f"http://127.0.0.1:{api.port}@127.0.0.2:"
                                                    f"{self.elsewhere.port}/v2/zones?marker=a.example")):
            api = self.api_with_next(lambda api, marker, link=link: link(api))
            outcome = self.check(api.url, "--insecure-http")

            self.assertEqual(1, outcome.code, name)
            self.assertRegex(outcome.stderr, rf"^error: Designate API at {api.url} sent a link to another "
                                             r"server \(listing zones\): '.*' not followed\n$")
            self.assertNotIn(TOKEN, outcome.stdout + outcome.stderr)
            self.assertEqual([TOKEN], api.tokens(), name)
        self.assertNothingElsewhere()

    def test_redirect_is_not_followed(self) -> None:
        for status in (301, 302, 307, 308):
            api = self.server(reply=lambda request, status=status: (
                status, {"Location": f"{self.elsewhere.url}/v2/zones"}, b""))
            outcome = self.check(api.url + "/v2", "--insecure-http")

            self.assertOneError(outcome, f"error: Designate API at {api.url} answered listing zones with a "
                                         f"redirect (HTTP {status}): not followed (give the URL the API really "
                                         "serves)")
        self.assertNothingElsewhere()

    def test_same_server_links_are_followed(self) -> None:
        absolute = self.api_with_next(lambda api, marker: f"{api.url}/v2/zones?limit=1&marker={marker}")
        relative = self.api_with_next(lambda api, marker: f"/v2/zones?limit=1&marker={marker}")
        for api in (absolute, relative):
            client = DesignateAPI(api.url + "/v2/", insecure_http=True)
            self.addCleanup(client.close)

            self.assertEqual(["a.example.", "b.example."], [z["name"] for z in client.list_zones()])
            self.assertEqual([TOKEN, TOKEN], api.tokens())
            self.assertEqual("True", api.received[0].headers["X-Auth-All-Projects"])

    def test_plain_http_needs_insecure_http(self) -> None:
        api = self.server()
        outcome = self.check(api.url)

        self.assertOneError(outcome, f"error: refusing to send the token (OS_AUTH_TOKEN) over plain http to "
                                     f"{api.url} (use the API's https:// URL, or --insecure-http on a "
                                     "trusted network)")
        self.assertEqual([], api.received)

        # user:password@ in the URL is not repeated in the error
        outcome = self.check(api.url.replace("://", "://admin:pw@"))
        self.assertOneError(outcome, f"error: refusing to send the token (OS_AUTH_TOKEN) over plain http to "
                                     f"{api.url} (use the API's https:// URL, or --insecure-http on a "
                                     "trusted network)")

        # no token, nothing to leak: plain http is fine
        self.useFixture(fixtures.EnvironmentVariable("OS_AUTH_TOKEN", ""))
        self.assertEqual(["a.example."], [z["name"] for z in DesignateAPI(
            self.server(zones=["a.example."]).url).list_zones()])

    def test_failover_api_needs_insecure_http(self) -> None:
        api = self.server()
        before = self.pools.read_bytes()
        outcome = run_cli("dr", "failover", "--pools", str(self.pools), "--lost", "region2",
                          "--fix-serials", "--api", api.url)

        self.assertOneError(outcome, f"error: refusing to send the token (OS_AUTH_TOKEN) over plain http to "
                                     f"{api.url} (use the API's https:// URL, or --insecure-http on a "
                                     "trusted network)")
        self.assertEqual(before, self.pools.read_bytes())
        self.assertEqual([], list(self.pools.parent.glob("pools.yaml.*")))
        self.assertEqual([], api.received)

    def test_https(self) -> None:
        cert, tls = self_signed_tls(self.tmp)
        self.useFixture(fixtures.EnvironmentVariable("REQUESTS_CA_BUNDLE", str(cert)))

        api = self.server(zones=["a.example.", "b.example."], page_size=1, tls=tls)
        self.assertTrue(api.url.startswith("https://"), api.url)
        client = DesignateAPI(api.url)
        self.addCleanup(client.close)

        self.assertEqual(["a.example.", "b.example."], [z["name"] for z in client.list_zones()])
        self.assertEqual([TOKEN, TOKEN], api.tokens())

        # a next link that drops to plain http on the same host and port is another server
        downgrade = self.api_with_next(
            lambda api, marker: api.url.replace("https:", "http:") + f"/v2/zones?marker={marker}", tls=tls)
        outcome = self.check(downgrade.url)
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
            api = self.server(reply=lambda request, reply=reply: reply)
            self.assertOneError(self.check(api.url, "--insecure-http"), line.format(origin=api.url))

    def test_pagination_that_goes_round_in_circles(self) -> None:
        api = self.api_with_next(lambda api, marker: f"{api.url}/v2/zones?limit=1000")
        outcome = self.check(api.url, "--insecure-http")

        self.assertOneError(outcome, f"error: Designate API at {api.url} sent a bad next link while listing "
                                     "zones (not a URL, or one already followed)")
        self.assertEqual(1, len(api.received))

    def test_bad_url(self) -> None:
        for url in ("ftp://127.0.0.1/v2", "127.0.0.1:9001", "http://", "http://127.0.0.1:99999/",
                    "http://127.0.0.1:port/"):
            outcome = self.check(url)

            self.assertOneError(outcome, f"error: Designate API URL {url!r} is not an http:// or https:// URL "
                                         "with a host")

