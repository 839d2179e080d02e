"""The worker of a job: builds its feature once (the model loaded once per worker) and turns inputs into rows.

A row is a plain JSON-ready dict: ``id``, ``input``, ``ok``, ``error`` (``{"code", "message"}`` or None), the
result's fields, and ``metrics`` (with ``worker``: the host and pid that made it). An input the feature refuses
(unreadable audio, empty text) becomes a row with its error; only a failure of the worker itself (the model
will not load) stops the job.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from .. import (
    EmbeddingGenerator,
    EventBus,
    ModelLibrary,
    SDKError,
    SpeechToText,
    TextGenerator,
    TextToSpeech,
    save_wav,
)
from .inputs import JobInput
from .spec import JobKind, JobSpec

Row = dict[str, Any]
WORKER = f"{socket.gethostname()}:{os.getpid()}"  # which process made a row (on Ray: which actor, on which node)


class JobWorker:
    """One loaded model and the function that handles a batch of inputs with it."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        library = ModelLibrary(spec.config, events=EventBus()) if spec.config is not None else None
        handlers: dict[JobKind, Callable[[], Callable[[Sequence[JobInput]], list[Row]]]] = {
            JobKind.TRANSCRIBE: lambda: self._transcriber(library), JobKind.EMBED: lambda: self._embedder(library),
            JobKind.GENERATE: lambda: self._generator(library), JobKind.SPEAK: lambda: self._speaker(library)}
        self._holders: list[Any] = []
        self.handle = handlers[spec.kind]()

    def run(self, batch: Sequence[JobInput]) -> list[Row]:
        """The rows of ``batch``, in its order: inputs read badly keep their error, the rest are processed."""
        readable = [item for item in batch if not item.error]
        done = {row["id"]: row for row in self.handle(readable)} if readable else {}
        return [done[item.id] if not item.error else failed(item, "invalid_input", item.error) for item in batch]

    def close(self) -> None:
        """Unload the model."""
        for holder in self._holders:
            holder.unload()

    # -------------------------------------------------------------- features
    def _transcriber(self, library: ModelLibrary | None) -> Callable[[Sequence[JobInput]], list[Row]]:
        stt = SpeechToText(library)
        self._holders.append(stt)
        stt.load_model(self.spec.model)

        def one(item: JobInput) -> Row:
            result = stt.transcribe(item.value, options=self.spec.options)
            return ok(item, {"text": result.text, "language": result.language,
                             "segments": [{"start_s": s.start_s, "end_s": s.end_s, "text": s.text}
                                          for s in result.segments]},
                      {"audio_duration_s": result.audio_duration_s, "processing_ms": result.processing_ms,
                       "real_time_factor": result.real_time_factor})
        return each(one)

    def _embedder(self, library: ModelLibrary | None) -> Callable[[Sequence[JobInput]], list[Row]]:
        embedder = EmbeddingGenerator(library)
        self._holders.append(embedder)
        embedder.load_model(self.spec.model)

        def batch(items: Sequence[JobInput]) -> list[Row]:
            started = time.perf_counter()
            try:
                vectors = embedder.embed_batch([item.value for item in items])
            except SDKError:  # one bad text refuses the batch: find it by embedding one by one
                return each(lambda item: ok(item, {"embedding": embedder.embed(item.value).tolist()}, {}))(items)
            share = (time.perf_counter() - started) * 1000 / len(items)
            return [ok(item, {"embedding": vector.tolist()}, {"processing_ms": share})
                    for item, vector in zip(items, vectors, strict=True)]
        return batch

    def _generator(self, library: ModelLibrary | None) -> Callable[[Sequence[JobInput]], list[Row]]:
        generator = TextGenerator(library)
        self._holders.append(generator)
        generator.load_model(self.spec.model)

        def one(item: JobInput) -> Row:
            result = generator.generate(item.value, self.spec.options)
            return ok(item, {"text": result.text, "finish_reason": str(result.finish_reason)},
                      {"input_tokens": result.input_tokens, "output_tokens": result.output_tokens,
                       "time_to_first_token_ms": result.time_to_first_token_ms,
                       "decode_tokens_per_second": result.decode_tokens_per_second, "latency_ms": result.latency_ms})
        return each(one)

    def _speaker(self, library: ModelLibrary | None) -> Callable[[Sequence[JobInput]], list[Row]]:
        tts = TextToSpeech(library)
        self._holders.append(tts)
        tts.load_voice(self.spec.model)
        folder = self.spec.audio_dir
        if folder is None:  # JobSpec refuses a speak job without one
            raise SDKError("a speak job needs audio_dir")
        folder.mkdir(parents=True, exist_ok=True)

        def one(item: JobInput) -> Row:
            result = tts.synthesize(item.value, self.spec.options)
            path = save_wav(folder / f"{audio_name(item.id)}.wav", result)
            return ok(item, {"audio_path": str(path), "duration_ms": result.duration_ms},
                      {"processing_ms": result.processing_ms, "real_time_factor": result.real_time_factor})
        return each(one)


def each(one: Callable[[JobInput], Row]) -> Callable[[Sequence[JobInput]], list[Row]]:
    """A batch handler calling ``one`` per input, recording an input's SDK error as its row."""
    def handle(items: Sequence[JobInput]) -> list[Row]:
        rows = []
        for item in items:
            try:
                rows.append(one(item))
            except SDKError as exc:
                rows.append(failed(item, exc.code.name.lower(), exc.message))
        return rows
    return handle


def ok(item: JobInput, result: dict[str, Any], metrics: dict[str, Any]) -> Row:
    return {"id": item.id, "input": item.value, "ok": True, "error": None, **result,
            "metrics": {**metrics, "worker": WORKER}}


def failed(item: JobInput, code: str, message: str) -> Row:
    return {"id": item.id, "input": item.value, "ok": False, "error": {"code": code, "message": message},
            "metrics": {}}


def audio_name(ident: str) -> str:
    """A file name for an input's audio that is the same on every run (so a resumed job finds it)."""
    return hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:20]
