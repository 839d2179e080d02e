"""The llama.cpp flavour of :class:`ModelHolder`, shared by text generation and embeddings."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..backends.llamacpp import LlamaEngine
from ..core.cancel import CancelToken
from ..models.manager import LocalModel, ProgressCallback
from .holder import Loaded, ModelHolder

_Loaded = Loaded[LlamaEngine]


class LlamaHolder(ModelHolder[LlamaEngine]):
    """A llama.cpp model; subclasses add what they do with it (generate, embed)."""

    component = "llm"
    noun = "language model"

    def load_model(
        self, model: str | os.PathLike[str], *, n_ctx: int = 4096, n_threads: int | None = None,
        n_batch: int = 512, progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
    ) -> str:
        """Load a catalog id (pulled into the store on first use) or a ``.gguf`` path; returns its id.

        A model already loaded here is unloaded first.
        """
        return self._load(model, self._builder(n_ctx, n_threads, n_batch, cancel), progress=progress, cancel=cancel)

    async def aload_model(
        self, model: str | os.PathLike[str], *, n_ctx: int = 4096, n_threads: int | None = None,
        n_batch: int = 512, progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
    ) -> str:
        """Async twin of :meth:`load_model`."""
        build = self._builder(n_ctx, n_threads, n_batch, cancel)
        return await self._aload(model, build, progress=progress, cancel=cancel)

    def _builder(self, n_ctx: int, n_threads: int | None, n_batch: int,
                 cancel: CancelToken | None) -> Callable[[LocalModel], LlamaEngine]:
        def build(local: LocalModel) -> LlamaEngine:
            return LlamaEngine(self._weights_file(local, cancel), n_ctx=n_ctx, n_threads=n_threads,
                               n_batch=n_batch, **self._engine_options())

        return build

    def _engine_options(self) -> dict[str, Any]:
        return {}

    def _weights_file(self, local: LocalModel, cancel: CancelToken | None) -> Path:
        return Path(local.main_file)
