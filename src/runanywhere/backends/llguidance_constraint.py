"""The constraint engine on llama.cpp sampling: llguidance grammars matched against the model's own tokenizer.

:class:`ModelConstraints` belongs to one loaded model: it builds llguidance's tokenizer from the
model's vocabulary once (each token's bytes; control tokens marked special) and compiles grammars
against it, keeping the recent ones. A :class:`Constraint` is one compiled grammar; every
generation takes a :class:`ConstraintRun` from it (a copy of the fresh matcher) that masks each
step's logits to the tokens the grammar allows, takes each sampled token, and says when the
grammar is complete (then only an end token can follow, so the generation ends there).
Used only on the model's worker thread.
"""

from __future__ import annotations

import ctypes
import json
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..core.errors import GenerationError, InvalidInputError
from . import require_engine
from .base import ToolCallGrammar
from .llguidance_schema import LIMITS, checked_grammar, refusal, schema_grammar, tool_call_lark

#: Compiled grammars kept per model (a server sees the same few schemas again and again).
CACHED_GRAMMARS = 32


class ModelConstraints:
    """llguidance's view of one loaded llama.cpp model: its tokenizer and the grammars compiled for it."""

    def __init__(self, lib: Any, vocab: Any) -> None:
        self._lib, self._vocab = lib, vocab
        self.n_vocab = int(lib.llama_vocab_n_tokens(vocab))
        self._tokenizer: Any = None
        self._piece = ctypes.create_string_buffer(16 * 1024)
        self._compiled: OrderedDict[str, Constraint] = OrderedDict()

    @property
    def tokenizer(self) -> Any:
        """llguidance's tokenizer of the model, built on first use (a fraction of a second for 150k tokens)."""
        if self._tokenizer is None:
            llguidance = require_engine("llguidance", "llm")
            lib, vocab = self._lib, self._vocab
            ends = [t for t in range(self.n_vocab) if lib.llama_vocab_is_eog(vocab, t)]
            tokenize = ctypes.cast(lib.llama_cpp._lib.llama_tokenize, ctypes.c_void_p).value
            self._tokenizer = llguidance.LLTokenizer.from_llamacpp(
                tokens=[self._token_bytes(t) for t in range(self.n_vocab)], vocab_ptr=vocab, tokenize_fptr=tokenize,
                eos_token=ends or lib.llama_vocab_eos(vocab), slices=None)
        return self._tokenizer

    def _token_bytes(self, token: int) -> bytes:
        """A token's bytes as llguidance reads them: control tokens and ``<...>`` user tokens marked special."""
        lib = self._lib
        n = lib.llama_token_to_piece(self._vocab, token, self._piece, len(self._piece), 0, True)
        if n < 0:
            raise GenerationError(f"token {token} of this model is longer than {len(self._piece)} bytes")
        piece = ctypes.string_at(self._piece, n)
        attr = lib.llama_vocab_get_attr(self._vocab, token)
        special = attr & lib.LLAMA_TOKEN_ATTR_CONTROL or (
            attr & lib.LLAMA_TOKEN_ATTR_USER_DEFINED and piece.startswith(b"<") and piece.endswith(b">"))
        return b"\xff" + piece if special else piece

    def for_schema(self, schema: Mapping[str, Any]) -> Constraint:
        """The constraint of a checked JSON schema (InvalidInputError naming the keyword the engine cannot take)."""
        key = "schema:" + json.dumps(schema, sort_keys=True)
        return self._closed_or_open(key, lambda closed: schema_grammar(schema, closed=closed))

    def for_tool_call(self, spec: ToolCallGrammar) -> Constraint:
        """The constraint forcing one call of ``spec``'s tools, tags written as the model's own special tokens."""
        key = "tools:" + json.dumps([spec.tools, spec.start, spec.end], sort_keys=True)

        def build(closed: bool) -> str:
            lark = tool_call_lark(spec.tools, spec.start, spec.end, self._special([spec.start, spec.end]),
                                  closed=closed)
            return str(require_engine("llguidance", "llm").LLMatcher.grammar_from_lark(lark))

        return self._closed_or_open(key, build)

    def _closed_or_open(self, key: str, grammar: Callable[[bool], str]) -> Constraint:
        """The constraint with objects closed to unnamed keys; exactly the schema where closing would leave
        nothing to generate (their properties are combined with others')."""
        try:
            return self._cached(key + ":closed", lambda: grammar(True))
        except InvalidInputError:
            return self._cached(key, lambda: grammar(False))

    def _cached(self, key: str, grammar: Any) -> Constraint:
        found = self._compiled.get(key)
        if found is None:
            found = self._compile(grammar())
            self._compiled[key] = found
            if len(self._compiled) > CACHED_GRAMMARS:
                self._compiled.popitem(last=False)
        self._compiled.move_to_end(key)
        return found

    def _compile(self, grammar: str) -> Constraint:
        llguidance = require_engine("llguidance", "llm")
        checked_after = checked_grammar(grammar, self.tokenizer)
        matcher = llguidance.LLMatcher(self.tokenizer, grammar, log_level=0,
                                       limits=llguidance.LLParserLimits(**LIMITS))
        if matcher.is_error():
            raise refusal(matcher.get_error())
        return Constraint(matcher, self.n_vocab, self._end_token(), checked_after)

    def _special(self, texts: Sequence[str]) -> dict[str, int]:
        """The texts among ``texts`` that are one special token of the model, with its id."""
        found = {}
        for text in filter(None, texts):
            buffer = (self._lib.llama_token * 8)()
            data = text.encode("utf-8")
            n = self._lib.llama_tokenize(self._vocab, data, len(data), buffer, 8, False, True)
            if n == 1 and self.tokenizer.is_special_token(buffer[0]):
                found[text] = int(buffer[0])
        return found

    def _end_token(self) -> int:
        for token in (self._lib.llama_vocab_eot(self._vocab), self._lib.llama_vocab_eos(self._vocab)):
            if token >= 0:
                return int(token)
        return int(self.tokenizer.eos_token)


class Constraint:
    """One grammar compiled for one model; :meth:`start` gives each generation its own matcher."""

    def __init__(self, matcher: Any, n_vocab: int, end_token: int, checked_after: tuple[str, ...]) -> None:
        self._matcher, self.n_vocab, self.end_token = matcher, n_vocab, end_token
        self.checked_after = checked_after

    def start(self) -> ConstraintRun:
        return ConstraintRun(self._matcher.deep_copy(), self.n_vocab, self.end_token)


class ConstraintRun:
    """A generation under a constraint: the mask of each step, the tokens taken, whether it is complete."""

    def __init__(self, matcher: Any, n_vocab: int, end_token: int) -> None:
        import numpy as np  # deferred: `import runanywhere` loads no numpy

        self._np, self._matcher, self.n_vocab, self.end_token = np, matcher, n_vocab, end_token
        self._bits = np.zeros((n_vocab + 31) // 32, dtype=np.int32)
        self._bits_ptr = self._bits.ctypes.data

    def mask(self, logits: Any) -> Any:
        """Set the logits (a numpy vector) of tokens the grammar does not allow now to -inf, in place."""
        np = self._np
        self._matcher.unsafe_compute_mask_ptr(self._bits_ptr, self._bits.nbytes)
        self._raise_if_failed()
        allowed = np.unpackbits(self._bits.view(np.uint8), count=self.n_vocab, bitorder="little")
        np.putmask(logits, allowed == 0, -np.inf)
        return logits

    def mask_at(self, pointer: Any) -> None:
        """:meth:`mask` the ``n_vocab`` floats at a ctypes float pointer (llama.cpp's logits of one row)."""
        self.mask(self._np.ctypeslib.as_array(pointer, (self.n_vocab,)))

    def accept(self, token: int) -> None:
        """Advance the matcher by the sampled ``token``."""
        self._matcher.consume_token(token)
        self._raise_if_failed()

    @property
    def complete(self) -> bool:
        """The grammar is satisfied and admits nothing more: only an end token can follow."""
        return bool(self._matcher.is_stopped())

    def _raise_if_failed(self) -> None:
        if self._matcher.is_error():
            raise GenerationError(f"the constraint engine failed: {self._matcher.get_error()}")
