"""Fetching one file into a staging path: over HTTP with resume, or from local files.

Bytes are hashed while they stream, so the sha256 is known the moment the last
byte lands; the caller verifies it (when the catalog has one) and records it
before anything enters the store. An HTTP download that is cut leaves ``<dest>``
(a ``.part`` file) and a small sidecar ``<dest>.json`` naming the version it
belongs to; the next attempt, in this process or another, resumes it only when
that version can be checked: a strong ETag or a Last-Modified date (sent as
``If-Range``) and the total size (the 206 must carry the same). Anything else
(no validator, a weak ETag, another size or ETag, a 200) starts from zero, so a
file that changed on the server is never stored as old bytes + new bytes. A
partial that could not be checked later is not kept.

Nothing is unbounded: a file never grows past its declared size (the catalog's,
else the server's Content-Length), a server that trickles (less than
``stall_bytes`` in ``stall_timeout_s``) is a timeout, and ``deadline_s`` bounds
the whole download, retries included.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, BinaryIO

import httpx

from ..core.cancel import CancelToken
from ..core.errors import (
    DownloadError,
    NetworkError,
    NetworkTimeoutError,
    SDKErrorCode,
)
from ..core.logging import SDKLogger

CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}
_log = SDKLogger("Downloader")

# (bytes of this file written so far, total bytes of this file if known)
FileProgress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class FetchResult:
    size: int
    sha256: str
    resumed_from: int = 0


class NotAtSource(DownloadError):
    """The file is not at this source (HTTP 404/410, or a missing local file); try the next one."""


def _hash_existing(path: Path) -> tuple[hashlib._Hash, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
            size += len(block)
    return digest, size


def _blocks(fh: BinaryIO) -> Iterator[bytes]:
    while block := fh.read(CHUNK):
        yield block


def _pump(
    chunks: Iterable[bytes], out: IO[bytes], digest: hashlib._Hash, done: int, total: int | None,
    progress: FileProgress, cancel: CancelToken | None,
) -> int:
    """Write ``chunks`` to ``out``, hashing and reporting; honours ``cancel`` between chunks."""
    for block in chunks:
        if cancel is not None:
            cancel.raise_if_cancelled("download", SDKErrorCode.DOWNLOAD_CANCELLED)
        out.write(block)
        digest.update(block)
        done += len(block)
        progress(done, total)
    return done


def copy_local(
    parts: Sequence[Path], dest: Path, *, progress: FileProgress, cancel: CancelToken | None = None
) -> FetchResult:
    """Concatenate local ``parts`` into ``dest`` (one part is a plain copy), hashing as it goes."""
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise NotAtSource(f"missing local file(s): {', '.join(missing)}", code=SDKErrorCode.FILE_NOT_FOUND)
    total = sum(p.stat().st_size for p in parts)
    digest = hashlib.sha256()
    done = 0
    with open(dest, "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                done = _pump(_blocks(src), out, digest, done, total, progress, cancel)
    return FetchResult(done, digest.hexdigest())


class HttpFetcher:
    """Streams URLs to disk with resume, retries with backoff, and cancellation."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        stall_timeout_s: float = 60.0,
        stall_bytes: int = 64 << 10,
        deadline_s: float | None = None,
    ) -> None:
        self.client = client
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.stall_timeout_s = stall_timeout_s
        self.stall_bytes = stall_bytes
        self.deadline_s = deadline_s

    def fetch(
        self, url: str, dest: Path, *, progress: FileProgress, cancel: CancelToken | None = None,
        expected_size: int | None = None,
    ) -> FetchResult:
        """Download ``url`` to ``dest``, resuming a partial ``dest`` left by an earlier attempt.

        ``expected_size`` (the catalog's declared size) is enforced: a server announcing or
        sending another size is a :class:`DownloadError`, and the partial file is removed.
        """
        attempt = 0
        limits = _Limits(expected_size, self.stall_timeout_s, self.stall_bytes,
                         None if self.deadline_s is None else time.monotonic() + self.deadline_s)
        while True:
            try:
                return self._attempt(url, dest, progress, cancel, limits)
            except _Restart as exc:  # not a failure: the partial is gone, so this happens once per partial
                _log.warning("not resuming %s: %s; starting from zero", url, exc)
            except (httpx.TimeoutException, httpx.TransportError, _Transient) as exc:
                attempt += 1
                if attempt > self.max_retries or limits.expired():
                    raise _final_error(url, exc, kept=dest.exists()) from exc
                delay = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
                _log.warning("download of %s failed (%s); retry %d/%d in %.1fs",
                             url, exc, attempt, self.max_retries, delay)
                if cancel is not None and cancel.wait(delay):
                    cancel.raise_if_cancelled("download", SDKErrorCode.DOWNLOAD_CANCELLED)
                if cancel is None:
                    time.sleep(delay)

    def _attempt(self, url: str, dest: Path, progress: FileProgress, cancel: CancelToken | None,
                 limits: _Limits) -> FetchResult:
        sidecar = dest.with_name(dest.name + ".json")
        recorded = _resumable(url, dest, sidecar)
        offset = dest.stat().st_size if recorded is not None else 0
        headers = {"Accept-Encoding": "identity"}
        if recorded is not None and (validator := recorded.if_range) is not None:
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = validator
        with self.client.stream("GET", url, headers=headers) as response:
            status = response.status_code
            if status == 416 and offset:
                _reset(dest, sidecar)
                raise _Restart("the partial file is as long as the file or longer")
            _raise_for_status(url, response)
            version = _Version.of(url, response)
            if status == 206 and recorded is not None:
                if problem := _continues(recorded, version, offset, response):
                    _reset(dest, sidecar)
                    raise _Restart(problem)
                version = recorded
                digest, done = _hash_existing(dest)
                mode = "ab"
                _log.info("resuming %s at byte %d", url, offset)
            else:  # the whole file (a 200, or a 206 from byte 0), whatever we asked for
                if status == 206 and not response.headers.get("Content-Range", "").startswith("bytes 0-"):
                    raise DownloadError(f"{url} answered a range that was not asked for; refusing it",
                                        details={"url": url, "content_range": response.headers.get("Content-Range")})
                if offset:
                    _log.warning("%s: the server sent the whole file instead of resuming (it changed, or it "
                                 "ignores Range); starting over", url)
                digest, done, mode, offset = hashlib.sha256(), 0, "wb", 0
            total = version.total
            limit = limits.check_total(url, total, dest, sidecar)
            if version.if_range is not None and total is not None:
                _write_sidecar(sidecar, version)
            else:
                sidecar.unlink(missing_ok=True)
            progress(done, total)
            try:
                with open(dest, mode) as out:
                    # Each network read as it arrives, so the limits are checked while a slow server trickles.
                    chunks = limits.watch(url, response.iter_bytes(), done, limit, dest, sidecar)
                    done = _pump(chunks, out, digest, done, total, progress, cancel)
                if total is not None and done != total:
                    raise _Transient(f"connection closed after {done} of {total} bytes")
            except BaseException:
                if not sidecar.exists():  # nothing to check a resume against: do not keep it
                    dest.unlink(missing_ok=True)
                raise
        sidecar.unlink(missing_ok=True)
        return FetchResult(done, digest.hexdigest(), resumed_from=offset)


@dataclass(frozen=True)
class _Version:
    """Which version of a file a download got: its URL, validators and total size (from the response)."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    total: int | None = None

    @classmethod
    def of(cls, url: str, response: httpx.Response) -> _Version:
        total: int | None = None
        if response.status_code == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            total = int(match.group(3)) if match and match.group(3) != "*" else None
        elif (length := response.headers.get("Content-Length")) is not None and length.isdigit():
            total = int(length)
        return cls(url, response.headers.get("ETag"), response.headers.get("Last-Modified"), total)

    @property
    def if_range(self) -> str | None:
        """A strong validator to send as ``If-Range``: a strong ETag, else the Last-Modified date."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified or None


def _resumable(url: str, dest: Path, sidecar: Path) -> _Version | None:
    """The recorded version of a partial ``dest`` when it can be resumed; otherwise drop it (saying why)."""
    if not dest.exists():
        sidecar.unlink(missing_ok=True)
        return None
    recorded = _read_sidecar(sidecar)
    if recorded is None:
        why = "nothing records which version of the file it holds"
    elif recorded.url != url:
        why = "it came from another URL"
    elif recorded.if_range is None:
        why = "the server gave no strong ETag or Last-Modified date to check it against"
    elif recorded.total is None:
        why = "the file's total size is unknown"
    else:
        return recorded
    _log.warning("not resuming the partial download of %s: %s; starting from zero", url, why)
    _reset(dest, sidecar)
    return None


def _continues(recorded: _Version, version: _Version, offset: int, response: httpx.Response) -> str | None:
    """Why a 206 answer does not continue the recorded partial (None when it does)."""
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    if not match or int(match.group(1)) != offset:
        return "the server answered another range than the one asked for"
    if version.total != recorded.total:
        return f"the file is now {version.total} bytes, the partial was of {recorded.total}"
    for name, now, then in (("ETag", version.etag, recorded.etag),
                            ("Last-Modified", version.last_modified, recorded.last_modified)):
        if now is not None and then is not None and now != then:
            return f"its {name} changed from {then} to {now}"
    return None


class _Transient(Exception):
    """A failure worth retrying (5xx, 429, a cut connection)."""


class _Restart(Exception):
    """The partial file was dropped (it belongs to another version); ask again for the whole file."""


class _Stalled(_Transient):
    """The server sent too little for too long (or the overall deadline passed)."""


@dataclass(frozen=True)
class _Limits:
    """What one download may cost: its declared size, the least progress per window, an overall deadline."""

    expected_size: int | None
    stall_timeout_s: float
    stall_bytes: int
    deadline: float | None  # time.monotonic() by which the whole download must be done

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def check_total(self, url: str, total: int | None, dest: Path, sidecar: Path) -> int | None:
        """The most bytes this file may have; a server announcing another size than the catalog's is refused."""
        if self.expected_size is not None and total is not None and total != self.expected_size:
            _reset(dest, sidecar)
            raise DownloadError(
                f"{url} is {total} bytes but the catalog declares {self.expected_size}; refusing it "
                "(a changed or wrong file: update the catalog entry or the mirror)",
                details={"url": url, "size": total, "expected_size": self.expected_size})
        return self.expected_size if self.expected_size is not None else total

    def watch(self, url: str, chunks: Iterable[bytes], done: int, limit: int | None, dest: Path,
              sidecar: Path) -> Iterator[bytes]:
        """Pass ``chunks`` on while the file stays within ``limit`` and the server keeps up."""
        window_start, window_bytes = time.monotonic(), 0
        for block in chunks:
            done += len(block)
            if limit is not None and done > limit:
                _reset(dest, sidecar)
                raise DownloadError(f"{url} sent more than its declared {limit} bytes; refusing it",
                                    details={"url": url, "expected_size": limit})
            now = time.monotonic()
            window_bytes += len(block)
            if window_bytes >= self.stall_bytes:
                window_start, window_bytes = now, 0
            elif now - window_start > self.stall_timeout_s:
                raise _Stalled(f"less than {self.stall_bytes} bytes in {self.stall_timeout_s:g} s")
            if self.expired():
                raise _Stalled("the download's overall deadline passed")
            yield block


def _raise_for_status(url: str, response: httpx.Response) -> None:
    status = response.status_code
    if status in (200, 206):
        return
    details = {"url": url, "status": status}
    if status in _TRANSIENT_STATUS:
        raise _Transient(f"HTTP {status}")
    if status in (404, 410):
        raise NotAtSource(f"not found: {url} (HTTP {status})", details=details)
    if status in (401, 403):
        raise DownloadError(
            f"access denied to {url} (HTTP {status}); the host needs credentials or refuses this client",
            code=SDKErrorCode.AUTHENTICATION_FAILED, details=details,
        )
    raise DownloadError(f"unexpected HTTP {status} from {url}", details=details)


def _final_error(url: str, exc: Exception, *, kept: bool) -> DownloadError:
    partial = ("the partial file is kept for resume" if kept
               else "nothing was kept (the server gives no way to check a resumed file)")
    if isinstance(exc, httpx.TimeoutException | _Stalled):
        return NetworkTimeoutError(f"timed out downloading {url} ({exc}); check the network or raise timeout_s; "
                                   f"{partial}", details={"url": url})
    if isinstance(exc, _Transient):
        return DownloadError(f"downloading {url} kept failing: {exc}", details={"url": url})
    return NetworkError(f"network error downloading {url}: {exc}; {partial}")


def _read_sidecar(path: Path) -> _Version | None:
    """The version a partial file belongs to, or None when the sidecar is missing or malformed."""
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            url, etag, modified, total = (data.get(k) for k in ("url", "etag", "last_modified", "total"))
            if (isinstance(url, str) and all(v is None or isinstance(v, str) for v in (etag, modified))
                    and (total is None or (isinstance(total, int) and not isinstance(total, bool)))):
                return _Version(url, etag, modified, total)
    return None


def _write_sidecar(path: Path, version: _Version) -> None:
    path.write_text(json.dumps(asdict(version)), encoding="utf-8")


def _reset(dest: Path, sidecar: Path) -> None:
    dest.unlink(missing_ok=True)
    sidecar.unlink(missing_ok=True)
