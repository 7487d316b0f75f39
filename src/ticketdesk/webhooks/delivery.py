"""One call to an endpoint: checked target, Standard Webhooks signature, bounded time and size.

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
MAX_ANSWER_BYTES = 64 * 1024
"""Of an endpoint's answer, only the status matters: this much of its body is read at most."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


class Refused(Exception):
    """The call was not made, or the endpoint did not take it (`code`: its HTTP status)."""

    def __init__(self, reason: str, *, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
_LOCAL_NAT64_96 = ipaddress.IPv6Network("64:ff9b:1::/96")
_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """The IPv4 addresses a call to this IPv6 address really goes to, through a translator or
    a tunnel: IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96), NAT64 (64:ff9b::/96, and
    the local-use 64:ff9b:1::/48 in its /96 form), 6to4 (2002::/16), and Teredo (2001::/32:
    its server, and its client, the last 32 bits inverted). None for any other address."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    last_32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64 or ip in _LOCAL_NAT64_96:
        return [last_32]
    if ip in _COMPATIBLE and int(ip) > 1:  # :: and ::1 are themselves
        return [last_32]
    return None


def why_not_public(address: str) -> str | None:
    """Why an address is no place for a webhook to call, or None for a public one.

    The one rule for targets, at creation (an address in the URL) and at every call (each
    address the name resolves to). An IPv6 address that stands for an IPv4 one is judged by
    the IPv4 address: Python counts 6to4's 2002:7f00:1:: as global, yet it is loopback.
    """
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _LOCAL_NAT64 and ip not in _LOCAL_NAT64_96:
            return f"{address} is a local NAT64 address of an unknown layout"
        embedded = embedded_ipv4(ip)
        if embedded is not None:
            for ipv4 in embedded:
                reason = _why_not_public(ipv4)
                if reason is not None:
                    return f"{address} stands for {ipv4}, {reason}"
            return None
    reason = _why_not_public(ip)
    return None if reason is None else f"{address} is {reason}"


def _why_not_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    for test, what in (
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_private, "a private address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_unspecified or ip.is_reserved, "a reserved address"),
    ):
        if test:
            return what
    if not ip.is_global:
        return "not a public address"
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
    timeout: float,  # noqa: ASYNC109 - the deadline of the whole call, kept below
    allow_private: bool,
) -> int:
    """POST the signed body; the endpoint's 2xx status, or Refused.

    `timeout` bounds the whole call: resolving, connecting, sending, and the answer (a
    receiver that trickles its answer a byte at a time is cut off too). Of the answer's body
    at most MAX_ANSWER_BYTES are read, then the connection is closed: only the status counts.
    """
    try:
        async with asyncio.timeout(timeout):
            return await _call(
                client,
                url,
                secret=secret,
                message_id=message_id,
                body=body,
                timeout=timeout,
                allow_private=allow_private,
            )
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise Refused(f"no complete answer within {timeout:g} s") from exc


async def _call(
    client: httpx.AsyncClient,
    url: str,
    *,
    secret: str,
    message_id: str,
    body: str,
    timeout: float,  # noqa: ASYNC109 - each read's, within the caller's deadline
    allow_private: bool,
) -> int:
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
    request = client.build_request(
        "POST",
        pinned,
        content=body.encode(),
        headers=headers,
        extensions=extensions,
        timeout=timeout,
    )
    try:
        response = await client.send(request, stream=True, follow_redirects=False)
        try:
            await _read_some(response)
        finally:
            await response.aclose()
    except httpx.TimeoutException:
        raise
    except httpx.HTTPError as exc:
        raise Refused(f"the call failed: {type(exc).__name__}: {exc}") from exc
    if 200 <= response.status_code < 300:
        return response.status_code
    if 300 <= response.status_code < 400:
        raise Refused(
            "the endpoint redirected; redirects are not followed", code=response.status_code
        )
    raise Refused(f"the endpoint answered {response.status_code}", code=response.status_code)


async def _read_some(response: httpx.Response) -> None:
    """Read the start of the answer's body, at most MAX_ANSWER_BYTES (a short answer whole,
    so its sender sees it taken), and leave the rest unread."""
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read >= MAX_ANSWER_BYTES:
            return
