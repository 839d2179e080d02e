"""Sentence embeddings from a BERT-style ONNX model through onnxruntime, tokenised with ``tokenizers``.

The model (all-MiniLM-L6-v2 int8, say) takes ``input_ids``, ``attention_mask``
and, if it has that input, ``token_type_ids``, and gives token vectors
``[batch, tokens, width]``; a sentence's vector is their mean over its real
tokens (what sentence-transformers does for MiniLM). The tokenizer's own
padding and truncation are switched off (MiniLM's ``tokenizer.json`` pads to
128): texts are padded per batch to the longest, batches are formed from texts
of similar length, and a text longer than ``max_tokens`` keeps its first
tokens and its closing ``[SEP]``; :meth:`OnnxEmbedder.token_counts` lets the
feature report such cuts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.engines import WEIGHTS
from ..core.errors import BackendError, InvalidInputError, ModelFormatError, SDKFileNotFoundError
from ..core.validation import choice
from . import require_engine
from .base import ModelFiles
from .onnx_session import first_line, open_session

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

TOKENIZER = "tokenizer"
"""The role of ``tokenizer.json`` in a catalog entry."""
BATCH_SIZE = 32
"""Texts run through the model at once: bounded memory, little padding (texts are batched by length)."""


def open_onnx_embedder(files: ModelFiles, **options: Any) -> OnnxEmbedder:
    """The embedding factory: the catalog's ``weights`` (.onnx) and ``tokenizer`` (tokenizer.json),
    or a model path with ``tokenizer.json`` next to it."""
    model = files.file(WEIGHTS)
    tokenizer = files.file(TOKENIZER) if files.has_role(TOKENIZER) else model.with_name("tokenizer.json")
    return OnnxEmbedder(model, tokenizer, **options)


class OnnxEmbedder:
    """One ONNX sentence-embedding model: texts in, one mean-pooled vector per text out (not normalised).

    ``n_ctx`` is the most tokens of a text the model sees (the rest is cut);
    ``pooling`` may only be ``"mean"`` (or None), the pooling these models were trained with.
    """

    def __init__(self, model: Path, tokenizer: Path, *, n_ctx: int = 512, n_threads: int | None = None,
                 pooling: str | None = None) -> None:
        ort = require_engine("onnxruntime")
        tokenizers = require_engine("tokenizers")
        if pooling is not None and choice("pooling", pooling, ("mean", "cls", "last")) != "mean":
            raise InvalidInputError(f"{model.name} is an ONNX sentence model, mean-pooled; pooling {pooling!r} "
                                    "is for GGUF embedding models")
        for path in (model, tokenizer):
            if not path.is_file():
                raise SDKFileNotFoundError(f"embedding model file not found: {path}", details={"path": str(path)})
        self.session = open_session(ort, model, n_threads)
        self._inputs = {i.name for i in self.session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= self._inputs or not self._inputs <= {
                "input_ids", "attention_mask", "token_type_ids"}:
            raise ModelFormatError(f"{model.name} is not a BERT-style encoder (its inputs are {sorted(self._inputs)})")
        try:
            self.tokenizer = tokenizers.Tokenizer.from_file(str(tokenizer))
        except Exception as exc:  # tokenizers raises a bare Exception for a file it cannot parse
            raise ModelFormatError(f"{tokenizer.name} is not a tokenizers JSON file: {first_line(exc)}") from exc
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.max_tokens = n_ctx
        self.dimension = self._probe(model.name)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """How many tokens each text is (special tokens included), before any cut to :attr:`max_tokens`."""
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts))]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Mean-pooled vectors, one per text, in order; a text of no tokens is an :class:`InvalidInputError`."""
        ids = [self._cut(e.ids) for e in self.tokenizer.encode_batch(list(texts))]
        if any(len(i) == 0 for i in ids):
            raise InvalidInputError("a text gives no tokens to embed; pass some text")
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        vectors: list[list[float]] = [[] for _ in ids]
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start:start + BATCH_SIZE]
            for i, vector in zip(batch, self._run([ids[i] for i in batch]), strict=True):
                vectors[i] = [float(x) for x in vector]
        return vectors

    def close(self) -> None:
        del self.session

    # ------------------------------------------------------------ internals
    def _cut(self, ids: list[int]) -> list[int]:
        """At most :attr:`max_tokens` ids, keeping the last (the closing ``[SEP]``)."""
        return ids if len(ids) <= self.max_tokens else [*ids[:self.max_tokens - 1], ids[-1]]

    def _run(self, batch: list[list[int]]) -> NDArray[np.float32]:
        import numpy as np

        width = max(len(i) for i in batch)
        input_ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros_like(input_ids)
        for row, ids in enumerate(batch):
            input_ids[row, :len(ids)] = ids
            mask[row, :len(ids)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        try:
            hidden = np.asarray(self.session.run(None, feeds)[0], dtype=np.float32)
        except Exception as exc:  # onnxruntime's errors share no base class beyond Exception
            raise BackendError(f"onnxruntime failed to embed: {first_line(exc)}") from exc
        if hidden.ndim != 3 or hidden.shape[:2] != input_ids.shape:
            raise ModelFormatError(f"the model's first output has shape {hidden.shape}, not [batch, tokens, width]")
        weights = mask[:, :, None].astype(np.float32)
        pooled: NDArray[np.float32] = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
        return pooled

    def _probe(self, name: str) -> int:
        """Run the longest input once: the vector width, and a model with fewer positions fails here."""
        try:
            return int(self._run([[0] * self.max_tokens]).shape[1])
        except BackendError as exc:
            raise InvalidInputError(f"{name} cannot take {self.max_tokens} tokens (n_ctx): {exc.message}") from exc
