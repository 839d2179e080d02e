"""The Vision tab in headless Chromium: an uploaded PNG and a frame from Chromium's fake camera, described.

Images go to /v1/chat/completions as data: URLs inside the user's message. The server's library has one
vision model: the real SmolLM2 with a projector the suite writes (random weights: the answer is meaningless,
the path through libmtmd is real), loaded at start-up as ``runanywhere serve --models`` would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .browser import Browser, chromium


@pytest.fixture(scope="module")
def browser(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    from runanywhere import EventBus, SDKConfig
    from runanywhere.models.manager import ModelLibrary
    from runanywhere.server import ServerConfig, create_app

    from .localserver import serving
    from .tinyvlm import register_tiny_vision

    home = tmp_path_factory.mktemp("vision")
    library = ModelLibrary(SDKConfig(home=home / "store", offline=True), events=EventBus())
    model = register_tiny_vision(library, home / "tiny-vision", smollm2)
    with serving(create_app(ServerConfig(models=(model,), n_ctx=2048), library=library)) as port, \
            chromium(f"http://127.0.0.1:{port}") as session:
        yield session
    assert session.blocked == [], f"requests left loopback: {session.blocked}"


@pytest.fixture(scope="module")
def png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (96, 96), "white")
    ImageDraw.Draw(image).ellipse((16, 16, 80, 80), fill="red")
    path = tmp_path_factory.mktemp("img") / "circle.png"
    image.save(path)
    return path


def described(page) -> str:
    page.wait_for_function("document.querySelector('#vision-metrics').innerText.trim()"  # set once it is done
                           " || document.querySelector('#vision-error').innerText.trim()", timeout=180_000)
    error = page.locator("#vision-error").inner_text()
    assert not error, f"the server did not describe the image: {error}"
    return page.locator("#vision-answer").inner_text()


def test_an_uploaded_png_is_described(browser: Browser, png: Path):
    page = browser.open("Vision")
    page.wait_for_selector("#vision-model option", state="attached")
    page.set_input_files("#vision-file", str(png))
    page.wait_for_selector("#vision-preview:not([hidden])")
    assert page.locator("#vision-preview").get_attribute("src").startswith("data:image/png;base64,")
    page.click("#vision-describe")
    assert described(page).strip()
    assert "image tokens" in page.locator("#vision-metrics").inner_text()
    browser.screenshot(page, "vision")


def test_a_camera_frame_is_described(browser: Browser):
    page = browser.open("Vision")
    page.click("#vision-camera")
    page.wait_for_function("document.querySelector('#vision-video').videoWidth > 0", timeout=30_000)
    page.click("#vision-describe")
    assert page.locator("#vision-preview").get_attribute("src").startswith("data:image/jpeg;base64,")
    assert described(page).strip()
