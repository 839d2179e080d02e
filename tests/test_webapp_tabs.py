"""Chat, Settings, Vision, Transcribe and Speak in headless Chromium, against `runanywhere serve`'s app.

One server (the packaged default models, loaded on first use) and one browser for the module; the fake
microphone plays a sentence spoken by the Piper voice, the fake camera shows Chromium's test pattern.
Every request that would leave loopback is blocked and counted: the count must stay zero.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from runanywhere import EventBus, GenerationCompleted, GenerationFailed, SDKEvent

from .browser import Browser, chromium, spoken_timeline
from .wer import wer

SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def speech(packaged_models, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``SENTENCE`` spoken by the Piper voice, between silences: a user's recording."""
    return spoken_timeline(packaged_models, [1.0, SENTENCE, 3.0], tmp_path_factory.mktemp("speech") / "fox.wav")


@pytest.fixture(scope="module")
def engine_events() -> list[SDKEvent]:
    """Everything the server's engines report (generations started, completed, cancelled...)."""
    return []


@pytest.fixture(scope="module")
def browser(packaged_models, speech: Path, engine_events: list[SDKEvent]) -> Iterator[Browser]:
    from runanywhere.server import ServerConfig, create_app

    from .localserver import serving

    bus = EventBus()
    bus.on_any(engine_events.append)
    with serving(create_app(ServerConfig(), library=packaged_models, events=bus)) as port, \
            chromium(f"http://127.0.0.1:{port}", speech) as session:
        yield session
    assert session.blocked == [], f"requests left loopback: {session.blocked}"


def save_settings(browser: Browser, **values: str) -> None:
    page = browser.open("Settings")
    for field, value in values.items():
        page.fill(f"#set-{field.replace('_', '-')}", value)
    page.click("#settings-form button[type=submit]")
    page.wait_for_selector("#settings-saved:has-text('Saved')")
    page.close()


def ask(page, text: str, timeout_ms: int = 120_000):
    """Send ``text`` in the Chat tab; returns the finished reply's bubble."""
    before = page.locator("#chat-log .msg.assistant").count()
    page.fill("#chat-input", text)
    page.press("#chat-input", "Enter")
    reply = page.locator("#chat-log .msg.assistant").nth(before)
    try:
        page.wait_for_function(f"document.querySelectorAll('#chat-log .msg.assistant')[{before}]?.dataset.done",
                               timeout=timeout_ms)
    finally:
        browser_error = page.locator("#chat-error").inner_text()
    assert not browser_error, browser_error
    return reply


def test_chat_streams_a_markdown_reply_with_its_metrics(browser: Browser):
    save_settings(browser, temperature="0", max_tokens="60", system="")
    page = browser.open("Chat")
    page.wait_for_selector("#chat-model option", state="attached")
    page.evaluate("""window.updates = 0; new MutationObserver(() => { window.updates += 1; })
        .observe(document.querySelector('#chat-log'), {subtree: true, childList: true, characterData: true})""")
    reply = ask(page, "What is the capital of France?")
    assert "Paris" in reply.locator(".reply").inner_text()
    assert page.evaluate("window.updates") > 3, "the reply appeared at once instead of streaming"
    metrics = reply.locator(".metrics").inner_text()
    assert "first token" in metrics and "tokens/s" in metrics and "cached prompt tokens" in metrics
    assert "– tokens" not in metrics
    browser.screenshot(page, "chat")

    follow_up = ask(page, "And what is the capital of Italy?")  # multi-turn: the history goes along
    assert "Rome" in follow_up.locator(".reply").inner_text()
    page.click("#chat-clear")
    assert page.locator("#chat-log .msg").count() == 0
    page.close()


def test_stop_ends_a_long_reply_and_the_engine_stops(browser: Browser, engine_events: list[SDKEvent]):
    save_settings(browser, temperature="0.7", max_tokens="2000")
    page = browser.open("Chat")
    page.wait_for_selector("#chat-model option", state="attached")
    page.fill("#chat-input", "Write a very long essay about the history of Rome, with many chapters.")
    page.press("#chat-input", "Enter")
    page.wait_for_function("document.querySelector('#chat-log .msg.assistant .reply')?.innerText.length > 40",
                           timeout=120_000)
    seen = len(engine_events)
    page.click("#chat-stop")
    page.wait_for_selector("#chat-log .msg.assistant[data-stopped=true]", timeout=10_000)
    text = page.locator("#chat-log .msg.assistant .reply").inner_text()
    page.wait_for_timeout(1500)
    assert page.locator("#chat-log .msg.assistant .reply").inner_text() == text, "text kept coming after Stop"
    assert page.locator("#chat-send").is_enabled()
    for _ in range(150):  # the engine's own record of the generation: cancelled, far short of 2000 tokens
        done = [e for e in engine_events[seen:] if isinstance(e, GenerationCompleted | GenerationFailed)]
        if done:
            break
        page.wait_for_timeout(200)
    assert len(done) == 1 and isinstance(done[0], GenerationCompleted), done
    assert done[0].finish_reason == "cancelled" and done[0].tokens_used < 2000
    page.close()


def test_settings_change_the_next_reply(browser: Browser):
    save_settings(browser, temperature="0", max_tokens="60", system="")
    page = browser.open("Chat")
    page.wait_for_selector("#chat-model option", state="attached")
    plain = ask(page, "Say hello.").locator(".reply").inner_text().lower()
    save_settings(browser, max_tokens="3")
    short = ask(page, "Say hello.")
    assert short.locator(".metrics").inner_text().count("· 3 tokens") == 1
    assert len(short.locator(".reply").inner_text()) < len(plain)

    save_settings(browser, max_tokens="60", system="You are a pirate. Talk like a pirate.")
    page.click("#chat-clear")
    pirate = ask(page, "Say hello.").locator(".reply").inner_text().lower()
    words = ("pirate", "arr", "matey", "ahoy", "captain", "seas")
    assert any(w in pirate for w in words) and not any(w in plain for w in words), (plain, pirate)
    page.close()
    save_settings(browser, system="")


def test_tools_answer_with_a_calculator_card(browser: Browser):
    save_settings(browser, temperature="0", max_tokens="100", system="")
    page = browser.open("Chat")
    page.wait_for_selector("#chat-model option", state="attached")
    page.check("#chat-tools")
    page.select_option("#chat-tool-choice", "required")  # SmolLM2-135M does not call tools of its own accord
    reply = ask(page, "Calculate 17 * 23.", timeout_ms=300_000)  # grammar-forced decoding is slow on a busy machine
    card = reply.locator(".tool-card[data-tool=calculator]")
    assert card.count() >= 1
    assert "17" in card.first.locator(".args").inner_text() and "391" in card.first.locator(".result").inner_text()
    browser.screenshot(page, "chat-tools")
    page.close()


def test_settings_show_the_sdk_version_and_doctor_facts(browser: Browser):
    from runanywhere import __version__

    page = browser.open("Settings")
    page.wait_for_selector("#about dt:has-text('Memory bandwidth')", timeout=30_000)
    about = page.locator("#about").inner_text()
    assert __version__ in about and "GB/s" in about and "tokens/s" in about and "SIMD" in about
    browser.screenshot(page, "settings")
    page.close()


def test_transcribe_an_uploaded_wav(browser: Browser, speech: Path):
    page = browser.open("Transcribe")
    page.set_input_files("#stt-file", str(speech))
    page.wait_for_selector("#stt-segments li", timeout=60_000)
    assert wer(SENTENCE, page.locator("#stt-text").inner_text()) <= 0.2
    assert "00:00:0" in page.locator("#stt-segments").inner_text()
    page.close()


def test_transcribe_live_from_the_microphone(browser: Browser):
    page = browser.open("Transcribe")
    page.click("#stt-live")
    page.wait_for_selector("#stt-segments li", timeout=60_000)
    assert wer(SENTENCE, page.locator("#stt-text").inner_text()) <= 0.2
    assert page.locator("#stt-level").evaluate("m => m.value") >= 0
    browser.screenshot(page, "transcribe")
    page.click("#stt-live")
    page.close()


def downloaded_wav(page, path: Path) -> Path:
    """The Speak tab's download (the whole spoken WAV), saved at ``path``."""
    encoded = page.evaluate("""async () => {
        const blob = await (await fetch(document.querySelector('#tts-download').href)).blob();
        const bytes = new Uint8Array(await blob.arrayBuffer());
        let raw = ''; for (const b of bytes) raw += String.fromCharCode(b); return btoa(raw); }""")
    path.write_bytes(base64.b64decode(encoded))
    return path


def test_speak_plays_audio_that_transcribes_back(browser: Browser, whisper_judge, tmp_path: Path):
    text = "The weather is lovely today."
    page = browser.open("Speak")
    page.wait_for_selector("#tts-voice option", state="attached")
    page.fill("#tts-text", text)
    page.click("#tts-speak")
    page.wait_for_selector("#panel-speak[data-done]", timeout=60_000)
    assert "first audio after" in page.locator("#tts-metrics").inner_text()
    wav = downloaded_wav(page, tmp_path / "spoken.wav")
    assert wer(text, whisper_judge.transcribe(wav).text) <= 0.2
    page.wait_for_function("document.querySelector('#tts-audio').duration > 1")  # the player can play it
    browser.screenshot(page, "speak")
    page.close()


def test_speak_offers_each_kokoro_voice_once_the_model_is_loaded(browser: Browser, whisper_judge, tmp_path: Path):
    page = browser.open("Speak")
    page.wait_for_selector("#tts-voice option", state="attached")
    assert page.locator("#tts-voice option[value='kokoro-82m-v1.0-int8|jm_kumo']").count() == 0
    loaded = page.evaluate("async () => (await fetch('/v1/models/kokoro-82m-v1.0-int8/load', {method: 'POST'})).ok")
    try:
        assert loaded
        page.reload()
        page.wait_for_selector("#tts-voice option[value='kokoro-82m-v1.0-int8|jm_kumo']", state="attached")
        labels = page.locator("#tts-voice option").all_inner_texts()
        assert [v for v in labels if "kokoro" in v] == [f"kokoro-82m-v1.0-int8 · {v}" for v in (
            "jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")]
        page.select_option("#tts-voice", "kokoro-82m-v1.0-int8|jm_kumo")
        page.fill("#tts-text", "Good morning to you.")
        page.click("#tts-speak")
        page.wait_for_selector("#panel-speak[data-done]", timeout=180_000)
        wav = downloaded_wav(page, tmp_path / "kokoro.wav")
        assert int.from_bytes(wav.read_bytes()[24:28], "little") == 24000  # Kokoro's rate, not Piper's
        assert wer("Good morning to you.", whisper_judge.transcribe(wav).text) <= 0.2
    finally:
        page.evaluate("async () => { await fetch('/v1/models/kokoro-82m-v1.0-int8/unload', {method: 'POST'}); }")
        page.close()
