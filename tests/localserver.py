"""An ASGI app served by uvicorn in a thread on 127.0.0.1 (a free port), for tests and benchmarks."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def serving(app: Any) -> Iterator[int]:
    """Serve ``app`` until the block ends; yields the port. The server stops itself on the way out."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.05)
            if not thread.is_alive():
                raise RuntimeError("the server did not start")
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
