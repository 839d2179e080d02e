"""The web app in headless Firefox (Debian's firefox-esr, over WebDriver BiDi), against `runanywhere serve`.

One server (the packaged default models) and one Firefox for the module. Firefox's audio goes through a
private PulseAudio daemon with a null sink (tests/audio_stack.py): the page's AudioContext runs on it, and
its microphone is the sink's monitor, so a sentence the test plays into the sink is what the page hears.
Every request that would leave loopback is failed and counted: the count must stay zero, and no page may
log a console error or throw.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from .audio_stack import VirtualAudioStack
from .browser import spoken_timeline
from .firefox import Firefox, firefox
from .wer import wer

SENTENCE = "The quick brown fox jumps over the lazy dog."
TABS = ("Chat", "Vision", "Voice", "Transcribe", "Speak", "Storage", "Settings")


@pytest.fixture(scope="module")
def audio_stack() -> Iterator[VirtualAudioStack]:
    stack = VirtualAudioStack()
    stack.start()  # fails (never skips) when the set-up's pulseaudio is missing
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def speech(packaged_models, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return spoken_timeline(packaged_models, [0.5, SENTENCE, 2.0], tmp_path_factory.mktemp("speech") / "fox.wav")


@pytest.fixture(scope="module")
def browser(packaged_models, audio_stack: VirtualAudioStack,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firefox]:
    from runanywhere.server import ServerConfig, create_app

    from .localserver import serving

    with serving(create_app(ServerConfig(), library=packaged_models)) as port, \
            firefox(f"http://127.0.0.1:{port}", tmp_path_factory.mktemp("firefox-profile")) as session:
        yield session
    assert session.blocked == [], f"requests left loopback: {session.blocked}"


def speak_into_the_microphone(stack: VirtualAudioStack, wav: Path) -> None:
    """Play ``wav`` into the null sink, whose monitor is Firefox's microphone; returns once it has played."""
    from runanywhere.media.audio import load_audio
    from runanywhere.media.playback import AudioPlayback

    audio = load_audio(wav)
    with AudioPlayback(sample_rate=audio.sample_rate, device=stack.device) as speaker:
        speaker.play(np.asarray(audio.samples, np.float32))
        speaker.wait(timeout=30)


def save_settings(browser: Firefox, **values: str) -> None:
    browser.open("Settings")
    for name, value in values.items():
        browser.fill(f"#set-{name.replace('_', '-')}", value)
    browser.click("#settings-form button[type=submit]")
    browser.wait_for("document.querySelector('#settings-saved').innerText.includes('Saved')")


def test_every_tab_loads_without_an_error(browser: Firefox):
    for tab in TABS:
        browser.open(tab)
        browser.wait_for("document.querySelector('#server-status').innerText.startsWith('Connected')")
        browser.screenshot(tab.lower())
    browser.open("Storage")
    browser.wait_for("document.querySelectorAll('#storage-table tbody tr').length > 0", timeout=30)
    listed = browser.text("#storage-table tbody")
    assert "smollm2-135m-instruct-q4_1" in listed and "faster-whisper-tiny.en" in listed
    assert "%" in browser.text("#quota-text") or "GB" in browser.text("#quota-text")
    browser.screenshot("storage")
    browser.open("Settings")
    browser.wait_for("document.querySelector('#about')?.innerText.includes('SIMD')", timeout=60)
    assert browser.console_errors == []


def test_chat_streams_a_reply_about_paris(browser: Firefox):
    save_settings(browser, temperature="0", max_tokens="60", system="")
    browser.open("Chat")
    browser.wait_for("document.querySelectorAll('#chat-model option').length > 0")
    browser.evaluate("""(() => { window.updates = 0; new MutationObserver(() => { window.updates += 1; })
        .observe(document.querySelector('#chat-log'), {subtree: true, childList: true, characterData: true}) })()""")
    browser.fill("#chat-input", "What is the capital of France?")
    browser.evaluate("document.querySelector('#chat-form').requestSubmit()")
    browser.wait_for("document.querySelector('#chat-log .msg.assistant')?.dataset.done", timeout=120)
    assert browser.text("#chat-error") == ""
    assert "Paris" in browser.text("#chat-log .msg.assistant .reply")
    assert browser.evaluate("window.updates") > 3, "the reply appeared at once instead of streaming"
    assert "tokens/s" in browser.text("#chat-log .msg.assistant .metrics")
    browser.screenshot("chat")
    assert browser.console_errors == []


def test_speak_plays_audio_that_transcribes_back(browser: Firefox, whisper_judge, tmp_path: Path):
    text = "The weather is lovely today."
    browser.open("Speak")
    browser.wait_for("document.querySelectorAll('#tts-voice option').length > 0")
    browser.fill("#tts-text", text)
    browser.click("#tts-speak")
    browser.wait_for("document.querySelector('#panel-speak').dataset.done !== undefined", timeout=60)
    assert browser.text("#tts-error") == ""
    assert "first audio after" in browser.text("#tts-metrics")
    encoded = browser.evaluate("""(async () => {
        const blob = await (await fetch(document.querySelector('#tts-download').href)).blob();
        const bytes = new Uint8Array(await blob.arrayBuffer());
        let raw = ''; for (const b of bytes) raw += String.fromCharCode(b); return btoa(raw); })()""")
    wav = tmp_path / "spoken.wav"
    wav.write_bytes(base64.b64decode(encoded))
    assert wer(text, whisper_judge.transcribe(wav).text) <= 0.2
    browser.wait_for("document.querySelector('#tts-audio').duration > 1")  # Firefox's player can play it
    browser.screenshot("speak")
    assert browser.console_errors == []


def speak_once_listening(browser: Firefox, stack: VirtualAudioStack, speech: Path, tab: str, button: str,
                         listening: str) -> None:
    """Open ``tab``, click its microphone ``button``, wait until the page is ``listening``, then say ``speech``."""
    browser.open(tab)
    browser.click(button)
    browser.wait_for(listening, timeout=60)
    speak_into_the_microphone(stack, speech)


def test_transcribe_live_hears_the_microphone(browser: Firefox, audio_stack: VirtualAudioStack, speech: Path):
    speak_once_listening(browser, audio_stack, speech, "Transcribe", "#stt-live",
                         "document.querySelector('#stt-state').innerText.startsWith('Listening')")
    browser.wait_for("document.querySelectorAll('#stt-segments li').length > 0", timeout=60)
    assert wer(SENTENCE, browser.text("#stt-text")) <= 0.2
    browser.screenshot("transcribe-live")
    browser.click("#stt-live")
    assert browser.text("#stt-error") == "" and browser.console_errors == []


def test_voice_hears_the_user_and_plays_the_reply(browser: Firefox, audio_stack: VirtualAudioStack, speech: Path):
    speak_once_listening(browser, audio_stack, speech, "Voice", "#voice-start",
                         "document.querySelector('#voice-state').dataset.state === 'listening'")
    user = browser.wait_for("document.querySelector('#voice-transcript .msg.user')?.innerText", timeout=90)
    assert wer(SENTENCE, user) <= 0.2
    browser.wait_for("Number(document.querySelector('#panel-voice').dataset.heardMs) > 0", timeout=120)
    assert browser.evaluate("Number(document.querySelector('#panel-voice').dataset.audioChunks)") > 0
    browser.screenshot("voice")
    browser.click("#voice-stop")
    browser.wait_for("document.querySelector('#voice-state').dataset.state === 'idle'")
    assert browser.text("#voice-error") == "" and browser.console_errors == []
