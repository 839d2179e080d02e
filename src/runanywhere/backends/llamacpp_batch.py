"""Many sequences decoded together in one llama.cpp context: the engine half of continuous batching.

:class:`BatchContext` owns a second llama context on a loaded model's weights with one KV stream
per sequence id (``kv_unified=False``), each of ``n_ctx_seq`` cells. Each step is one ``llama_decode``
of a batch that holds prompt chunks and one token per decoding sequence; :class:`SequenceSampler` is
one sequence's own llama.cpp sampler chain (the chain llama-cpp-python builds for a single
generation, so a sequence samples as it would alone).

Why a sequence's greedy output equals the same request run alone (bit for bit), measured on
SmolLM2-135M and Qwen2.5-Coder-0.5B (issue 15): llama.cpp's CPU flash attention has three kernels
and picks one by the shape of the micro-batch, and they round differently. Over an f16 KV cache, 64
or more query rows of one stream take a tiled kernel, and a single token of a single stream over 512
or more cells splits the cells across threads; every other shape takes the row-by-row kernel. The
batch's KV cache is therefore **q8_0** (:data:`KV_TYPES`): llama.cpp has only the row-by-row kernel
for it, so a sequence's attention is computed the same way whatever else is in its micro-batch (a
lone token needs no pad token beside it, which cost a third of the decode speed of one stream),
and the cache takes about half the memory of f16. The rest:

* the row-by-row kernel walks a sequence's KV cells in cell order. In one unified cache the cells
  freed by a finished sequence are refilled by the others, so a sequence's cells stop being in
  position order and its attention sums in another order than alone. One stream per sequence
  keeps every sequence's cells in position order from cell 0, exactly as alone;
* prompts are evaluated in chunks of at most :data:`MAX_ROWS_PER_SEQUENCE` tokens, each chunk in a
  micro-batch of its own, so a prompt is cut the same way alone and with others;
* no matrix kernel may be chosen by the number of rows. llama.cpp's tiled K-quant kernel, which
  takes over from 8 rows, is kept off (``GGML_CPU_TILED_MM``, see ``llamacpp.py``), and a model with
  a type whose weights llama.cpp repacks for x86 kernels that round differently for 1 and for 4+
  rows (:data:`ROW_COUNT_VARIANT_REPACKS`) loads unrepacked when it batches. The multi-row kernels
  that remain (Q4_0 repacked, Q5_0, and Q4_1 and Q8_0 as the project's build patches them) give each
  element what the single-row path gives, bit for bit: checked for 2 to 8 rows on the logits of
  SmolLM2 (Q4_1, Q8_0) and Qwen2.5-Coder Q4_K_M (Q5_0, Q8_0, Q4_K, Q6_K) in ``tests/test_batching.py``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core.errors import GenerationError, ModelNotLoadedError
from .base import Sampling
from .llguidance_constraint import Constraint

#: How many recent tokens the repeat penalty looks at (llama-cpp-python's ``last_n_tokens_size`` default).
PENALTY_LAST_N = 64
FLASH_ATTN_ENABLED = 1  # llama_flash_attn_type: -1 auto, 0 disabled, 1 enabled
#: The most tokens of one sequence in one step (a prompt chunk).
MAX_ROWS_PER_SEQUENCE = 63
#: The batch's KV cache types (K, V) by preference, as ggml_type: q8_0 for both (half of f16's memory),
#: else f32 keys with f16 values for heads whose size q8_0's 32-value blocks do not divide (tiny test
#: models). llama.cpp's CPU attention has only its row-by-row kernel for either.
KV_TYPES = ((8, 8), (0, 1))
#: ggml types whose x86 repacked kernels (llama.cpp's extra CPU buffer types) differ for one row and
#: for four or more: Q4_K (measured), and Q2_K, IQ4_NL and MXFP4 (not verified, so treated alike). Q4_0's
#: repacked kernels agree bit for bit, so a Q4_0 model keeps them.
ROW_COUNT_VARIANT_REPACKS = frozenset({10, 12, 20, 39})


@dataclass(frozen=True)
class Chunk:
    """Tokens of one sequence for a step, from position ``start``; ``logits`` asks for the last one's."""

    seq_id: int
    tokens: Sequence[int]
    start: int
    logits: bool


class SequenceSampler:
    """One sequence's sampler chain: penalties, its grammar, then greedy or top-k/top-p/min-p/temperature.

    A :class:`Constraint` (llguidance) is not in the chain: it masks the logits before the chain samples.
    """

    def __init__(self, lib: Any, model: Any, sampling: Sampling, grammar: Any) -> None:
        self._lib = lib
        self._constrained = grammar.start() if isinstance(grammar, Constraint) else None
        params = lib.llama_sampler_chain_default_params()
        chain = lib.llama_sampler_chain_init(params)
        self._chain = chain

        def add(sampler: Any) -> None:
            lib.llama_sampler_chain_add(chain, sampler)

        vocab = lib.llama_model_get_vocab(model)
        add(lib.llama_sampler_init_penalties(lib.llama_vocab_n_tokens(vocab), PENALTY_LAST_N,
                                             sampling.repeat_penalty, 0.0, 0.0))
        if grammar is not None and self._constrained is None:
            add(lib.llama_sampler_init_grammar(vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")))
        if sampling.temperature == 0:
            add(lib.llama_sampler_init_greedy())
        else:
            seed = sampling.seed if sampling.seed is not None else int.from_bytes(os.urandom(4), "little")
            add(lib.llama_sampler_init_top_k(sampling.top_k))
            add(lib.llama_sampler_init_typical(1.0, 1))
            add(lib.llama_sampler_init_top_p(sampling.top_p, 1))
            add(lib.llama_sampler_init_min_p(sampling.min_p, 1))
            add(lib.llama_sampler_init_temp(sampling.temperature))
            add(lib.llama_sampler_init_dist(seed))

    def sample(self, ctx: Any, index: int) -> int:
        """Sample (and accept) the next token from the logits of batch row ``index``."""
        constrained = self._constrained
        if constrained is None:
            return int(self._lib.llama_sampler_sample(self._chain, ctx, index))
        if constrained.complete:
            return constrained.end_token  # the grammar admits nothing else
        constrained.mask_at(self._lib.llama_get_logits_ith(ctx, index))
        token = int(self._lib.llama_sampler_sample(self._chain, ctx, index))
        constrained.accept(token)
        return token

    def close(self) -> None:
        if self._chain is not None:
            self._lib.llama_sampler_free(self._chain)
            self._chain = None


class BatchContext:
    """A llama context with ``n_seq`` sequence ids, each with a KV stream of ``n_ctx_seq`` cells, decoded in steps."""

    def __init__(self, lib: Any, model: Any, *, n_ctx_seq: int, n_batch: int, n_seq: int, n_threads: int) -> None:
        """``n_batch``: the most prompt tokens evaluated in one step (over all sequences)."""
        self._lib, self._model = lib, model
        capacity = max(MAX_ROWS_PER_SEQUENCE, n_seq)  # one prompt chunk, or a token of every stream
        params = lib.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = n_ctx_seq * n_seq, capacity, capacity
        params.n_seq_max, params.kv_unified = n_seq, False  # a KV stream per sequence: cells in position order
        params.n_threads = params.n_threads_batch = n_threads
        params.no_perf = True
        params.flash_attn_type = FLASH_ATTN_ENABLED  # llama.cpp quantizes a V cache only with flash attention
        self.ctx = None
        for params.type_k, params.type_v in KV_TYPES:
            self.ctx = lib.llama_init_from_model(model, params)
            if self.ctx:
                break
        if not self.ctx:
            raise GenerationError(f"llama.cpp could not make a context of {n_seq} sequences of {n_ctx_seq} tokens")
        self._memory = lib.llama_get_memory(self.ctx)
        self.n_ctx_seq, self.n_batch, self.n_seq = int(lib.llama_n_ctx_seq(self.ctx)), n_batch, n_seq
        self.threads = n_threads
        self._batch = lib.llama_batch_init(capacity, 0, 1)

    def sampler(self, sampling: Sampling, grammar: Any) -> SequenceSampler:
        return SequenceSampler(self._lib, self._model, sampling, grammar)

    def decode(self, chunks: Sequence[Chunk]) -> dict[int, int]:
        """Evaluate ``chunks`` (one prompt chunk, or one token each of several sequences) in one llama.cpp
        micro-batch; their logits rows by sequence id.

        llama.cpp puts only consecutive streams in one micro-batch: sequences whose ids have gaps between
        them are decoded in one micro-batch per run of consecutive ids (the same attention kernel, one
        more pass over the weights each), so the scheduler keeps their ids close.
        """
        ctx = self._live()
        batch, rows, n = self._batch, {}, 0
        for chunk in sorted(chunks, key=lambda c: c.seq_id):
            for offset, token in enumerate(chunk.tokens):
                batch.token[n], batch.pos[n], batch.n_seq_id[n] = token, chunk.start + offset, 1
                batch.seq_id[n][0] = chunk.seq_id
                batch.logits[n] = chunk.logits and offset == len(chunk.tokens) - 1
                n += 1
            if chunk.logits:
                rows[chunk.seq_id] = n - 1
        batch.n_tokens = n
        status = self._lib.llama_decode(ctx, batch)
        if status != 0:
            raise GenerationError(f"llama.cpp could not decode a batch of {n} tokens (status {status})",
                                  details={"status": status, "tokens": n})
        return rows

    def set_threads(self, n_threads: int) -> None:
        if n_threads != self.threads:
            self._lib.llama_set_n_threads(self._live(), n_threads, n_threads)
            self.threads = n_threads

    def drop(self, seq_id: int, start: int = 0) -> None:
        """Free a sequence's cache cells from position ``start`` on (all of them by default)."""
        self._lib.llama_memory_seq_rm(self._memory, seq_id, start, -1)

    def _live(self) -> Any:
        if self.ctx is None:
            raise ModelNotLoadedError("the language model was unloaded; load it again")
        return self.ctx

    def close(self) -> None:
        if self.ctx is not None:
            self._lib.llama_batch_free(self._batch)
            self._lib.llama_free(self.ctx)
            self.ctx = None
