"""Whisper through whisper.cpp (``pywhispercpp``'s bindings): the one module that imports ``pywhispercpp``.

:class:`WhisperCppEngine` wraps one whisper.cpp context on a ggml model file (the catalog derives it from a
CTranslate2 Whisper model: :mod:`runanywhere.models.whisper_ggml`). It takes 16 kHz float32 samples as a
numpy array (no WAV file) and yields :class:`RecognizedSegment` values while whisper.cpp still decodes:
``whisper_full`` runs on a helper thread (it releases the GIL) and hands each new segment over; its abort
callback stops it as soon as the token is cancelled or the consumer stops reading.

whisper.cpp crashes the process on a truncated or foreign model file, so the file's structure is walked
first (:func:`check_ggml`) and a bad one is a :class:`ModelFormatError`. Its log lines go to this SDK's
logger (debug level) instead of stderr. Short audio gets a shorter encoder window (``audio_ctx``), by the
same rule as faster-whisper's (:func:`runanywhere.backends.faster_whisper.window_frames`).

One thread by default: whisper.cpp's threads spin while they wait for each other, and on this project's
busy 2-core machine (load 18) 10 s of speech took 5-9 s on one thread and 20-41 s on two.
"""

from __future__ import annotations

import atexit
import functools
import math
import queue
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.cancel import CancelToken
from ..core.engines import WEIGHTS
from ..core.errors import BackendError, ModelFormatError, SDKFileNotFoundError
from ..core.logging import SDKLogger
from ..core.validation import positive_int
from . import require_engine
from .base import ModelFiles, RecognizedSegment, refuse_word_timestamps
from .faster_whisper import check_min_window, window_frames

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

_log = SDKLogger("WhisperCpp")

GGML_MAGIC = b"lmgg"  # 0x67676d6c, little-endian
# Bytes per block and values per block of each ggml tensor type a whisper.cpp model may use.
_TYPE_SIZES = {0: (4, 1), 1: (2, 1), 2: (18, 32), 3: (20, 32), 6: (22, 32), 7: (24, 32), 8: (34, 32)}
_DONE = object()


def is_ggml(path: Path) -> bool:
    """True for a file that starts with whisper.cpp's ggml magic."""
    with open(path, "rb") as fh:
        return fh.read(4) == GGML_MAGIC


def check_ggml(path: Path) -> None:
    """Walk a whisper.cpp ggml file's header, vocabulary and tensors; :class:`ModelFormatError` unless whole."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        def ints(n: int) -> tuple[int, ...]:
            raw = fh.read(4 * n)
            if len(raw) != 4 * n:
                raise ModelFormatError(f"{path} is truncated ({size} bytes): re-derive or re-download it")
            return struct.unpack(f"<{n}i", raw)

        def skip(n: int) -> None:
            if n < 0 or fh.seek(n, 1) > size:
                raise ModelFormatError(f"{path} is truncated ({size} bytes): re-derive or re-download it")

        magic, *hp = ints(12)
        if magic != int.from_bytes(GGML_MAGIC, "little") or min(hp[:10]) <= 0:
            raise ModelFormatError(f"{path} is not a whisper.cpp ggml model (no 'ggml' magic and hyper-parameters)")
        n_mel, n_fft = ints(2)
        skip(4 * n_mel * n_fft)
        for _ in range(ints(1)[0]):
            skip(ints(1)[0])
        tensors, expected = 0, 11 + 15 * hp[4] + 24 * hp[8]  # whisper's tensors per encoder / decoder block
        while fh.tell() < size:
            n_dims, name_len, kind = ints(3)
            if not 1 <= n_dims <= 4 or kind not in _TYPE_SIZES:
                raise ModelFormatError(f"{path}: tensor {tensors} has rank {n_dims} and type {kind}")
            block_bytes, block = _TYPE_SIZES[kind]
            skip(name_len + math.prod(ints(n_dims)) // block * block_bytes)
            tensors += 1
    if tensors != expected:
        raise ModelFormatError(f"{path} holds {tensors} tensors, whisper.cpp needs {expected}: it is truncated")


def open_whispercpp(files: ModelFiles, *, compute_type: str | None = None, **options: Any) -> WhisperCppEngine:
    """The speech-recognition factory: the model's ``weights`` file (a ggml model), or the path given.

    ``compute_type`` is CTranslate2's setting; whisper.cpp computes in the ggml file's own types.
    """
    path = files.file(WEIGHTS) if files.has_role(WEIGHTS) else files.path
    return WhisperCppEngine(path, **options)


@functools.cache
def _bindings() -> Any:
    """whisper.cpp's compiled bindings, with their log lines sent to this SDK's logger."""
    pw = require_engine("pywhispercpp.model").pw
    pw.whisper_log_set(lambda _level, text: _log.debug("%s", str(text).rstrip()))
    atexit.register(pw.whisper_log_set, None)  # no Python callback once the interpreter is finalising
    return pw


class WhisperCppEngine:
    """One whisper.cpp context on the CPU, used from one thread at a time."""

    def __init__(self, model_path: Path, *, threads: int | None = None, beam_size: int = 1,
                 min_window_s: int | None = 20) -> None:
        if not model_path.is_file():
            raise SDKFileNotFoundError(f"whisper.cpp model not found: {model_path}")
        positive_int("beam_size", beam_size)
        if threads is not None:
            positive_int("threads", threads)
        self.min_window_s = check_min_window(min_window_s)
        check_ggml(model_path)
        self._pw = pw = _bindings()
        self.threads = threads or 1
        self.beam_size = beam_size
        self._running: tuple[threading.Event, threading.Thread] | None = None
        self._ctx: Any = pw.whisper_init_from_file_with_params(str(model_path), pw.whisper_context_default_params())
        multilingual = bool(pw.whisper_is_multilingual(self._ctx))
        self.languages: tuple[str, ...] = (
            tuple(pw.whisper_lang_str(i) for i in range(pw.whisper_lang_max_id() + 1)) if multilingual else ("en",))

    @property
    def is_multilingual(self) -> bool:
        return len(self.languages) > 1

    def transcribe(self, samples: NDArray[np.float32], *, language: str | None, cancel: CancelToken,
                   prompt: str | None = None, word_timestamps: bool = False) -> tuple[str, Iterator[RecognizedSegment]]:
        """Start decoding 16 kHz mono float32 ``samples``: (language, segments as whisper.cpp finds them).

        ``language=None`` is English for English-only models and detection for multilingual ones. The
        language is known once the first segment (or the end) arrives; this call waits for it.
        """
        refuse_word_timestamps("whisper.cpp", word_timestamps)
        import numpy as np

        cancel.raise_if_cancelled("transcription")
        self._stop_running()
        pw, ctx = self._pw, self._ctx
        params = self._params(len(samples), language, prompt)
        found: queue.SimpleQueue[Any] = queue.SimpleQueue()
        stop = threading.Event()
        pw.assign_new_segment_callback(params, lambda _ctx, n_new, *_: found.put(self._segments(n_new)))
        pw.assign_abort_callback(params, lambda: stop.is_set() or cancel.cancelled)
        audio = np.ascontiguousarray(samples, dtype=np.float32)

        def run() -> None:
            try:
                found.put(_DONE if pw.whisper_full(ctx, params, audio, audio.size) == 0 or stop.is_set()
                          or cancel.cancelled else BackendError("whisper.cpp failed to transcribe the audio"))
            except BaseException as exc:  # handed to the reading thread
                found.put(exc)

        worker = threading.Thread(target=run, name="whisper.cpp", daemon=True)
        worker.start()
        self._running = (stop, worker)
        first = found.get()
        return self._language(language, first), self._read(first, found, worker, stop, cancel)

    def _language(self, language: str | None, first: Any) -> str:
        """The language asked for, English, or the one whisper.cpp detected ("" when decoding failed first)."""
        if language or not self.is_multilingual:
            return language or "en"
        lang_id = -1 if isinstance(first, BaseException) else int(self._pw.whisper_full_lang_id(self._ctx))
        return str(self._pw.whisper_lang_str(lang_id)) if lang_id >= 0 else ""

    def _params(self, num_samples: int, language: str | None, prompt: str | None) -> Any:
        pw = self._pw
        strategy = pw.whisper_sampling_strategy
        params = pw.whisper_full_default_params(
            strategy.WHISPER_SAMPLING_GREEDY if self.beam_size == 1 else strategy.WHISPER_SAMPLING_BEAM_SEARCH)
        if self.beam_size > 1:
            params.beam_search = {"beam_size": self.beam_size, "patience": -1.0}
        params.n_threads = self.threads
        params.language = language or ("auto" if self.is_multilingual else "en")
        params.print_progress = params.print_realtime = params.print_timestamps = False
        params.initial_prompt = prompt or ""
        frames = window_frames(num_samples, self.min_window_s)
        params.audio_ctx = frames // 2 if frames else 0  # the encoder halves the mel frames
        return params

    def _segments(self, n_new: int) -> list[RecognizedSegment]:
        """The ``n_new`` segments whisper.cpp just finished (called on its thread, inside ``whisper_full``).

        ``avg_logprob`` is the mean log probability of the text tokens; these bindings do not expose
        whisper.cpp's no-speech probability, so ``no_speech_prob`` is 0.
        """
        pw, ctx = self._pw, self._ctx
        total, eot = pw.whisper_full_n_segments(ctx), pw.whisper_token_eot(ctx)
        segments = []
        for i in range(total - n_new, total):
            tokens = [pw.whisper_full_get_token_data(ctx, i, j) for j in range(pw.whisper_full_n_tokens(ctx, i))]
            logprobs = [float(t.plog) for t in tokens if t.id < eot] or [0.0]
            text = bytes(pw.whisper_full_get_segment_text(ctx, i)).decode("utf-8", errors="replace")
            segments.append(RecognizedSegment(pw.whisper_full_get_segment_t0(ctx, i) / 100,
                                              pw.whisper_full_get_segment_t1(ctx, i) / 100, text,
                                              sum(logprobs) / len(logprobs), 0.0))
        return segments

    @staticmethod
    def _read(item: Any, found: queue.SimpleQueue[Any], worker: threading.Thread, stop: threading.Event,
              cancel: CancelToken) -> Iterator[RecognizedSegment]:
        """Segments from the helper thread until it ends; leaving early (or a cancel) aborts whisper.cpp."""
        try:
            while item is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                for segment in item:
                    cancel.raise_if_cancelled("transcription")
                    yield segment
                item = found.get()
            cancel.raise_if_cancelled("transcription")
        finally:
            stop.set()
            worker.join()

    def _stop_running(self) -> None:
        """Abort and wait for a decode whose segments were never read to the end (one decode per context)."""
        running, self._running = self._running, None
        if running is not None:
            running[0].set()
            running[1].join()

    def close(self) -> None:
        self._stop_running()
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            self._pw.whisper_free(ctx)
