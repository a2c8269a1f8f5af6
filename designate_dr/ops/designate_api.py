"""The few Designate v2 API calls the DR operations need.

Authentication is a Keystone token in ``OS_AUTH_TOKEN`` (``openstack token issue``),
sent as ``X-Auth-Token`` with ``X-Auth-All-Projects: True`` (an admin sees every
project's zones).  The token is never logged or put in an error message, and it is
only sent to the server named on the command line: a ``links.next`` or a redirect to
another scheme, host or port is not followed, redirects are never followed, and a
token over plain ``http`` is refused unless ``insecure_http`` (``--insecure-http``).
Replies are treated as hostile: anything that is not the JSON Designate sends is an
:class:`APIError`, and a pagination that goes round in circles is one too.

Designate has no call to set a serial: any update of a zone makes it take a new one
(the current UNIX time, applied by designate-producer's serial task within seconds), so
``bump_serial`` re-sends the zone's own TTL with ``PATCH /v2/zones/{id}``.
"""
from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests

from designate_dr.ops.errors import APIError, PoolsError, Unreachable

TOKEN_ENV = "OS_AUTH_TOKEN"
DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL; None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


class DesignateAPI:
    def __init__(self, url: str, token: str | None = None, *, timeout: float = 10.0,
                 insecure_http: bool = False) -> None:
        origin = _origin(url)
        if origin is None:
            raise PoolsError(f"Designate API URL {url!r} is not an http:// or https:// URL with a host")
        base = url.rstrip("/")
        if base.endswith("/v2"):
            base = base[:-3]
        self.base = base + "/"
        self.origin = origin
        # for messages: no user:password@ from the URL
        self.where = f"{origin[0]}://{urlsplit(url).netloc.rpartition('@')[2]}"
        self.timeout = timeout
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        if token and origin[0] == "http" and not insecure_http:
            raise PoolsError(f"refusing to send the token ({TOKEN_ENV}) over plain http to {self.where}",
                              hint="use the API's https:// URL, or --insecure-http on a trusted network")
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", "X-Auth-All-Projects": "True"})
        if token:
            self.session.headers["X-Auth-Token"] = token

    def close(self) -> None:
        self.session.close()

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        url = urljoin(self.base, path)
        if _origin(url) != self.origin:
            # The token goes with every request: only to the server we were given.
            raise APIError(f"Designate API at {self.where} sent a link to another server ({what}): "
                           f"{url[:200]!r} not followed")
        try:
            resp = self.session.request(method, url, timeout=self.timeout, allow_redirects=False, **kwargs)
        except requests.ConnectionError:
            raise Unreachable(f"Designate API at {self.where} is unreachable ({what})") from None
        except requests.Timeout:
            raise Unreachable(f"Designate API at {self.where} timed out ({what})") from None
        if resp.status_code in (401, 403):
            raise APIError(f"Designate API refused {what}: HTTP {resp.status_code}",
                           hint=f"set {TOKEN_ENV} to an admin token")
        if 300 <= resp.status_code < 400:
            raise APIError(f"Designate API at {self.where} answered {what} with a redirect "
                           f"(HTTP {resp.status_code}): not followed",
                           hint="give the URL the API really serves")
        if resp.status_code >= 400:
            try:
                body = resp.json()
                message = body.get("message") if isinstance(body, dict) else None
            except ValueError:
                message = None
            if not isinstance(message, str):
                message = resp.reason
            message = " ".join(str(message).split())[:200]
            raise APIError(f"Designate API failed {what}: HTTP {resp.status_code} {message}")
        try:
            return resp.json() if resp.content else {}
        except ValueError:
            raise APIError(f"Designate API answered {what} with something that is not JSON") from None

    def _page(self, path: str, what: str) -> dict[str, Any]:
        page = self._request("GET", path, what)
        zones = page.get("zones") if isinstance(page, dict) else None
        links = page.get("links", {}) if isinstance(page, dict) else None
        if not isinstance(zones, list) or not isinstance(links, (dict, type(None))) or not all(
                isinstance(z, dict) and isinstance(z.get("name"), str) and z["name"] for z in zones):
            raise APIError(f"Designate API answered {what} with something that is not a zone list")
        return page

    def list_zones(self) -> list[dict[str, Any]]:
        """Every zone (all projects), following the pagination links."""
        zones: list[dict[str, Any]] = []
        seen: set[str] = set()
        path: Any = "v2/zones?limit=1000"
        while path:
            url = urljoin(self.base, path) if isinstance(path, str) else None
            if url is None or url in seen:
                raise APIError(f"Designate API at {self.where} sent a bad next link while listing zones "
                               "(not a URL, or one already followed)")
            seen.add(url)
            page = self._page(url, "listing zones")
            zones.extend(page["zones"])
            path = (page.get("links") or {}).get("next")
            if path and not page["zones"]:
                raise APIError(f"Designate API at {self.where} sent an empty page with a next link "
                               "while listing zones")
        return zones

    def find_zone(self, name: str) -> dict[str, Any]:
        name = name if name.endswith(".") else name + "."
        found = self._page("v2/zones?" + urlencode({"name": name}), f"finding zone {name}")
        zones = [z for z in found["zones"] if z["name"].lower() == name.lower()]
        if not zones:
            raise APIError(f"Designate API has no zone {name}")
        zone = zones[0]
        if not isinstance(zone.get("id"), str) or not zone["id"] or \
                not isinstance(zone.get("ttl"), int) or isinstance(zone["ttl"], bool):
            raise APIError(f"Designate API answered finding zone {name} with a zone without an id or ttl")
        return zone

    def bump_serial(self, zone: dict[str, Any]) -> dict[str, Any]:
        """Make Designate give ``zone`` a new serial (an update that changes nothing else)."""
        return self._request("PATCH", f"v2/zones/{zone['id']}", f"updating zone {zone['name']}",
                             json={"ttl": zone["ttl"]})
