"""Sentence embeddings with llama.cpp or onnxruntime: float32 vectors, pooled and (by default) L2-normalised.

A GGUF embedding model loads directly in llama.cpp. A sentence-transformers
BERT model in its Hugging Face layout (``model.safetensors`` + ``config.json``
+ vocab), such as the packaged all-MiniLM-L6-v2, is converted to GGUF once by
:func:`runanywhere.models.convert.convert_bert_to_gguf` and the result is kept
in the store with the model (:meth:`~runanywhere.models.manager.ModelLibrary.derive`).
An ONNX encoder with its ``tokenizer.json`` (``all-minilm-l6-v2-onnx``) runs on
onnxruntime instead; it cuts a text longer than its ``n_ctx`` tokens, and the
:class:`EmbeddingsGenerated` event and a warning say how many texts were cut.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backends.base import Embedder
from ..backends.registry import EMBEDDERS, EngineRegistry
from ..core.cancel import CancelToken
from ..core.engines import WEIGHTS
from ..core.errors import InvalidInputError, ModelFormatError
from ..core.events import EmbeddingsGenerated, EventBus
from ..core.logging import SDKLogger
from ..core.validation import MAX_THREADS, choice, flag, integer, texts
from ..core.validation import text as checked_text
from ..models.catalog import ModelCategory
from ..models.manager import LocalModel, ModelLibrary, ProgressCallback
from ..runtime.holder import ModelHolder
from ..runtime.llama import MAX_CONTEXT, MIN_CONTEXT

if TYPE_CHECKING:  # numpy is imported on first use, keeping `import runanywhere` light
    import numpy as np
    from numpy.typing import NDArray

#: How token vectors become one sentence vector, when a model's own pooling is overridden.
POOLINGS = ("mean", "cls", "last")
_log = SDKLogger("Embeddings")


class EmbeddingGenerator(ModelHolder[Embedder]):
    """Loads an embedding model and turns texts into vectors (``numpy.float32``)."""

    component = "embedding"
    noun = "embedding model"
    category = ModelCategory.EMBEDDING
    engines: EngineRegistry[Embedder] = EMBEDDERS

    def __init__(self, models: ModelLibrary | None = None, *, events: EventBus | None = None) -> None:
        super().__init__(models, events=events)
        self.normalize = True

    def load_model(
        self, model: str | os.PathLike[str] | None = None, *, pooling: str | None = None, normalize: bool = True,
        n_ctx: int = 512, n_threads: int | None = None, progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> str:
        """Load a GGUF or ONNX embedding model or a BERT sentence-transformers directory (none: the catalog's
        default).

        ``pooling`` (``"mean"``, ``"cls"``, ``"last"``) overrides a GGUF model's own;
        ``normalize`` makes every vector unit length (cosine = dot product);
        ``n_ctx`` is the longest text in tokens.
        """
        return self._load(model, self.engines, self._options(pooling, normalize, n_ctx, n_threads),
                          progress=progress, cancel=cancel)

    async def aload_model(
        self, model: str | os.PathLike[str] | None = None, *, pooling: str | None = None, normalize: bool = True,
        n_ctx: int = 512, n_threads: int | None = None, progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> str:
        """Async twin of :meth:`load_model`."""
        return await self._aload(model, self.engines, self._options(pooling, normalize, n_ctx, n_threads),
                                 progress=progress, cancel=cancel)

    def _options(self, pooling: str | None, normalize: bool, n_ctx: int, n_threads: int | None) -> dict[str, Any]:
        """The engine's load options, checked before anything is resolved or loaded."""
        self.normalize = flag("normalize", normalize)
        return {"pooling": None if pooling is None else choice("pooling", pooling, POOLINGS),
                "n_ctx": integer("n_ctx", n_ctx, low=MIN_CONTEXT, high=MAX_CONTEXT),
                "n_threads": None if n_threads is None else integer("n_threads", n_threads, low=1, high=MAX_THREADS)}

    def _engine_name(self, model: str, engines: EngineRegistry[Embedder]) -> str:
        """A ``.onnx`` file given by path runs on onnxruntime; other paths on llama.cpp."""
        if model not in self._models.catalog and Path(model).suffix == ".onnx":
            return "onnx"
        return super()._engine_name(model, engines)

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` is to this model (special tokens included), counted on the model's worker."""
        loaded = self._require()
        return loaded.worker.call(lambda: loaded.engine.token_counts([checked_text("text", text)])[0])

    async def acount_tokens(self, text: str) -> int:
        """Async twin of :meth:`count_tokens`."""
        loaded = self._require()
        return await loaded.worker.acall(lambda _: loaded.engine.token_counts([checked_text("text", text)])[0],
                                         CancelToken())

    def _model_files(self, local: LocalModel, cancel: CancelToken | None) -> LocalModel:
        if local.has_role(WEIGHTS) and local.file(WEIGHTS).suffix in (".gguf", ".onnx"):
            return local
        directory = local.path if local.path.is_dir() else local.path.parent
        if not (directory / "config.json").is_file():
            raise ModelFormatError(f"{local.id}: neither a .gguf file nor a BERT model directory")

        def convert(path: Path) -> None:
            from ..models.convert import convert_bert_to_gguf

            convert_bert_to_gguf(directory, path, cancel=cancel)

        converted = self._models.derive(local, "model-f16.gguf", convert, cancel=cancel)
        return replace(local, roles={**local.roles, WEIGHTS: converted})

    def embed(self, text: str) -> NDArray[np.float32]:
        """One text's vector, shape ``(dimension,)``."""
        vector: NDArray[np.float32] = self.embed_batch([checked_text("text", text)])[0]
        return vector

    async def aembed(self, text: str) -> NDArray[np.float32]:
        """Async twin of :meth:`embed`."""
        vector: NDArray[np.float32] = (await self.aembed_batch([checked_text("text", text)]))[0]
        return vector

    def embed_batch(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Vectors for many texts, shape ``(len(texts), dimension)``; same values as one by one."""
        batch, loaded, started = _checked(texts), self._require(), time.perf_counter()
        return self._finish(*loaded.worker.call(_embed, loaded.engine, batch), started)

    async def aembed_batch(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Async twin of :meth:`embed_batch`: the model's worker embeds while the loop awaits."""
        batch, loaded, started = _checked(texts), self._require(), time.perf_counter()
        return self._finish(*await loaded.worker.acall(lambda _: _embed(loaded.engine, batch), CancelToken()),
                            started)

    def _finish(self, raw: Any, cut: int, started: float) -> NDArray[np.float32]:
        """The engine's vectors as float32, normalised when asked; announced on the bus (with any cuts)."""
        import numpy as np

        if cut:
            _log.warning("%d of %d texts were longer than the model's context and were cut", cut, len(raw))

        vectors = np.asarray(raw, dtype=np.float32)
        if self.normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.maximum(norms, 1e-12)
        self._events.emit(EmbeddingsGenerated(num_embeddings=len(vectors), dimension=int(vectors.shape[1]),
                                              processing_time_ms=(time.perf_counter() - started) * 1000,
                                              truncated_texts=cut))
        return vectors

    @staticmethod
    def cosine_similarity(a: NDArray[np.floating[Any]], b: NDArray[np.floating[Any]]) -> float:
        import numpy as np

        try:
            a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidInputError(f"cosine_similarity takes two vectors of numbers: {exc}") from None
        if a64.shape != b64.shape:
            raise InvalidInputError(f"vectors differ in shape: {a64.shape} vs {b64.shape}")
        if a64.ndim != 1 or not (np.isfinite(a64).all() and np.isfinite(b64).all()):
            raise InvalidInputError(f"cosine_similarity takes 1-D vectors of finite numbers, got shape {a64.shape}")
        denom = float(np.linalg.norm(a64) * np.linalg.norm(b64))
        return float(a64 @ b64 / denom) if denom else 0.0


def _embed(engine: Embedder, batch: list[str]) -> tuple[list[list[float]], int]:
    """The vectors of ``batch`` and how many of its texts the engine cut to its context (on the worker)."""
    cut = sum(n > engine.max_tokens for n in engine.token_counts(batch))
    return engine.embed(batch), cut


def _checked(batch: Sequence[str]) -> list[str]:
    if isinstance(batch, str):
        raise InvalidInputError("embed_batch takes a list of texts; use embed() for one")
    return list(texts("texts", batch, allow_empty=False))


Embeddings = EmbeddingGenerator()
