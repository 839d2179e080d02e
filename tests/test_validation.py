"""Bad input at the text-side entries is a typed InvalidInputError that names the parameter, never a raw error.

One validation layer (``runanywhere.core.validation`` and ``core.json_schema``) checks types, finite numbers,
ranges, UTF-8-encodable text and choices at every public entry: text generation, its options and load options,
embeddings, tool calling and structured output. JSON schemas may only refer to themselves: a remote ``$ref`` is
refused before anything could fetch it, ``python -O`` included. Real models throughout: SmolLM2 for generation,
the suite's tiny models for embeddings and grammars.
"""

from __future__ import annotations

import ast
import asyncio
import math
import random
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import runanywhere
from runanywhere import (
    EmbeddingGenerator,
    EventBus,
    GenerationOptions,
    GenerationRequest,
    InvalidInputError,
    ModelFormatError,
    SDKConfig,
    SDKError,
    StructuredOutputGenerator,
    TextGenerator,
    ToolCaller,
    ToolDefinition,
)
from runanywhere.core.validation import choice, integer, json_value, mapping, number, text, texts
from runanywhere.models.catalog import Catalog
from runanywhere.models.manager import ModelLibrary

from .fileserver import FileServer
from .tinymodels import write_tiny_llm

SRC = Path(runanywhere.__file__).resolve().parents[1]  # the src directory of the package under test
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def _library() -> ModelLibrary:
    return ModelLibrary(SDKConfig(offline=True), catalog=Catalog(), events=EventBus())


@pytest.fixture(scope="module")
def smol(smollm2: Path) -> Iterator[TextGenerator]:
    generator = TextGenerator(_library(), events=EventBus())
    generator.load_model(smollm2, n_ctx=1024)
    yield generator
    generator.unload()


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddingGenerator]:
    model = write_tiny_llm(tmp_path_factory.mktemp("embed") / "embed.gguf", pooling="mean")
    embeddings = EmbeddingGenerator(_library(), events=EventBus())
    embeddings.load_model(model)
    yield embeddings
    embeddings.unload()


# ---------------------------------------------------------------------------------------- the checks themselves
def test_each_check_names_the_parameter_and_says_what_it_takes() -> None:
    assert text("prompt", "héllo") == "héllo" and number("top_p", 1) == 1.0 and integer("n", 3, low=1) == 3
    with pytest.raises(InvalidInputError, match="prompt has a lone surrogate at position 3"):
        text("prompt", "abc\udc80")
    with pytest.raises(InvalidInputError, match=r"prompt must be a str, got bytes; decode bytes first"):
        text("prompt", b"abc")
    with pytest.raises(InvalidInputError, match="at most 4"):
        text("name", "abcde", max_chars=4)
    for bad in (math.nan, math.inf, -0.1, 1.5, "0.5", None, True, 10**400):
        with pytest.raises(InvalidInputError, match=r"top_p must be a finite number in \[0, 1\]"):
            number("top_p", bad, low=0, high=1)
    with pytest.raises(InvalidInputError, match="an int of 16610 bits"):  # too big to print, still a clear error
        integer("seed", 10**5000, low=0, high=2**32 - 1)
    with pytest.raises(InvalidInputError, match="format must be one of hermes, lfm2, json, auto; got 'bogus'"):
        choice("format", "bogus", ("hermes", "lfm2", "json", "auto"))
    with pytest.raises(InvalidInputError, match="must have str keys"):
        mapping("tool", {1: "x"})
    assert texts("stop", "END", single=True) == ("END",) and texts("stop", ["a", "b"]) == ("a", "b")
    with pytest.raises(InvalidInputError, match=r"stop\[1\] must be a str"):
        texts("stop", ["a", 3])
    assert json_value("spec", {"a": ("b", 1, None)}) == {"a": ["b", 1, None]}
    deep: list[Any] = []
    for _ in range(100):
        deep = [deep]
    for bad, why in ((deep, "nests deeper"), ({"a": {1, 2}}, r"spec\.a must hold only JSON"),
                     ({"a": math.inf}, "finite")):
        with pytest.raises(InvalidInputError, match=why):
            json_value("spec", bad)


def test_no_assert_does_validation_anywhere_in_the_library() -> None:
    """``python -O`` strips asserts, so none may stand between bad input and the engines."""
    found = [f"{path.relative_to(SRC)}:{node.lineno}" for path in SRC.rglob("*.py")
             for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Assert)]
    assert found == []


# ------------------------------------------------------------------------------------------ generation options
@pytest.mark.parametrize(("field", "bad"), [
    ("temperature", math.nan), ("temperature", math.inf), ("temperature", -0.5),
    ("top_p", 1.5), ("top_p", -0.1), ("top_p", math.nan), ("min_p", 2.0), ("repeat_penalty", 0),
    ("max_tokens", 0), ("max_tokens", -1), ("max_tokens", 2.5), ("top_k", -5),
    ("threads", -1), ("threads", 0), ("threads", 10**9),
    ("seed", "42"), ("seed", -1), ("seed", 2**80), ("seed", 1.5),
    ("stop", 3), ("stop", [3]), ("stop", ["ok", None]), ("stop", b"END"),
    ("system_prompt", 3), ("system_prompt", "\ud800"), ("raw", "yes"), ("grammar", 42),
])
def test_generation_options_refuse_bad_values(field: str, bad: Any) -> None:
    with pytest.raises(InvalidInputError, match=field):
        GenerationOptions(**{field: bad})


def test_a_single_stop_string_is_one_stop_not_its_characters() -> None:
    assert GenerationOptions(stop="END").stop == ("END",)
    assert GenerationOptions(stop=["a", "b"]).stop == ("a", "b")


# ----------------------------------------------------------------------------------------------- text generation
@pytest.mark.parametrize("prompt", [b"hi", None, 42, ["a", "b"], "hi \udc80", [],
                                    [{"role": "user", "content": "\ud800"}], [{"role": 3, "content": "x"}],
                                    [{"role": "user", "content": None}], [{"role": "user", "content": object()}],
                                    [{"role": "user"}], [{"role": "user", "content": "x", "n": math.nan}]])
def test_bad_prompts_are_typed_errors_at_every_entry(smol: TextGenerator, prompt: Any) -> None:
    entries: list[Callable[[], Any]] = [
        lambda: smol.generate(prompt, max_tokens=1),
        lambda: list(smol.generate_stream(prompt, max_tokens=1)),
        lambda: asyncio.run(smol.agenerate(prompt, max_tokens=1)),
        lambda: GenerationRequest(prompt),
    ]
    for entry in entries:
        with pytest.raises(InvalidInputError):
            entry()


def test_prefill_takes_only_well_formed_messages(smol: TextGenerator) -> None:
    for messages in ("hi", None, [{"role": "user", "content": "\ud800"}], [{"content": "x"}], [3]):
        with pytest.raises(InvalidInputError):
            smol.prefill(messages)
        with pytest.raises(InvalidInputError):
            asyncio.run(smol.aprefill(messages))


def test_overrides_are_checked_like_options(smol: TextGenerator) -> None:
    with pytest.raises(InvalidInputError, match="temperature"):
        smol.generate("hi", temperature=math.nan)
    with pytest.raises(InvalidInputError, match="threads"):
        smol.generate("hi", threads=10**9)  # llama.cpp would abort the whole process
    assert smol.generate("hi", max_tokens=1, seed=7, stop="never").output_tokens == 1


def test_load_options_are_checked_before_loading(smollm2: Path) -> None:
    generator = TextGenerator(_library(), events=EventBus())
    for options in ({"n_ctx": -1}, {"n_ctx": "4096"}, {"n_ctx": 10**9}, {"n_threads": -1},
                    {"n_threads": 10**9}, {"n_batch": 0}):
        with pytest.raises(InvalidInputError, match=next(iter(options))):
            generator.load_model(smollm2, **options)
        assert not generator.is_loaded


# ---------------------------------------------------------------------------------------------------- embeddings
def test_embeddings_refuse_wrong_texts(embedder: EmbeddingGenerator) -> None:
    for bad in (None, b"cat", 3, "\ud800", ""):  # "" once left llama.cpp's batch broken: close() crashed
        with pytest.raises(InvalidInputError, match="text"):
            embedder.embed(bad)
    for batch in (3, None, ["cat", None], ["\udc80"], [], (t for t in []), {"a": "b"}):
        with pytest.raises(InvalidInputError, match="texts"):
            embedder.embed_batch(batch)
    assert embedder.embed_batch(t for t in ["cat", "dog"]).shape == (2, 64)  # any iterable of str is fine
    vector = embedder.embed("cat")
    for other in ("dog", [[1.0] * 64], [math.nan] * 64, [10**400] * 64, None):
        with pytest.raises(InvalidInputError, match=r"cosine_similarity|differ in shape"):
            embedder.cosine_similarity(vector, other)  # type: ignore[arg-type]


def test_a_chat_model_is_refused_by_embeddings_unless_pooled(smollm2: Path) -> None:
    embeddings = EmbeddingGenerator(_library(), events=EventBus())
    with pytest.raises(ModelFormatError, match="pooling='mean'"):
        embeddings.load_model(smollm2)
    with pytest.raises(InvalidInputError, match="pooling must be one of mean, cls, last; got 'bogus'"):
        embeddings.load_model(smollm2, pooling="bogus")
    embeddings.load_model(smollm2, pooling="mean")
    try:
        assert embeddings.embed("a cat").shape == (576,)
    finally:
        embeddings.unload()


# -------------------------------------------------------------------------------------------------- tool calling
def test_tool_calling_refuses_unknown_choices_and_bad_definitions(smol: TextGenerator) -> None:
    tools = ToolCaller(smol)
    tools.register_tool(WEATHER, lambda args: "sunny")
    with pytest.raises(InvalidInputError, match="format must be one of hermes, qwen, lfm2, json, auto; got 'bogus'"):
        tools.generate_with_tools("Weather in Paris?", format="bogus")
    with pytest.raises(InvalidInputError, match="tool_choice must be one of auto, required, none; got 'bogus'"):
        tools.generate_with_tools("Weather in Paris?", tool_choice="bogus")  # type: ignore[arg-type]
    for prompt in (None, b"hi", ["hi"], "\ud800"):
        with pytest.raises(InvalidInputError):
            tools.generate_with_tools(prompt)
    for definition in ("get_weather", {"name": "f", "parameters": []}, {"function": "f"}, {"name": 3},
                       {"name": "f", "description": b"x"}, {1: "f"}):
        with pytest.raises(InvalidInputError):
            tools.register_tool(definition, print)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="points at nothing"):
        ToolDefinition("f", "", {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}})


# -------------------------------------------------------------------------------------------- structured output
@pytest.mark.parametrize("schema", [[], None, "{}", {"type": "no-such-type"}, {"$ref": "#/$defs/nope"},
                                    {"type": "number", "maximum": math.nan}, {1: {"type": "string"}},
                                    {"type": "object", "properties": {"a": {"$ref": "#/definitions/a"}}}])
def test_bad_schemas_are_typed_errors(smol: TextGenerator, schema: Any) -> None:
    structured = StructuredOutputGenerator(smol)
    with pytest.raises(InvalidInputError):
        structured.generate("Give me a value.", schema, max_tokens=4)
    with pytest.raises(InvalidInputError):
        structured.validate("1", schema)


def test_a_schema_referring_to_itself_is_fine(smol: TextGenerator) -> None:
    schema = {"$defs": {"mood": {"enum": ["happy", "sad"]}}, "type": "object",
              "properties": {"mood": {"$ref": "#/$defs/mood"}}, "required": ["mood"]}
    structured = StructuredOutputGenerator(smol)
    assert structured.validate('{"mood": "sad"}', schema).is_valid
    for not_json in ({"mood": object()}, {"mood": math.nan}, {"mood": 10**5000}):  # reported, not raised
        assert not structured.validate(not_json, schema).is_valid


def test_a_remote_ref_is_refused_and_never_fetched(smol: TextGenerator, server: FileServer) -> None:
    url = server.add("/schema.json", b'{"type": "string"}')
    structured = StructuredOutputGenerator(smol)
    entries: list[Callable[[dict[str, Any]], Any]] = [
        lambda schema: structured.generate("x", schema, max_tokens=4),
        lambda schema: structured.validate({"a": "x"}, schema),
        lambda schema: smol.start(GenerationRequest("x", GenerationOptions(max_tokens=4), grammar=schema)).wait(),
        lambda schema: smol.engine.compile_grammar(json_schema=schema),
        lambda schema: ToolDefinition("f", "", schema),
    ]
    for ref in (url, url.replace("http://", "https://"), "file:///etc/passwd", "other.json#/a"):
        for entry in entries:
            with pytest.raises(InvalidInputError, match="only references inside the schema"):
                entry({"type": "object", "properties": {"a": {"$ref": ref}}})
    assert server.requests == []


def test_remote_refs_stay_unfetched_under_python_dash_o(tiny_llm: Path, subprocess_env: dict[str, str]) -> None:
    """llama-cpp-python's converter guards its ``https://`` fetch with an ``assert``: gone under ``-O``."""
    script = textwrap.dedent(f"""
        import sys, types
        fetched = []
        sys.modules["requests"] = types.SimpleNamespace(get=lambda url, *a, **k: fetched.append(url) or 1 / 0)
        from runanywhere import EventBus, InvalidInputError, SDKConfig, StructuredOutputGenerator, TextGenerator
        from runanywhere.features.tools import ToolDefinition, tool_call_grammar
        from runanywhere.models.catalog import Catalog
        from runanywhere.models.manager import ModelLibrary
        import llama_cpp.llama_grammar as converter
        schema = {{"type": "object", "properties": {{"a": {{"$ref": "https://example.com/s.json"}}}}}}
        try:
            converter.json_schema_to_gbnf(__import__("json").dumps(schema))
        except ZeroDivisionError:
            pass
        if fetched != ["https://example.com/s.json"]:  # the danger is real under -O
            sys.exit(f"the converter did not try to fetch: {{fetched}}")
        fetched.clear()
        generator = TextGenerator(ModelLibrary(SDKConfig(offline=True), catalog=Catalog(), events=EventBus()))
        generator.load_model({str(tiny_llm)!r})
        refused = 0
        for entry in (lambda: StructuredOutputGenerator(generator).generate("x", schema, max_tokens=2),
                      lambda: generator.engine.compile_grammar(json_schema=schema),
                      lambda: ToolDefinition("f", "", schema)):
            try:
                entry()
            except InvalidInputError:
                refused += 1
        generator.unload()
        print(refused, fetched)
    """)
    done = subprocess.run([sys.executable, "-O", "-c", script], capture_output=True, text=True, timeout=120,
                          env={**subprocess_env, "PYTHONPATH": str(SRC)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[-2] == "3 []"


def test_a_huge_enum_is_refused_instead_of_hanging(smol: TextGenerator) -> None:
    huge = {"enum": [f"value{i}" for i in range(100_000)]}
    with pytest.raises(InvalidInputError, match="more than 50000 values"):
        StructuredOutputGenerator(smol).generate("Pick one.", huge, max_tokens=4)
    with pytest.raises(InvalidInputError, match="more than 50000 values"):
        smol.engine.compile_grammar(json_schema=huge)
    alternation = "root ::= " + " | ".join(f'"v{i}"' for i in range(50_000))
    with pytest.raises(InvalidInputError, match="characters; at most"):
        smol.generate("Pick one.", grammar=alternation, max_tokens=2)


# ------------------------------------------------------------------------------------ random wrong input: property
def _random_value(rng: random.Random, depth: int = 0) -> Any:
    """A wrong (or occasionally right) value of a random kind, nested now and then."""
    atoms: list[Any] = [None, b"hi", bytearray(b"x"), math.nan, math.inf, -math.inf, -1, 0, 1, 2**64, 10**5000,
                        -(2**63), 1.5, True, False, "", "bogus", "\ud800", "ok \udc80 ok", "hi", object(), set(),
                        print, Path("/tmp"), (), [], {}, ["a", 1], [["a"]], [{"role": 1}],
                        [{"role": "user", "content": "\udfff"}], {"a": 1}, {1: 2}, {"$ref": "https://x.y/z"}]
    roll = rng.random()
    if depth < 3 and roll < 0.15:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 3 and roll < 0.25:
        return {rng.choice(["role", "content", "type", "$ref", "enum", 1]): _random_value(rng, depth + 1)
                for _ in range(rng.randint(0, 3))}
    return rng.choice(atoms)


def test_random_wrong_input_only_ever_raises_sdk_errors(smol: TextGenerator, embedder: EmbeddingGenerator) -> None:
    rng = random.Random(20261130)
    structured, tools = StructuredOutputGenerator(smol), ToolCaller(smol)
    option_names = ["max_tokens", "temperature", "top_k", "top_p", "min_p", "repeat_penalty", "stop", "seed",
                    "system_prompt", "threads", "raw", "grammar"]
    entries: list[Callable[[Any], Any]] = [
        lambda v: smol.generate(v, max_tokens=1),
        lambda v: list(smol.generate_stream(v, max_tokens=1)),
        lambda v: asyncio.run(smol.agenerate("hi", **{"max_tokens": 1, rng.choice(option_names): v})),
        lambda v: smol.generate("hi", **{"max_tokens": 1, rng.choice(option_names): v}),
        lambda v: GenerationOptions(**{rng.choice(option_names): v}),
        lambda v: GenerationRequest("hi", grammar=v, tools=rng.choice([(), [v]])),
        lambda v: embedder.embed(v),
        lambda v: embedder.embed_batch(v),
        lambda v: embedder.cosine_similarity(v, rng.choice([v, [0.5, 0.5]])),
        lambda v: tools.register_tool(v, print),
        lambda v: ToolDefinition("f", "", v),
        lambda v: tools.generate_with_tools(v, max_tokens=1),
        lambda v: tools.generate_with_tools("hi", max_tokens=1, **{rng.choice(
            ["format", "tool_choice", "max_tool_calls", "auto_execute"]): v}),
        lambda v: structured.generate("hi", v, max_tokens=1),
        lambda v: structured.generate(v, {"type": "string"}, max_tokens=1),
        lambda v: structured.validate(v, rng.choice([{"type": "string"}, v])),
        lambda v: smol.engine.compile_grammar(json_schema=v),
    ]
    escaped = []
    for case in range(256):
        entry, value = entries[case % len(entries)], _random_value(rng)
        try:
            entry(value)
        except SDKError:
            pass
        except Exception as exc:  # the property: nothing but an SDKError comes out
            escaped.append(f"case {case} entry {case % len(entries)}: {type(exc).__name__}: {exc}"[:300])
    assert escaped == []
