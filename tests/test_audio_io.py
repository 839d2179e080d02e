"""AudioCapture and AudioPlayback against a real (virtual) audio device: a PulseAudio null sink and its monitor.

Audio played through ``AudioPlayback`` comes back through ``AudioCapture``, so
the tests check what a listener would: the frequency that was played, its
level, where it starts and stops. Nothing is mocked; where no audio stack can
start, the whole module is skipped with the reason (see tests/audio_stack.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runanywhere import EventBus, SDKError
from runanywhere.core.errors import InvalidInputError, InvalidStateError
from runanywhere.core.events import PlaybackCompleted, PlaybackStarted, SDKEvent
from runanywhere.media.capture import AudioCapture, CapturedAudio
from runanywhere.media.devices import list_input_devices, list_output_devices
from runanywhere.media.playback import AudioPlayback

from .audio_stack import AudioStackUnavailable, VirtualAudioStack

pytestmark = pytest.mark.slow

GUARD_S = 30.0  # only a guard against a hang; no test asserts how long anything takes
THRESHOLD = 0.05  # "sound" in the captured signal: the test tones have amplitude 0.5
SLACK = 10  # samples at 16 kHz: where the threshold falls on a tone's first and last cycle


@pytest.fixture(scope="session")
def audio_stack() -> Iterator[VirtualAudioStack]:
    stack = VirtualAudioStack()
    try:
        stack.start()
    except AudioStackUnavailable as exc:
        if os.environ.get("CI"):  # the set-up installs the audio stack: in CI its absence is a failure
            pytest.fail(f"the virtual audio stack did not start: {exc}")
        pytest.skip(f"no virtual audio stack: {exc}")
    yield stack
    stack.stop()


@pytest.fixture
def device(audio_stack: VirtualAudioStack) -> str:
    return audio_stack.device


def sine(freq: float, seconds: float, rate: int, amplitude: float = 0.5, phase: float = 0.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def peak_hz(samples: np.ndarray, rate: int) -> float:
    """The strongest frequency, from a zero-padded windowed FFT with parabolic interpolation."""
    n = 8 * len(samples)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)), n))
    k = int(np.argmax(spectrum))
    a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
    return float((k + 0.5 * (a - c) / (a - 2 * b + c)) * rate / n)


def sound_span(samples: np.ndarray) -> tuple[int, int]:
    """First and last index above the threshold (the played tone as the capture heard it)."""
    loud = np.nonzero(np.abs(samples) > THRESHOLD)[0]
    assert len(loud), "nothing was heard"
    return int(loud[0]), int(loud[-1]) + 1


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GUARD_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.005)


class Recorder:
    """Collects a running capture's chunks from its ``on_chunk`` callback."""

    def __init__(self) -> None:
        self.chunks: list[CapturedAudio] = []
        self.lock = threading.Lock()

    def __call__(self, chunk: CapturedAudio) -> None:
        with self.lock:
            self.chunks.append(chunk)

    def __len__(self) -> int:
        with self.lock:
            return len(self.chunks)

    def samples(self) -> np.ndarray:
        with self.lock:
            return np.concatenate([c.samples for c in self.chunks])

    def wait_for(self, n: int) -> None:
        wait_until(lambda: len(self) >= n, f"{n} captured chunks")


# --- devices and bad input ----------------------------------------------------------------


def test_devices_are_listed(device: str) -> None:
    inputs, outputs = list_input_devices(), list_output_devices()
    assert device in [d.name for d in inputs]
    assert device in [d.name for d in outputs]
    pulse = next(d for d in inputs if d.name == device)
    assert pulse.max_input_channels >= 1 and pulse.default_sample_rate > 0 and pulse.host_api == "ALSA"


def test_unknown_devices_and_bad_parameters_are_clear_errors(device: str) -> None:
    for make in (AudioCapture, AudioPlayback):
        with pytest.raises(InvalidInputError, match="no-such-device-xyz") as info:
            make(device="no-such-device-xyz")
        assert isinstance(info.value, SDKError)
        assert device in str(info.value)  # the message lists the devices there are
        with pytest.raises(InvalidInputError):
            make(device=9999)
        with pytest.raises(InvalidInputError, match="sample_rate"):
            make(sample_rate=0, device=device)
    with pytest.raises(InvalidInputError, match="chunk_size"):
        AudioCapture(chunk_size=0, device=device)
    with pytest.raises(InvalidInputError, match="channels"):
        AudioCapture(channels=1000, device=device)
    with pytest.raises(InvalidInputError, match="max_queued_chunks"):
        AudioCapture(max_queued_chunks=0, device=device)
    with pytest.raises(InvalidInputError, match="volume"):
        AudioPlayback(volume=1.5, device=device)
    with AudioPlayback(device=device) as player:
        with pytest.raises(InvalidInputError, match="NaN"):
            player.play(np.array([0.0, np.nan], dtype=np.float32))
        with pytest.raises(InvalidInputError, match="volume"):
            player.set_volume(-0.1)
        player.play(np.zeros(0, dtype=np.float32))  # nothing to play: no playback starts
        assert not player.is_playing
    with pytest.raises(InvalidStateError):
        player.play(sine(440, 0.1, 22050))


# --- the loop: playback heard by capture ------------------------------------------------------


def test_played_tone_is_captured_with_its_frequency_and_level(
    device: str, bus: EventBus, events: list[SDKEvent]
) -> None:
    finished = threading.Event()
    recorder = Recorder()
    tone = sine(440.0, 1.0, 22050)
    with (
        AudioCapture(device=device) as capture,
        AudioPlayback(device=device, events=bus, on_finished=finished.set) as player,
    ):
        capture.start(on_chunk=recorder)
        recorder.wait_for(2)
        player.play(tone)
        assert player.is_playing
        assert player.wait(GUARD_S)
        assert finished.is_set() and not player.is_playing
        assert player.played_samples == len(tone)
        n = len(recorder)
        recorder.wait_for(n + 3)  # 0.3 s more: the tone's tail and some silence after it
    audio = recorder.samples()
    start, end = sound_span(audio)
    heard = audio[start:end]
    error_hz = abs(peak_hz(heard, 16000) - 440.0)
    assert error_hz < 3.0, error_hz
    # The whole tone was heard: neither its start (a new stream) nor its tail (the stream's end)
    # was cut. A few samples of slack for where the threshold falls on the first and last cycle.
    assert abs(len(heard) - 16000) <= SLACK, len(heard)
    assert np.sqrt(np.mean(heard**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)
    levels = [c.level for c in recorder.chunks]
    assert max(levels) == pytest.approx(0.354, rel=0.1) and min(levels) < 0.001
    assert capture.current_level < 0.001  # the last chunks were silence
    kinds = [type(e) for e in events if isinstance(e, PlaybackStarted | PlaybackCompleted)]
    assert kinds == [PlaybackStarted, PlaybackCompleted]
    started, completed = (e for e in events if isinstance(e, PlaybackStarted | PlaybackCompleted))
    assert isinstance(started, PlaybackStarted) and started.sample_rate == 22050
    assert started.duration_ms == pytest.approx(1000.0)
    assert isinstance(completed, PlaybackCompleted) and not completed.interrupted
    assert completed.duration_ms == pytest.approx(1000.0)
    print(f"\nfrequency error {error_hz:.3f} Hz; tone heard for {len(heard)} of 16000 samples")


def test_stop_cuts_playback_at_once(device: str, bus: EventBus, events: list[SDKEvent]) -> None:
    finished = threading.Event()
    recorder = Recorder()
    tone = sine(523.25, 5.0, 22050)
    # 10 ms chunks: the captured count at play()/stop() is then only 10 ms coarse.
    with AudioCapture(device=device, chunk_size=160) as capture, AudioPlayback(device=device, events=bus) as player:
        player.on_finished = finished.set
        capture.start(on_chunk=recorder)
        recorder.wait_for(10)
        captured_at_play = len(recorder.samples())
        player.play(tone)
        wait_until(lambda: player.played_samples >= 22050, "1 s of playback")
        captured_at_stop = len(recorder.samples())
        player.stop()
        handed_at_stop = player.played_samples
        assert not player.is_playing and player.wait(0) and player.queued_samples == 0
        n = len(recorder)
        recorder.wait_for(n + 80)  # 0.8 s after stop()
        assert player.played_samples == handed_at_stop  # nothing more went out
    audio = recorder.samples()
    start, end = sound_span(audio)
    after = audio[end:]
    assert len(after) >= 6000
    assert np.sqrt(np.mean(after**2)) < 1e-3  # silence after the cut
    heard = end - start
    handed = handed_at_stop * 16000 / 22050
    assert heard <= handed + SLACK  # no more than was handed out
    assert heard < len(tone) * 16000 / 22050 / 2  # it was cut: the 5 s tone did not play on
    assert not finished.is_set()  # stop() is not a natural end
    completed = [e for e in events if isinstance(e, PlaybackCompleted)]
    assert len(completed) == 1 and completed[0].interrupted
    # Both delays are counted the same way (captured samples when play()/stop() was called, to the
    # first/last sound), so both include the capture's own latency.
    print(
        f"\nstop: handed to the device {handed:.0f} samples @16k, heard {heard} (the abort dropped "
        f"{handed - heard:.0f}); play() -> sound {start - captured_at_play} samples, "
        f"stop() -> silence {end - captured_at_stop} samples"
    )


def test_chunk_sizes_and_rates_with_resampling_on_both_sides(device: str) -> None:
    # The capture records at 48 kHz and resamples to 16 kHz itself; the player's stream runs at
    # 22.05 kHz and is handed a 16 kHz clip, which it resamples.
    tone = sine(1000.0, 0.5, 16000)
    capture = AudioCapture(sample_rate=16000, chunk_size=512, device=device, device_sample_rate=48000)
    assert capture.actual_sample_rate == 48000
    recorder = Recorder()
    with AudioPlayback(sample_rate=22050, device=device) as player:
        capture.start(on_chunk=recorder)
        recorder.wait_for(4)
        player.play(tone, sample_rate=16000)
        assert player.wait(GUARD_S)
        assert abs(player.played_samples - len(tone) * 22050 / 16000) <= 2
        n = len(recorder)
        recorder.wait_for(n + 10)
        capture.stop()
    chunks = recorder.chunks
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(len(c.samples) == 512 for c in chunks[:-1]) and 0 < len(chunks[-1].samples) <= 512
    assert all(c.sample_rate == 16000 and c.samples.dtype == np.float32 for c in chunks)
    assert all(c.timestamp_s == pytest.approx(c.index * 512 / 16000) for c in chunks)
    audio = recorder.samples()
    start, end = sound_span(audio)
    assert abs(peak_hz(audio[start:end], 16000) - 1000.0) < 3.0
    assert abs((end - start) - len(tone)) <= SLACK


def test_capture_at_the_device_rate_with_other_chunk_size(device: str) -> None:
    with AudioCapture(sample_rate=44100, chunk_size=4410, channels=2, device=device) as capture:
        assert capture.actual_sample_rate == 44100  # no resampling needed
        chunks = [capture.read(GUARD_S) for _ in range(3)]
    assert all(c is not None and len(c.samples) == 4410 and c.samples.ndim == 1 for c in chunks)
    assert not capture.is_capturing
    with pytest.raises(InvalidStateError):
        capture.start()  # closed by the with block


def test_back_to_back_clips_play_as_one_gapless_playback(device: str, bus: EventBus, events: list[SDKEvent]) -> None:
    # One continuous tone cut in three clips: heard as one tone of the full length.
    tone = sine(440.0, 0.9, 22050)
    recorder = Recorder()
    with AudioCapture(device=device) as capture, AudioPlayback(device=device, events=bus) as player:
        capture.start(on_chunk=recorder)
        recorder.wait_for(2)
        for part in np.array_split(tone, 3):
            player.play(part)
        assert player.wait(GUARD_S)
        n = len(recorder)
        recorder.wait_for(n + 3)
    audio = recorder.samples()
    start, end = sound_span(audio)
    heard = audio[start:end]
    assert abs(len(heard) - len(tone) * 16000 / 22050) <= SLACK
    envelope = np.sqrt(np.convolve(heard**2, np.ones(160) / 160, mode="valid"))  # 10 ms RMS
    assert envelope.min() > 0.25  # no gap between the clips
    assert [type(e) for e in events if isinstance(e, PlaybackStarted | PlaybackCompleted)] == [
        PlaybackStarted,
        PlaybackCompleted,
    ]


def test_play_while_the_stream_winds_down_and_from_on_finished(device: str) -> None:
    first, second, third = sine(440.0, 0.2, 22050), sine(660.0, 0.2, 22050), sine(880.0, 0.2, 22050)
    finished: list[int] = []

    with AudioPlayback(device=device) as player:

        def chain() -> None:
            finished.append(player.played_samples)
            if len(finished) == 1:
                player.play(third)  # from the callback: must not deadlock

        player.on_finished = chain
        player.play(first)
        # All of the first clip is handed over: the stream now plays its tail of silence, then ends.
        wait_until(lambda: player.queued_samples == 0, "the first clip to be handed over")
        player.play(second)  # lands in the tail or after the stream ended: either way it plays
        wait_until(lambda: len(finished) == 2, "both playbacks to finish")
        assert player.wait(GUARD_S)
    assert finished[0] == len(first) + len(second)
    assert finished[1] == len(first) + len(second) + len(third)


def test_volume_scales_the_output(device: str) -> None:
    levels = []
    with AudioCapture(device=device) as capture, AudioPlayback(device=device) as player:
        for volume in (1.0, 0.25):
            recorder = Recorder()
            capture.start(on_chunk=recorder)  # replaces the callback of the running capture
            player.set_volume(volume)
            assert player.volume == volume
            player.play(sine(440.0, 0.5, 22050))
            assert player.wait(GUARD_S)
            recorder.wait_for(len(recorder) + 2)
            levels.append(max(c.level for c in recorder.chunks))
    assert levels[1] / levels[0] == pytest.approx(0.25, rel=0.1)


# --- iteration and the queue --------------------------------------------------------------------


def test_iterator_starts_and_stops_the_capture(device: str) -> None:
    capture = AudioCapture(device=device, chunk_size=800)
    got = []
    for chunk in capture:
        assert capture.is_capturing
        got.append(chunk)
        if len(got) == 3:
            break
    assert not capture.is_capturing  # the loop started it, so the loop stopped it
    assert [c.index for c in got] == [0, 1, 2] and all(len(c.samples) == 800 for c in got)


def test_async_iterator_hears_the_tone(device: str) -> None:
    tone = sine(700.0, 0.6, 22050)

    async def main() -> tuple[list[CapturedAudio], AudioCapture]:
        capture = AudioCapture(device=device)
        got: list[CapturedAudio] = []
        done: asyncio.Future[None] | None = None
        with AudioPlayback(device=device) as player:
            async for chunk in capture:
                got.append(chunk)
                if len(got) == 2:
                    player.play(tone)
                    done = asyncio.ensure_future(player.until_done())
                if done is not None and done.done() and len(got) >= 12:
                    break
            assert done is not None and done.done()
        return got, capture

    got, capture = asyncio.run(asyncio.wait_for(main(), GUARD_S))
    assert not capture.is_capturing
    assert [c.index for c in got] == list(range(len(got)))
    audio = np.concatenate([c.samples for c in got])
    start, end = sound_span(audio)
    assert abs(peak_hz(audio[start:end], 16000) - 700.0) < 3.0


def test_async_iteration_of_a_running_capture_ends_on_stop(device: str) -> None:
    async def main() -> int:
        capture = AudioCapture(device=device)
        capture.start()
        count = 0
        async for _ in capture:
            count += 1
            if count == 2:
                threading.Thread(target=capture.stop).start()  # stop from another thread
        return count

    count = asyncio.run(asyncio.wait_for(main(), GUARD_S))
    assert count >= 2


def test_slow_consumer_drops_the_oldest_chunks_and_counts_them(device: str) -> None:
    capture = AudioCapture(device=device, chunk_size=160, max_queued_chunks=4)
    capture.start()
    wait_until(lambda: capture.dropped_chunks >= 10, "chunks to be dropped")  # nobody reads
    assert capture.queued_chunks <= 4
    capture.stop()
    left = []
    while (chunk := capture.read(0)) is not None:
        left.append(chunk)
    assert 1 <= len(left) <= 4
    indexes = [c.index for c in left]
    assert indexes == list(range(indexes[0], indexes[0] + len(left)))  # the newest, in order
    assert capture.dropped_chunks + len(left) == indexes[-1] + 1  # every chunk is either kept or counted
    # A capture that dropped chunks carries on: start again, chunks count from 0.
    capture.start()
    chunk = capture.read(GUARD_S)
    assert chunk is not None and chunk.index in (0, 1)
    capture.stop()
    assert capture.read(0) is not None or capture.queued_chunks == 0


def test_drain_and_clear(device: str) -> None:
    with AudioCapture(device=device, chunk_size=400) as capture:
        wait_until(lambda: capture.queued_chunks >= 3, "three chunks")
        assert capture.buffered_duration_s >= 3 * 400 / 16000
        capture.stop()
        audio = capture.drain()
        assert audio.dtype == np.float32 and len(audio) >= 1200
        assert capture.queued_chunks == 0 and len(capture.drain()) == 0
        capture.start()
        wait_until(lambda: capture.queued_chunks >= 1, "a chunk")
        capture.stop()
        capture.clear()
        assert capture.queued_chunks == 0


def test_a_failing_callback_does_not_stop_the_capture(device: str) -> None:
    calls = []

    def broken(chunk: Any) -> None:
        calls.append(chunk)
        raise RuntimeError("user bug")

    with AudioCapture(device=device) as capture:
        capture.start(on_chunk=broken, on_level=lambda level: None)
        wait_until(lambda: len(calls) >= 3, "three callbacks")
        assert capture.is_capturing


def test_play_accepts_wav_files_bytes_and_audio_objects(device: str, tmp_path: Any) -> None:
    from runanywhere.media.audio import Audio, save_wav

    clip = sine(440.0, 0.2, 16000)
    path = save_wav(tmp_path / "clip.wav", clip, 16000)
    with AudioPlayback(device=device) as player:
        player.play(path)  # a path: read and resampled from its own 16 kHz
        player.play(path.read_bytes())
        player.play(Audio(sine(440.0, 0.1, 8000), 8000))
        player.play((clip * 32767).astype(np.int16), sample_rate=16000)  # int16 is scaled
        assert player.wait(GUARD_S)
        expected = 3 * 0.2 * 22050 + 0.1 * 22050
        assert abs(player.played_samples - expected) <= 8


def _spoken(text: str, home: Path) -> Any:
    """``text`` in the Piper voice (a SynthesisResult at 22.05 kHz)."""
    from runanywhere import SDKConfig, TextToSpeech
    from runanywhere.models.manager import ModelLibrary

    tts = TextToSpeech(ModelLibrary(SDKConfig(home=home, offline=True), events=EventBus()))
    tts.load_voice("piper-en_US-joe-medium")
    try:
        return tts.synthesize(text)
    finally:
        tts.unload()


def _cli_on_the_audio_stack(subprocess_env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """``runanywhere <args>`` in a process that talks to the virtual audio daemon, offline.

    Ctrl-C reaches it as it does from a terminal: a test run started in the background by a
    non-interactive shell inherits SIGINT ignored, and the child would then never stop.
    """
    env = {**subprocess_env, **{k: v for k, v in os.environ.items() if k.startswith("PULSE_")},
           "RUNANYWHERE_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "runanywhere.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.parametrize("model", ["faster-whisper-tiny.en", "whispercpp-tiny.en"])
def test_transcribe_live_hears_what_the_speakers_play(audio_stack: VirtualAudioStack, subprocess_env, tmp_path,
                                                      model: str):
    from .wer import wer

    sentence = _spoken("The quick brown fox jumps over the lazy dog.", tmp_path / "voice")
    live = _cli_on_the_audio_stack(subprocess_env, "transcribe", "--live", "--device", audio_stack.device,
                                   "--model", model)
    try:
        assert any("listening" in live.stderr.readline() for _ in range(5)), "the live command never started"
        with AudioPlayback(sample_rate=sentence.sample_rate, device=audio_stack.device) as speaker:
            speaker.play(np.concatenate([sentence.audio_data, np.zeros(sentence.sample_rate, np.float32)]))
            speaker.wait(timeout=GUARD_S)
        line = live.stdout.readline()
    finally:
        live.send_signal(signal.SIGINT)
        live.wait(timeout=GUARD_S)
    assert wer("The quick brown fox jumps over the lazy dog.", line.split("]", 1)[-1]) <= 0.1, line


def test_voice_agent_on_a_microphone_and_speakers(device: str, voice_engines):
    """The agent's own reply comes back through the microphone (a real loopback): it answers once, not twice."""
    from runanywhere import VoiceAgent, VoicePipeline, VoicePipelineOptions

    stt, llm, tts, vad = voice_engines
    question = tts.synthesize("What is the capital of France?")
    options = VoicePipelineOptions().with_generation(temperature=0, max_tokens=30)
    agent = VoiceAgent(VoicePipeline(stt=stt, llm=llm, tts=tts, events=EventBus(), options=options), vad)
    finished = threading.Event()
    with AudioCapture(sample_rate=16000, chunk_size=512, device=device) as microphone, \
            AudioPlayback(sample_rate=question.sample_rate, device=device) as user, \
            AudioPlayback(sample_rate=question.sample_rate, device=device, on_finished=finished.set) as speakers:

        def conversation() -> None:
            user.play(question.audio_data)  # the user speaks into the room
            deadline = time.monotonic() + 4 * GUARD_S
            while not (agent.turns and finished.is_set()) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(2.0)  # the reply's echo has been heard by now; any second turn would have started
            agent.stop()

        threading.Thread(target=conversation, daemon=True).start()
        turns = agent.run(microphone, speakers)
    assert len(turns) == 1, [t.transcription for t in turns]
    assert "capital of france" in turns[0].transcription.lower()
    assert turns[0].response and speakers.played_samples > 0


def test_the_voice_command_on_a_microphone_and_speakers(device: str, subprocess_env, tmp_path):
    """`runanywhere voice` listens on the device, answers aloud, prints the turn as it is answered, stops on Ctrl-C."""
    question = _spoken("What is the capital of France?", tmp_path / "voice")
    command = _cli_on_the_audio_stack(subprocess_env, "voice", "--device", device, "--json", "--temperature", "0",
                                      "--max-tokens", "30")
    try:
        assert any("listening" in command.stderr.readline() for _ in range(200)), "the voice command never started"
        with AudioCapture(sample_rate=16000, chunk_size=512, device=device) as room:
            with AudioPlayback(sample_rate=question.sample_rate, device=device) as user:
                user.play(question.audio_data)  # the user asks
                assert user.wait(timeout=GUARD_S)
            heard_reply, quiet_since, deadline = False, time.monotonic(), time.monotonic() + 2 * GUARD_S
            for chunk in room:  # the reply is heard in the room, then the room falls quiet
                loud = float(np.abs(chunk.samples).max(initial=0.0)) > THRESHOLD
                heard_reply = heard_reply or loud
                quiet_since = time.monotonic() if loud else quiet_since
                if (heard_reply and time.monotonic() - quiet_since > 2.0) or time.monotonic() > deadline:
                    break
        assert heard_reply, "the assistant's reply never reached the speakers"
        printed, _, _ = select.select([command.stdout], [], [], GUARD_S)
        line = command.stdout.readline() if printed else ""  # the turn is printed while the session goes on
    finally:
        command.send_signal(signal.SIGINT)
        out, err = command.communicate(timeout=GUARD_S)
    assert command.returncode == 0, err[-2000:]
    assert line.startswith("{"), (line, out)
    (turn,) = [json.loads(line) for line in [line, *out.splitlines()] if line.startswith("{")]
    assert "capital of france" in turn["transcription"].lower()
    assert turn["response"] and not turn["interrupted"]
    assert turn["metrics"]["speech_end_to_first_audio_ms"] > 0
