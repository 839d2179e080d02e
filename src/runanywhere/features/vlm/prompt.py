"""A request's images and chat, the way a vision-language engine reads them.

Images come from the request's ``images`` (placed before the text of the last user message) and from
OpenAI-style content parts inside the messages (``{"type": "image_url", "image_url": {"url": ...}}``, or
``{"type": "image", "image": ...}`` with any accepted image form). Each becomes the engine's media marker in
the text. Chat templates differ in what a message's content is: most take a string (SmolLM2's, Qwen2.5's;
llama.cpp's stock multimodal handler fails on those), some iterate a list of parts (SmolVLM's). The chat is
rendered with string content first and, if the template drops the markers, with text parts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from ...backends.base import LanguageModel
from ...core.errors import InvalidInputError, SDKErrorCode
from ...media.images import ImageInput
from ..text import GenerationRequest


@dataclass(frozen=True)
class VisionText:
    """The prompt text with one marker per image, the images in that order, and how to tokenize it."""

    text: str
    images: tuple[ImageInput, ...]
    stops: tuple[str, ...]
    add_special: bool


def vision_text(engine: LanguageModel, request: GenerationRequest, marker: str) -> VisionText:
    """Render ``request`` for a vision-language engine whose images are written as ``marker``."""
    messages = request.messages()
    if messages is None:  # raw: the caller wrote the markers into the prompt
        return VisionText(cast(str, request.prompt), request.images, request.options.stop, True)
    images: list[ImageInput] = []
    chat = _with_images(messages, request.images)
    pieces = [[_piece(part, marker, images) for part in _parts(m["content"])] for m in chat]
    for as_parts in (False, True):
        rendered = engine.render_chat([_message(m, p, as_parts) for m, p in zip(chat, pieces, strict=True)],
                                      [dict(t) for t in request.tools] or None)
        if rendered.text.count(marker) == len(images):
            return VisionText(rendered.text, tuple(images), request.options.stop + rendered.stop, rendered.add_bos)
    raise InvalidInputError("the model's chat template drops images from the messages; pass raw=True with "
                            f"{marker!r} where each image goes", code=SDKErrorCode.INVALID_PROMPT)


def _with_images(messages: list[dict[str, Any]], images: Sequence[ImageInput]) -> list[dict[str, Any]]:
    """``messages`` with ``images`` as parts at the start of the last user message."""
    if not images:
        return messages
    last = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last is None:
        raise InvalidInputError("images go with a user message, and the messages have none")
    content = [{"type": "image", "image": image} for image in images] + _parts(messages[last]["content"])
    return [*messages[:last], {**messages[last], "content": content}, *messages[last + 1:]]


def _parts(content: Any) -> list[Any]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, Sequence) and all(isinstance(p, Mapping) for p in content):
        return list(content)
    raise InvalidInputError("a message's content is a string or a list of parts (dicts)",
                            code=SDKErrorCode.INVALID_PROMPT)


def _piece(part: Mapping[str, Any], marker: str, images: list[ImageInput]) -> str:
    """A content part as text: its text, or the marker of an image (which joins ``images``)."""
    kind = part.get("type")
    if kind == "text":
        return str(part.get("text", ""))
    if kind in ("image_url", "input_image"):
        url = part.get("image_url")
        images.append(url.get("url") if isinstance(url, Mapping) else url)
        return marker
    if kind == "image":
        images.append(part.get("image"))
        return marker
    raise InvalidInputError(f"unknown content part type {kind!r}; use 'text', 'image_url' or 'image'",
                            code=SDKErrorCode.INVALID_PROMPT)


def _message(message: Mapping[str, Any], pieces: list[str], as_parts: bool) -> dict[str, Any]:
    if as_parts:
        return {**message, "content": [{"type": "text", "text": piece} for piece in pieces]}
    return {**message, "content": "\n".join(piece for piece in pieces if piece)}
