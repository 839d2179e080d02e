"""The shared lifecycle of model-backed features: load, unload, cancel, shutdown cleanup.

A :class:`ModelHolder` resolves a model (catalog id or path; none: the
catalog's default of its category), pins it in the store while loaded, builds
its engine on a dedicated worker thread with the factory that the capability's
engine registry has for the catalog entry's ``engine``, and releases everything
on ``unload()`` or ``RunAnywhere.shutdown()``. Features (text generation,
embeddings, speech ...) subclass it with their capability's protocol.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from ..backends.base import Engine
from ..backends.registry import EngineRegistry
from ..core.cancel import CancelToken
from ..core.errors import ModelNotLoadedError
from ..core.events import EventBus, ModelLoadCompleted, ModelLoadFailed, ModelLoadStarted, ModelUnloaded
from ..core.sdk import RunAnywhere
from ..models.catalog import ModelCategory
from ..models.manager import LocalModel, ModelLibrary, ModelManager, ProgressCallback
from .worker import EngineWorker

E = TypeVar("E", bound=Engine)


@dataclass
class Loaded(Generic[E]):
    """A loaded model: its engine, the worker thread that owns it, and how to release both."""

    model_id: str
    engine: E
    worker: EngineWorker
    release: Callable[[], None]
    local: LocalModel


class ModelHolder(Generic[E]):
    """Owns one loaded model on a worker thread; subclasses say how to build the engine."""

    component = "model"
    noun = "model"
    #: What a load produces; an engine family with per-model state of its own subclasses :class:`Loaded`.
    loaded_type: ClassVar[type[Loaded[Any]]] = Loaded
    category: ClassVar[ModelCategory]
    """The catalog category whose default model ``load_model()`` loads when given none."""

    def __init__(self, models: ModelLibrary | None = None, *, events: EventBus | None = None) -> None:
        self._models = models or ModelManager
        self._events = events or EventBus.shared
        self._loaded: Loaded[E] | None = None
        self._state_lock = threading.RLock()

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    @property
    def loaded_model(self) -> str | None:
        loaded = self._loaded
        return loaded.model_id if loaded else None

    @property
    def engine(self) -> E:
        return self._require().engine

    def _load(self, model: str | os.PathLike[str] | None, engines: EngineRegistry[E], options: Mapping[str, Any], *,
              progress: ProgressCallback | None, cancel: CancelToken | None) -> str:
        """Choose the engine, resolve ``model``, build the engine on a new worker thread, and swap it in.

        The engine is chosen before anything is fetched or unloaded, so an
        unsupported model leaves the loaded one in place.
        """
        model = self._models.catalog.default(self.category).id if model is None else model
        factory = engines.factory(self._engine_name(os.fspath(model), engines), model=os.fspath(model))

        def build(local: LocalModel) -> E:
            return factory(self._model_files(local, cancel), **options)

        local = self._models.resolve(model, cancel=cancel, progress=progress)
        model_id = local.id
        self._events.emit(ModelLoadStarted(model_id=model_id, component=self.component))
        started = time.perf_counter()
        pin = self._models.pin(model_id) if local.entry is not None else None
        worker = EngineWorker(f"{self.component}-{model_id}")
        try:
            engine = worker.call(build, local)
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

            self._loaded = self.loaded_type(model_id, engine, worker, release, local)
        self._events.emit(ModelLoadCompleted(model_id=model_id, component=self.component,
                                             load_time_ms=(time.perf_counter() - started) * 1000))
        return model_id

    def _engine_name(self, model: str, engines: EngineRegistry[E]) -> str:
        """The engine a model runs on: its catalog entry's ``engine``, or the capability's default for a path."""
        catalog = self._models.catalog
        return catalog.get(model).engine if model in catalog else engines.default

    def _model_files(self, local: LocalModel, cancel: CancelToken | None) -> LocalModel:
        """The files handed to the engine factory (a feature may derive some first); runs on the worker."""
        return local

    def unload(self) -> None:
        """Release the model (waits for the work in progress to stop)."""
        with self._state_lock:
            loaded, self._loaded = self._loaded, None
        if loaded is not None:
            loaded.worker.cancel_running()
            loaded.release()
            self._events.emit(ModelUnloaded(model_id=loaded.model_id, component=self.component))

    def cancel(self) -> None:
        """Stop the work in progress (queued calls still run)."""
        loaded = self._loaded
        if loaded is not None:
            loaded.worker.cancel_running()

    def _require(self) -> Loaded[E]:
        loaded = self._loaded
        if loaded is None:
            raise ModelNotLoadedError(f"no {self.noun} is loaded; call load_model() first")
        return loaded

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(engine, *args)`` on the worker that owns the engine."""
        loaded = self._require()
        return loaded.worker.call(fn, loaded.engine, *args)
