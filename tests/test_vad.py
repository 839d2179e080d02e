"""Voice activity detection on real speech (moonshine-voice recordings) joined with known silences.

The test signal is three utterances from ``endgame_nagg_nell.wav`` (a recording
whose pauses are digital silence, so each utterance's true start and end are
exact: its first and last non-zero sample), separated by 1.5 s and 2 s of
silence, with white noise at -50 dBFS over everything. Each utterance alone is
one segment (checked below), so the expected count is unambiguous.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr

from runanywhere import EventBus, InvalidInputError, ModelFormatError, ModelNotLoadedError, SDKEvent
from runanywhere.core.errors import SDKFileNotFoundError
from runanywhere.core.events import VADSpeechEnded, VADSpeechStarted
from runanywhere.features.vad import (
    SpeechActivity,
    SpeechActivityChange,
    SpeechSegment,
    VADSession,
    VoiceActivityDetector,
)
from runanywhere.models.manager import ModelLibrary

RATE = 16000
TOLERANCE_S = 0.3
UTTERANCES_S = ((4.6, 8.4), (11.7, 14.3), (23.5, 27.7))  # cut points inside the recording's silent pauses
SILENCES_S = (0.5, 1.5, 2.0, 1.0)  # before A, between A-B, between B-C, after C


@dataclass(frozen=True)
class Speech:
    """The joined test signal at 16 kHz and the true (start, end) seconds of each utterance."""

    samples: np.ndarray
    truth: tuple[tuple[float, float], ...]
    clips: tuple[np.ndarray, ...]


def _package_dir(package: str) -> Path:
    """Where a package's files are, without importing it; a missing package fails the test (never skips)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"the {package} package is not installed; the test set-up is broken")
    return Path(next(iter(spec.submodule_search_locations)))


def _utterance(recording: np.ndarray, rate: int, start_s: float, end_s: float) -> np.ndarray:
    piece = recording[int(start_s * rate):int(end_s * rate)]
    voiced = np.flatnonzero(np.abs(piece) > 1e-3)
    piece = piece[voiced[0]:voiced[-1] + 1]  # exactly from the first to the last sound
    return np.asarray(soxr.resample(piece, rate, RATE, quality="HQ"), dtype=np.float32)


@pytest.fixture(scope="module")
def speech() -> Speech:
    recording, rate = soundfile.read(_package_dir("moonshine_voice") / "assets" / "endgame_nagg_nell.wav",
                                     dtype="float32")
    clips = tuple(_utterance(recording, rate, a, b) for a, b in UTTERANCES_S)
    parts, truth, t = [], [], 0
    for silence_s, clip in zip(SILENCES_S, clips, strict=False):
        parts += [np.zeros(int(silence_s * RATE), np.float32), clip]
        t += int(silence_s * RATE)
        truth.append((t / RATE, (t + len(clip)) / RATE))
        t += len(clip)
    parts.append(np.zeros(int(SILENCES_S[-1] * RATE), np.float32))
    joined = np.concatenate(parts)
    joined += np.random.default_rng(0).normal(0.0, 0.003, len(joined)).astype(np.float32)  # -50 dBFS hiss
    return Speech(joined, tuple(truth), clips)


@pytest.fixture
def vad(packaged_models: ModelLibrary, bus: EventBus) -> Iterator[VoiceActivityDetector]:
    detector = VoiceActivityDetector(packaged_models, events=bus)
    detector.load_model("silero-vad-v6")
    yield detector
    detector.unload()


def _times(segments: list[SpeechSegment]) -> list[tuple[float, float]]:
    return [(s.start_s, s.end_s) for s in segments]


def _stream(target: VoiceActivityDetector | VADSession, samples: np.ndarray, chunk: int,
            rate: int | None = None) -> list[SpeechSegment]:
    """Feed ``samples`` chunk by chunk, flush, and pop every segment."""
    for i in range(0, len(samples), chunk):
        target.process_samples(samples[i:i + chunk], rate)
    target.flush()
    return list(target.segments())


def _assert_near_truth(segments: list[SpeechSegment], truth: tuple[tuple[float, float], ...]) -> None:
    assert len(segments) == len(truth), _times(segments)
    for segment, (start, end) in zip(segments, truth, strict=True):
        assert abs(segment.start_s - start) <= TOLERANCE_S, (segment.start_s, start)
        assert abs(segment.end_s - end) <= TOLERANCE_S, (segment.end_s, end)


# ---------------------------------------------------------------- segmentation
def test_each_utterance_alone_is_one_segment(vad: VoiceActivityDetector, speech: Speech):
    for clip in speech.clips:
        segments = vad.detect(clip)
        assert len(segments) == 1, _times(segments)


def test_segments_match_the_true_boundaries_in_seconds(vad: VoiceActivityDetector, speech: Speech):
    segments = vad.detect(speech.samples)
    _assert_near_truth(segments, speech.truth)
    for segment in segments:
        assert segment.sample_rate == RATE and segment.samples.dtype == np.float32
        assert abs(len(segment.samples) / RATE - segment.duration_s) < 1e-6
    errors = [round(s.start_s - a, 3) for s, (a, _) in zip(segments, speech.truth, strict=True)]
    errors += [round(s.end_s - b, 3) for s, (_, b) in zip(segments, speech.truth, strict=True)]
    print("boundary errors (s):", errors)


@pytest.mark.parametrize("chunk", [160, 512, 1600, 4800])
def test_any_chunk_size_gives_the_same_segments(vad: VoiceActivityDetector, speech: Speech, chunk: int):
    whole = vad.detect(speech.samples)
    streamed = _stream(vad, speech.samples, chunk)
    assert _times(streamed) == _times(whole)
    for a, b in zip(streamed, whole, strict=True):
        np.testing.assert_array_equal(a.samples, b.samples)


def test_48khz_and_int16_input_give_the_same_segments(vad: VoiceActivityDetector, speech: Speech):
    reference = _times(vad.detect(speech.samples))
    at_48k = np.asarray(soxr.resample(speech.samples, RATE, 48000, quality="HQ"), dtype=np.float32)
    pcm16 = np.round(speech.samples * 32767).astype(np.int16)
    runs = [vad.detect(at_48k, 48000)]
    for samples, chunk, rate in ((at_48k, 4800, 48000), (pcm16, 1600, None)):
        vad.reset()
        runs.append(_stream(vad, samples, chunk, rate))
    for segments in runs:
        assert len(segments) == len(reference)
        for (start, end), (ref_start, ref_end) in zip(_times(segments), reference, strict=True):
            assert abs(start - ref_start) <= 0.05 and abs(end - ref_end) <= 0.05


def test_the_default_rate_is_the_one_given_at_load(vad: VoiceActivityDetector, speech: Speech):
    vad.load_model("silero-vad-v6", sample_rate=48000)
    at_48k = np.asarray(soxr.resample(speech.samples, RATE, 48000, quality="HQ"), dtype=np.float32)
    _assert_near_truth(_stream(vad, at_48k, 4800), speech.truth)


def test_long_speech_without_a_pause_is_cut(vad: VoiceActivityDetector, speech: Speech):
    talk = np.concatenate(speech.clips * 5)  # 44 s, no pause of 0.1 s anywhere
    segments = vad.detect(talk)
    assert len(segments) >= 2
    assert all(s.duration_s <= vad.settings.hard_max_speech_s + 0.1 for s in segments)
    assert segments[0].start_s < 0.1 and segments[-1].end_s > len(talk) / RATE - 0.5


# ---------------------------------------------------------------- activity callbacks and events
def test_callbacks_fire_started_then_ended_for_every_subscriber(
    vad: VoiceActivityDetector, speech: Speech, events: list[SDKEvent]
):
    first: list[SpeechActivityChange] = []
    second: list[SpeechActivityChange] = []

    def broken(_change: SpeechActivityChange) -> None:
        raise RuntimeError("a subscriber's bug")

    vad.on_speech_activity(first.append)
    vad.on_speech_activity(broken)
    unsubscribe = vad.on_speech_activity(second.append)
    segments = _stream(vad, speech.samples, 1600)

    expected = [(SpeechActivity.STARTED, s.start_s) for s in segments]
    expected = [x for pair in zip(expected, [(SpeechActivity.ENDED, s.end_s) for s in segments], strict=True)
                for x in pair]
    assert [(c.activity, c.time_s) for c in first] == expected and len(expected) == 6
    assert second == first and all(c.stream == "default" for c in first)
    bus_events = [(type(e), e.time_s) for e in events if isinstance(e, VADSpeechStarted | VADSpeechEnded)]
    assert bus_events == [(VADSpeechStarted if a is SpeechActivity.STARTED else VADSpeechEnded, t)
                          for a, t in expected]

    unsubscribe()
    vad.reset()
    _stream(vad, speech.samples, 1600)
    assert len(first) == 12 and len(second) == 6


def test_process_samples_reports_speech_while_it_lasts(vad: VoiceActivityDetector, speech: Speech):
    (a_start, a_end), *_ = speech.truth
    assert vad.process_samples(speech.samples[: int((a_start + 1.0) * RATE)]) is True
    assert vad.is_speech_active
    assert vad.process_samples(speech.samples[int((a_start + 1.0) * RATE): int((a_end + 1.0) * RATE)]) is False
    assert not vad.is_speech_active and vad.pop_speech_segment() is not None


def test_silence_and_quiet_noise_have_no_segments(vad: VoiceActivityDetector):
    changes: list[SpeechActivityChange] = []
    vad.on_speech_activity(changes.append)
    noise = np.random.default_rng(1).normal(0.0, 0.01, 10 * RATE).astype(np.float32)  # -40 dBFS
    for signal in (np.zeros(10 * RATE, np.float32), noise):
        assert not any(vad.process_samples(signal[i:i + 1600]) for i in range(0, len(signal), 1600))
        vad.flush()
        assert vad.pop_speech_segment() is None
        assert vad.detect(signal) == []
    assert changes == []


def test_flush_ends_the_open_segment(vad: VoiceActivityDetector, speech: Speech, events: list[SDKEvent]):
    c_start = speech.truth[2][0]
    cut_s = c_start + 1.5
    for i in range(0, int(cut_s * RATE), 512):
        vad.process_samples(speech.samples[i:min(i + 512, int(cut_s * RATE))])
    assert vad.is_speech_active and len(list(vad.segments())) == 2
    vad.flush()
    assert not vad.is_speech_active
    last = vad.pop_speech_segment()
    assert last is not None
    assert abs(last.start_s - c_start) <= TOLERANCE_S and abs(last.end_s - cut_s) <= TOLERANCE_S
    assert isinstance(events[-1], VADSpeechEnded) and events[-1].time_s == last.end_s
    # times keep counting after a flush: the rest of the signal is the rest of the same stream
    rest = speech.samples[int(cut_s * RATE):]
    rest_segments = _stream(vad, rest, 512)
    assert len(rest_segments) == 1 and rest_segments[0].start_s >= cut_s - 0.05


def test_reset_forgets_everything_and_restarts_the_clock(vad: VoiceActivityDetector, speech: Speech):
    vad.process_samples(speech.samples[: int(6.5 * RATE)])  # A done, B open
    assert vad.is_speech_active
    vad.reset()
    assert not vad.is_speech_active and vad.pop_speech_segment() is None
    _assert_near_truth(_stream(vad, speech.samples, 1600), speech.truth)


def test_detect_a_file_without_disturbing_the_live_stream(
    vad: VoiceActivityDetector, speech: Speech, tmp_path: Path, events: list[SDKEvent]
):
    path = tmp_path / "speech-48k.wav"
    soundfile.write(path, soxr.resample(speech.samples, RATE, 48000), 48000, subtype="PCM_16")
    half = int(6.0 * RATE)  # inside B
    vad.process_samples(speech.samples[:half])
    seen = len(events)
    from_file = vad.detect(path)
    assert len(events) == seen  # a file's analysis is not a live stream: no activity events
    _assert_near_truth(from_file, speech.truth)
    live = _stream(vad, speech.samples[half:], 1600)
    assert _times(live) == _times(vad.detect(speech.samples))
    assert asyncio.run(vad.adetect(str(path)))[0].start_s == from_file[0].start_s


def test_sessions_are_independent_streams(vad: VoiceActivityDetector, speech: Speech, events: list[SDKEvent]):
    seen: list[SpeechActivityChange] = []
    vad.on_speech_activity(seen.append)
    with vad.create_session("mic-1") as talking, vad.create_session("mic-2") as quiet:
        heard: list[SpeechActivityChange] = []
        talking.on_speech_activity(heard.append)
        silence = np.zeros(1600, np.float32)
        for i in range(0, len(speech.samples), 1600):
            talking.process_samples(speech.samples[i:i + 1600])
            quiet.process_samples(silence)
        talking.flush()
        quiet.flush()
        _assert_near_truth(list(talking.segments()), speech.truth)
        assert quiet.pop_speech_segment() is None
    assert len(heard) == 6 and seen == []  # the default stream's listeners hear only the default stream
    assert {e.stream for e in events if isinstance(e, VADSpeechStarted)} == {"mic-1"}
    with pytest.raises(ModelNotLoadedError):
        talking.process_samples(silence)


def test_a_pause_session_reports_pauses_before_the_segment_ends(
    vad: VoiceActivityDetector, speech: Speech, events: list[SDKEvent]
):
    a, b = speech.clips[:2]
    gap, tail = np.zeros(int(0.3 * RATE), np.float32), np.zeros(RATE, np.float32)
    signal = np.concatenate([tail, a, gap, b, tail])  # one turn with a 0.3 s pause (the VAD waits 0.5 s)
    changes: list[tuple[SpeechActivityChange, SpeechSegment | None]] = []
    with vad.create_session("mic", pause_s=0.1) as session:
        session.on_speech_activity(lambda change: changes.append((change, session.open_segment())))
        for i in range(0, len(signal), 512):
            session.process_samples(signal[i:i + 512])
        (segment,) = session.segments()
    kinds = [c.activity for c, _ in changes]
    assert kinds[0] is SpeechActivity.STARTED and kinds[-1] is SpeechActivity.ENDED
    inner = kinds[1:-1]  # pauses and resumptions alternate, and the turn ends in a pause
    assert inner[::2] == [SpeechActivity.PAUSED] * len(inner[::2]) and inner[-1] is SpeechActivity.PAUSED
    assert inner[1::2] == [SpeechActivity.RESUMED] * len(inner[1::2]) and len(inner) >= 3  # the 0.3 s gap
    a_end = (RATE + len(a)) / RATE
    assert any(c.activity is SpeechActivity.PAUSED and abs(c.time_s - a_end) <= TOLERANCE_S for c, _ in changes)

    last_pause, early = changes[-2]  # the open segment, taken when the last pause began
    assert early is not None and early.start_s == segment.start_s
    assert abs(early.end_s - last_pause.time_s) < 1e-6 and abs(early.end_s - segment.end_s) <= 0.1
    shared = min(len(early.samples), len(segment.samples))
    assert np.array_equal(early.samples[:shared], segment.samples[:shared])
    assert changes[-1][1] is None  # nothing open once the segment ended
    assert len([e for e in events if isinstance(e, VADSpeechStarted | VADSpeechEnded)]) == 2  # pauses stay local
    with pytest.raises(InvalidInputError):
        vad.create_session(pause_s=0.5)  # not shorter than the VAD's own end-of-speech silence


def test_the_sample_counter_rollover_keeps_times(vad: VoiceActivityDetector, speech: Speech):
    session = vad.create_session()
    session.rollover_samples = 3 * RATE  # instead of 2**30 (18.6 h): the detector restarts in every silence
    segments = _stream(session, speech.samples, 1600)
    assert session._offset > 0  # it did restart
    reference = _times(vad.detect(speech.samples))
    assert len(segments) == len(reference)
    for (start, end), (ref_start, ref_end) in zip(_times(segments), reference, strict=True):
        assert abs(start - ref_start) <= 0.05 and abs(end - ref_end) <= 0.05
    session.close()


# ---------------------------------------------------------------- lifecycle and bad input
def test_load_reports_events_and_unload_releases(
    packaged_models: ModelLibrary, bus: EventBus, events: list[SDKEvent]
):
    detector = VoiceActivityDetector(packaged_models, events=bus)
    with pytest.raises(ModelNotLoadedError):
        detector.process_samples(np.zeros(512, np.float32))
    assert detector.is_speech_active is False
    assert detector.load_model() == "silero-vad-v6"
    assert [e.type for e in events] == ["model.loadStarted", "model.loadCompleted"]
    session = detector.create_session()
    detector.unload()
    assert events[-1].type == "model.unloaded"
    for call in (lambda: detector.process_samples(np.zeros(512, np.float32)), lambda: detector.detect(np.zeros(512)),
                 lambda: session.process_samples(np.zeros(1024, np.float32)), detector.create_session):
        with pytest.raises(ModelNotLoadedError):
            call()


def test_bad_input_is_a_clear_error(vad: VoiceActivityDetector, tmp_path: Path):
    bad_chunks = [np.array([0.1, np.nan] * 256, np.float32), np.array(["a"] * 512), np.zeros((512, 512))]
    for chunk in bad_chunks:
        with pytest.raises(InvalidInputError):
            vad.process_samples(chunk)
    for rate in (0, -16000, 16000.5):
        with pytest.raises(InvalidInputError):
            vad.process_samples(np.zeros(512, np.float32), rate)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        vad.on_speech_activity("not callable")  # type: ignore[arg-type]
    with pytest.raises(SDKFileNotFoundError):
        vad.detect(tmp_path / "missing.wav")
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(InvalidInputError):
        vad.detect(tmp_path / "text.wav")
    assert vad.process_samples(np.zeros(0, np.float32)) is False  # empty is fine
    assert vad.detect(np.zeros(0, np.float32)) == []


@pytest.mark.parametrize("options", [{"threshold": 1.5}, {"threshold": 0.0}, {"min_silence_s": 0.0},
                                     {"min_speech_s": -1.0}, {"max_speech_s": 0.1}, {"sample_rate": 0}])
def test_bad_settings_are_refused_before_loading(vad: VoiceActivityDetector, options: dict[str, float]):
    with pytest.raises(InvalidInputError):
        vad.load_model("silero-vad-v6", **options)  # type: ignore[arg-type]
    assert vad.is_loaded  # the loaded model is untouched


def test_a_wrong_model_file_is_refused_without_ending_the_process(vad: VoiceActivityDetector, tmp_path: Path):
    # sherpa-onnx calls exit() on an ONNX model that is not laid out like Silero; this one is another export
    other_export = _package_dir("silero_vad") / "data" / "silero_vad_half.onnx"
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(vad.engine.path.read_bytes()[:100_000])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff" * 1000)
    for path in (other_export, truncated, garbage):
        with pytest.raises(ModelFormatError):
            vad.load_model(path)
    with pytest.raises(SDKFileNotFoundError):
        vad.load_model(tmp_path / "missing.onnx")


# ---------------------------------------------------------------- command line
def test_cli_prints_segments_as_json(speech: Speech, tmp_path: Path, subprocess_env: dict[str, str]):
    path = tmp_path / "speech.wav"
    soundfile.write(path, speech.samples, RATE, subtype="PCM_16")
    env = {**subprocess_env, "RUNANYWHERE_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "runanywhere.cli", "vad", str(path), "--json", "--threshold", "0.5"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    got = [(s["start_s"], s["end_s"]) for s in report["segments"]]
    assert len(got) == 3 and abs(report["duration_s"] - len(speech.samples) / RATE) < 0.01
    for (start, end), (true_start, true_end) in zip(got, speech.truth, strict=True):
        assert abs(start - true_start) <= TOLERANCE_S and abs(end - true_end) <= TOLERANCE_S

    bad = subprocess.run([sys.executable, "-m", "runanywhere.cli", "vad", str(path), "--threshold", "2"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "threshold" in bad.stderr and "Traceback" not in bad.stderr
