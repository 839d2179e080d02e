"""Safe by default, as pure ASGI middleware over HTTP and WebSocket scopes alike.

* Host allowlist when bound to loopback: a page on another site that resolves its own
  name to 127.0.0.1 (DNS rebinding) sends its own Host, and is refused.
* Origin: a browser request from another origin is refused unless configured (same origin
  only by default); WebSockets have no CORS, so this check is their only guard.
* API key: ``Authorization: Bearer KEY`` (WebSockets may also send the subprotocol
  ``openai-insecure-api-key.KEY``, as browser realtime clients do); ``/health`` stays open.
* Body limits: ``Content-Length`` is checked up front and the streamed body is counted, so an
  oversize request gets 413 without being held in memory; uploads have a larger limit.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .config import LOOPBACK_NAMES, ServerConfig
from .errors import APIError, error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UPLOAD_PATHS = ("/v1/audio/transcriptions", "/v1/audio/translations")
OPEN_PATHS = ("/health",)
_KEY_PROTOCOL = "openai-insecure-api-key."


class Refused(Exception):
    """A request the middleware turns away before the app sees it."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class SecurityMiddleware:
    """Checks Host, Origin, API key and body size before the app runs; adds CORS headers for allowed origins."""

    def __init__(self, app: ASGIApp, config: ServerConfig) -> None:
        self.app, self.config = app, config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            origin = self._check(scope, headers)
        except Refused as refused:
            await _refuse(scope, send, refused)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and origin is not None:
            await _preflight(send, origin, headers)
            return
        limit = self.config.max_upload_bytes if scope["path"] in UPLOAD_PATHS else self.config.max_body_bytes
        await self.app(scope, _limited(receive, limit), _with_cors(send, origin))

    def _check(self, scope: Scope, headers: dict[str, str]) -> str | None:
        """Raise Refused for a request to turn away; the allowed cross-origin origin to answer with CORS, if any."""
        host = headers.get("host", "")
        if self.config.loopback and _host_name(host) not in (*LOOPBACK_NAMES, *self.config.allowed_hosts):
            raise Refused(400 if scope["type"] == "http" else 403,
                          f"the Host header {host!r} is not allowed; call the server as 127.0.0.1 or localhost "
                          "(or add the name with --allowed-host)", "host_not_allowed")
        origin = headers.get("origin")
        cross = origin is not None and _strip(origin) != _strip(f"{_scheme(scope)}://{host}")
        if cross and _strip(origin or "") not in self.config.cors_origins:
            raise Refused(403, f"requests from the origin {origin!r} are not allowed (same origin only; "
                               "configure --cors-origin to allow it)", "origin_not_allowed")
        if self.config.api_key and scope["path"] not in OPEN_PATHS and not self._authorized(headers):
            raise Refused(401, "a valid API key is required: send 'Authorization: Bearer <key>'", "invalid_api_key")
        length = headers.get("content-length", "")
        limit = self.config.max_upload_bytes if scope["path"] in UPLOAD_PATHS else self.config.max_body_bytes
        if length.isdigit() and int(length) > limit:
            raise Refused(413, f"the request body is {int(length)} bytes; the limit is {limit}", "body_too_large")
        return origin if cross else None

    def _authorized(self, headers: dict[str, str]) -> bool:
        key = self.config.api_key or ""
        bearer = headers.get("authorization", "")
        offered = [bearer[7:].strip()] if bearer.lower().startswith("bearer ") else []
        offered += [p.strip()[len(_KEY_PROTOCOL):] for p in headers.get("sec-websocket-protocol", "").split(",")
                    if p.strip().startswith(_KEY_PROTOCOL)]
        return any(hmac.compare_digest(o.encode(), key.encode()) for o in offered)


def _host_name(host: str) -> str:
    """The name of a Host header without its port (``[::1]:8000`` -> ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _strip(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def _scheme(scope: Scope) -> str:
    scheme = str(scope.get("scheme", "http"))
    return {"ws": "http", "wss": "https"}.get(scheme, scheme)


def _limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise APIError(413, f"the request body passed the limit of {limit} bytes", code="body_too_large")
        return message

    return counted


def _with_cors(send: Send, origin: str | None) -> Send:
    if origin is None:
        return send

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), (b"access-control-allow-origin", origin.encode()),
                                  (b"vary", b"Origin")]
        await send(message)

    return sending


async def _preflight(send: Send, origin: str, headers: dict[str, str]) -> None:
    allow = [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin"),
             (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
             (b"access-control-allow-headers",
              headers.get("access-control-request-headers", "authorization, content-type").encode()),
             (b"access-control-max-age", b"600")]
    await send({"type": "http.response.start", "status": 204, "headers": allow})
    await send({"type": "http.response.body", "body": b""})


async def _refuse(scope: Scope, send: Send, refused: Refused) -> None:
    if scope["type"] == "websocket":  # closing before accepting: the client sees an HTTP 403
        await send({"type": "websocket.close", "code": 1008, "reason": refused.message[:120]})
        return
    await send_error(send, refused.status, refused.message, refused.code)


async def send_error(send: Send, status: int, message: str, code: str) -> None:
    """An OpenAI-shaped JSON error straight on the ASGI channel."""
    body = json.dumps(error_body(status, message, None, code)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
