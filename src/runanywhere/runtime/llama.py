"""The llama.cpp flavour of :class:`ModelHolder`, shared by text generation and embeddings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

from ..backends.base import LanguageModel
from ..backends.registry import LANGUAGE_MODELS, EngineRegistry
from ..core.cancel import CancelToken
from ..core.capabilities import physical_cores
from ..core.errors import InvalidInputError, SDKErrorCode
from ..core.validation import MAX_THREADS, integer
from ..models.catalog import ModelCategory
from ..models.manager import ProgressCallback
from .holder import Loaded, ModelHolder

#: The context lengths a load accepts; llama.cpp cannot make a smaller one, and a larger one would not fit in memory.
MIN_CONTEXT, MAX_CONTEXT = 16, 1 << 20
#: The most generations one model runs at once (llama.cpp allows 256 sequence ids; each also keeps one parked).
MAX_SEQUENCES = 64
#: The KV cache, in tokens, the default ``max_sequences`` may take: each sequence (and each parked
#: conversation) has a context of ``n_ctx`` tokens of its own, so 2 x max_sequences x n_ctx of them.
DEFAULT_KV_TOKENS = 32768


def default_max_sequences(n_ctx: int) -> int:
    """Generations run at once by default: 4 on up to 4 cores, 8 beyond, fewer when their contexts (and as
    many parked conversations) would pass :data:`DEFAULT_KV_TOKENS`; 1 (one at a time) when two would."""
    wanted = 8 if physical_cores() > 4 else 4
    return max(1, min(wanted, DEFAULT_KV_TOKENS // (2 * n_ctx)))

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
    #: Whether this holder runs several generations at once (``max_sequences``); text generation does.
    batching: ClassVar[bool] = False

    def load_model(
        self, model: str | os.PathLike[str] | None = None, *, n_ctx: int = 4096, n_threads: int | None = None,
        n_batch: int = 512, max_sequences: int | None = None, progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> str:
        """Load a catalog id (pulled into the store on first use) or a ``.gguf`` path; returns its id.

        No model: the catalog's default. A model already loaded here is unloaded first. ``max_sequences``
        (text generation): run up to that many generations at once by continuous batching, each with a
        context of ``n_ctx`` tokens of its own (and as many finished conversations kept for their next
        turn, so the KV cache holds 2 x max_sequences x n_ctx tokens); None chooses
        :func:`default_max_sequences`; 1 runs them one at a time, in order, in a single llama.cpp context.
        """
        return self._load(model, self.engines, self._options(n_ctx, n_threads, n_batch, max_sequences),
                          progress=progress, cancel=cancel)

    async def aload_model(
        self, model: str | os.PathLike[str] | None = None, *, n_ctx: int = 4096, n_threads: int | None = None,
        n_batch: int = 512, max_sequences: int | None = None, progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> str:
        """Async twin of :meth:`load_model`."""
        return await self._aload(model, self.engines, self._options(n_ctx, n_threads, n_batch, max_sequences),
                                 progress=progress, cancel=cancel)

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` is to this model (BOS included), counted on the model's worker."""
        loaded = self._require()
        return loaded.worker.call(lambda: len(loaded.engine.tokenize(text, add_bos=True)))

    async def acount_tokens(self, text: str) -> int:
        """Async twin of :meth:`count_tokens`."""
        loaded = self._require()
        return await loaded.worker.acall(lambda _: len(loaded.engine.tokenize(text, add_bos=True)), CancelToken())

    def _options(self, n_ctx: int, n_threads: int | None, n_batch: int,
                 max_sequences: int | None = None) -> dict[str, Any]:
        """The engine's load options, checked before anything is resolved or loaded."""
        options = {"n_ctx": integer("n_ctx", n_ctx, low=MIN_CONTEXT, high=MAX_CONTEXT),
                   "n_threads": None if n_threads is None else integer("n_threads", n_threads, low=1,
                                                                       high=MAX_THREADS),
                   "n_batch": integer("n_batch", n_batch, low=1, high=MAX_CONTEXT), **self._engine_options()}
        if self.batching:
            wanted = (default_max_sequences(options["n_ctx"]) if max_sequences is None
                      else integer("max_sequences", max_sequences, low=1, high=MAX_SEQUENCES))
            options["max_sequences"] = 0 if wanted == 1 else wanted  # 0: one at a time, no batch context
        elif max_sequences is not None:
            raise InvalidInputError(f"a {self.noun} runs one request at a time; max_sequences is for text generation",
                                    code=SDKErrorCode.INVALID_PARAMETER)
        return options

    def _require(self) -> LoadedLlama:
        return cast(LoadedLlama, super()._require())  # loaded_type makes every load one

    def _engine_options(self) -> dict[str, Any]:
        return {}
