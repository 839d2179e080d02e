"""The llama.cpp flavour of :class:`ModelHolder`, shared by text generation and embeddings."""

from __future__ import annotations

import os
from typing import Any

from ..backends.base import LanguageModel
from ..backends.registry import LANGUAGE_MODELS, EngineRegistry
from ..core.cancel import CancelToken
from ..models.catalog import ModelCategory
from ..models.manager import ProgressCallback
from .holder import Loaded, ModelHolder

_Loaded = Loaded[LanguageModel]


class LlamaHolder(ModelHolder[LanguageModel]):
    """A language model (llama.cpp); subclasses add what they do with it (generate, embed)."""

    component = "llm"
    noun = "language model"
    category = ModelCategory.LANGUAGE
    engines: EngineRegistry[LanguageModel] = LANGUAGE_MODELS

    def load_model(
        self, model: str | os.PathLike[str] | None = None, *, n_ctx: int = 4096, n_threads: int | None = None,
        n_batch: int = 512, progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
    ) -> str:
        """Load a catalog id (pulled into the store on first use) or a ``.gguf`` path; returns its id.

        No model: the catalog's default. A model already loaded here is unloaded first.
        """
        options = {"n_ctx": n_ctx, "n_threads": n_threads, "n_batch": n_batch, **self._engine_options()}
        return self._load(model, self.engines, options, progress=progress, cancel=cancel)

    def _engine_options(self) -> dict[str, Any]:
        return {}
