"""Live transcription sessions: feed audio chunks, read partial results, get final ones.

Whisper is not a streaming model: it decodes whole utterances. A
:class:`TranscriptionStream` therefore buffers the audio (converted to 16 kHz
as it arrives, with a streaming resampler so chunk edges leave no artefacts)
and decodes on the model's worker thread:

* **partials** — the audio since the last final is decoded again every
  ``partial_interval_s`` seconds of new audio, in the background; while one
  is still running the next is skipped, so a slow machine never falls behind;
* **finals** — each utterance the optional ``segmenter`` reports (for example
  the speech segments of the VAD feature), and at :meth:`finish` whatever is
  left: the segmenter's unfinished utterance, or, without a segmenter, the
  whole session as one utterance (right for commands; pass a segmenter for
  long sessions so each decode stays short).

``on_update`` receives every partial and final :class:`TranscriptionUpdate`
on the worker thread; finals are also published as ``stt.transcribed`` events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...backends.base import SAMPLE_RATE
from ...core.cancel import CancelToken
from ...core.errors import InvalidStateError, ModelNotLoadedError
from ...core.events import STTTranscribed
from ...core.logging import SDKLogger
from ...core.validation import positive_number
from ...media.audio import StreamResampler, check_rate, to_mono_float32
from ...runtime.worker import Stream
from .results import TranscriptionResult, run_transcription, summarise

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from .transcriber import SpeechToText

    Samples = NDArray[np.float32]

Segmenter = Callable[["Samples"], Iterable[tuple[float, "Samples"]]]
"""Called with each 16 kHz chunk; returns the utterances that ended, as (start second in the session, samples).

At :meth:`TranscriptionStream.finish` it is called once with an empty array:
it should then return the utterance still in progress, if any.
"""

_log = SDKLogger("STT")


@dataclass(frozen=True)
class TranscriptionUpdate:
    """A partial result (the current utterance so far; it may still change) or a final one.

    ``start_s`` is where the decoded audio starts in the session; the
    result's segment times are relative to it.
    """

    result: TranscriptionResult
    is_final: bool
    start_s: float

    @property
    def text(self) -> str:
        return self.result.text


UpdateCallback = Callable[[TranscriptionUpdate], None]


class TranscriptionStream:
    """One live session on a loaded :class:`SpeechToText` model (see the module docs)."""

    def __init__(self, owner: SpeechToText, *, sample_rate: int, language: str | None,
                 partial_interval_s: float | None, segmenter: Segmenter | None,
                 on_update: UpdateCallback | None, word_timestamps: bool = False) -> None:
        if partial_interval_s is not None:
            positive_number("partial_interval_s", partial_interval_s)
        self._owner = owner
        self._loaded = owner._require()
        self._rate = check_rate(sample_rate)
        self._language = language
        self._word_timestamps = word_timestamps  # for finals; a partial is text only
        self._interval = round(partial_interval_s * SAMPLE_RATE) if partial_interval_s else 0
        self._segmenter = segmenter
        self._on_update = on_update
        self._resampler = StreamResampler(self._rate, SAMPLE_RATE)
        self._lock = threading.Lock()
        self._pending: list[Samples] = []  # the audio since the last final, in chunks
        self._pending_start = 0  # its first sample's index in the session (16 kHz)
        self._received = 0
        self._since_partial = 0
        self._partial_busy = False
        self._partial_text = ""
        self._epoch = 0  # bumped by each final, so a partial of audio already finalised is dropped
        self._finals: list[tuple[float, Stream[TranscriptionResult]]] = []
        self._final_cancel = CancelToken()
        self._partial_cancel = CancelToken()
        self._finished = False

    # ---------------------------------------------------------------- input
    def accept(self, chunk: Any) -> None:
        """Add a chunk of any size (float or int samples, mono or interleaved channels) at the session's rate."""
        if self._finished:
            raise InvalidStateError("this transcription stream is finished; create a new one")
        self._add(self._resampler.push(to_mono_float32(chunk)))
        if self._interval and self._since_partial >= self._interval:
            self._start_partial()

    def partial(self) -> str:
        """The latest partial text of the current utterance ('' before the first one)."""
        with self._lock:
            return self._partial_text

    # --------------------------------------------------------------- output
    def finish(self) -> TranscriptionResult:
        """End the session and return all finals joined, with segment times in session seconds."""
        return self._joined([(start_s, job.result) for start_s, job in self._end()])

    async def afinish(self) -> TranscriptionResult:
        """Async twin of :meth:`finish`: the last decodes are awaited on the loop, no thread waits for them."""
        return self._joined([(start_s, await job.await_result()) for start_s, job in self._end()])

    def _end(self) -> list[tuple[float, Stream[TranscriptionResult]]]:
        """Stop taking audio, start the last finals; every final's job, in order."""
        import numpy as np

        with self._lock:
            if self._finished:
                raise InvalidStateError("this transcription stream is already finished")
            self._finished = True
        self._partial_cancel.cancel()
        self._add(self._resampler.finish())
        if self._segmenter is not None:
            for start_s, utterance in self._segmenter(np.zeros(0, dtype=np.float32)):
                self._final(start_s, utterance)
        else:
            with self._lock:
                pending = self._pending_audio()
            if len(pending):
                self._final(self._pending_start / SAMPLE_RATE, pending)
        return list(self._finals)

    def _joined(self, parts: list[tuple[float, TranscriptionResult]]) -> TranscriptionResult:
        segments = [s.shifted(start_s) for start_s, result in parts for s in result.segments]
        language = next((r.language for _, r in parts if r.language), self._language)
        return summarise(" ".join(r.text for _, r in parts if r.text), segments, language,
                         self._received / SAMPLE_RATE, sum(r.processing_ms for _, r in parts))

    def close(self) -> None:
        """Abandon the session: decoding in progress stops at its next segment."""
        self._finished = True
        self._partial_cancel.cancel()
        self._final_cancel.cancel()

    def __enter__(self) -> TranscriptionStream:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._finished:
            self.close()

    # ------------------------------------------------------------ internals
    def _add(self, samples: Samples) -> None:
        if not len(samples):
            return
        with self._lock:
            self._pending.append(samples)
            self._received += len(samples)
            self._since_partial += len(samples)
        if self._segmenter is not None:
            for start_s, utterance in self._segmenter(samples):
                self._final(start_s, utterance)

    def _final(self, start_s: float, utterance: Any) -> None:
        samples = to_mono_float32(utterance)
        end = max(0, round(start_s * SAMPLE_RATE)) + len(samples)
        with self._lock:
            pending = self._pending_audio()
            cut = min(max(end - self._pending_start, 0), len(pending))
            self._pending, self._pending_start = [pending[cut:]], self._pending_start + cut
            self._epoch += 1
            self._partial_text, self._since_partial = "", 0
            job = self._submit(samples, start_s, self._final_cancel, self._epoch, final=True)
            self._finals.append((start_s, job))

    def _start_partial(self) -> None:
        with self._lock:
            if self._partial_busy:
                return
            samples = self._pending_audio()
            if not len(samples):
                return
            self._partial_busy, self._since_partial = True, 0
            start_s, epoch = self._pending_start / SAMPLE_RATE, self._epoch
        try:
            self._submit(samples, start_s, self._partial_cancel, epoch, final=False)
        except BaseException:
            self._partial_busy = False
            raise

    def _pending_audio(self) -> Samples:
        """The audio since the last final as one array (call with the lock held)."""
        import numpy as np

        if len(self._pending) != 1:
            self._pending = [np.concatenate(self._pending) if self._pending else np.zeros(0, dtype=np.float32)]
        return self._pending[0]

    def _submit(self, samples: Samples, start_s: float, cancel: CancelToken, epoch: int, *,
                final: bool) -> Stream[TranscriptionResult]:
        loaded, events = self._loaded, self._owner._events
        if self._owner._loaded is not loaded:
            raise ModelNotLoadedError("the model of this transcription stream was unloaded")

        def produce(cancel_token: CancelToken, emit: Callable[[Any], None]) -> TranscriptionResult:
            try:
                result = run_transcription(loaded.engine, (samples,), self._language, cancel_token, emit,
                                           word_timestamps=final and self._word_timestamps)
            finally:
                if not final:
                    self._partial_busy = False
            if final:
                events.emit(STTTranscribed(text=result.text, confidence=result.confidence,
                                           audio_duration_s=result.audio_duration_s,
                                           processing_ms=result.processing_ms))
            else:
                with self._lock:
                    if epoch != self._epoch:
                        return result  # a final has covered this audio meanwhile
                    self._partial_text = result.text
            self._deliver(TranscriptionUpdate(result, final, start_s))
            return result

        return loaded.worker.stream(produce, cancel, deliver=False)

    def _deliver(self, update: TranscriptionUpdate) -> None:
        _log.call_safely(self._on_update, update, what="on_update callback")
