"""The shared lifecycle of llama.cpp-backed features (text generation, embeddings, ...)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends.llamacpp import LlamaEngine
from ..core.cancel import CancelToken
from ..core.errors import ModelNotLoadedError
from ..core.events import EventBus, ModelLoadCompleted, ModelLoadFailed, ModelLoadStarted, ModelUnloaded
from ..core.sdk import RunAnywhere
from ..models.manager import LocalModel, ModelLibrary, ModelManager, ProgressCallback
from ._worker import EngineWorker


@dataclass
class _Loaded:
    model_id: str
    engine: LlamaEngine
    worker: EngineWorker
    release: Callable[[], None]
    # The text behind the KV cache and its exact tokens (prompt + reply), so that a next prompt that
    # extends this text reuses the reply's own tokens rather than a re-tokenisation that may differ.
    context_text: str = ""
    context_tokens: list[int] = field(default_factory=list)


class LlamaHolder:
    """Owns one llama.cpp model on a worker thread: load, unload, cancel, shutdown cleanup.

    Subclasses add what they do with it (generate, embed) and may adjust the
    engine options and the weights file (e.g. convert a model first).
    """

    component = "llm"

    def __init__(self, models: ModelLibrary | None = None, *, events: EventBus | None = None) -> None:
        self._models = models or ModelManager
        self._events = events or EventBus.shared
        self._loaded: _Loaded | None = None
        self._state_lock = threading.RLock()

    # ------------------------------------------------------------- lifecycle
    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    @property
    def loaded_model(self) -> str | None:
        loaded = self._loaded
        return loaded.model_id if loaded else None

    @property
    def engine(self) -> LlamaEngine:
        return self._require().engine

    def load_model(
        self, model: str | os.PathLike[str], *, n_ctx: int = 4096, n_threads: int | None = None,
        n_batch: int = 512, progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
    ) -> str:
        """Load a catalog id (pulled into the store on first use) or a ``.gguf`` path; returns its id.

        A model already loaded here is unloaded first.
        """
        local = self._models.resolve(model, cancel=cancel, progress=progress)
        model_id = local.id
        self._events.emit(ModelLoadStarted(model_id=model_id, component=self.component))
        started = time.perf_counter()
        pin = self._models.pin(model_id) if local.entry is not None else None
        worker = EngineWorker(f"{self.component}-{model_id}")
        try:
            weights = self._weights_file(local, cancel)
            engine = worker.call(lambda: LlamaEngine(weights, n_ctx=n_ctx, n_threads=n_threads,
                                                     n_batch=n_batch, **self._engine_options()))
        except BaseException as exc:
            worker.close()
            if pin is not None:
                pin.release()
            self._events.emit(ModelLoadFailed(model_id=model_id, component=self.component, error=str(exc)))
            raise
        with self._state_lock:
            self.unload()
            remove_cleanup = RunAnywhere.add_cleanup(f"{self.component}:{model_id}", self.unload)

            def release() -> None:
                remove_cleanup()
                worker.call(engine.close)
                worker.close()
                if pin is not None:
                    pin.release()

            self._loaded = _Loaded(model_id, engine, worker, release)
        self._events.emit(ModelLoadCompleted(model_id=model_id, component=self.component,
                                             load_time_ms=(time.perf_counter() - started) * 1000))
        return model_id

    def _engine_options(self) -> dict[str, Any]:
        return {}

    def _weights_file(self, local: LocalModel, cancel: CancelToken | None) -> Path:
        return Path(local.main_file)

    def unload(self) -> None:
        """Release the model (waits for the generation in progress to stop)."""
        with self._state_lock:
            loaded, self._loaded = self._loaded, None
        if loaded is not None:
            loaded.worker.cancel_running()
            loaded.release()
            self._events.emit(ModelUnloaded(model_id=loaded.model_id, component=self.component))

    def cancel(self) -> None:
        """Stop the generation in progress (queued calls still run)."""
        loaded = self._loaded
        if loaded is not None:
            loaded.worker.cancel_running()

    def _require(self) -> _Loaded:
        loaded = self._loaded
        if loaded is None:
            raise ModelNotLoadedError("no language model is loaded; call load_model() first")
        return loaded
