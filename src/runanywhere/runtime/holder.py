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
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from ..backends.base import Engine
from ..backends.registry import EngineRegistry
from ..core.bridge import await_future
from ..core.cancel import CancelToken
from ..core.errors import ModelNotLoadedError
from ..core.events import EventBus, ModelLoadCompleted, ModelLoadFailed, ModelLoadStarted, ModelUnloaded
from ..core.sdk import RunAnywhere
from ..models.catalog import ModelCategory, check_model_id
from ..models.locks import FileLock
from ..models.manager import LocalModel, ModelLibrary, ModelManager, ProgressCallback, model_name
from .worker import EngineWorker

E = TypeVar("E", bound=Engine)


@dataclass
class Loaded(Generic[E]):
    """A loaded model: its engine, the worker thread that owns it, and how to let go of its pin and cleanup."""

    model_id: str
    engine: E
    worker: EngineWorker
    detach: Callable[[], None]
    local: LocalModel


@dataclass(frozen=True)
class _Built(Generic[E]):
    """An engine built on its new worker, not yet swapped in."""

    local: LocalModel
    engine: E
    pin: FileLock | None
    started: float


def _discard(worker: EngineWorker, done: Future[_Built[E]]) -> None:
    """Release a model whose async load was abandoned (runs when its build ends)."""
    if not done.cancelled() and done.exception() is None:
        built = done.result()
        built.engine.close()
        if built.pin is not None:
            built.pin.release()
    worker.close(wait=False)


def _named(local: LocalModel, model_id: str | None) -> LocalModel:
    """``local`` under ``model_id`` (for a model given by path; a catalog model keeps its id)."""
    if model_id is None or local.entry is not None:
        return local
    return replace(local, id=check_model_id(model_id))


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
              progress: ProgressCallback | None, cancel: CancelToken | None, model_id: str | None = None) -> str:
        """Choose the engine, resolve ``model``, build the engine on a new worker thread, and swap it in.

        The engine is chosen before anything is fetched or unloaded, so an
        unsupported model leaves the loaded one in place. ``model_id`` names a model given by path.
        """
        model, build = self._builder(model, engines, options, cancel)
        local = _named(self._models.resolve(model, cancel=cancel, progress=progress), model_id)
        worker = EngineWorker(f"{self.component}-{local.id}")
        try:
            built = worker.call(self._build, local, build)
        except BaseException:
            worker.close()
            raise
        with self._state_lock:
            self.unload()
            self._install(worker, built)
        return self._announce(built)

    async def _aload(self, model: str | os.PathLike[str] | None, engines: EngineRegistry[E],
                     options: Mapping[str, Any], *, progress: ProgressCallback | None,
                     cancel: CancelToken | None, model_id: str | None = None) -> str:
        """Async twin of :meth:`_load`: the new model's worker resolves (pulls) and builds it."""
        model, build = self._builder(model, engines, options, cancel)
        token = cancel or CancelToken()
        worker = EngineWorker(f"{self.component}-{Path(str(model)).name}")

        def resolve_and_build() -> _Built[E]:
            return self._build(_named(self._models.resolve(model, cancel=token, progress=progress), model_id), build)

        future = worker.submit(resolve_and_build)
        try:
            built = await await_future(future, token)
        except BaseException:
            future.add_done_callback(lambda done: _discard(worker, done))
            raise
        while True:  # release what is loaded without blocking the loop, then swap in
            with self._state_lock:
                if self._loaded is None:
                    self._install(worker, built)
                    break
            await self.aunload()
        return self._announce(built)

    def _builder(self, model: str | os.PathLike[str] | None, engines: EngineRegistry[E], options: Mapping[str, Any],
                 cancel: CancelToken | None) -> tuple[str | os.PathLike[str], Callable[[LocalModel], E]]:
        """The model to load (none: the category's default) and how to build its engine from its files."""
        model = self._models.catalog.default(self.category).id if model is None else model
        name = model_name(model)
        factory = engines.factory(self._engine_name(name, engines), model=name)

        def build(local: LocalModel) -> E:
            return factory(self._model_files(local, cancel), **options)

        return model, build

    def _build(self, local: LocalModel, build: Callable[[LocalModel], E]) -> _Built[E]:
        """On the new worker: pin the model and build its engine."""
        self._events.emit(ModelLoadStarted(model_id=local.id, component=self.component))
        started = time.perf_counter()
        pin = self._models.pin(local.id) if local.entry is not None else None
        try:
            engine = build(local)
        except BaseException as exc:
            if pin is not None:
                pin.release()
            self._events.emit(ModelLoadFailed(model_id=local.id, component=self.component, error=str(exc)))
            raise
        return _Built(local, engine, pin, started)

    def _install(self, worker: EngineWorker, built: _Built[E]) -> None:
        """Make ``built`` the loaded model (state lock held, nothing loaded)."""
        model_id, pin = built.local.id, built.pin
        remove_cleanup = RunAnywhere.add_cleanup(f"{self.component}:{model_id}", self.unload)

        def detach() -> None:
            remove_cleanup()
            if pin is not None:
                pin.release()

        self._loaded = self.loaded_type(model_id, built.engine, worker, detach, built.local)

    def _announce(self, built: _Built[E]) -> str:
        self._events.emit(ModelLoadCompleted(model_id=built.local.id, component=self.component,
                                             load_time_ms=(time.perf_counter() - built.started) * 1000))
        return built.local.id

    def _engine_name(self, model: str, engines: EngineRegistry[E]) -> str:
        """The engine a model runs on: its catalog entry's ``engine``, or the capability's default for a path."""
        catalog = self._models.catalog
        return catalog.get(model).engine if model in catalog else engines.default

    def _model_files(self, local: LocalModel, cancel: CancelToken | None) -> LocalModel:
        """The files handed to the engine factory (a feature may derive some first); runs on the worker."""
        return local

    def unload(self) -> None:
        """Release the model (waits for the work in progress to stop)."""
        loaded = self._take()
        if loaded is not None:
            loaded.worker.call(loaded.engine.close)
            loaded.worker.close()
            self._released(loaded)

    async def aunload(self) -> None:
        """Async twin of :meth:`unload`: the engine is closed on its worker while the loop awaits."""
        loaded = self._take()
        if loaded is not None:
            await await_future(loaded.worker.submit(loaded.engine.close))
            loaded.worker.close(wait=False)
            self._released(loaded)

    def _take(self) -> Loaded[E] | None:
        """Take the loaded model out (nothing new reaches it) and cancel its work in progress."""
        with self._state_lock:
            loaded, self._loaded = self._loaded, None
        if loaded is not None:
            loaded.worker.cancel_running()
        return loaded

    def _released(self, loaded: Loaded[E]) -> None:
        loaded.detach()
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
