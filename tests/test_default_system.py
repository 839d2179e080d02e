"""With no system prompt, the default chat model answers plain questions sensibly.

SmolLM2-135M-Instruct's own template inserts "You are a helpful AI assistant
named SmolLM" when a chat has no system message, and the model then answers
"What is the capital of France?" in French nonsense. The SDK renders such a
chat without a system turn (``TEMPLATE_DEFAULT_SYSTEM``); greedy answers to a
dozen plain questions must contain the fact asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runanywhere import EventBus, GenerationOptions, TextGenerator
from runanywhere.models.manager import ModelLibrary

QUESTIONS = [
    ("What is the capital of France?", "paris"),
    ("What is the capital of Japan?", "tokyo"),
    ("What is the capital of Italy?", "rome"),
    ("What is the capital of Germany?", "berlin"),
    ("What is 2 plus 2?", "4"),
    ("What color is the sky on a clear day?", "blue"),
    ("How many days are in a week?", "7"),
    ("What is the boiling point of water in Celsius?", "100"),
    ("What is the opposite of hot?", "cold"),
    ("What is the chemical symbol for water?", "h2o"),
    ("What language is spoken in Spain?", "spanish"),
    ("Which planet is known as the Red Planet?", "mars"),
]


@pytest.fixture(scope="module")
def chat(packaged_models: ModelLibrary, smollm2: Path) -> Iterator[TextGenerator]:
    generator = TextGenerator(packaged_models, events=EventBus())
    generator.load_model("smollm2-135m-instruct-q4_1", n_ctx=1024)
    yield generator
    generator.unload()


def test_plain_questions_get_sensible_answers_without_a_system_prompt(chat: TextGenerator):
    greedy = GenerationOptions(temperature=0, max_tokens=32)
    wrong = {}
    for question, fact in QUESTIONS:
        answer = chat.generate(question, greedy).text
        if fact not in answer.lower():
            wrong[question] = answer
    assert not wrong, wrong


def test_the_template_default_system_prompt_is_left_out_but_a_given_one_is_kept(chat: TextGenerator):
    engine = chat.engine
    question = [{"role": "user", "content": "Hi"}]
    plain = engine.render_chat(question, default_system=False).text
    assert "SmolLM" in engine.render_chat(question).text and "SmolLM" not in plain
    assert plain == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    given = engine.render_chat([{"role": "system", "content": "Be brief."}, *question], default_system=False).text
    assert given.startswith("<|im_start|>system\nBe brief.<|im_end|>\n")
