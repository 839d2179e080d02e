"""Text to speech with Piper and Kokoro voices: whole texts, sentence-by-sentence streams, async twins, cancellable.

``TTS`` is the default :class:`TextToSpeech`; create more to hold several
voices at once. A voice is owned by a worker thread, so concurrent callers
queue in order. :meth:`TextToSpeech.synthesize_stream` removes the reference
SDK's "no streaming TTS" limitation: it takes a string or an iterator of text
pieces (language-model tokens, say), speaks each sentence as soon as it is
complete, and makes the first chunk only the first clause, so playback can
start after a few words' worth of synthesis rather than the whole text's.

Bad input: empty or blank text gives an empty result (no samples, no error);
text of any length is cut into sentences of at most a few hundred characters;
emoji and control characters are dropped; a ``speed`` outside 0.25..4 (or NaN), an
unknown ``speaker_id`` or ``speaker`` or a non-string text is an :class:`InvalidInputError`.
"""

from __future__ import annotations

import asyncio
import numbers
import os
import time
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ...backends.base import SpeechSynthesizer
from ...backends.registry import SPEECH_SYNTHESIZERS, EngineRegistry
from ...core.bridge import iterate_blocking
from ...core.cancel import CancelToken
from ...core.errors import CancelledError, InvalidInputError
from ...core.events import TTSSynthesized
from ...core.validation import number_in_range, positive_int, with_overrides
from ...models.catalog import ModelCategory
from ...models.manager import ProgressCallback
from ...runtime.holder import ModelHolder
from ...runtime.worker import ResultStream, Stream
from .segmenter import TextSegmenter, split_text

if TYPE_CHECKING:  # numpy is imported on first use, keeping `import runanywhere` light
    import numpy as np
    from numpy.typing import NDArray

TextSource = str | Iterable[str]


@dataclass(frozen=True)
class SynthesisOptions:
    """How to speak: ``speaker`` (a name) or ``speaker_id`` picks a voice of a multi-speaker model (Kokoro's
    ``jf_alpha``, say); ``speed`` 2 talks twice as fast.

    ``speed`` is 0.25 to 4: slower than a quarter is no longer speech (and its audio would grow without bound).

    Methods take an ``options`` object and/or the same fields as keyword arguments (which win).
    """

    MIN_SPEED: ClassVar[float] = 0.25
    MAX_SPEED: ClassVar[float] = 4.0

    speaker_id: int = 0
    speed: float = 1.0
    speaker: str | None = None

    def __post_init__(self) -> None:
        if self.speaker is not None and not isinstance(self.speaker, str):
            raise InvalidInputError(f"speaker must be a speaker's name, got {type(self.speaker).__name__}")
        object.__setattr__(self, "speaker_id", positive_int("speaker_id", self.speaker_id, allow_zero=True))
        object.__setattr__(self, "speed", number_in_range("speed", self.speed, self.MIN_SPEED, self.MAX_SPEED))


@dataclass(frozen=True)
class SynthesisResult:
    """Speech for a text: mono float32 samples in [-1, 1] at ``sample_rate`` Hz, and metrics.

    ``processing_ms`` is the time the voice spent on it (after any queueing);
    ``real_time_factor`` is ``processing_ms / duration_ms`` (below 1 is faster
    than real time; 0 when there is no audio).
    """

    audio_data: NDArray[np.float32]
    sample_rate: int
    duration_ms: float
    processing_ms: float
    real_time_factor: float


@dataclass(frozen=True)
class AudioChunk:
    """One streamed piece of speech: the audio of ``text``; ``is_final`` marks the stream's last chunk."""

    audio_data: NDArray[np.float32]
    sample_rate: int
    text: str
    index: int
    is_final: bool

    @property
    def duration_ms(self) -> float:
        return len(self.audio_data) / self.sample_rate * 1000


class SynthesisStream(ResultStream[AudioChunk, SynthesisResult]):
    """Audio chunks as they are synthesized; :attr:`result` is the whole speech at the end.

    Breaking out of the loop, :meth:`cancel`, or cancelling an ``async for``
    stops synthesis before the next chunk (and aborts the sentence running);
    the stream then ends quietly and ``result`` holds what was spoken.
    """


class TextToSpeech(ModelHolder[SpeechSynthesizer]):
    """Loads one voice and turns text into speech with it."""

    component = "tts"
    noun = "voice"
    category = ModelCategory.SPEECH_SYNTHESIS

    def load_voice(self, voice: str | os.PathLike[str] | None = None, *, threads: int | None = None,
                   variation: float = 1.0, progress: ProgressCallback | None = None,
                   cancel: CancelToken | None = None) -> str:
        """Load a catalog voice (pulled on first use; none: the catalog's default) or a path to a Piper ``.onnx``
        (+ ``.onnx.json``) voice or a Kokoro ``.onnx`` (+ a ``.npz`` of voices).

        ``threads`` is onnxruntime's thread count (default: the physical cores).
        ``variation`` scales the voice's natural variation (its sampling noise):
        0 says the same text with the same audio every time, for reproducible
        recordings and tests. A voice already loaded here is unloaded first.
        Returns the voice's id.
        """
        return self._load(voice, SPEECH_SYNTHESIZERS, _voice_options(threads, variation), progress=progress,
                          cancel=cancel)

    async def aload_voice(self, voice: str | os.PathLike[str] | None = None, *, threads: int | None = None,
                          variation: float = 1.0, progress: ProgressCallback | None = None,
                          cancel: CancelToken | None = None) -> str:
        """Async twin of :meth:`load_voice`."""
        return await self._aload(voice, SPEECH_SYNTHESIZERS, _voice_options(threads, variation), progress=progress,
                                 cancel=cancel)

    load_model = load_voice
    aload_model = aload_voice
    unload_voice = ModelHolder.unload
    aunload_voice = ModelHolder.aunload

    @property
    def voice_id(self) -> str | None:
        return self.loaded_model

    @property
    def sample_rate(self) -> int:
        return self.engine.sample_rate

    @property
    def num_speakers(self) -> int:
        return self.engine.num_speakers

    @property
    def speakers(self) -> tuple[str, ...]:
        """The loaded voice's speakers by name (Kokoro's voices; a Piper voice's speaker names or ids)."""
        return self.engine.speakers

    @property
    def speed_range(self) -> tuple[float, float]:
        """The speeds the loaded voice can speak at, within ``SynthesisOptions``' 0.25 to 4 (Kokoro: 0.5 to 2)."""
        low, high = self.engine.speed_range
        return max(low, SynthesisOptions.MIN_SPEED), min(high, SynthesisOptions.MAX_SPEED)

    def _engine_name(self, model: str, engines: EngineRegistry[SpeechSynthesizer]) -> str:
        """A path to a Kokoro model (an ``.onnx`` with a ``.npz`` of voices beside it, or their folder) runs on
        kokoro; other paths on Piper."""
        path = Path(model)
        if model not in self._models.catalog and any((path if path.is_dir() else path.parent).glob("*.npz")):
            return "kokoro"
        return super()._engine_name(model, engines)

    # ------------------------------------------------------------ speaking
    def synthesize(self, text: str, options: SynthesisOptions | None = None, *, cancel: CancelToken | None = None,
                   **overrides: Any) -> SynthesisResult:
        """Speak a whole text; empty text gives an empty result. Cancelling raises :class:`CancelledError`."""
        return self._start_batch(text, _options(options, overrides), cancel).wait()

    async def asynthesize(self, text: str, options: SynthesisOptions | None = None, *,
                          cancel: CancelToken | None = None, **overrides: Any) -> SynthesisResult:
        """Async twin of :meth:`synthesize`; cancelling the task cancels the synthesis."""
        return await self._start_batch(text, _options(options, overrides), cancel).await_result()

    def synthesize_stream(self, text: TextSource, options: SynthesisOptions | None = None, *,
                          cancel: CancelToken | None = None, **overrides: Any) -> SynthesisStream:
        """Stream :class:`AudioChunk` objects: the first clause, then sentence by sentence.

        ``text`` is a string or an iterable of text pieces (LLM tokens, say); the
        voice's worker reads the pieces as it goes, speaking each sentence once
        it is complete and the rest at the end. A piece source that blocks also
        delays cancellation until its next piece.
        """
        return self._start_stream(_pieces(text), _options(options, overrides), cancel)

    def asynthesize_stream(self, text: TextSource | AsyncIterable[str], options: SynthesisOptions | None = None, *,
                           cancel: CancelToken | None = None, **overrides: Any) -> SynthesisStream:
        """Async twin of :meth:`synthesize_stream` (use ``async for``); ``text`` may also be an async iterable.

        An async source is read on the calling event loop, so iterate the stream
        with ``async for`` on that loop.
        """
        if isinstance(text, AsyncIterable):
            token = cancel or CancelToken()
            pieces = iterate_blocking(text, asyncio.get_running_loop(), token)
            return self._start_stream(pieces, _options(options, overrides), token)
        return self.synthesize_stream(text, options, cancel=cancel, **overrides)

    # ------------------------------------------------------------ internals
    def _start_batch(self, text: str, options: SynthesisOptions,
                     cancel: CancelToken | None) -> Stream[SynthesisResult]:
        if not isinstance(text, str):
            raise InvalidInputError(f"text must be a str, got {type(text).__name__}")
        loaded = self._require()
        engine = loaded.engine
        speaker_id, speed = _check_speaker(engine, options)

        def produce(token: CancelToken, emit: Callable[[Any], None]) -> SynthesisResult:
            started = time.perf_counter()
            parts = [audio for piece in split_text(text)
                     for audio in engine.synthesize(piece, speaker_id=speaker_id, speed=speed, cancel=token)]
            return self._finish(parts, engine.sample_rate, started, len(text))

        return loaded.worker.stream(produce, cancel or CancelToken(), deliver=False)

    def _start_stream(self, pieces: Iterable[str], options: SynthesisOptions,
                      cancel: CancelToken | None) -> SynthesisStream:
        loaded = self._require()
        engine = loaded.engine
        speaker_id, speed = _check_speaker(engine, options)

        def produce(token: CancelToken, emit: Callable[[Any], None]) -> SynthesisResult:
            started = time.perf_counter()
            segmenter = TextSegmenter(first_clause=True)
            parts: list[NDArray[np.float32]] = []
            length = 0

            def speak(piece: str, final: bool) -> None:
                audio = _join([*engine.synthesize(piece, speaker_id=speaker_id, speed=speed, cancel=token)])
                if len(audio) or final:  # a piece with nothing to say (only emoji, say) is skipped unless last
                    emit(AudioChunk(audio, engine.sample_rate, piece, len(parts), final))
                    parts.append(audio)

            try:
                for text in pieces:
                    if not isinstance(text, str):
                        raise InvalidInputError(f"text pieces must be str, got {type(text).__name__}")
                    length += len(text)
                    for piece in segmenter.feed(text):
                        speak(piece, False)
                    token.raise_if_cancelled("speech synthesis")
                rest = segmenter.flush()
                for i, piece in enumerate(rest):
                    speak(piece, i == len(rest) - 1)
            except CancelledError:
                return _result(parts, engine.sample_rate, started)
            return self._finish(parts, engine.sample_rate, started, length)

        return SynthesisStream(loaded.worker.stream(produce, cancel or CancelToken()))

    def _finish(self, parts: list[NDArray[np.float32]], sample_rate: int, started: float,
                text_length: int) -> SynthesisResult:
        result = _result(parts, sample_rate, started)
        self._events.emit(TTSSynthesized(duration_ms=result.duration_ms, sample_rate=sample_rate,
                                         text_length=text_length, processing_ms=result.processing_ms))
        return result


def _voice_options(threads: int | None, variation: float) -> dict[str, Any]:
    """The engine options of a voice (checked here, before anything loads)."""
    if threads is not None:
        positive_int("threads", threads)
    if isinstance(variation, bool) or not isinstance(variation, numbers.Real) or not 0 <= variation <= 2:
        raise InvalidInputError(f"variation must be a number from 0 to 2, got {variation!r}")
    return {"threads": threads, "variation": float(variation)}


def _options(options: SynthesisOptions | None, overrides: dict[str, Any]) -> SynthesisOptions:
    return with_overrides(options or SynthesisOptions(), overrides)


def _check_speaker(engine: SpeechSynthesizer, options: SynthesisOptions) -> tuple[int, float]:
    """The options' speaker id and speed, once the speaker is known to exist in this voice and the voice can
    speak at that speed."""
    low, high = engine.speed_range
    if not low <= options.speed <= high:
        raise InvalidInputError(f"this voice speaks at speed {low} to {high}, got {options.speed!r}",
                                details={"speed": options.speed})
    if options.speaker is not None:
        if options.speaker not in engine.speakers:
            raise InvalidInputError(f"unknown speaker {options.speaker!r}: this voice has "
                                    f"{', '.join(engine.speakers)}", details={"speaker": options.speaker})
        return engine.speakers.index(options.speaker), options.speed
    if not options.speaker_id < engine.num_speakers:
        raise InvalidInputError(f"speaker_id must be in 0..{engine.num_speakers - 1}, got {options.speaker_id!r}")
    return options.speaker_id, options.speed


def _pieces(text: TextSource) -> Iterable[str]:
    if isinstance(text, str):
        return (text,)
    if isinstance(text, bytes | bytearray) or not isinstance(text, Iterable):
        raise InvalidInputError(f"text must be a str or an iterable of str, got {type(text).__name__}")
    return text


def _join(parts: list[NDArray[np.float32]]) -> NDArray[np.float32]:
    import numpy as np

    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def _result(parts: list[NDArray[np.float32]], sample_rate: int, started: float) -> SynthesisResult:
    audio = _join(parts)
    processing_ms = (time.perf_counter() - started) * 1000
    duration_ms = len(audio) / sample_rate * 1000
    return SynthesisResult(audio, sample_rate, duration_ms, processing_ms,
                           processing_ms / duration_ms if duration_ms else 0.0)


TTS = TextToSpeech()
