"""Many sequences decoded together in one llama.cpp context: the engine half of continuous batching.

:class:`BatchContext` owns a second llama context on a loaded model's weights, made with several
sequence ids over one unified KV cache (the budget is shared, not split into fixed slots). Each
step is one ``llama_decode`` of a batch that holds prompt chunks and one token per decoding
sequence; :class:`SequenceSampler` is one sequence's own llama.cpp sampler chain (the chain
llama-cpp-python builds for a single generation, so a sequence samples as it would alone).
Plain Python values in and out; used only from the model's worker thread.
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
    """A llama context with ``n_seq`` sequence ids over one KV cache of ``n_ctx`` cells, decoded in steps."""

    def __init__(self, lib: Any, model: Any, *, n_ctx: int, n_batch: int, n_seq: int, n_threads: int) -> None:
        self._lib, self._model = lib, model
        params = lib.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = n_ctx, n_batch, n_batch
        params.n_seq_max, params.kv_unified = n_seq, True
        params.n_threads = params.n_threads_batch = n_threads
        params.no_perf = True
        # Flash attention walks each sequence's own cells in order and skips the others, so a sequence's
        # logits do not depend on where its neighbours sit in the unified cache: greedy output in a batch
        # equals the same request alone (without it, the summation order follows the cell layout).
        params.flash_attn_type = FLASH_ATTN_ENABLED
        self.ctx = lib.llama_init_from_model(model, params)
        if not self.ctx:
            raise GenerationError(f"llama.cpp could not make a context of {n_ctx} tokens for {n_seq} sequences")
        self._memory = lib.llama_get_memory(self.ctx)
        self.n_ctx, self.n_batch, self.n_seq, self.threads = int(lib.llama_n_ctx(self.ctx)), n_batch, n_seq, n_threads
        self._batch = lib.llama_batch_init(n_batch, 0, 1)

    def sampler(self, sampling: Sampling, grammar: Any) -> SequenceSampler:
        return SequenceSampler(self._lib, self._model, sampling, grammar)

    def decode(self, chunks: Sequence[Chunk]) -> dict[int, int]:
        """Evaluate ``chunks`` in one batch (at most ``n_batch`` tokens); their logits rows by sequence id."""
        ctx = self._live()
        batch, rows, n = self._batch, {}, 0
        for chunk in chunks:
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

    def cells_used(self) -> int:
        """How many KV cells the sequences hold (each sequence's positions are contiguous from 0)."""
        if self.ctx is None:
            return 0
        return sum(int(self._lib.llama_memory_seq_pos_max(self._memory, seq)) + 1 for seq in range(self.n_seq))

    def _live(self) -> Any:
        if self.ctx is None:
            raise ModelNotLoadedError("the language model was unloaded; load it again")
        return self.ctx

    def close(self) -> None:
        if self.ctx is not None:
            self._lib.llama_batch_free(self._batch)
            self._lib.llama_free(self.ctx)
            self.ctx = None
