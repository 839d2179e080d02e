"""The Vision tab in headless Chromium: an uploaded PNG and a frame from Chromium's fake camera, described.

Images go to /v1/chat/completions as data: URLs inside the user's message. Until the server accepts image
content parts (it needs the VLM of issue 11 on main), the page shows the server's refusal and this test
fails saying so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .browser import Browser, chromium


@pytest.fixture(scope="module")
def browser(packaged_models) -> Iterator[Browser]:
    from runanywhere.server import ServerConfig, create_app

    from .localserver import serving

    with serving(create_app(ServerConfig(), library=packaged_models)) as port, \
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
    page.wait_for_function("document.querySelector('#vision-answer').innerText.trim()"
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
