r"""The schema-compile worker of ``bench/structured.py``: one engine, many schemas, in a process of its own.

Run as ``structured_compile.py ENGINE MODEL_PATH``; reads one JSON schema a line on stdin and answers
each with one JSON line on stdout: ``outcome`` ``accepted``, ``refused`` (the engine's own clean
refusal: an error message from llguidance, a typed ``SDKError``) or ``error`` (any other exception,
by type), the error's type and message, and the compile time. A crash (SIGSEGV in llama.cpp's
grammar parser) kills this process; the parent counts it and starts a new one.

``ENGINES`` maps a name to a factory that, given the GGUF path (for the model's vocabulary), returns
an ``Engine``: the compile callable and the exception types that count as a clean refusal. The raw
engines import nothing but their library; ``sdk`` is the SDK's own path (its refusals are typed
``SDKError`` exceptions).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class Refused(Exception):
    """The engine declined the schema with a message of its own, without raising (llguidance's error list)."""


@dataclass(frozen=True)
class Engine:
    """How to compile one schema (returns on success, raises on refusal) and which exceptions are clean refusals."""

    compile: Callable[[Any], None]
    refusals: tuple[type[BaseException], ...]
    version: str


def llama_cpp_raw(model: str) -> Engine:
    """llama-cpp-python's JSON-schema converter, then llama.cpp's own GBNF parser on the model's vocabulary."""
    import llama_cpp
    from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

    llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)

    def compile_schema(schema: Any) -> None:
        grammar = LlamaGrammar.from_string(json_schema_to_gbnf(json.dumps(schema)), verbose=False)
        # from_string only stores the text; the grammar sampler is where llama.cpp parses it (and may crash).
        sampler = llama_cpp.llama_sampler_init_grammar(
            llm._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8"))
        if not sampler:
            raise GrammarRejected("llama.cpp rejected the grammar")
        llama_cpp.llama_sampler_free(sampler)

    return Engine(compile_schema, (), llama_cpp.__version__)


class GrammarRejected(Exception):
    """llama.cpp's grammar parser returned no sampler (it logs the failing rule)."""


def llguidance_raw(model: str, *, lenient: bool = False) -> Engine:
    """llguidance's JSON-schema compiler and a token matcher on the model's own tokenizer, default options
    (strict: an unsupported keyword is an error) unless ``lenient`` (unsupported keywords ignored)."""
    from importlib.metadata import version

    import llama_cpp
    import llguidance
    import llguidance.llamacpp

    llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    tokenizer = llguidance.llamacpp.lltokenizer_from_vocab(llm._model.vocab)
    options: dict[str, Any] = {"lenient": True} if lenient else {}

    def compile_schema(schema: Any) -> None:
        compile_json = llguidance.LLMatcher.grammar_from_json_schema
        try:  # options ride on an object schema; a boolean one takes none
            grammar = compile_json(schema, defaults=options) if isinstance(schema, dict) else compile_json(
                json.dumps(schema))
        except ValueError as exc:  # its documented answer to a schema that is not a JSON object
            raise Refused(str(exc)) from exc
        matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
        if matcher.is_error():
            raise Refused(matcher.get_error())

    return Engine(compile_schema, (Refused,), version("llguidance"))


def sdk(model: str) -> Engine:
    """The SDK: its schema checks, then llguidance on the model's tokenizer (``LlamaEngine.compile_grammar``);
    a clean refusal is a typed ``SDKError``."""
    from pathlib import Path

    sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src")]  # this checkout, not the venv's editable one
    from runanywhere import SDKError, __version__
    from runanywhere.backends.llamacpp import LlamaEngine

    engine = LlamaEngine(Path(model), n_ctx=256, n_threads=1)

    def compile_schema(schema: Any) -> None:
        engine.compile_grammar(json_schema=schema)

    return Engine(compile_schema, (SDKError,), __version__)


ENGINES: dict[str, Callable[[str], Engine]] = {
    "sdk": sdk,
    "llama_cpp_raw": llama_cpp_raw,
    "llguidance_raw": llguidance_raw,
    "llguidance_raw_lenient": lambda model: llguidance_raw(model, lenient=True),
}


def outcome(engine: Engine, schema: Any) -> dict[str, Any]:
    """Compile one schema; what happened, the error's type and message, and the milliseconds it took."""
    started = time.perf_counter()
    result: dict[str, Any] = {"outcome": "accepted"}
    try:
        engine.compile(schema)
    except engine.refusals as exc:
        result = {"outcome": "refused", "error": type(exc).__name__, "message": str(exc)[:300]}
    except BaseException as exc:  # pyo3's PanicException (a Rust panic) is a BaseException: counted too
        if isinstance(exc, KeyboardInterrupt):
            raise
        result = {"outcome": "error", "error": type(exc).__name__, "message": str(exc)[:300]}
    result["ms"] = (time.perf_counter() - started) * 1000
    return result


def main() -> None:
    """Start the engine named on the command line, say it is ready, then answer schema after schema."""
    name, model = sys.argv[1], sys.argv[2]
    engine = ENGINES[name](model)
    print(json.dumps({"ready": True, "version": engine.version}), flush=True)
    for line in sys.stdin:
        print(json.dumps(outcome(engine, json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
