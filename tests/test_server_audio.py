"""The server's audio endpoints through the official ``openai`` client: transcription in every
``response_format`` and streamed, translation refused, and speech streamed to a file then transcribed back.

One server per module with the packaged Whisper tiny.en and Piper voice; the
recording is moonshine-voice's beckett.wav ("Ever tried, ever failed. ...").
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
import soundfile

from runanywhere import EventBus, SDKEvent
from runanywhere.core.events import TTSSynthesized
from runanywhere.models.manager import ModelLibrary
from runanywhere.server import ServerConfig, create_app

from .serving import serving
from .test_stt import recordings  # noqa: F401  (the fixture)
from .wer import wer

STT, VOICE = "faster-whisper-tiny.en", "piper-en_US-joe-medium"
SENTENCE = "The quick brown fox jumps over the lazy dog."
PARAGRAPH = ("The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a single step. "
             "The early bird catches the worm, but the second mouse gets the cheese. Every cloud has a silver lining.")


@pytest.fixture(scope="module")
def engine_events() -> list[SDKEvent]:
    """Everything the server's engines report (speech synthesized, transcribed...)."""
    return []


@pytest.fixture(scope="module")
def client(packaged_models: ModelLibrary, engine_events: list[SDKEvent]) -> Iterator[openai.OpenAI]:
    bus = EventBus()
    bus.on_any(engine_events.append)
    app = create_app(ServerConfig(models=(STT, VOICE)), library=packaged_models, events=bus)
    with serving(app) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def beckett(recordings: Path) -> bytes:  # noqa: F811
    return (recordings / "beckett.wav").read_bytes()


def test_transcription_in_every_response_format(client: openai.OpenAI, beckett: bytes):
    upload = ("beckett.wav", beckett, "audio/wav")
    as_json = client.audio.transcriptions.create(model="whisper-1", file=upload)
    assert "ever tried" in as_json.text.lower()
    text = client.audio.transcriptions.create(model=STT, file=upload, response_format="text")
    assert str(text).strip() == as_json.text
    srt = str(client.audio.transcriptions.create(model=STT, file=upload, response_format="srt"))
    assert srt.startswith("1\n00:00:0") and " --> " in srt and "failed" in srt.lower()
    vtt = str(client.audio.transcriptions.create(model=STT, file=upload, response_format="vtt"))
    assert vtt.startswith("WEBVTT\n\n00:00:0") and "." in vtt.split(" --> ")[0]
    verbose = client.audio.transcriptions.create(model=STT, file=upload, response_format="verbose_json",
                                                 timestamp_granularities=["segment"])
    assert verbose.text == as_json.text and verbose.language == "en" and 9 < verbose.duration < 11
    segments = verbose.segments or []
    assert segments and all(0 <= s.start < s.end <= verbose.duration for s in segments)


def test_streamed_transcription_sends_deltas_then_the_whole_text(client: openai.OpenAI, beckett: bytes):
    events = list(client.audio.transcriptions.create(model=STT, file=("beckett.wav", beckett, "audio/wav"),
                                                     stream=True))
    kinds = [e.type for e in events]
    assert kinds[-1] == "transcript.text.done" and set(kinds[:-1]) == {"transcript.text.delta"}
    assert "".join(e.delta for e in events[:-1]).split() == events[-1].text.split()  # type: ignore[union-attr]


def test_word_timestamps_in_verbose_json(client: openai.OpenAI, beckett: bytes):
    upload = ("beckett.wav", beckett, "audio/wav")
    only_words = client.audio.transcriptions.create(model=STT, file=upload, response_format="verbose_json",
                                                    timestamp_granularities=["word"])
    words = only_words.words or []
    assert [w.word.strip(".,").lower() for w in words][:4] == ["ever", "tried", "ever", "failed"]
    assert len(words) == len(only_words.text.split()) and not only_words.segments  # as OpenAI: words only
    assert all(0 <= w.start <= w.end <= only_words.duration for w in words)
    assert all(a.end <= b.start + 1e-6 for a, b in itertools.pairwise(words))
    both = client.audio.transcriptions.create(model=STT, file=upload, response_format="verbose_json",
                                              timestamp_granularities=["word", "segment"])
    assert both.segments and [w.word for w in both.words or []] == [w.word for w in words]
    with pytest.raises(openai.BadRequestError, match="verbose_json"):
        client.audio.transcriptions.create(model=STT, file=upload, response_format="json",
                                           timestamp_granularities=["word"])
    with pytest.raises(openai.BadRequestError, match="timestamp_granularities"):
        client.audio.transcriptions.create(model=STT, file=upload, response_format="verbose_json",
                                           timestamp_granularities=["sentence"])  # type: ignore[list-item]


def test_translation_is_refused(client: openai.OpenAI, beckett: bytes):
    upload = ("beckett.wav", beckett, "audio/wav")
    with pytest.raises(openai.BadRequestError, match="cannot translate"):
        client.audio.translations.create(model="whisper-1", file=upload)


def test_speech_streamed_to_a_file_is_transcribed_back(client: openai.OpenAI, tmp_path: Path):
    path = tmp_path / "speech.wav"
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input=SENTENCE,
                                                            response_format="wav") as response:
        response.stream_to_file(path)
    audio, rate = soundfile.read(path)
    assert rate == 22050 and len(audio) > rate  # more than a second of speech
    heard = client.audio.transcriptions.create(model=STT, file=path)
    assert "quick brown fox" in heard.text.lower()


def decoded(data: bytes) -> np.ndarray:
    """``data`` decoded by FFmpeg (PyAV, which faster-whisper brings) to mono float32 at 16 kHz."""
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
    with av.open(io.BytesIO(data)) as container:
        frames = [out.to_ndarray()[0] for frame in container.decode(audio=0) for out in resampler.resample(frame)]
    return np.concatenate(frames + [out.to_ndarray()[0] for out in resampler.resample(None)])


@pytest.mark.parametrize("fmt", ["mp3", "flac", "opus", "wav"])
def test_speech_streams_in_every_format_and_transcribes_back(client: openai.OpenAI, engine_events: list[SDKEvent],
                                                            whisper_judge, fmt: str):
    def synthesized() -> int:
        return sum(isinstance(e, TTSSynthesized) for e in engine_events)

    before = synthesized()
    with client.audio.speech.with_streaming_response.create(model=VOICE, voice=VOICE, input=PARAGRAPH,
                                                            response_format=fmt) as response:
        chunks = response.iter_bytes()
        first = next(chunks)
        finished_before_the_first_bytes = synthesized() - before
        data = first + b"".join(chunks)
    assert finished_before_the_first_bytes == 0, "the audio was held back until the whole speech was synthesised"
    assert synthesized() - before == 1
    samples = decoded(data)  # as a browser or FFmpeg reads it
    assert len(samples) / 16000 > 8
    assert wer(PARAGRAPH, whisper_judge.transcribe(samples, 16000).text) <= 0.15
    heard = client.audio.transcriptions.create(model=STT, file=(f"speech.{fmt}", data))  # as the SDK reads it
    assert wer(PARAGRAPH, heard.text) <= 0.15


def test_pcm_is_16_bit_at_24_khz_and_speed_shortens_it(client: openai.OpenAI):
    normal = client.audio.speech.create(model="tts-1", voice="nova", input=SENTENCE, response_format="pcm").content
    fast = client.audio.speech.create(model="tts-1", voice="nova", input=SENTENCE, response_format="pcm",
                                      speed=2.0).content
    assert len(normal) % 2 == 0 and 1.5 < len(normal) / 2 / 24000 < 6
    assert len(fast) < 0.7 * len(normal)
    with pytest.raises(openai.BadRequestError, match="response_format"):
        client.audio.speech.create(model="tts-1", voice="nova", input="Hi.", response_format="aac")
    with pytest.raises(openai.BadRequestError, match="voice"):
        client.audio.speech.create(model="tts-1", voice="nobody", input="Hi.")  # type: ignore[arg-type]
