"""Vision-language models: images and a prompt in, text out, on llama.cpp's multimodal path.

``VLM`` is the default :class:`VisionLanguageModel`. It is a :class:`TextGenerator` whose engine also reads
images, so a request with images takes the same :class:`GenerationRequest` path as text: the model's worker
decodes and resizes the images, renders the chat with the model's own template, encodes the images and
prefills (each step cancellable and timed), then samples with the shared decode loop. Requests run one at a
time per model, in the order they came.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from ...backends.base import LanguageModel, VisionLanguageEngine
from ...backends.registry import VISION_LANGUAGE_MODELS, EngineRegistry
from ...core.cancel import CancelToken
from ...core.errors import CancelledError, InvalidInputError, SDKErrorCode
from ...core.events import EventBus, GenerationFailed, GenerationStarted
from ...core.validation import positive_int
from ...media.images import DEFAULT_MAX_SIDE, ImageInput, load_image
from ...models.catalog import ModelCategory
from ...models.manager import ModelLibrary, ProgressCallback
from ...runtime.llama import LlamaSession
from ..text import GenerationOptions, GenerationRequest, GenerationStream, Prompt, TextGenerator
from ..text.decode import PromptTokens, compile_grammar, completed, run_generation
from ..text.request import options_with
from .prompt import vision_text
from .results import VLMResult, VLMStageStarted

Images = ImageInput | Sequence[ImageInput] | None
"""One image, several (a list or tuple), or none (the messages carry them)."""
_ENGINES = cast(EngineRegistry[LanguageModel], VISION_LANGUAGE_MODELS)  # a vision engine is a language model


class VLMStream(GenerationStream):
    """Token events as they come; :attr:`result` is the :class:`VLMResult`. Stopping it stops the engine."""

    @property
    def result(self) -> VLMResult:
        return cast(VLMResult, super().result)

    async def aresult(self) -> VLMResult:
        return cast(VLMResult, await super().aresult())

    def wait(self) -> VLMResult:
        return cast(VLMResult, super().wait())


class VisionLanguageModel(TextGenerator):
    """Loads a GGUF language model with its vision projector (``mmproj``) and answers about images.

    ``max_image_side`` bounds the longer side images are shrunk to (aspect kept) before encoding.
    """

    component = "vlm"
    noun = "vision-language model"
    category = ModelCategory.MULTIMODAL
    batching = False  # images go through the single-sequence context: one request at a time, queued in order

    def __init__(self, models: ModelLibrary | None = None, *, events: EventBus | None = None,
                 max_image_side: int = DEFAULT_MAX_SIDE) -> None:
        super().__init__(models, events=events)
        self.max_image_side = max_image_side

    @property
    def max_image_side(self) -> int:
        """The longer side images are shrunk to before encoding (aspect kept; smaller ones stay as they are)."""
        return self._max_image_side

    @max_image_side.setter
    def max_image_side(self, value: int) -> None:
        self._max_image_side = positive_int("max_image_side", value)

    # ---------------------------------------------------------------- loading
    def load_model(
        self, model: str | os.PathLike[str] | None = None, mmproj: str | os.PathLike[str] | None = None,
        model_id: str | None = None, *, n_ctx: int = 4096, n_threads: int | None = None, n_batch: int = 512,
        max_sequences: int | None = None, progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
    ) -> str:
        """Load a catalog id (its ``weights`` and ``mmproj`` files) or a ``.gguf`` path and its projector's path.

        ``model_id`` names a model given by paths. A projector made for another model (a different
        embedding width) is a :class:`ModelFormatError` naming both widths.
        """
        return self._load(model, _ENGINES, self._vision_options(mmproj, n_ctx, n_threads, n_batch, max_sequences),
                          progress=progress, cancel=cancel, model_id=model_id)

    async def aload_model(
        self, model: str | os.PathLike[str] | None = None, mmproj: str | os.PathLike[str] | None = None,
        model_id: str | None = None, *, n_ctx: int = 4096, n_threads: int | None = None, n_batch: int = 512,
        max_sequences: int | None = None, progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
    ) -> str:
        """Async twin of :meth:`load_model`."""
        options = self._vision_options(mmproj, n_ctx, n_threads, n_batch, max_sequences)
        return await self._aload(model, _ENGINES, options, progress=progress, cancel=cancel, model_id=model_id)

    def _vision_options(self, mmproj: str | os.PathLike[str] | None, n_ctx: int, n_threads: int | None,
                        n_batch: int, max_sequences: int | None) -> dict[str, Any]:
        options = self._options(n_ctx, n_threads, n_batch, max_sequences)
        return {**options, "mmproj": os.fspath(mmproj)} if mmproj is not None else options

    # ------------------------------------------------------------- processing
    def start(self, request: GenerationRequest, *, cancel: CancelToken | None = None,
              deliver: bool = True) -> VLMStream:
        """Queue ``request`` (with or without images) on the model's worker and return its stream."""
        if not isinstance(request, GenerationRequest):
            raise InvalidInputError("start() takes a GenerationRequest", code=SDKErrorCode.INVALID_PARAMETER)
        loaded = self._require()
        engine = cast(VisionLanguageEngine, loaded.engine)
        submitted = time.perf_counter()
        events, max_side = self._events, self.max_image_side

        def stage(name: str) -> None:
            events.emit(VLMStageStarted(model_id=loaded.model_id, stage=name))

        def produce(cancel_token: CancelToken, emit: Callable[[Any], None]) -> VLMResult:
            dequeued = time.perf_counter()
            events.emit(GenerationStarted(model_id=loaded.model_id, prompt=request.preview()))
            seen = _Evaluation(engine, max_side, cancel_token, stage)
            try:
                grammar = compile_grammar(engine, request.grammar)
                result = run_generation(loaded.session, loaded.model_id, request, grammar, cancel_token, emit,
                                        queue_ms=(dequeued - submitted) * 1000, prepare=seen.prepare)
            except CancelledError as exc:
                events.emit(GenerationFailed(model_id=loaded.model_id, error=str(exc)))
                return VLMResult.cancelled(loaded.model_id, str((exc.details or {}).get("stage", "prefill")),
                                           images=seen.images, latency_ms=(time.perf_counter() - dequeued) * 1000,
                                           queue_ms=(dequeued - submitted) * 1000)
            except Exception as exc:
                events.emit(GenerationFailed(model_id=loaded.model_id, error=str(exc)))
                raise
            finally:
                loaded.session.forget()  # the cache holds images now: no text prefix is known to match it
            events.emit(completed(result))
            return VLMResult.of(result, images=seen.images, image_tokens=seen.image_tokens,
                                image_encode_ms=seen.encode_ms)

        return VLMStream(loaded.worker.stream(produce, cancel or CancelToken(), deliver=deliver))

    def process(self, image: Images, prompt: Prompt, options: GenerationOptions | None = None, *,
                cancel: CancelToken | None = None, **overrides: Any) -> VLMResult:
        """Answer ``prompt`` (a string, or chat messages that may hold ``image_url`` parts) about ``image``."""
        return self.start(_request(image, prompt, options, overrides), cancel=cancel, deliver=False).wait()

    def process_stream(self, image: Images, prompt: Prompt, options: GenerationOptions | None = None, *,
                       cancel: CancelToken | None = None, **overrides: Any) -> VLMStream:
        """Stream the answer's :class:`TokenEvent` pieces; the stream's ``result`` is the :class:`VLMResult`."""
        return self.start(_request(image, prompt, options, overrides), cancel=cancel)

    async def aprocess(self, image: Images, prompt: Prompt, options: GenerationOptions | None = None, *,
                       cancel: CancelToken | None = None, **overrides: Any) -> VLMResult:
        """Async twin of :meth:`process`; cancelling the task cancels the work (image encoding included)."""
        stream = self.start(_request(image, prompt, options, overrides), cancel=cancel, deliver=False)
        return await stream.aresult()

    def aprocess_stream(self, image: Images, prompt: Prompt, options: GenerationOptions | None = None, *,
                        cancel: CancelToken | None = None, **overrides: Any) -> VLMStream:
        """Async twin of :meth:`process_stream`: use ``async for``."""
        return self.process_stream(image, prompt, options, cancel=cancel, **overrides)


@dataclass
class _Evaluation:
    """One request's prompt step on the worker (images decoded, encoded, prefilled), and what it saw."""

    engine: VisionLanguageEngine
    max_side: int
    cancel: CancelToken
    stage: Callable[[str], None]
    images: int = 0
    image_tokens: int = 0
    encode_ms: float = 0.0

    def prepare(self, session: LlamaSession, request: GenerationRequest) -> PromptTokens:
        """The :data:`PromptBuilder` of a vision request: its text and images are in the KV cache after it."""
        text = vision_text(self.engine, request, self.engine.media_marker)
        pictures = [load_image(image, max_side=self.max_side) for image in text.images]
        self.images = len(pictures)
        evaluated = self.engine.evaluate(text.text, pictures, self.cancel, self.stage, add_special=text.add_special,
                                         n_threads=request.options.threads)
        self.image_tokens, self.encode_ms = evaluated.image_tokens, evaluated.image_encode_ms
        self.stage("decode")
        return PromptTokens(text.text, evaluated.tokens, text.stops, evaluated.prompt_tokens)


def _request(image: Images, prompt: Prompt, options: GenerationOptions | None,
             overrides: dict[str, Any]) -> GenerationRequest:
    images = () if image is None else tuple(image) if isinstance(image, list | tuple) else (image,)
    return GenerationRequest(prompt, options_with(options, overrides), images=images)


VLM = VisionLanguageModel()
