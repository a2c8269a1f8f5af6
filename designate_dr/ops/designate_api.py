"""The few Designate v2 API calls the DR operations need.

Authentication is a Keystone token in ``OS_AUTH_TOKEN`` (``openstack token issue``),
sent as ``X-Auth-Token`` with ``X-Auth-All-Projects: True`` (an admin sees every
project's zones).  The token is never logged or put in an error message.

Designate has no call to set a serial: any update of a zone makes it take a new one
(the current UNIX time, applied by designate-producer's serial task within seconds), so
``bump_serial`` re-sends the zone's own TTL with ``PATCH /v2/zones/{id}``.
"""
from __future__ import annotations

import os
from typing import Any
from urllib.parse import urljoin

import requests

from designate_dr.ops.errors import APIError, Unreachable

TOKEN_ENV = "OS_AUTH_TOKEN"


class DesignateAPI:
    def __init__(self, url: str, token: str | None = None, *, timeout: float = 10.0) -> None:
        base = url.rstrip("/")
        if base.endswith("/v2"):
            base = base[:-3]
        self.base = base + "/"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", "X-Auth-All-Projects": "True"})
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        if token:
            self.session.headers["X-Auth-Token"] = token

    def close(self) -> None:
        self.session.close()

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        url = path if path.startswith("http") else urljoin(self.base, path.lstrip("/"))
        try:
            resp = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.ConnectionError:
            raise Unreachable(f"Designate API at {self.base.rstrip('/')} is unreachable ({what})") from None
        except requests.Timeout:
            raise Unreachable(f"Designate API at {self.base.rstrip('/')} timed out ({what})") from None
        if resp.status_code in (401, 403):
            raise APIError(f"Designate API refused {what}: HTTP {resp.status_code}",
                           hint=f"set {TOKEN_ENV} to an admin token")
        if resp.status_code >= 400:
            try:
                message = resp.json().get("message") or resp.reason
            except ValueError:
                message = resp.reason
            raise APIError(f"Designate API failed {what}: HTTP {resp.status_code} {message}")
        try:
            return resp.json() if resp.content else {}
        except ValueError:
            raise APIError(f"Designate API answered {what} with something that is not JSON") from None

    def list_zones(self) -> list[dict[str, Any]]:
        """Every zone (all projects), following the pagination links."""
        zones: list[dict[str, Any]] = []
        path: str | None = "v2/zones?limit=1000"
        while path:
            page = self._request("GET", path, "listing zones")
            zones.extend(page.get("zones", []))
            path = (page.get("links") or {}).get("next")
        return zones

    def find_zone(self, name: str) -> dict[str, Any]:
        name = name if name.endswith(".") else name + "."
        found = self._request("GET", "v2/zones", f"finding zone {name}", params={"name": name})
        zones = found.get("zones", [])
        if not zones:
            raise APIError(f"Designate API has no zone {name}")
        return zones[0]

    def bump_serial(self, zone: dict[str, Any]) -> dict[str, Any]:
        """Make Designate give ``zone`` a new serial (an update that changes nothing else)."""
        return self._request("PATCH", f"v2/zones/{zone['id']}", f"updating zone {zone['name']}",
                             json={"ttl": zone["ttl"]})
