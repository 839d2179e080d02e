"""A real HTTP file server on 127.0.0.1 for download tests, with scripted misbehaviour.

It honours ``Range`` (206 + ``Content-Range``) and ``If-Range``, sends an ETag,
and logs every request. Per path, a test can make it answer 404, fail the
first N requests with 500, ignore ``Range``, cut the connection after N bytes,
or stall after N bytes until released; and lie about versions: send no ETag,
a weak ETag that stays the same when the file changes, only a Last-Modified
date, or honour ``Range`` whatever ``If-Range`` says. A test changes a file
between requests by assigning ``server.files[path]``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Behaviour:
    status: int | None = None  # answer this status instead of the file
    fail_first: int = 0  # this many requests get a 500 first
    ignore_range: bool = False
    cut_after: int | None = None  # close the connection after this many body bytes (once)
    stall_after: int | None = None  # stop sending after this many bytes until `release` is set
    release: threading.Event = field(default_factory=threading.Event)
    no_length: bool = False  # no Content-Length: the body ends when the connection closes
    trickle_s: float | None = None  # send one byte every this many seconds (a server that barely keeps up)
    etag: str = "strong"  # "strong" (from the content), "weak" (W/"v1" whatever the content) or "none"
    last_modified: float | None = None  # send this time as Last-Modified (and accept it as If-Range)
    ignore_if_range: bool = False  # answer Range with 206 even when If-Range names another version
    range_from: int | None = None  # answer every request with a 206 from this byte, asked for or not


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    if_range: str | None = None


class FileServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.behaviour: dict[str, Behaviour] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, path: str, data: bytes, **behaviour: object) -> str:
        """Serve ``data`` at ``path`` and return its full URL."""
        self.files[path] = data
        self.behaviour[path] = Behaviour(**behaviour)  # type: ignore[arg-type]
        return self.url + path

    def gets(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        for b in self.behaviour.values():
            b.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(Request("GET", path, h.headers.get("Range"), h.headers.get("If-Range")))
        data = self.files.get(path)
        b = self.behaviour.get(path, Behaviour())
        if data is None or b.status is not None:
            self._empty(h, b.status or 404)
            return
        if b.fail_first > 0:
            b.fail_first -= 1
            self._empty(h, 500)
            return
        etag = {"strong": '"' + hashlib.sha256(data).hexdigest()[:16] + '"', "weak": 'W/"v1"'}.get(b.etag)
        modified = None if b.last_modified is None else formatdate(b.last_modified, usegmt=True)
        start = 0
        rng = h.headers.get("Range")
        if_range = h.headers.get("If-Range")
        same = if_range is None or b.ignore_if_range or if_range in (etag, modified)
        if b.range_from is not None or (rng and not b.ignore_range and same):
            start = b.range_from if b.range_from is not None else int(rng.removeprefix("bytes=").split("-", 1)[0])
            if start >= len(data):
                self._empty(h, 416)
                return
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            h.send_response(200)
        body = data[start:]
        if b.no_length:
            h.close_connection = True
        else:
            h.send_header("Content-Length", str(len(body)))
        if etag is not None:
            h.send_header("ETag", etag)
        if modified is not None:
            h.send_header("Last-Modified", modified)
        h.send_header("Accept-Ranges", "bytes")
        h.end_headers()
        limit = len(body)
        if b.cut_after is not None:
            limit, b.cut_after = min(limit, b.cut_after), None
            h.close_connection = True
        stall = b.stall_after
        try:
            if stall is not None and stall < limit:
                h.wfile.write(body[:stall])
                h.wfile.flush()
                b.release.wait(timeout=60)
                h.close_connection = True
                return
            if b.trickle_s is not None:
                for at in range(limit):
                    h.wfile.write(body[at:at + 1])
                    h.wfile.flush()
                    time.sleep(b.trickle_s)
                return
            h.wfile.write(body[:limit])
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True

    @staticmethod
    def _empty(h: BaseHTTPRequestHandler, status: int) -> None:
        h.send_response(status)
        h.send_header("Content-Length", "0")
        h.end_headers()
