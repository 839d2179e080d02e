"""Serving an app on 127.0.0.1 for a test: uvicorn in a thread on a free port, stopped on exit; stopping a
server process."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run ``app`` until the block ends; yields its base URL (``http://127.0.0.1:<port>``) once ``/health``
    no longer says 503 (the start-up models are loaded)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    while httpx.get(f"{base}/health", timeout=30).status_code == 503:  # start-up models still loading
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(60)


def stop(process: subprocess.Popen[Any], grace_s: float) -> None:
    """Ask ``process`` to end (SIGTERM), kill it if it has not within ``grace_s`` seconds, and reap it."""
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
