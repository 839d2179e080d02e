"""media.audio helpers shared by every speech feature: the streaming resampler and the one ``save_wav``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile

from runanywhere import Audio, AudioChunk, InvalidInputError, save_wav
from runanywhere.media.audio import StreamResampler, audio_blocks, load_audio, resample, to_mono_float32


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32)


@pytest.mark.parametrize("chunk", [1, 160, 441, 4800])
def test_stream_resampler_chunk_by_chunk_equals_resampling_at_once(chunk: int):
    samples = _noise(48000)
    resampler = StreamResampler(48000, 16000)
    pieces = [resampler.push(samples[i:i + chunk]) for i in range(0, len(samples), chunk)] + [resampler.finish()]
    streamed = np.concatenate(pieces)
    whole = resample(samples, 48000, 16000)
    assert len(streamed) == len(whole) == 16000
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def test_stream_resampler_passes_equal_rates_through_and_checks_rates():
    samples = _noise(512)
    resampler = StreamResampler(16000, 16000)
    assert resampler.push(samples) is samples
    assert resampler.finish().size == 0
    with pytest.raises(InvalidInputError):
        StreamResampler(0, 16000)


def test_save_wav_takes_samples_with_a_rate_an_audio_or_a_tts_chunk(tmp_path: Path):
    samples = _noise(2205)
    chunk = AudioChunk(samples, 22050, "hello", 0, True)
    for name, args in (("raw", (samples, 22050)), ("audio", (Audio(samples, 22050),)), ("chunk", (chunk,)),
                       ("same_rate", (chunk, 22050))):
        path = save_wav(tmp_path / f"{name}.wav", *args)
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (22050, 1, "PCM_16", len(samples))
        read, _ = soundfile.read(path, dtype="float32")
        np.testing.assert_allclose(read, samples, atol=1 / 32767)


def test_save_wav_refuses_a_missing_or_contradicting_rate(tmp_path: Path):
    with pytest.raises(InvalidInputError, match="sample_rate"):
        save_wav(tmp_path / "a.wav", _noise(100))
    with pytest.raises(InvalidInputError, match="contradicts"):
        save_wav(tmp_path / "b.wav", Audio(_noise(100), 16000), 22050)
    assert not list(tmp_path.iterdir())


def test_absurd_rates_and_shapes_are_refused_with_the_valid_range(tmp_path: Path):
    for rate in (1, 999, 384_001, 10**12, 16000.5, float("nan"), float("inf"), -16000, True, "16000"):
        with pytest.raises(InvalidInputError, match="sample_rate"):
            load_audio(_noise(100), sample_rate=rate)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"from 1000 to 384000 Hz"):
        resample(_noise(100), 1, 16000)
    for shape in ((100, 0), (0, 100), (2, 3, 4), ()):
        with pytest.raises(InvalidInputError):
            to_mono_float32(np.zeros(shape, np.float32))
    for bad in (np.array([0.1, np.nan]), np.array([np.inf, 0.0]), np.array(["a"]), np.array([1 + 1j])):
        with pytest.raises(InvalidInputError):
            list(audio_blocks(bad, sample_rate=16000))  # refused before a block is read
    one_hertz = tmp_path / "slow.wav"
    soundfile.write(one_hertz, _noise(10), 1)  # a header claiming 1 sample a second
    with pytest.raises(InvalidInputError, match="sample_rate"):
        load_audio(one_hertz)
    with pytest.raises(InvalidInputError, match="cannot read"):
        load_audio(b"")


@pytest.mark.parametrize("rate", [16000, 44100])
def test_audio_blocks_add_up_to_the_whole_audio(tmp_path: Path, rate: int):
    samples = _noise(rate * 25)
    path = tmp_path / "a.wav"
    soundfile.write(path, np.stack([samples, samples], axis=1), rate, subtype="FLOAT")
    whole = load_audio(path, target_rate=16000).samples
    for source, sample_rate in ((path, None), (path.read_bytes(), None), (samples, rate)):
        blocks = list(audio_blocks(source, sample_rate=sample_rate, target_rate=16000, block_s=2.0))
        assert max(len(b) for b in blocks) <= 2.0 * 16000 + 1600
        np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-5)


def test_a_streamed_flac_that_libsndfile_refuses_is_read_by_ffmpeg():
    from runanywhere.server.audio_formats import encoder

    rate = 22050
    samples = _noise(rate * 3)
    flac = encoder("flac", rate)  # as /v1/audio/speech streams it: the length in its header stays "unknown"
    data = b"".join(flac.encode(samples[at:at + 4410]) for at in range(0, len(samples), 4410)) + flac.finish()
    with soundfile.SoundFile(io.BytesIO(data)) as unsure:
        assert unsure.frames == 2**63 - 1  # libsndfile does not know the length (and fails reading it)
    audio = load_audio(data)
    assert audio.sample_rate == rate
    np.testing.assert_allclose(audio.samples, samples, atol=2 / 32768)  # lossless, at 16 bits
    blocks = list(audio_blocks(data, target_rate=16000, block_s=1.0))
    assert max(len(b) for b in blocks) <= 16000 + 1600
    np.testing.assert_allclose(np.concatenate(blocks), load_audio(data, target_rate=16000).samples, atol=1e-5)
    with pytest.raises(InvalidInputError, match="nor can FFmpeg"):
        load_audio(b"this is not audio, whatever its name says" * 20)
