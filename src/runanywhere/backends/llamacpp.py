"""llama.cpp through llama-cpp-python: the one module that imports ``llama_cpp``.

:class:`LlamaEngine` wraps one loaded GGUF model and is used from one thread
at a time (the feature's worker). It speaks plain Python values: token ids,
bytes, strings, numpy arrays. Cancellation reaches into llama.cpp itself: an
abort callback is installed while a prompt is evaluated, so a long prefill
stops within one graph node; during decode the token loop checks the token
(leaving the callback off, since llama.cpp would call it per graph node).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..core.cancel import CancelToken
from ..core.engines import WEIGHTS
from ..core.errors import (
    CancelledError,
    ContextLengthError,
    GenerationError,
    InvalidInputError,
    ModelFormatError,
    SDKErrorCode,
    SDKFileNotFoundError,
)
from ..core.json_schema import checked_schema
from ..core.validation import choice
from . import require_engine
from .base import ChatPrompt, ModelFiles, Sampling, ToolCallGrammar, default_threads
from .gguf_types import MAGIC, tensor_types
from .llama_grammar import bounded_grammar
from .llamacpp_batch import ROW_COUNT_VARIANT_REPACKS, BatchContext
from .llguidance_constraint import Constraint, ModelConstraints

_POOLING = {"none": 0, "mean": 1, "cls": 2, "last": 3}
_SINGLE_CTX = 256  # the single-sequence context of a batched model: llama.cpp's smallest
_SYSTEM_PROBE = "\u241erunanywhere-system-probe\u241e"  # text no real system prompt contains
#: llama.cpp's tiled K-quant matrix kernel takes over from 8 rows on and rounds unlike the row kernel, so
#: a sequence decoded among 7 others would part from its greedy reply alone; it stays off unless the
#: environment asks for it (K-quant prompts evaluate about 9 % slower without it).
_TILED_MATMUL = "GGML_CPU_TILED_MM"


def _llama() -> Any:
    os.environ.setdefault(_TILED_MATMUL, "0")  # read once, at llama.cpp's first matrix product
    return require_engine("llama_cpp")


_PARAMS_LOCK = threading.Lock()


@contextlib.contextmanager
def _model_params(llama_cpp: Any, **fields: Any) -> Iterator[None]:
    """While it lasts, llama.cpp's default model parameters carry ``fields``: llama-cpp-python's ``Llama``
    builds its parameters from those defaults and takes no argument for some (``use_extra_bufts``)."""
    lib = llama_cpp.llama_cpp
    with _PARAMS_LOCK:
        default = lib.llama_model_default_params

        def amended() -> Any:
            params = default()
            for name, value in fields.items():
                setattr(params, name, value)
            return params

        lib.llama_model_default_params = amended
        try:
            yield
        finally:
            lib.llama_model_default_params = default


def check_gguf(path: Path) -> None:
    """Fail early and clearly on a missing, empty or non-GGUF file (llama.cpp would only say 'failed')."""
    if not path.is_file():
        raise SDKFileNotFoundError(f"model file not found: {path}")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != MAGIC:
        raise ModelFormatError(f"{path.name} is not a GGUF file (starts with {magic!r}); llama.cpp needs .gguf")


def open_llama(files: ModelFiles, **options: Any) -> LlamaEngine:
    """The language-model and embedding factory: the model's ``weights`` GGUF with llama.cpp options."""
    return LlamaEngine(files.file(WEIGHTS), **options)


def open_llama_embedder(files: ModelFiles, **options: Any) -> LlamaEngine:
    """The embedding factory: the model's ``weights`` GGUF loaded for pooled embeddings."""
    return LlamaEngine(files.file(WEIGHTS), embedding=True, **options)


class LlamaEngine:
    """One GGUF model loaded in llama.cpp."""

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        embedding: bool = False,
        pooling: str | None = None,
        max_sequences: int = 0,
    ) -> None:
        """``max_sequences`` > 0 adds a :class:`BatchContext` where that many generations run at once, each
        with a context of ``n_ctx`` tokens (and as many finished conversations stay cached); the
        single-sequence context is then only the minimum, since generation goes through the batch."""
        check_gguf(path)
        llama_cpp = _llama()
        threads = n_threads or default_threads()
        kwargs: dict[str, Any] = {}
        if pooling is not None:
            kwargs["pooling_type"] = _POOLING[choice("pooling", pooling, _POOLING)]
        single_ctx = min(n_ctx, _SINGLE_CTX) if max_sequences else n_ctx
        unrepacked = bool(max_sequences) and bool(tensor_types(path) & ROW_COUNT_VARIANT_REPACKS)
        try:
            with _model_params(llama_cpp, use_extra_bufts=False) if unrepacked else contextlib.nullcontext():
                self.llm = llama_cpp.Llama(
                    model_path=str(path), n_ctx=single_ctx, n_threads=threads, n_threads_batch=threads,
                    n_batch=min(n_batch, single_ctx), n_ubatch=min(n_batch, single_ctx), embedding=embedding,
                    verbose=False, **kwargs,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelFormatError(f"llama.cpp could not load {path.name}: {exc}; is it a complete GGUF?") from exc
        self.path = path
        if embedding and llama_cpp.llama_pooling_type(self.llm._ctx.ctx) == llama_cpp.LLAMA_POOLING_TYPE_NONE:
            self.llm.close()
            raise ModelFormatError(f"{path.name} pools no sentence vector (a chat model gives one per token); "
                                   "load an embedding model, or pass pooling='mean'")
        self._lib = llama_cpp  # kept: is_end() runs once per token and must not go through the importer
        self._abort_flag = False
        self._abort_cb = llama_cpp.ggml_abort_callback(lambda _data: self._abort_flag)
        self._no_abort_cb = ctypes.cast(0, llama_cpp.ggml_abort_callback)  # NULL: no callback
        self._batch: BatchContext | None = None
        self._constraints: ModelConstraints | None = None
        if max_sequences:
            try:
                self._batch = BatchContext(llama_cpp, self.llm._model.model, n_ctx_seq=n_ctx,
                                           n_batch=n_batch,
                                           n_seq=2 * max_sequences, n_threads=threads)
            except BaseException:
                self.llm.close()
                raise

    @property
    def batch(self) -> BatchContext | None:
        return self._batch

    # ------------------------------------------------------------------ model
    @property
    def n_ctx(self) -> int:
        """The most tokens one conversation holds (each batched sequence has a context of its own)."""
        return self._batch.n_ctx_seq if self._batch is not None else int(self.llm.n_ctx())

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self.llm.metadata)

    @property
    def chat_template(self) -> str | None:
        template = self.llm.metadata.get("tokenizer.chat_template")
        return str(template) if template else None

    @property
    def n_embd(self) -> int:
        return int(self.llm.n_embd())

    def tokenize(self, text: str, *, add_bos: bool = True, special: bool = False) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special))

    def piece(self, token: int) -> bytes:
        """The bytes one token contributes to the text (special tokens render empty)."""
        return bytes(self.llm.detokenize([token]))

    def is_end(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self.llm._model.vocab, token))

    def token_text(self, token_id: int) -> str:
        return bytes(self.llm.detokenize([token_id], special=True)).decode("utf-8", "replace")

    def render_chat(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None, *,
        add_generation_prompt: bool = True, default_system: bool = True,
    ) -> ChatPrompt:
        """Apply the model's own chat template (GGUF ``tokenizer.chat_template``); without the
        generation prompt the text is where the next turn of the conversation starts.

        ``default_system=False`` renders a chat that has no system message (and no tools) without
        the default system prompt some templates insert on their own (SmolLM2's, Qwen's).
        """
        text, stop = self._render(messages, tools, add_generation_prompt)
        if not default_system and not tools and messages and messages[0].get("role") != "system":
            text = self._without_default_system(messages, add_generation_prompt) or text
        bos = self._bos()
        return ChatPrompt(text, stop, add_bos=not (bos and text.startswith(bos)))

    def _bos(self) -> str:
        return self.token_text(self.llm.token_bos()) if self.llm.token_bos() >= 0 else ""

    def _render(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None,
                add_generation_prompt: bool) -> tuple[str, tuple[str, ...]]:
        template = self.chat_template
        if not template:
            raise InvalidInputError(
                f"{self.path.name} has no chat template; pass a plain prompt with raw=True",
                code=SDKErrorCode.INVALID_PROMPT,
            )
        formatter_cls = require_engine("llama_cpp.llama_chat_format").Jinja2ChatFormatter
        formatter = formatter_cls(template=template, eos_token=self.token_text(self.llm.token_eos()),
                                  bos_token=self._bos(),
                                  add_generation_prompt=add_generation_prompt)
        try:
            rendered = formatter(messages=list(messages), tools=list(tools) if tools else None)
        except Exception as exc:  # jinja2 raises many kinds; all mean the template cannot render these messages
            raise InvalidInputError(f"the chat template could not render these messages: {exc}",
                                    code=SDKErrorCode.INVALID_PROMPT) from exc
        stop = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop] if rendered.stop else []
        return rendered.prompt, tuple(s for s in stop if s)

    def _without_default_system(self, messages: Sequence[dict[str, Any]], add_generation_prompt: bool) -> str | None:
        """The chat rendered with a probe system message whose block is then cut out (a leading BOS kept);
        None when the template does not render the probe as a leading block of its own."""
        probe = [{"role": "system", "content": _SYSTEM_PROBE}]
        block = self._render(probe, None, False)[0]
        full = self._render(probe + list(messages), None, add_generation_prompt)[0]
        if _SYSTEM_PROBE not in block or not full.startswith(block):
            return None
        rest, bos = full[len(block):], self._bos()
        return bos + rest if bos and block.startswith(bos) and not rest.startswith(bos) else rest

    # ------------------------------------------------------------- generation
    def clear_cache(self) -> None:
        """Empty the single context's KV cache."""
        self.llm.reset()
        self.llm._ctx.kv_cache_clear()

    def cached_prefix(self, tokens: Sequence[int]) -> int:
        """How many leading tokens of ``tokens`` are already in the KV cache."""
        n = 0
        for cached, new in zip(self.llm._input_ids[: self.llm.n_tokens], tokens, strict=False):
            if cached != new:
                break
            n += 1
        return min(n, len(tokens) - 1) if n == len(tokens) else n

    def generate(
        self, tokens: Sequence[int], sampling: Sampling, cancel: CancelToken, *,
        grammar: Any = None, n_threads: int | None = None,
    ) -> Iterator[int]:
        """Yield sampled tokens; the KV cache keeps the longest common prefix with the last call."""
        if len(tokens) >= self.n_ctx:
            raise ContextLengthError(
                f"the prompt is {len(tokens)} tokens but the context holds {self.n_ctx}; "
                "shorten it or load the model with a larger n_ctx",
                details={"prompt_tokens": len(tokens), "n_ctx": self.n_ctx},
            )
        llama_cpp = self._lib
        if n_threads:
            llama_cpp.llama_set_n_threads(self.llm._ctx.ctx, n_threads, n_threads)
        self.llm.set_seed(sampling.seed if sampling.seed is not None else int.from_bytes(os.urandom(4), "little"))
        constrained = grammar.start() if isinstance(grammar, Constraint) else None
        prefill = True
        try:
            with self._aborting(cancel):
                stream = self.llm.generate(
                    list(tokens), top_k=sampling.top_k, top_p=sampling.top_p, min_p=sampling.min_p,
                    temp=sampling.temperature, repeat_penalty=sampling.repeat_penalty,
                    grammar=None if constrained else grammar,
                    logits_processor=[lambda _ids, logits: constrained.mask(logits)] if constrained else None,
                )
                for token in stream:
                    if prefill:
                        prefill = False
                        llama_cpp.llama_set_abort_callback(self.llm._ctx.ctx, self._no_abort_cb, None)
                    if cancel.cancelled:
                        return
                    if constrained is not None:
                        constrained.accept(int(token))
                    yield int(token)
                    if constrained is not None and constrained.complete:
                        yield constrained.end_token  # the only token the grammar admits next: no step needed
                        return
        except RuntimeError as exc:
            if cancel.cancelled:
                raise CancelledError("generation was cancelled", code=SDKErrorCode.GENERATION_CANCELLED) from exc
            raise GenerationError(f"llama.cpp failed: {exc}") from exc

    @contextlib.contextmanager
    def _aborting(self, cancel: CancelToken) -> Iterator[None]:
        """While inside, cancelling ``cancel`` aborts llama.cpp's graph computation (llama_decode fails)."""
        llama_cpp = self._lib
        inside = True

        def abort() -> None:  # a token cancelled after its work ended must not abort the next request
            if inside:
                self._abort_flag = True

        self._abort_flag = False
        cancel.on_cancel(abort)
        llama_cpp.llama_set_abort_callback(self.llm._ctx.ctx, self._abort_cb, None)
        try:
            yield
        finally:
            inside = False
            llama_cpp.llama_set_abort_callback(self.llm._ctx.ctx, self._no_abort_cb, None)
            self._abort_flag = False

    def compile_grammar(self, *, json_schema: dict[str, Any] | None = None, gbnf: str | None = None,
                        tool_call: ToolCallGrammar | None = None) -> Any:
        """A constraint from a JSON schema or a forced tool call (llguidance), or a llama.cpp grammar from GBNF
        text; bad input is an InvalidInputError (naming the schema keyword the engine cannot take)."""
        if json_schema is not None:
            return self.constraints.for_schema(checked_schema("the JSON schema", json_schema))
        if tool_call is not None:
            return self.constraints.for_tool_call(tool_call)
        llama_cpp = self._lib
        grammar = llama_cpp.LlamaGrammar.from_string(bounded_grammar(gbnf or ""), verbose=False)
        # llama-cpp-python only stores the text; llama.cpp's own parser decides whether it is valid.
        sampler = llama_cpp.llama_sampler_init_grammar(
            self.llm._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8"))
        if not sampler:
            raise InvalidInputError("llama.cpp rejected the grammar (see its log for the failing rule)")
        llama_cpp.llama_sampler_free(sampler)
        return grammar

    @property
    def constraints(self) -> ModelConstraints:
        """The constraint engine's view of this model (its tokenizer is built on first use, then kept)."""
        if self._constraints is None:
            self._constraints = ModelConstraints(self._lib, self.llm._model.vocab)
        return self._constraints

    # ------------------------------------------------------------- embeddings
    @property
    def max_tokens(self) -> int:
        """The longest text :meth:`embed` takes: the context."""
        return self.n_ctx

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return [len(self.tokenize(text, add_bos=True)) for text in texts]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Pooled embeddings, one per text (the model's pooling unless overridden at load)."""
        for text in texts:
            n = len(self.tokenize(text, add_bos=True))
            if n == 0:  # llama.cpp fails to decode nothing, and the failed batch then crashes close()
                raise InvalidInputError(f"{text!r} gives no tokens to embed; pass some text")
            if n > self.n_ctx:
                raise ContextLengthError(f"a text of {n} tokens exceeds the context of {self.n_ctx}")
        try:
            return [list(map(float, v)) for v in self.llm.embed(list(texts), normalize=False)]
        except (ValueError, RuntimeError) as exc:
            raise GenerationError(f"llama.cpp could not embed: {exc}") from exc

    def close(self) -> None:
        batch = getattr(self, "_batch", None)
        if batch is not None:
            batch.close()
        self._constraints = None  # its tokenizer points into the model's vocabulary
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.close()
            self.llm = None

