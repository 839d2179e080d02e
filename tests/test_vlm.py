"""Vision-language models through the real llama.cpp multimodal path (libmtmd).

The language model is the real SmolLM2-135M; its projector is written by the suite (``tinyvlm.py``: random
weights, 576 wide, 16 image tokens per image). Random vision weights test the plumbing, never the quality
of an answer: the tests check image tokens, identical greedy text for identical pixels, cancellation at each
stage, queueing, and clear errors. One thread per model: on a shared 2-core machine OpenMP with 2 threads
spins against other processes and slows by 10x (``MODELS.md``).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from runanywhere import (
    VLM,
    ContextLengthError,
    EventBus,
    GenerationCompleted,
    GenerationOptions,
    GenerationRequest,
    GenerationStarted,
    InvalidInputError,
    ModelFormatError,
    ModelManager,
    SDKConfig,
    TextGenerator,
    VideoCapture,
    VisionLanguageModel,
    VLMResult,
    VLMStageStarted,
)
from runanywhere.backends.llamacpp_vision import MMPROJ
from runanywhere.cli.main import main as cli_main
from runanywhere.core.engines import WEIGHTS
from runanywhere.core.schema_drafts import validator_for
from runanywhere.models.catalog import Catalog, ModelCategory
from runanywhere.models.manager import ModelLibrary

from .tinyvlm import SMOLLM2_EMBD, image_tokens, write_tiny_mmproj, write_video

GREEDY = GenerationOptions(temperature=0.0, max_tokens=6)
TOKENS = image_tokens()  # 16 per image


def picture(height: int = 60, width: int = 80, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def mmproj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_mmproj(tmp_path_factory.mktemp("vlm") / "mmproj-tiny.gguf")


@pytest.fixture(scope="module")
def bus() -> EventBus:
    return EventBus()


@pytest.fixture(scope="module")
def vlm(smollm2: Path, mmproj: Path, bus: EventBus) -> Iterator[VisionLanguageModel]:
    model = VisionLanguageModel(ModelLibrary(SDKConfig(offline=True), catalog=Catalog(), events=bus), events=bus)
    model.load_model(smollm2, mmproj, model_id="smollm2-tiny-vision", n_ctx=1024, n_threads=1)
    yield model
    model.unload()


def test_an_image_becomes_image_tokens_and_text_comes_out(vlm: VisionLanguageModel):
    result = vlm.process(picture(), "What is in this picture?", GREEDY)
    assert isinstance(result, VLMResult) and result.model_id == "smollm2-tiny-vision"
    assert result.images == 1 and result.image_tokens == TOKENS
    assert result.prompt_tokens > TOKENS + 5 and result.completion_tokens == 6 and result.text.strip()
    assert result.finish_reason == "length" and result.cancelled_during is None
    assert result.image_encode_ms > 0 and result.time_to_first_token_ms > result.image_encode_ms
    assert result.decode_tokens_per_second is not None and result.decode_tokens_per_second > 0


def test_every_form_of_one_picture_gives_the_same_tokens_and_greedy_text(vlm: VisionLanguageModel, tmp_path: Path):
    rgb = picture()
    data = png(rgb)
    path = tmp_path / "picture.png"
    path.write_bytes(data)
    b64 = base64.b64encode(data).decode()
    forms: list[Any] = [rgb, Image.fromarray(rgb), data, b64, f"data:image/png;base64,{b64}", str(path), path]
    results = [vlm.process(form, "Describe the image.", GREEDY) for form in forms]
    assert {(r.image_tokens, r.prompt_tokens, r.text) for r in results} == {
        (results[0].image_tokens, results[0].prompt_tokens, results[0].text)}
    other = vlm.process(picture(seed=1), "Describe the image.", GREEDY)
    assert other.image_tokens == TOKENS  # another picture: same token count (the text may differ)


def test_two_images_in_one_prompt(vlm: VisionLanguageModel):
    one = vlm.process(picture(), "Compare the pictures.", GREEDY)
    two = vlm.process([picture(), picture(seed=2)], "Compare the pictures.", GREEDY)
    assert two.images == 2 and two.image_tokens == 2 * TOKENS
    assert two.prompt_tokens - one.prompt_tokens >= TOKENS


def test_images_inside_a_multi_turn_chat_with_openai_style_parts(vlm: VisionLanguageModel):
    url = "data:image/png;base64," + base64.b64encode(png(picture())).decode()
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                     {"type": "image_url", "image_url": {"url": url}}]},
        {"role": "assistant", "content": "A picture of noise."},
        {"role": "user", "content": [{"type": "text", "text": "And this one?"},
                                     {"type": "image_url", "image_url": {"url": url}}]},
    ]
    result = vlm.process(None, messages, GREEDY)
    assert result.images == 2 and result.image_tokens == 2 * TOKENS and result.text
    request = GenerationRequest(messages, GREEDY)  # the same path as text generation
    assert vlm.start(request).wait().image_tokens == 2 * TOKENS


def test_the_stream_gives_tokens_and_the_result(vlm: VisionLanguageModel):
    stream = vlm.process_stream(picture(), "Describe it.", GREEDY)
    pieces = list(stream.text())
    assert "".join(pieces) == stream.result.text and stream.result.image_tokens == TOKENS


def test_async_twins(vlm: VisionLanguageModel):
    async def run() -> tuple[VLMResult, str]:
        result = await vlm.aprocess(picture(), "Describe it.", GREEDY)
        stream = vlm.aprocess_stream(picture(), "Describe it.", GREEDY)
        text = "".join([piece async for piece in stream.atext()])
        return result, text

    result, text = asyncio.run(run())
    assert result.image_tokens == TOKENS and text == result.text


def _cancel_at(vlm: VisionLanguageModel, bus: EventBus, stage: str, nth: int = 1) -> tuple[VLMResult, list[str]]:
    """Process a picture and cancel the request when it enters ``stage`` for the ``nth`` time."""
    stages: list[str] = []

    def on_stage(event: VLMStageStarted) -> None:
        stages.append(event.stage)
        if stages.count(stage) == nth and stages[-1] == stage:
            vlm.cancel()

    off = bus.on(VLMStageStarted, on_stage)
    try:
        return vlm.process(picture(), "Describe it.", GREEDY), stages
    finally:
        off()


def test_cancel_during_image_encoding(vlm: VisionLanguageModel, bus: EventBus):
    result, stages = _cancel_at(vlm, bus, "image_encode")
    assert result.finish_reason == "cancelled" and result.cancelled_during == "image_encode"
    assert stages == ["prefill", "image_encode"]  # the image's embeddings never reached the language model
    assert result.output_tokens == 0 and result.text == ""
    assert vlm.process(picture(), "Describe it.", GREEDY).image_tokens == TOKENS  # the model still works


def test_cancel_during_prefill(vlm: VisionLanguageModel, bus: EventBus):
    result, stages = _cancel_at(vlm, bus, "prefill", nth=2)  # the image's embeddings entering the model
    assert result.finish_reason == "cancelled" and result.cancelled_during == "prefill"
    assert stages == ["prefill", "image_encode", "prefill"] and result.output_tokens == 0
    text, _ = _cancel_at(vlm, bus, "prefill", nth=1)  # the text before the image
    assert text.cancelled_during == "prefill"
    fine = vlm.process(picture(), "Describe it.", GREEDY)
    assert fine.finish_reason == "length" and fine.image_tokens == TOKENS


def test_cancelling_a_finished_request_does_not_touch_the_next(vlm: VisionLanguageModel, bus: EventBus):
    first = vlm.process_stream(picture(), "Describe it.", GREEDY)
    assert first.wait().finish_reason == "length"
    off = bus.on(VLMStageStarted, lambda event: event.stage == "prefill" and first.cancel())
    try:
        second = vlm.process(picture(), "Describe it.", GREEDY)
    finally:
        off()
    assert first.cancelled and second.finish_reason == "length" and second.completion_tokens == 6


def test_cancelling_the_async_task_stops_the_work(vlm: VisionLanguageModel, bus: EventBus):
    async def run() -> None:
        entered = asyncio.Event()
        loop = asyncio.get_running_loop()
        off = bus.on(VLMStageStarted, lambda e: loop.call_soon_threadsafe(entered.set))
        task = asyncio.create_task(vlm.aprocess(picture(), "Describe it.", GenerationOptions(max_tokens=200)))
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        off()

    asyncio.run(run())
    assert vlm.process(picture(), "Describe it.", GREEDY).finish_reason == "length"


def test_concurrent_callers_are_queued_in_order(vlm: VisionLanguageModel, bus: EventBus):
    order: list[tuple[str, str]] = []
    offs = [bus.on(GenerationStarted, lambda e: order.append(("start", e.prompt))),
            bus.on(GenerationCompleted, lambda e: order.append(("end", "")))]
    results: dict[int, VLMResult] = {}
    streams = [vlm.process_stream(picture(seed=i), f"Question {i}?", GREEDY) for i in range(3)]
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, streams[i].wait())) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    for off in offs:
        off()
    starts = [prompt for kind, prompt in order if kind == "start"]
    assert [s for s in starts if s.startswith("Question")] == ["Question 0?", "Question 1?", "Question 2?"]
    assert [kind for kind, _ in order] == ["start", "end"] * 3  # one request at a time
    assert all(results[i].image_tokens == TOKENS for i in range(3))
    assert results[2].queue_ms > 0


def test_a_real_photograph_and_a_generated_image(vlm: VisionLanguageModel):
    import matplotlib

    photo = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"  # a real JPEG photograph
    assert photo.is_file(), "matplotlib (in requirements.lock) ships this photograph"
    real = vlm.process(photo, "Who is this?", GREEDY)
    y, x = np.mgrid[0:300, 0:500]
    gradient = np.stack([x * 255 // 500, y * 255 // 300, np.full_like(x, 90)], axis=2).astype(np.uint8)
    made = vlm.process(gradient, "What colours are there?", GREEDY)
    for result in (real, made):
        assert result.image_tokens == TOKENS and result.completion_tokens == 6 and result.text.strip()


def test_bad_images_are_clear_errors_and_the_model_keeps_working(vlm: VisionLanguageModel, tmp_path: Path):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not an image")
    for bad in (np.zeros((4, 4), np.float64), png(picture(200, 200))[:300], "http://example.com/cat.jpg",
                text_file):
        with pytest.raises(InvalidInputError):
            vlm.process(bad, "Describe it.", GREEDY)
    with pytest.raises(InvalidInputError, match="part type"):
        vlm.process(None, [{"role": "user", "content": [{"type": "video", "video": "x"}]}], GREEDY)
    with pytest.raises(InvalidInputError, match="2 image markers for 1 images"):
        vlm.process(picture(), "<__media__><__media__> two markers, raw", GREEDY, raw=True)
    with pytest.raises(ContextLengthError, match="larger n_ctx"):
        vlm.process([picture()] * 70, "So many pictures.", GREEDY)  # 70 x 16 image tokens > 1024
    assert vlm.process(picture(), "Describe it.", GREEDY).image_tokens == TOKENS


def test_text_without_images_and_a_text_model_refuses_images(vlm: VisionLanguageModel, tiny_llm: Path):
    result = vlm.process(None, "Say hello.", GREEDY)
    assert result.images == 0 and result.image_tokens == 0 and result.completion_tokens == 6
    text_model = TextGenerator(ModelLibrary(SDKConfig(offline=True), catalog=Catalog(), events=EventBus()))
    text_model.load_model(tiny_llm, n_ctx=256)
    try:
        with pytest.raises(InvalidInputError, match="vision-language"):
            text_model.start(GenerationRequest("What is this?", images=(picture(),)))
    finally:
        text_model.unload()


def test_a_projector_for_another_model_is_a_clear_error(smollm2: Path, tiny_llm: Path, tmp_path: Path):
    wrong = write_tiny_mmproj(tmp_path / "mmproj-896.gguf", n_embd_text=896)
    model = VisionLanguageModel(ModelLibrary(SDKConfig(offline=True), catalog=Catalog(), events=EventBus()))
    with pytest.raises(ModelFormatError, match=r"896.*576") as caught:
        model.load_model(smollm2, wrong, n_threads=1)
    assert caught.value.details == {"projection_dim": 896, "n_embd": SMOLLM2_EMBD}
    not_gguf = tmp_path / "mmproj-broken.gguf"
    not_gguf.write_bytes(b"definitely not a projector")
    with pytest.raises(ModelFormatError, match="not a GGUF"):
        model.load_model(smollm2, not_gguf, n_threads=1)
    with pytest.raises(ModelFormatError, match=r"could not load the projector .*Failed to load CLIP"):
        model.load_model(smollm2, tiny_llm, n_threads=1)  # a GGUF, but a language model, not a projector
    assert not model.is_loaded


def test_a_catalog_entry_gives_weights_and_projector_by_role(smollm2: Path, mmproj: Path, tmp_path: Path):
    folder = tmp_path / "tiny-vision"
    folder.mkdir()
    (folder / "lm.gguf").symlink_to(smollm2)
    (folder / "proj.gguf").symlink_to(mmproj)
    library = ModelLibrary(SDKConfig(home=tmp_path / "home", offline=True), catalog=Catalog(), events=EventBus())
    library.register({"id": "tiny-vision", "name": "tiny vision", "category": "multimodal", "format": "gguf",
                      "engine": "llamacpp", "local_path": str(folder),
                      "files": [{"path": "lm.gguf", "role": WEIGHTS}, {"path": "proj.gguf", "role": MMPROJ}]})
    model = VisionLanguageModel(library)
    assert model.load_model("tiny-vision", n_ctx=512, n_threads=1) == "tiny-vision"
    try:
        assert model.process(picture(), "Describe it.", GREEDY).image_tokens == TOKENS
    finally:
        model.unload()


def test_the_built_in_catalog_lists_vision_models_with_projectors():
    catalog = ModelManager.catalog
    for model_id in ("smolvlm-256m-instruct-q8_0", "smolvlm-500m-instruct-q8_0", "qwen2-vl-2b-instruct-q4_k_m",
                     "lfm2-vl-450m-q8_0"):
        entry = catalog.get(model_id)
        roles = entry.file_roles()
        assert entry.category == ModelCategory.MULTIMODAL and entry.engine == "llamacpp"
        assert set(roles) == {WEIGHTS, MMPROJ} and all(f.url and f.url.startswith("https://") for f in entry.files)


def test_describe_every_on_a_video_file(vlm: VisionLanguageModel, tmp_path: Path):
    video = write_video(tmp_path / "clip.avi", seconds=3, fps=5)
    with VideoCapture(video) as capture:
        described = list(capture.describe_every(1.0, "What colour is it?", model=vlm, options=GREEDY))
    assert [round(d.time_s) for d in described] == [0, 1, 2]
    assert all(d.result.image_tokens == TOKENS and d.result.text for d in described)

    async def live() -> list[float]:
        with VideoCapture(video) as capture:
            return [d.time_s async for d in capture.adescribe_every(1.5, "And now?", model=vlm, options=GREEDY)]

    assert [round(t, 1) for t in asyncio.run(live())] == [0.0, 1.6]  # the first frame at or after 1.5 s (5 fps)


def test_cli_describe_prints_the_answer(smollm2: Path, mmproj: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]):
    image = tmp_path / "picture.png"
    image.write_bytes(png(picture()))
    code = cli_main(["describe", str(image), "What is this?", "--model", str(smollm2), "--mmproj", str(mmproj),
                     "--max-tokens", "4", "--temperature", "0", "--threads", "1", "--ctx", "512", "--json"])
    assert code == 0 and not VLM.is_loaded
    out = json.loads(capsys.readouterr().out)
    assert out["image_tokens"] == TOKENS and out["completion_tokens"] == 4 and out["text"]


#: SmolVLM's chat template, which iterates a message's content parts (string content renders nothing).
PARTS_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def test_a_template_that_iterates_content_parts_gets_the_images_as_parts(tmp_path: Path):
    from .tinymodels import write_tiny_llm

    lm = write_tiny_llm(tmp_path / "tiny-parts.gguf", chat_template=PARTS_TEMPLATE)
    projector = write_tiny_mmproj(tmp_path / "mmproj-64.gguf", n_embd_text=64)
    model = VisionLanguageModel(ModelLibrary(SDKConfig(offline=True), catalog=Catalog(), events=EventBus()))
    model.load_model(lm, projector, n_ctx=512, n_threads=1)
    try:
        result = model.process([picture(), picture(seed=3)], "Compare them.", GREEDY)
        assert result.images == 2 and result.image_tokens == 2 * TOKENS and result.completion_tokens == 6
    finally:
        model.unload()


def test_cli_describe_a_video_every_second(smollm2: Path, mmproj: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]):
    video = write_video(tmp_path / "clip.avi", seconds=2, fps=4)
    code = cli_main(["describe", "--video", str(video), "What happens?", "--every", "1", "--model", str(smollm2),
                     "--mmproj", str(mmproj), "--max-tokens", "3", "--threads", "1", "--ctx", "512", "--json"])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["time_s"] for line in lines] == [0.0, 1.0] and all(line["image_tokens"] == TOKENS for line in lines)


def test_a_json_schema_constrains_the_answer_about_an_image(vlm: VisionLanguageModel):
    # The vision path samples through the same constraint engine as text (random vision weights: shape only).
    schema = {"type": "object", "properties": {"colour": {"enum": ["red", "green", "blue"]},
                                               "shapes": {"type": "integer", "minimum": 0, "maximum": 9}},
              "required": ["colour", "shapes"], "additionalProperties": False}
    request = GenerationRequest("What colour is this picture, and how many shapes? Answer in JSON.",
                                GenerationOptions(temperature=0, max_tokens=40), grammar=schema, images=(picture(),))
    result = vlm.start(request).wait()
    assert result.images == 1 and result.image_tokens == TOKENS and result.finish_reason == "stop"
    assert not list(validator_for(schema).iter_errors(json.loads(result.text))), result.text
