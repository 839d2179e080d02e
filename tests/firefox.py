"""Headless Firefox (Debian's ``firefox-esr``) driven over WebDriver BiDi, for the web app's tests.

Firefox speaks BiDi itself on ``--remote-debugging-port``: no geckodriver, no patched build. A reader
thread answers commands, records console errors and JavaScript exceptions (``log.entryAdded``) and
intercepts every request: loopback ones continue, the rest fail and are counted (the count must stay
zero). The microphone (whatever PulseAudio's default source is) is granted without a prompt.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .browser import ARTIFACTS, is_loopback
from .serving import stop

FIREFOX = shutil.which("firefox-esr") or "/usr/bin/firefox-esr"
PREFS = {
    "media.navigator.permission.disabled": True,  # the microphone is granted without a prompt
    "media.autoplay.default": 0,  # audio may play without a user gesture
    "media.autoplay.block-webaudio": False,
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "app.update.auto": False,
    "extensions.update.enabled": False,
    "network.proxy.type": 1,  # anything Firefox itself fetches off loopback goes to a closed port
    "network.proxy.http": "127.0.0.1",
    "network.proxy.http_port": 9,
    "network.proxy.ssl": "127.0.0.1",
    "network.proxy.ssl_port": 9,
}


class BiDiError(RuntimeError):
    """A BiDi command failed, or a page script threw."""


@dataclass
class Firefox:
    """One Firefox tab on the app at ``base``, driven over a BiDi WebSocket."""

    connection: Any
    base: str
    context: str = ""
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    _pending: dict[int, Future[dict[str, Any]]] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: iter(range(1, 1 << 30)))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --------------------------------------------------------------- protocol
    def command(self, method: str, params: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        """Send one command and wait for its result."""
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            number = next(self._ids)
            self._pending[number] = future
        self.connection.send(json.dumps({"id": number, "method": method, "params": params}))
        return future.result(timeout)

    def _post(self, method: str, params: dict[str, Any]) -> None:
        """Send a command without waiting (from the reader thread, which cannot wait on itself)."""
        with self._lock:
            number = next(self._ids)
        self.connection.send(json.dumps({"id": number, "method": method, "params": params}))

    def read(self) -> None:
        """The reader thread: results to their callers, events recorded or answered, until the socket closes."""
        with contextlib.suppress(Exception):
            for raw in self.connection:
                message = json.loads(raw)
                if "id" in message:
                    future = self._pending.pop(message["id"], None)
                    if future is not None:
                        if message.get("type") == "error":
                            future.set_exception(BiDiError(f"{message['error']}: {message.get('message')}"))
                        else:
                            future.set_result(message["result"])
                elif message.get("method") == "log.entryAdded":
                    entry = message["params"]
                    if entry.get("level") == "error":
                        self.console_errors.append(entry.get("text") or json.dumps(entry))
                elif message.get("method") == "network.beforeRequestSent":
                    self._route(message["params"])
        for future in self._pending.values():
            future.set_exception(BiDiError("the browser closed the connection"))

    def _route(self, event: dict[str, Any]) -> None:
        if not event.get("isBlocked"):
            return
        request, url = event["request"]["request"], event["request"]["url"]
        if is_loopback(url):
            self._post("network.continueRequest", {"request": request})
        else:
            self.blocked.append(url)
            self._post("network.failRequest", {"request": request})

    # ------------------------------------------------------------------ pages
    def open(self, tab: str) -> None:
        """Load the app afresh on ``tab`` (Chat, Vision, ...) and wait until its panel shows."""
        self.command("browsingContext.navigate", {"context": self.context, "url": "about:blank", "wait": "complete"})
        self.command("browsingContext.navigate", {"context": self.context, "url": f"{self.base}/#{tab.lower()}",
                                                  "wait": "complete"})
        self.wait_for(f"document.querySelector('#panel-{tab.lower()}')?.hidden === false")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` in the page (a promise is awaited)."""
        reply = self.command("script.evaluate", {
            "expression": f"Promise.resolve({expression}).then((value) => JSON.stringify(value ?? null))",
            "target": {"context": self.context}, "awaitPromise": True})
        if reply["type"] == "exception":
            raise BiDiError(reply["exceptionDetails"]["text"])
        return json.loads(reply["result"]["value"])

    def wait_for(self, expression: str, timeout: float = 60.0) -> Any:
        """Poll ``expression`` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout:.0f} s: {expression}")
            time.sleep(0.2)

    def text(self, selector: str) -> str:
        return str(self.evaluate(f"document.querySelector({json.dumps(selector)})?.innerText ?? ''"))

    def click(self, selector: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    def fill(self, selector: str, value: str) -> None:
        """Set a field's value and fire ``input`` and ``change``, as typing would."""
        self.evaluate(f"""(() => {{ const el = document.querySelector({json.dumps(selector)});
            el.value = {json.dumps(value)};
            el.dispatchEvent(new Event('input', {{bubbles: true}}));
            el.dispatchEvent(new Event('change', {{bubbles: true}})); }})()""")

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        data = self.command("browsingContext.captureScreenshot", {"context": self.context, "origin": "document"})
        path = ARTIFACTS / f"firefox-{name}.png"
        path.write_bytes(base64.b64decode(data["data"]))
        return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _connect(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> Any:
    """The BiDi WebSocket, once Firefox listens on ``port``."""
    from websockets.sync.client import connect

    deadline = time.monotonic() + timeout
    while True:
        try:
            return connect(f"ws://127.0.0.1:{port}/session", max_size=None, open_timeout=10)
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Firefox did not open its BiDi port {port} (exit code {process.poll()})") from None
            time.sleep(0.25)


@contextlib.contextmanager
def firefox(base: str, profile: Path) -> Iterator[Firefox]:
    """Headless Firefox on ``base`` with a fresh ``profile`` directory, stopped on the way out."""
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "user.js").write_text("".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n"
                                             for k, v in PREFS.items()))
    port = _free_port()
    process = subprocess.Popen([FIREFOX, "--headless", "--no-remote", f"--remote-debugging-port={port}",
                                "--remote-allow-hosts", "127.0.0.1", "--profile", str(profile),
                                "--width", "1100", "--height", "900"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with _connect(port, process) as connection:
            session = Firefox(connection, base)
            reader = threading.Thread(target=session.read, name="bidi-reader", daemon=True)
            reader.start()
            try:
                session.command("session.new", {"capabilities": {}})
                session.command("session.subscribe", {"events": ["log.entryAdded", "network.beforeRequestSent"]})
                session.command("network.addIntercept", {"phases": ["beforeRequestSent"]})
                tree = session.command("browsingContext.getTree", {})
                session.context = tree["contexts"][0]["context"]
                yield session
            finally:
                with contextlib.suppress(Exception):
                    session.command("session.end", {}, timeout=5)
                connection.close()
                reader.join(5)
    finally:
        stop(process, 15)
