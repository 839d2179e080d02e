"""JSON-schema structured output: decoding constrained by the llguidance engine, then real validation.

The schema (draft 4, 6, 7, 2019-09 or 2020-12, from its ``$schema``) becomes a token mask, so the
model can only emit JSON of that shape; the parsed value is then validated with the ``jsonschema``
validator of the schema's own draft, formats included (the engine leaves a few keywords to this
check, and a reply cut by ``max_tokens`` is caught here rather than handed to the caller). A
failed check names the keywords it broke.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..core.cancel import CancelToken
from ..core.errors import ContextLengthError, GenerationError, SDKErrorCode
from ..core.json_schema import checked_schema
from ..core.schema_drafts import validator_for
from ..core.validation import flag
from ..core.validation import text as checked_text
from .text import GenerationStream, TextGeneration, TextGenerator
from .text.request import GenerationOptions, GenerationRequest, Prompt, checked_prompt, options_with
from .text.result import GenerationResult

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class StructuredOutputValidation:
    """Whether a value matches a schema; each error message, and the keywords that failed."""

    is_valid: bool
    errors: tuple[str, ...]
    value: Any = None
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class StructuredResult:
    """The parsed value, guaranteed to match the schema, with the raw generation."""

    value: Any
    text: str
    generation: GenerationResult


def extract_json(text: str) -> Any | None:
    """The first JSON value in ``text`` (a fenced block, or the first ``{``/``[`` that parses)."""
    text = checked_text("text", text)
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        for start, char in enumerate(candidate):
            if char in "{[":
                try:
                    return decoder.raw_decode(candidate, start)[0]
                except json.JSONDecodeError:
                    continue
    return None


def validate(value: Any, schema: Mapping[str, Any]) -> StructuredOutputValidation:
    """Check a value (or JSON text) against a schema; every error is reported, none raised."""
    schema = checked_schema("json_schema", schema)
    if isinstance(value, str):
        parsed = extract_json(value)
        if parsed is None:
            return StructuredOutputValidation(False, ("no JSON value found in the text",))
        value = parsed
    try:
        json.dumps(value, allow_nan=False)  # a value JSON cannot hold would also break the validator's messages
    except (TypeError, ValueError, RecursionError) as exc:
        return StructuredOutputValidation(False, (f"<root>: not a JSON value ({exc})",), value)
    found = list(validator_for(schema).iter_errors(value))
    errors = tuple(f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message} ({e.validator})" for e in found)
    keywords = tuple(dict.fromkeys(str(e.validator) for e in found))
    return StructuredOutputValidation(not errors, errors, value, keywords)


def schema_prompt(prompt: Prompt, schema: Mapping[str, Any]) -> Prompt:
    """``prompt`` with an instruction to answer in JSON matching ``schema`` (in the system message of a chat)."""
    instruction = f"Answer only with JSON that matches this JSON schema:\n{json.dumps(schema)}"
    if isinstance(prompt, str):
        return f"{prompt}\n\n{instruction}"
    messages = [dict(m) for m in prompt]
    return [{"role": "system", "content": instruction}, *messages] if messages[0]["role"] != "system" else [
        {**messages[0], "content": f"{messages[0]['content']}\n\n{instruction}"}, *messages[1:]]


class StructuredOutputGenerator:
    """Generates values that match a JSON schema with a :class:`TextGenerator`."""

    def __init__(self, generator: TextGenerator | None = None) -> None:
        self.generator = generator or TextGeneration

    extract_json = staticmethod(extract_json)
    validate = staticmethod(validate)

    def generate(self, prompt: Prompt, json_schema: Mapping[str, Any], options: GenerationOptions | None = None,
                 *, cancel: CancelToken | None = None, include_schema: bool = True,
                 **overrides: Any) -> StructuredResult:
        """Generate JSON matching ``json_schema`` and return it parsed and validated.

        ``include_schema`` also shows the schema to the model, which helps it
        fill the fields sensibly (the constraint alone only fixes their shape). A schema
        too long for the context then fails with a :class:`ContextLengthError` that says
        so: pass ``include_schema=False`` (the engine enforces the schema all the same).
        """
        stream = self._begin(prompt, json_schema, options, cancel, include_schema, overrides)
        with _schema_in_prompt(include_schema):
            return self._finish(stream.wait(), json_schema)

    async def agenerate(self, prompt: Prompt, json_schema: Mapping[str, Any],
                        options: GenerationOptions | None = None, *, cancel: CancelToken | None = None,
                        include_schema: bool = True, **overrides: Any) -> StructuredResult:
        """Async twin of :meth:`generate`."""
        stream = self._begin(prompt, json_schema, options, cancel, include_schema, overrides)
        with _schema_in_prompt(include_schema):
            async for _ in stream:
                pass
        return self._finish(stream.result, json_schema)

    def _begin(self, prompt: Prompt, schema: Mapping[str, Any], options: GenerationOptions | None,
               cancel: CancelToken | None, include_schema: bool, overrides: Mapping[str, Any]) -> GenerationStream:
        schema, chosen = checked_schema("json_schema", schema), options_with(options, overrides)
        checked = checked_prompt(prompt, raw=chosen.raw)
        shown = schema_prompt(checked, schema) if flag("include_schema", include_schema) else checked
        request = GenerationRequest(shown, chosen, grammar=schema)
        return self.generator.start(request, cancel=cancel, deliver=False)

    @staticmethod
    def _finish(result: GenerationResult, schema: Mapping[str, Any]) -> StructuredResult:
        if result.finish_reason == "cancelled":
            raise GenerationError("structured generation was cancelled", code=SDKErrorCode.GENERATION_CANCELLED)
        try:
            value = json.loads(result.text)
        except json.JSONDecodeError as exc:
            hint = " (max_tokens cut it short; raise it)" if result.finish_reason == "length" else ""
            raise GenerationError(f"the model's output is not complete JSON{hint}: {exc}",
                                  details={"text": result.text}) from exc
        check = validate(value, schema)
        if not check.is_valid:
            raise GenerationError(f"the output breaks {', '.join(check.keywords)} of the schema: "
                                  + "; ".join(check.errors),
                                  details={"text": result.text, "errors": check.errors, "keywords": check.keywords})
        return StructuredResult(value, result.text, result)


@contextlib.contextmanager
def _schema_in_prompt(shown: bool) -> Iterator[None]:
    """A prompt over the context because of the schema shown in it says so, and how to do without."""
    try:
        yield
    except ContextLengthError as exc:
        if not shown:
            raise
        raise ContextLengthError(f"{exc.message}; the JSON schema shown in the prompt takes part of it: pass "
                                 "include_schema=False (the engine enforces the schema without showing it)",
                                 details=exc.details) from exc


StructuredOutput = StructuredOutputGenerator()
