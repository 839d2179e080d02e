"""Chat with images through the official ``openai`` client: ``data:`` URLs in, image tokens and timings out.

The server's vision model is the real SmolLM2-135M with a projector the suite writes (``tinyvlm.py``: random
weights, 16 image tokens per image), so the tests check the path through libmtmd, the counts and the
refusals, never what the answer says. Greedy decoding: the same pixels give the same answer.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
from PIL import Image

from runanywhere import EventBus, SDKConfig
from runanywhere.models.manager import ModelLibrary
from runanywhere.server import ServerConfig, create_app

from .serving import serving
from .tinyvlm import image_tokens, register_tiny_vision

TOKENS = image_tokens()  # 16 per image


def data_url(seed: int) -> str:
    pixels = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def asking(url: str, question: str = "What is in this picture?") -> list[Any]:
    return [{"role": "user", "content": [{"type": "text", "text": question},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


@pytest.fixture(scope="module")
def vision(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[openai.OpenAI, str]]:
    home = tmp_path_factory.mktemp("server-vision")
    library = ModelLibrary(SDKConfig(home=home / "store", offline=True), events=EventBus())
    model = register_tiny_vision(library, home / "tiny-vision", smollm2)
    app = create_app(ServerConfig(models=(model,), n_ctx=2048), library=library, events=EventBus())
    with serving(app) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0), model


def refusal(client: openai.OpenAI, model: str, messages: list[Any]) -> dict[str, Any]:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=model, messages=messages, max_tokens=4)
    body = caught.value.body
    assert isinstance(body, dict)
    return body


def test_models_list_the_vision_capability(vision: tuple[openai.OpenAI, str]):
    client, model = vision
    models = {m.id: m.model_extra or {} for m in client.models.list().data}
    assert models[model]["capabilities"] == ["chat", "vision"] and models[model]["state"] == "loaded"
    assert "vision" in models["smolvlm-256m-instruct-q8_0"]["capabilities"]  # a catalog entry with a projector
    assert "vision" not in models["smollm2-135m-instruct-q4_1"]["capabilities"]


def test_a_png_data_url_is_read_with_image_tokens_and_timings(vision: tuple[openai.OpenAI, str]):
    client, model = vision
    reply = client.chat.completions.create(model=model, messages=asking(data_url(1)), temperature=0, max_tokens=8)
    timings = (reply.model_extra or {})["timings"]
    assert timings["images"] == 1 and timings["image_tokens"] == TOKENS and timings["image_encode_ms"] > 0
    assert reply.usage is not None and reply.usage.prompt_tokens > TOKENS and reply.usage.completion_tokens > 0
    again = client.chat.completions.create(model=model, messages=asking(data_url(1)), temperature=0, max_tokens=8)
    assert again.choices[0].message.content == reply.choices[0].message.content


def test_a_streamed_answer_ends_with_image_timings_and_usage(vision: tuple[openai.OpenAI, str]):
    client, model = vision
    chunks = list(client.chat.completions.create(model=model, messages=asking(data_url(2)), temperature=0,
                                                 max_tokens=8, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    streamed_timings = [(c.model_extra or {}).get("timings") for c in chunks]
    timings = next(t for t in streamed_timings if t)
    assert timings["image_tokens"] == TOKENS
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > TOKENS
    whole = client.chat.completions.create(model=model, messages=asking(data_url(2)), temperature=0, max_tokens=8)
    assert text == whole.choices[0].message.content


def test_two_images_in_one_message_are_both_read(vision: tuple[openai.OpenAI, str]):
    client, model = vision
    messages = asking(data_url(3))
    messages[0]["content"].append({"type": "image_url", "image_url": {"url": data_url(4)}})
    reply = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=4)
    assert (reply.model_extra or {})["timings"]["image_tokens"] == 2 * TOKENS


@pytest.mark.parametrize("url", ["https://example.com/cat.png", "http://127.0.0.1/cat.png", "file:///etc/hostname",
                                 "/etc/hostname", "data:text/plain;base64,aGVsbG8="])
def test_anything_but_an_image_data_url_is_refused_unfetched(vision: tuple[openai.OpenAI, str], url: str):
    client, model = vision
    error = refusal(client, model, asking(url))
    assert error["param"] == "messages[0].content[1].image_url.url" and error["code"] == "image_url_not_allowed"
    assert "data:" in error["message"]


def test_an_image_outside_a_user_message_or_with_a_detail_is_refused(vision: tuple[openai.OpenAI, str]):
    client, model = vision
    system = [{"role": "system", "content": asking(data_url(5))[0]["content"]}, {"role": "user", "content": "Hi"}]
    assert refusal(client, model, system)["param"] == "messages[0].content[1]"
    detailed = asking(data_url(5))
    detailed[0]["content"][1]["image_url"]["detail"] = "high"
    assert refusal(client, model, detailed)["param"] == "messages[0].content[1].image_url.detail"


def test_an_undecodable_image_is_a_400_and_the_server_keeps_serving(vision: tuple[openai.OpenAI, str]):
    client, model = vision
    assert "image" in refusal(client, model, asking("data:image/png;base64,AAAAAAAAAAAA"))["message"]
    reply = client.chat.completions.create(model=model, messages=asking(data_url(6)), temperature=0, max_tokens=4)
    assert (reply.model_extra or {})["timings"]["image_tokens"] == TOKENS
