"""The llama.cpp flavour of :class:`ModelHolder`, shared by text generation and embeddings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..backends.base import LanguageModel
from ..backends.registry import LANGUAGE_MODELS, EngineRegistry
from ..core.cancel import CancelToken
from ..models.catalog import ModelCategory
from ..models.manager import ProgressCallback
from .holder import Loaded, ModelHolder


@dataclass
class LlamaSession:
    """The text behind a llama context's KV cache and its exact tokens (prompt + reply).

    A next prompt that extends this text reuses the reply's own tokens rather than a
    re-tokenisation, so the cache keeps its whole prefix. Touched only on the model's worker.
    """

    engine: LanguageModel
    text: str = ""
    tokens: list[int] = field(default_factory=list)

    def tokenize(self, text: str, *, add_bos: bool, special: bool) -> list[int]:
        """``text`` as tokens; a text that continues the cached one keeps the cached tokens and adds its tail's."""
        if self.text and text.startswith(self.text):
            return self.tokens + self.engine.tokenize(text[len(self.text):], add_bos=False, special=special)
        return self.engine.tokenize(text, add_bos=add_bos, special=special)

    def remember(self, text: str, tokens: list[int]) -> None:
        """Record what the cache now holds (after a generation or prefill that finished)."""
        self.text, self.tokens = text, tokens

    def forget(self) -> None:
        """The cache is about to change: until :meth:`remember`, nothing is known to be in it."""
        self.remember("", [])


@dataclass
class LoadedLlama(Loaded[LanguageModel]):
    """A loaded llama.cpp model and its KV-cache session."""

    session: LlamaSession = field(init=False)

    def __post_init__(self) -> None:
        self.session = LlamaSession(self.engine)


class LlamaHolder(ModelHolder[LanguageModel]):
    """A language model (llama.cpp); subclasses add what they do with it (generate, embed)."""

    component = "llm"
    noun = "language model"
    loaded_type = LoadedLlama
    category = ModelCategory.LANGUAGE
    engines: EngineRegistry[LanguageModel] = LANGUAGE_MODELS

    def load_model(
        self, model: str | os.PathLike[str] | None = None, *, n_ctx: int = 4096, n_threads: int | None = None,
        n_batch: int = 512, progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
    ) -> str:
        """Load a catalog id (pulled into the store on first use) or a ``.gguf`` path; returns its id.

        No model: the catalog's default. A model already loaded here is unloaded first.
        """
        return self._load(model, self.engines, self._options(n_ctx, n_threads, n_batch), progress=progress,
                          cancel=cancel)

    async def aload_model(
        self, model: str | os.PathLike[str] | None = None, *, n_ctx: int = 4096, n_threads: int | None = None,
        n_batch: int = 512, progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
    ) -> str:
        """Async twin of :meth:`load_model`."""
        return await self._aload(model, self.engines, self._options(n_ctx, n_threads, n_batch), progress=progress,
                                 cancel=cancel)

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` is to this model (BOS included), counted on the model's worker."""
        loaded = self._require()
        return loaded.worker.call(lambda: len(loaded.engine.tokenize(text, add_bos=True)))

    async def acount_tokens(self, text: str) -> int:
        """Async twin of :meth:`count_tokens`."""
        loaded = self._require()
        return await loaded.worker.acall(lambda _: len(loaded.engine.tokenize(text, add_bos=True)), CancelToken())

    def _options(self, n_ctx: int, n_threads: int | None, n_batch: int) -> dict[str, Any]:
        return {"n_ctx": n_ctx, "n_threads": n_threads, "n_batch": n_batch, **self._engine_options()}

    def _require(self) -> LoadedLlama:
        loaded = super()._require()
        assert isinstance(loaded, LoadedLlama)  # loaded_type makes every load one
        return loaded

    def _engine_options(self) -> dict[str, Any]:
        return {}
