"""One call to an endpoint: checked target, Standard Webhooks signature, bounded time.

The target's name is resolved here, each address checked, and the connection made to the
checked address itself (the name still goes in `Host` and in TLS's SNI and certificate
check), so a name that resolves to a public address for the check and to a private one for
the call (DNS rebinding) gets nowhere. Redirects are not followed: a 3xx is a failure.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import secrets
import socket
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx
from standardwebhooks.webhooks import Webhook

from ticketdesk import __version__

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix the specification gives secrets
USER_AGENT = f"ticketdesk-webhooks/{__version__}"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


class Refused(Exception):
    """The call was not made, or the endpoint did not take it (`code`: its HTTP status)."""

    def __init__(self, reason: str, *, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def why_not_public(address: str) -> str | None:
    """Why an address is no place for a webhook to call, or None for a public one."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for test, what in (
        (ip.is_loopback, "a loopback"),
        (ip.is_link_local, "a link-local"),
        (ip.is_private, "a private"),
        (ip.is_multicast, "a multicast"),
        (ip.is_unspecified or ip.is_reserved, "a reserved"),
    ):
        if test:
            return f"{address} is {what} address"
    if not ip.is_global:
        return f"{address} is not a public address"
    return None


def literal_refusal(url: str) -> str | None:
    """Why a URL's host, when it is an address or localhost, may not be called; else None."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is a loopback address"
    try:
        return why_not_public(host)
    except ValueError:
        return None  # a name: checked once resolved, at each call


async def resolve(url: str, *, allow_private: bool) -> tuple[str, list[str]]:
    """The URL's host name and the addresses to call, all of them checked."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except OSError as exc:
        raise Refused(f"{host} could not be resolved: {exc.strerror or exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private:
        for address in addresses:
            reason = why_not_public(address)
            if reason is not None:
                raise Refused(f"refused to call {host}: {reason} (WEBHOOK_ALLOW_PRIVATE)")
    if not addresses:
        raise Refused(f"{host} has no address")
    return host, addresses


def signed_headers(secret: str, message_id: str, body: str) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body),
    }


def http_client() -> httpx.AsyncClient:
    """One client for a worker's calls (TLS set up once). Connections are not kept: each
    call connects to the address it checked, and one endpoint's TLS session (its SNI) must
    not serve another name on the same address."""
    return httpx.AsyncClient(
        follow_redirects=False, limits=httpx.Limits(max_keepalive_connections=0)
    )


async def call(
    client: httpx.AsyncClient,
    url: str,
    *,
    secret: str,
    message_id: str,
    body: str,
    timeout: float,  # noqa: ASYNC109 - it bounds the HTTP client, not this function
    allow_private: bool,
) -> int:
    """POST the signed body; the endpoint's 2xx status, or Refused."""
    host, addresses = await resolve(url, allow_private=allow_private)
    parts = urlsplit(url)
    address = addresses[0]
    netloc = f"[{address}]" if ":" in address else address
    if parts.port is not None:
        netloc += f":{parts.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    headers = signed_headers(secret, message_id, body)
    headers["host"] = parts.netloc.rpartition("@")[2]
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    try:
        response = await client.post(
            pinned,
            content=body.encode(),
            headers=headers,
            extensions=extensions,
            timeout=timeout,
            follow_redirects=False,
        )
    except httpx.TimeoutException as exc:
        raise Refused(f"no answer within {timeout:g} s") from exc
    except httpx.HTTPError as exc:
        raise Refused(f"the call failed: {type(exc).__name__}: {exc}") from exc
    if 200 <= response.status_code < 300:
        return response.status_code
    if 300 <= response.status_code < 400:
        raise Refused(
            "the endpoint redirected; redirects are not followed", code=response.status_code
        )
    raise Refused(f"the endpoint answered {response.status_code}", code=response.status_code)
