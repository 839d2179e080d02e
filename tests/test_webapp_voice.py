"""The Voice tab in headless Chromium: the fake microphone asks for a story, then asks again over the reply.

The page streams the microphone to /v1/realtime through an AudioWorklet, plays the spoken reply as it
arrives, stops it at once when the user talks over it (and tells the server how much was heard), and
charts each turn's latency. Muting releases the microphone; unmuting opens it again, which restarts
Chromium's fake capture file: that is how the test speaks a second time while the reply is playing,
whatever the machine's load. Nothing leaves loopback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .browser import Browser, chromium, spoken_timeline

QUESTION = "Tell me a story about a brave dragon."


@pytest.fixture(scope="module")
def microphone(packaged_models, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The question spoken by the Piper voice after half a second of silence, then silence."""
    return spoken_timeline(packaged_models, [0.5, QUESTION, 30.0], tmp_path_factory.mktemp("mic") / "voice.wav")


@pytest.fixture(scope="module")
def browser(packaged_models, microphone: Path) -> Iterator[Browser]:
    from runanywhere.server import ServerConfig, create_app

    from .localserver import serving

    with serving(create_app(ServerConfig(), library=packaged_models)) as port:
        loaded(port)
        with chromium(f"http://127.0.0.1:{port}", microphone) as session:
            yield session


def loaded(port: int) -> None:
    """Connect once so the server loads its voice models (on a busy machine that takes minutes): the test's
    waits are then about the voice path, not the loading."""
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{port}/v1/realtime", open_timeout=60) as socket:
        assert json.loads(socket.recv(timeout=900))["type"] == "session.created"


STATES = """() => {
  window.voiceStates = [];
  const state = document.querySelector('#voice-state');
  new MutationObserver((changes) => changes.forEach((c) => window.voiceStates.push(c.oldValue)))
    .observe(state, { attributes: true, attributeFilter: ['data-state'], attributeOldValue: true });
}"""
"""Records every state the Voice tab leaves (each change's old value), in order."""


def number(page, key: str) -> float:
    return float(page.evaluate(f"document.querySelector('#panel-voice').dataset.{key} ?? 'NaN'"))


def test_a_spoken_question_is_answered_aloud_and_talking_over_the_reply_stops_it(browser: Browser):
    settings = browser.open("Settings")
    settings.fill("#set-max-tokens", "24")  # applied to Voice as the session's max_output_tokens
    settings.fill("#set-temperature", "0.3")  # and these as its sampling (the server's session extension)
    settings.fill("#set-top-p", "0.8")
    settings.click("#settings-form button[type=submit]")
    settings.close()

    page = browser.open("Voice")
    received: list[dict] = []
    page.on("websocket", lambda socket: socket.on("framereceived", lambda frame: received.append(json.loads(frame))))
    page.evaluate(STATES)
    page.click("#voice-start")
    # Waits on lasting facts (a transcript line, a counter), never on a passing state: on a busy machine
    # queued events run back to back and a state may last one frame. Generous timeouts: nothing is timed.
    first = page.locator("#voice-transcript .msg.user").first
    first.wait_for(timeout=180_000)
    assert "story about a brave dragon" in first.inner_text().lower()
    [updated] = [e["session"] for e in received if e["type"] == "session.updated"]
    assert (updated["max_output_tokens"], updated["temperature"], updated["top_p"]) == (24, 0.3, 0.8)
    page.wait_for_function("Number(document.querySelector('#panel-voice').dataset.audioChunks) >= 1",
                           timeout=300_000)

    page.click("#voice-mute")  # the microphone is released ...
    page.click("#voice-mute")  # ... and opened again: the fake capture file starts over, over the reply
    page.wait_for_function("Number(document.querySelector('#panel-voice').dataset.interruptions) >= 1",
                           timeout=120_000)
    interrupted = page.locator("#voice-transcript .msg.assistant[data-interrupted=true]").first
    assert interrupted.locator(".text").inner_text().strip(), "the interrupted reply had no transcript"
    page.wait_for_selector("#voice-transcript .msg.assistant[data-heard-ms]", timeout=60_000)  # truncated
    # On a quick machine the reply's text and audio may all have been sent before the second question: then
    # the page alone stops and truncates it; a reply the server was still producing is cancelled by the turn.
    cut = [e["response"] for e in received if e["type"] == "response.done" and e["response"]["status"] == "cancelled"]
    assert all(r["status_details"]["reason"] == "turn_detected" for r in cut)
    second = page.locator("#voice-transcript .msg.user").nth(1)
    second.wait_for(timeout=180_000)
    assert second.inner_text().lower().count("dragon") == 1
    assert number(page, "heardMs") > 0, "reply audio arrived but none of it was played"

    page.wait_for_function("document.querySelectorAll('#voice-chart .bar').length >= 1", timeout=600_000)
    browser.screenshot(page, "voice")
    page.click("#voice-stop")
    assert page.locator("#voice-state").get_attribute("data-state") == "idle"
    shown = page.evaluate("window.voiceStates")
    assert {"listening", "hearing", "thinking", "speaking"} <= set(shown), shown
    assert browser.blocked == [] and browser.console_errors == []
