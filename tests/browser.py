"""Headless Chromium (Debian's package, driven by Playwright) for the web app's tests.

Fake media devices stand in for the camera and microphone (the microphone plays a WAV given by the
test); every request that leaves loopback is blocked and counted, and the count must stay zero.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def is_loopback(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("data", "blob", "about") or parsed.hostname in LOOPBACK


@dataclass
class Browser:
    """One browser context on the app at ``base``; ``blocked`` lists every non-loopback request it tried."""

    context: Any
    base: str
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def open(self, tab: str) -> Any:
        """A new page on ``tab`` (Chat, Vision, ...), its errors recorded."""
        page = self.context.new_page()
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))
        page.goto(f"{self.base}/#{tab.lower()}")
        page.wait_for_selector(f"#panel-{tab.lower()}:not([hidden])")
        return page

    def screenshot(self, page: Any, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"webapp-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@contextlib.contextmanager
def chromium(base: str, microphone_wav: Path | None = None) -> Iterator[Browser]:
    """Chromium on ``base`` with fake camera and microphone (the microphone plays ``microphone_wav`` once)."""
    from playwright.sync_api import sync_playwright

    args = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            "--autoplay-policy=no-user-gesture-required"]
    if microphone_wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={microphone_wav}%noloop")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 900}, permissions=["microphone", "camera"])
            session = Browser(context, base)

            def block(route: Any) -> None:
                session.blocked.append(route.request.url)
                route.abort("blockedbyclient")

            def block_socket(socket: Any) -> None:
                session.blocked.append(socket.url)
                socket.close()

            context.route(lambda url: not is_loopback(url), block)
            context.route_web_socket(lambda url: not is_loopback(url), block_socket)
            yield session
        finally:
            browser.close()


def spoken_timeline(library: Any, parts: list[str | float], path: Path, rate: int = 48000) -> Path:
    """A WAV for the fake microphone: each ``str`` spoken by the packaged Piper voice (without variation, so
    the same audio every run), each ``float`` that many seconds of silence, in order."""
    import numpy as np

    from runanywhere import TextToSpeech
    from runanywhere.media.audio import Audio, save_wav

    tts = TextToSpeech(library)
    tts.load_voice("piper-en_US-joe-medium", variation=0)
    try:
        pieces = []
        for part in parts:
            if isinstance(part, str):
                spoken = tts.synthesize(part)
                pieces.append(Audio(spoken.audio_data, spoken.sample_rate).resampled(rate).samples)
            else:
                pieces.append(np.zeros(int(part * rate), np.float32))
    finally:
        tts.unload()
    return save_wav(path, np.concatenate(pieces).astype(np.float32), rate)
