"""Remote image URLs, fetched only when the operator opts in (``--allow-remote-images``), and then safely.

Safe means: ``https`` only; every address the host resolves to must be a
public one (no loopback, private, link-local, multicast or reserved range), and
the connection goes to the address that was checked (the name is sent as Host
and TLS server name), so a second DNS answer cannot point it elsewhere; each
redirect is checked again the same way; the body is bounded and must be an
image. A fetched image becomes a ``data:`` URL, so the chat request is read
exactly as if the client had sent the bytes inline.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from .errors import APIError, bad_request

Resolver = Callable[[str, int], Awaitable[list[str]]]
MAX_REDIRECTS = 3
TIMEOUT_S = 10.0


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver, off the event loop)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise bad_request(f"image URL host {host!r} does not resolve: {exc}", code="image_url_not_allowed") from None
    return sorted({str(info[4][0]) for info in infos})


def public_address(address: str) -> bool:
    """True only for a globally routable unicast address (IPv4-mapped IPv6 judged as the IPv4 inside)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def fetch_image(url: str, *, max_bytes: int, where: str, resolver: Resolver = resolve,
                      transport: httpx.AsyncBaseTransport | None = None) -> str:
    """The image at ``url`` as a ``data:`` URL, following at most :data:`MAX_REDIRECTS` checked redirects."""
    async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT_S, follow_redirects=False,
                                 trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            target, headers, extensions = await _pinned(url, where, resolver)
            async with client.stream("GET", target, headers=headers, extensions=extensions) as response:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                return await _read_image(response, url, max_bytes, where)
    raise bad_request(f"{where}: more than {MAX_REDIRECTS} redirects fetching the image", where,
                      "image_url_not_allowed")


async def _pinned(url: str, where: str, resolver: Resolver) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The request for ``url`` sent to its checked address: (URL by address, headers, TLS server name)."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:
        raise bad_request(f"{where}: {url[:100]!r} is not a valid URL", where, "image_url_not_allowed") from None
    if parts.scheme != "https" or not parts.hostname:
        raise bad_request(f"{where}: only https:// image URLs are fetched (got {url[:100]!r}); or send a data: URL",
                          where, "image_url_not_allowed")
    host = parts.hostname
    addresses = [host] if _is_address(host) else await resolver(host, port)
    refused = [a for a in addresses if not public_address(a)]
    if not addresses or refused:
        raise bad_request(f"{where}: {host} resolves to a non-public address ({', '.join(refused) or 'none'}); "
                          "this server fetches images from public hosts only", where, "image_url_not_allowed")
    address = addresses[0]
    shown = f"[{address}]" if ":" in address else address
    path = parts.path or "/"
    target = f"https://{shown}:{port}{path}" + (f"?{parts.query}" if parts.query else "")
    return target, {"Host": parts.netloc.rsplit("@", 1)[-1]}, {"sni_hostname": host}


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _read_image(response: httpx.Response, url: str, max_bytes: int, where: str) -> str:
    """The response body as a data: URL: a 2xx image of at most ``max_bytes``."""
    if response.status_code // 100 != 2:
        raise bad_request(f"{where}: fetching {url[:100]} answered HTTP {response.status_code}", where,
                          "image_url_fetch_failed")
    kind = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not kind.startswith("image/"):
        raise bad_request(f"{where}: {url[:100]} is {kind or 'untyped'}, not an image", where, "image_url_not_image")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise APIError(413, f"{where}: the image at {url[:100]} is over {max_bytes} bytes", param=where,
                           code="image_too_large")
    return f"data:{kind};base64,{base64.b64encode(bytes(body)).decode('ascii')}"


async def inline_remote_images(messages: Any, *, max_bytes: int) -> None:
    """Replace, in place, each https image URL in user messages by the fetched image's data: URL.

    Anything malformed is left as it is for the request reader to refuse with its own message.
    """
    if not isinstance(messages, list):
        return
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) and message.get("role") == "user" else None
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            spec = part.get("image_url") if isinstance(part, dict) and part.get("type") == "image_url" else None
            if isinstance(spec, dict) and isinstance(spec.get("url"), str) and spec["url"].startswith("https://"):
                spec["url"] = await fetch_image(spec["url"], max_bytes=max_bytes,
                                                where=f"messages[{i}].content[{j}].image_url.url")
