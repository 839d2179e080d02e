"""Speech to text (Whisper, Moonshine): blocking, segment by segment, async, and live sessions; cancellable.

``STT`` is the default :class:`SpeechToText`; create more to hold several
models at once. Input is anything :func:`~runanywhere.media.audio.load_audio`
accepts (an array with its rate, int16, stereo, any rate, a path, WAV/FLAC/OGG/MP3
bytes); it is read, converted to 16 kHz mono float32 and decoded on the model's
worker thread block by block, in windows of at most a minute (see
:mod:`.windows`), so memory stays the same for a minute or for hours of audio,
and a cancel stops it between segments.

The engine follows the catalog entry's ``engine`` through the speech-recognition
registry (``runanywhere.backends.registry``): ``faster-whisper`` (CTranslate2
Whisper), ``whisper.cpp`` (a ggml model, derived from the CTranslate2 files
on first load: :mod:`.ggml`) and ``sherpa-onnx`` (Moonshine v2 and offline
transducers, whose ``tokens.txt`` and voice detector :mod:`.sherpa_files`
provides) run here. Other sherpa-onnx families (Whisper/Paraformer ONNX,
SenseVoice) raise :class:`BackendNotAvailableError`: no weights for them were
reachable to build and test an adapter, and an untested adapter is not shipped.
A model given by path is recognised by its files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...backends.base import SAMPLE_RATE, SpeechRecognizer
from ...backends.faster_whisper import is_whisper_dir
from ...backends.registry import SPEECH_RECOGNIZERS, EngineRegistry
from ...backends.sherpa_stt import check_family
from ...backends.whispercpp import is_ggml
from ...core.cancel import CancelToken
from ...core.errors import InvalidInputError
from ...core.events import STTTranscribed
from ...core.validation import with_overrides
from ...media.audio import AudioSource, audio_blocks
from ...models.catalog import ModelCategory
from ...models.manager import LocalModel, ProgressCallback
from ...runtime.holder import ModelHolder
from ...runtime.worker import ResultStream, Stream
from .ggml import needs_ggml, with_ggml_weights
from .live import Segmenter, TranscriptionStream, UpdateCallback
from .results import Segment, TranscriptionResult, run_transcription
from .sherpa_files import sherpa_model_files

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

@dataclass(frozen=True)
class TranscribeOptions:
    """How to transcribe: ``language`` is a code such as ``"en"`` (``"en-US"`` and ``"EN"`` work too);
    None lets a multilingual model detect it. A ``language`` argument given to a method wins.
    ``word_timestamps`` gives each segment its :class:`Word` list with times and probabilities."""

    language: str | None = None
    word_timestamps: bool = False

    def __post_init__(self) -> None:
        if self.language is not None and (not isinstance(self.language, str) or not self.language.strip()):
            raise InvalidInputError(f"language must be a language code such as 'en', got {self.language!r}")
        if not isinstance(self.word_timestamps, bool):
            raise InvalidInputError(f"word_timestamps must be True or False, got {self.word_timestamps!r}")


@dataclass(frozen=True)
class _Request:
    """Audio for Whisper (16 kHz mono float32 blocks, read as they are taken), its language, and whether
    words are timed."""

    audio: Iterator[NDArray[np.float32]]
    language: str | None
    word_timestamps: bool


class SegmentStream(ResultStream[Segment, TranscriptionResult]):
    """Segments as they are decoded; :attr:`result` holds the whole transcription at the end.

    Breaking out of the loop, :meth:`cancel`, or cancelling an ``async for``
    stops decoding before the next segment.
    """


class SpeechToText(ModelHolder[SpeechRecognizer]):
    """Loads one speech-recognition model and transcribes audio with it."""

    component = "stt"
    noun = "speech-to-text model"
    category = ModelCategory.SPEECH_RECOGNITION

    def load_model(
        self, model: str | os.PathLike[str] | None = None, *, threads: int | None = None,
        compute_type: str = "int8", beam_size: int = 1, min_window_s: int | None = 20,
        progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
    ) -> str:
        """Load a catalog id (pulled into the store on first use) or a model directory; returns its id.

        ``threads`` defaults to the physical cores (whisper.cpp: one); ``beam_size=1`` is greedy
        decoding (as accurate as beam 5 on the test recordings, and faster).
        Audio shorter than 20 s is encoded in a window of its length plus
        10 s, at least ``min_window_s`` seconds, instead of Whisper's fixed
        30 s: a short voice command transcribes about 2.5x faster with the
        same text; ``min_window_s=None`` keeps the 30 s window.
        A model already loaded here is unloaded first.
        """
        return self._load(model, SPEECH_RECOGNIZERS, _options(threads, compute_type, beam_size, min_window_s),
                          progress=progress, cancel=cancel)

    async def aload_model(
        self, model: str | os.PathLike[str] | None = None, *, threads: int | None = None,
        compute_type: str = "int8", beam_size: int = 1, min_window_s: int | None = 20,
        progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
    ) -> str:
        """Async twin of :meth:`load_model`."""
        return await self._aload(model, SPEECH_RECOGNIZERS, _options(threads, compute_type, beam_size, min_window_s),
                                 progress=progress, cancel=cancel)

    def _engine_name(self, model: str, engines: EngineRegistry[SpeechRecognizer]) -> str:
        """The catalog entry's engine (refusing other categories), or the engine a path's files are for."""
        catalog = self._models.catalog
        if model in catalog:
            entry = catalog.get(model)
            if entry.category != ModelCategory.SPEECH_RECOGNITION:
                raise InvalidInputError(f"{model!r} is a {entry.category.value} model, not speech recognition")
            if entry.engine == "sherpa-onnx":
                check_family(model, entry.format)  # before the pull: a family no adapter runs is not downloaded
            return entry.engine
        path = Path(model).expanduser()
        if path.suffix in _ONNX_SUFFIXES or _is_onnx_dir(path):
            return "sherpa-onnx"
        if path.is_file() and is_ggml(path):
            return "whisper.cpp"
        return engines.default  # a missing or malformed model is reported by the resolver or the engine

    def _model_files(self, local: LocalModel, cancel: CancelToken | None) -> LocalModel:
        """Derived files: a whisper.cpp entry's ggml model from its CTranslate2 files (:mod:`.ggml`); a
        sherpa-onnx model's ``tokens.txt`` and voice detector (:mod:`.sherpa_files`). Kept in the store."""
        if needs_ggml(local):
            return with_ggml_weights(self._models, local, cancel)
        sherpa = _is_onnx_dir(local.path) if local.entry is None else local.entry.engine == "sherpa-onnx"
        return sherpa_model_files(self._models, local, cancel) if sherpa else local

    # ---------------------------------------------------------- transcribing
    def transcribe(self, audio: AudioSource, sample_rate: int | None = None, language: str | None = None, *,
                   options: TranscribeOptions | None = None, cancel: CancelToken | None = None) -> TranscriptionResult:
        """Transcribe a whole recording. Empty or silent audio gives an empty result without running the model."""
        request = self._prepare(audio, sample_rate, self._settings(options, language))
        return self._start(lambda: request, cancel, deliver=False).wait()

    async def atranscribe(self, audio: AudioSource, sample_rate: int | None = None, language: str | None = None,
                          *, options: TranscribeOptions | None = None,
                          cancel: CancelToken | None = None) -> TranscriptionResult:
        """Async twin of :meth:`transcribe` (the audio is decoded on the model's worker); cancelling the task
        cancels the transcription (and ``cancel``)."""
        settings = self._settings(options, language)
        stream = self._start(lambda: self._prepare(audio, sample_rate, settings), cancel, deliver=False)
        return await stream.await_result()

    def transcribe_stream(self, audio: AudioSource, sample_rate: int | None = None, language: str | None = None,
                          *, options: TranscribeOptions | None = None,
                          cancel: CancelToken | None = None) -> SegmentStream:
        """Yield :class:`Segment` objects as they are decoded (also with ``async for``)."""
        request = self._prepare(audio, sample_rate, self._settings(options, language))
        return SegmentStream(self._start(lambda: request, cancel))

    def atranscribe_stream(self, audio: AudioSource, sample_rate: int | None = None, language: str | None = None,
                           *, options: TranscribeOptions | None = None,
                           cancel: CancelToken | None = None) -> SegmentStream:
        """Async twin of :meth:`transcribe_stream`: use ``async for``; the audio is decoded on the model's worker."""
        settings = self._settings(options, language)
        return SegmentStream(self._start(lambda: self._prepare(audio, sample_rate, settings), cancel))

    def create_stream(self, sample_rate: int = SAMPLE_RATE, *, language: str | None = None,
                      options: TranscribeOptions | None = None, partial_interval_s: float | None = 2.0,
                      segmenter: Segmenter | None = None,
                      on_update: UpdateCallback | None = None) -> TranscriptionStream:
        """Start a live session: ``accept(chunk)`` audio at ``sample_rate``, read ``partial()``, ``finish()``.

        See :class:`~runanywhere.features.stt.TranscriptionStream` for how
        partial and final results are decoded.
        """
        settings = self._settings(options, language)
        return TranscriptionStream(self, sample_rate=sample_rate, language=settings.language,
                                   partial_interval_s=partial_interval_s, segmenter=segmenter, on_update=on_update,
                                   word_timestamps=settings.word_timestamps)

    # -------------------------------------------------------------- plumbing
    def _settings(self, options: TranscribeOptions | None, language: str | None) -> TranscribeOptions:
        """The options asked for, with the Whisper language code (an argument wins over ``options``); fails
        early when no model is loaded."""
        overrides = {"language": language} if language is not None else {}
        settings = with_overrides(options or TranscribeOptions(), overrides)
        return TranscribeOptions(self._language(settings.language), settings.word_timestamps)

    def _prepare(self, audio: AudioSource, sample_rate: int | None, settings: TranscribeOptions) -> _Request:
        return _Request(audio_blocks(audio, sample_rate=sample_rate, target_rate=SAMPLE_RATE), settings.language,
                        settings.word_timestamps)

    def _language(self, language: str | None) -> str | None:
        """The Whisper language code for ``language`` ("en", "EN", "en-US" ...), checked against the model."""
        engine = self.engine
        if language is None:
            return None
        code = language.strip().lower().replace("_", "-").split("-")[0]
        if code not in engine.languages:
            if not engine.is_multilingual:
                raise InvalidInputError(f"{self.loaded_model} is English-only; it cannot transcribe {language!r}")
            raise InvalidInputError(f"Whisper does not know the language {language!r}")
        return code

    def _start(self, prepare: Callable[[], _Request], cancel: CancelToken | None, *,
               deliver: bool = True) -> Stream[TranscriptionResult]:
        loaded = self._require()
        events = self._events

        def produce(cancel_token: CancelToken, emit: Callable[[Any], None]) -> TranscriptionResult:
            request = prepare()
            result = run_transcription(loaded.engine, request.audio, request.language, cancel_token, emit,
                                       word_timestamps=request.word_timestamps)
            events.emit(STTTranscribed(text=result.text, confidence=result.confidence,
                                       audio_duration_s=result.audio_duration_s, processing_ms=result.processing_ms))
            return result

        return loaded.worker.stream(produce, cancel or CancelToken(), deliver=deliver)


_ONNX_SUFFIXES = (".onnx", ".ort")


def _is_onnx_dir(path: Path) -> bool:
    """A model directory of ONNX/ORT graphs (sherpa-onnx's), not a CTranslate2 Whisper one."""
    return path.is_dir() and not is_whisper_dir(path) and any(p.suffix in _ONNX_SUFFIXES for p in path.iterdir())


def _options(threads: int | None, compute_type: str, beam_size: int, min_window_s: int | None) -> dict[str, Any]:
    return {"threads": threads, "compute_type": compute_type, "beam_size": beam_size, "min_window_s": min_window_s}


STT = SpeechToText()
