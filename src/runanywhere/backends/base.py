"""What a feature may ask of an engine: one small protocol per capability, plain Python in and out.

An engine module (``llamacpp``, ``faster_whisper``, ``piper``, ``sherpa_vad``)
implements one or more of these and registers a factory in :mod:`.registry`;
features hold engines by these protocols only. A factory takes the model's
files (:class:`ModelFiles`, asked by role) and keyword options.

A vision-language engine is a language model that also takes images (its
projector being the ``mmproj`` file). Room for what comes next: an image
generation protocol (prompt in, RGB array out) goes here, with a
:class:`~runanywhere.core.engines.Capability`, when an engine provides one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..core.cancel import CancelToken
from ..core.capabilities import physical_cores
from ..core.errors import InvalidInputError
from ..core.validation import positive_int, positive_number

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from .llamacpp_batch import BatchContext

SAMPLE_RATE = 16000
"""What speech recognizers and voice detectors hear; callers resample to it."""
WINDOW_SIZE = 512
"""Samples (32 ms) a voice detector stream is fed at a time."""


def default_threads() -> int:
    """Engines' default thread count: the physical cores (SMT siblings add nothing to inference)."""
    return physical_cores()


class ModelFiles(Protocol):
    """A model's files on this machine (``runanywhere.models.LocalModel`` is one)."""

    @property
    def id(self) -> str: ...
    @property
    def path(self) -> Path: ...
    @property
    def files(self) -> tuple[Path, ...]: ...
    def file(self, role: str) -> Path: ...
    def has_role(self, role: str) -> bool: ...


class Engine(Protocol):
    """Every engine: owned by one worker thread, released by :meth:`close`."""

    def close(self) -> None: ...


# ------------------------------------------------------------------- language
@dataclass(frozen=True)
class Sampling:
    """Sampler settings for one generation (0 temperature = greedy)."""

    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    seed: int | None = None


@dataclass(frozen=True)
class ToolCallGrammar:
    """A forced tool call: one ``{"name", "arguments"}`` object of one of ``tools`` ((name, parameters schema)
    pairs, the arguments following that schema exactly), between ``start`` and ``end`` tags when given."""

    tools: tuple[tuple[str, Mapping[str, Any]], ...]
    start: str = ""
    end: str = ""


@dataclass(frozen=True)
class ChatPrompt:
    """A chat rendered by the model's template: the prompt text and extra stop strings."""

    text: str
    stop: tuple[str, ...]
    add_bos: bool


class LanguageModel(Engine, Protocol):
    """Tokens in, sampled tokens out, with the model's chat template; also pooled embeddings."""

    @property
    def n_ctx(self) -> int: ...
    @property
    def chat_template(self) -> str | None: ...
    def tokenize(self, text: str, *, add_bos: bool = True, special: bool = False) -> list[int]: ...
    def piece(self, token: int) -> bytes: ...
    def is_end(self, token: int) -> bool: ...
    def render_chat(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None, *,
                    add_generation_prompt: bool = True, default_system: bool = True) -> ChatPrompt: ...
    def cached_prefix(self, tokens: Sequence[int]) -> int: ...
    def clear_cache(self) -> None: ...
    def generate(self, tokens: Sequence[int], sampling: Sampling, cancel: CancelToken, *,
                 grammar: Any = None, n_threads: int | None = None) -> Iterator[int]: ...
    def compile_grammar(self, *, json_schema: dict[str, Any] | None = None, gbnf: str | None = None,
                        tool_call: ToolCallGrammar | None = None) -> Any: ...
    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...
    @property
    def batch(self) -> BatchContext | None:
        """The context that decodes many sequences together (loaded with ``max_sequences``), or None."""


# ---------------------------------------------------------------- embedding
class Embedder(Engine, Protocol):
    """Texts in, one pooled (not normalised) vector per text out; a llama.cpp model or an ONNX encoder.

    :attr:`max_tokens` is the longest text it embeds: llama.cpp refuses a longer
    one, an ONNX encoder cuts it (the feature reports cuts from :meth:`token_counts`).
    """

    @property
    def max_tokens(self) -> int: ...
    def token_counts(self, texts: Sequence[str]) -> list[int]: ...
    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


# ------------------------------------------------------------------- vision
@dataclass(frozen=True)
class VisionPrompt:
    """A prompt with images now in the KV cache: the tokens to continue from, and what it took.

    ``tokens`` hold the text tokens and a placeholder (-1) per image position; ``prompt_tokens``
    counts both, ``image_tokens`` only the images'; ``image_encode_ms`` is the vision tower's time.
    """

    tokens: list[int]
    prompt_tokens: int
    image_tokens: int
    image_encode_ms: float


class VisionLanguageEngine(LanguageModel, Protocol):
    """A language model that also reads images: the prompt marks each image with :attr:`media_marker`."""

    @property
    def media_marker(self) -> str: ...
    def evaluate(self, text: str, images: Sequence[NDArray[np.uint8]], cancel: CancelToken,
                 on_stage: Callable[[str], None], *, add_special: bool = True,
                 n_threads: int | None = None) -> VisionPrompt: ...


# --------------------------------------------------------- speech recognition
@dataclass(frozen=True)
class RecognizedWord:
    """One word of a segment: its times in seconds (as the segment's), text as written, and probability."""

    start_s: float
    end_s: float
    text: str
    probability: float


@dataclass(frozen=True)
class RecognizedSegment:
    """One decoded stretch of speech, times in seconds from the start of the audio.

    ``text`` is as the model wrote it: a leading space marks a word start, so
    concatenating segments rebuilds the text in languages written with or without spaces.
    ``confidence`` is the geometric-mean token probability (``exp(avg_logprob)``)
    times the model's probability that the window holds speech (``1 - no_speech_prob``),
    so a confident transcription of noise still scores low.
    """

    start_s: float
    end_s: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    words: tuple[RecognizedWord, ...] = ()

    @property
    def confidence(self) -> float:
        return min(1.0, max(0.0, math.exp(self.avg_logprob) * (1.0 - self.no_speech_prob)))


def refuse_word_timestamps(engine: str, asked: bool) -> None:
    """Refuse word timestamps where an engine has none (faster-whisper's Whisper has them)."""
    if asked:
        from ..core.errors import InvalidInputError

        raise InvalidInputError(f"{engine} gives no word timestamps; transcribe with a faster-whisper model "
                                "(e.g. faster-whisper-tiny.en) for them, or leave word_timestamps off")


class SpeechRecognizer(Engine, Protocol):
    """16 kHz mono float32 audio in, lazily decoded segments out (cancellable between segments).

    ``prompt`` is the text said before this audio (context for a long recording's later windows);
    ``word_timestamps`` asks for each segment's words with their times.
    """

    @property
    def languages(self) -> tuple[str, ...]: ...
    @property
    def is_multilingual(self) -> bool: ...
    def transcribe(self, samples: NDArray[np.float32], *, language: str | None, cancel: CancelToken,
                   prompt: str | None = None,
                   word_timestamps: bool = False) -> tuple[str, Iterator[RecognizedSegment]]: ...


# ---------------------------------------------------------- speech synthesis
class SpeechSynthesizer(Engine, Protocol):
    """Text in, mono float32 audio in [-1, 1] at :attr:`sample_rate` out, one array per sentence."""

    @property
    def sample_rate(self) -> int: ...
    @property
    def num_speakers(self) -> int: ...
    @property
    def speakers(self) -> tuple[str, ...]:
        """The speakers' names, by speaker id."""
        ...
    @property
    def speed_range(self) -> tuple[float, float]:
        """The speeds the model can speak at (the feature refuses others before it starts)."""
        ...
    def synthesize(self, text: str, *, speaker_id: int = 0, speed: float = 1.0,
                   cancel: CancelToken | None = None) -> Iterator[NDArray[np.float32]]: ...


# ------------------------------------------------------------ voice activity
@dataclass(frozen=True)
class VadSettings:
    """Detector settings; the defaults are the reference SDK's, except ``max_speech_s``.

    ``max_speech_s`` is 20 s rather than the reference's 5 s, which splits
    ordinary spoken turns. Past it, the detector does not cut hard: it raises
    the threshold to 0.9 and ends the segment at the next 0.1 s pause. Speech
    with no such pause is cut at :attr:`hard_max_speech_s` by the feature layer.
    ``speech_pad_s`` of the audio before the detected start is kept with each
    segment (also by the feature layer): Silero can notice a soft onset such as
    the "wh" of "what" up to 0.2 s late, and speech-to-text then loses the word.
    """

    threshold: float = 0.5
    min_silence_s: float = 0.5
    min_speech_s: float = 0.25
    max_speech_s: float = 20.0
    num_threads: int = 1
    speech_pad_s: float = 0.25

    def __post_init__(self) -> None:
        if not 0.0 < positive_number("threshold", self.threshold) < 1.0:
            raise InvalidInputError(f"threshold must be between 0 and 1, got {self.threshold!r}")
        positive_number("min_silence_s", self.min_silence_s)
        positive_number("min_speech_s", self.min_speech_s, allow_zero=True)
        positive_int("num_threads", self.num_threads)
        if not positive_number("max_speech_s", self.max_speech_s) > self.min_speech_s:
            raise InvalidInputError(f"max_speech_s ({self.max_speech_s!r}) must exceed min_speech_s")
        if not positive_number("speech_pad_s", self.speech_pad_s, allow_zero=True) <= 1.0:
            raise InvalidInputError(f"speech_pad_s must be between 0 and 1 s, got {self.speech_pad_s!r}")

    @property
    def hard_max_speech_s(self) -> float:
        """Where speech without any pause is cut: 1.5 x ``max_speech_s`` (30 s by default)."""
        return 1.5 * self.max_speech_s

    @property
    def buffer_s(self) -> float:
        """The detector's history: the reference's 30 s, or more so that a longest segment fits."""
        return max(30.0, self.hard_max_speech_s + self.min_silence_s + 5.0)


class VoiceStream(Protocol):
    """One detector's state, fed :data:`WINDOW_SIZE` samples at 16 kHz at a time (not thread-safe)."""

    @property
    def settings(self) -> VadSettings: ...
    def accept(self, window: NDArray[np.float32]) -> bool: ...
    def open_segment_start(self) -> int: ...
    def open_segment_samples(self) -> NDArray[np.float32]: ...
    def take_segments(self) -> list[tuple[int, NDArray[np.float32]]]: ...
    def flush(self) -> None: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...


class VoiceDetector(Engine, Protocol):
    """A loaded voice activity model that hands out independent :class:`VoiceStream` objects."""

    @property
    def settings(self) -> VadSettings: ...
    def open_stream(self, *, settings: VadSettings | None = None,
                    min_silence_s: float | None = None) -> VoiceStream: ...
