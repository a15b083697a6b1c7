"""HTTP POSTs to an address already checked: the connection goes to that address, not to a second lookup of the
name (which a DNS rebinding attack would answer differently). The name still goes out as the Host header, the
TLS server name (SNI) and the name the certificate must carry."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter


class _PinnedAdapter(HTTPAdapter):
    """Connection pools that talk TLS as `hostname` whatever address they connect to."""

    def __init__(self, hostname: str) -> None:
        self._hostname = hostname
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Pools for this adapter: SNI and certificate checks against the name (dropped by urllib3 for http)."""
        super().init_poolmanager(*args, server_hostname=self._hostname, assert_hostname=self._hostname, **kwargs)


def pinned_url(url: str, address: str) -> str:
    """`url` with its host replaced by `address` (an IPv6 address in brackets), port and path kept."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))


def post_pinned(url: str, address: str, *, headers: dict[str, str], **kwargs: Any) -> requests.Response:
    """POST to `url`, connecting to `address`: what `requests.post(url, ...)` does once the name resolved to it."""
    parts = urlsplit(url)
    with requests.Session() as session:
        session.mount(f"{parts.scheme}://", _PinnedAdapter(parts.hostname or ""))
        return session.post(pinned_url(url, address), headers={**headers, "Host": parts.netloc}, **kwargs)
