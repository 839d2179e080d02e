"""Audio endpoints: transcriptions (multipart upload, every response_format, SSE streaming), translations
(refused: the engines transcribe only), and speech (streamed in every format as it is synthesised)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from .. import ModelCategory, TextToSpeech, TranscribeOptions
from ..core.bridge import run_in_thread
from . import audio_formats
from .errors import bad_request, unsupported
from .params import Params, json_body
from .state import ServerState
from .streaming import WatchedStreamingResponse, event_stream, unless_disconnected
from .transcripts import FORMATS, GRANULARITIES, transcript_response

#: OpenAI's voice names: each is read as the requested model's own voice, so clients sending their default work.
OPENAI_VOICES = frozenset({"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer",
                           "verse", "marin", "cedar"})
MAX_INPUT_CHARS = 4096


async def _form(request: Request) -> FormData:
    try:
        return await request.form(max_files=1, max_fields=32)
    except AssertionError as exc:  # starlette reports a missing multipart library this way
        raise bad_request(f"the body must be multipart/form-data: {exc}") from None


async def transcriptions(request: Request) -> Response:
    state: ServerState = request.app.state.server
    form = await _form(request)
    fields = {key: value for key, value in form.multi_items() if not key.endswith("[]")}
    upload = fields.pop("file", None)
    if not isinstance(upload, UploadFile):
        raise bad_request("'file' (the audio, as a multipart upload) is required", "file", "missing_parameter")
    params = Params(fields)
    model_id = state.model_id(params.take("model", str, required=True), ModelCategory.SPEECH_RECOGNITION)
    fmt = params.take("response_format", str, "json")
    if fmt not in FORMATS:
        raise bad_request(f"'response_format' is one of {', '.join(FORMATS)}", "response_format")
    stream = params.take("stream", str, "false").lower() == "true"
    if stream and fmt not in ("json", "text"):
        raise bad_request("stream=true gives text events; use response_format json or text", "stream")
    language = params.take("language", str)
    _greedy_only(params.take("temperature", str))
    params.refuse_unless("prompt", "", "an initial prompt is not available")
    params.refuse_unless("chunking_strategy", "auto", "the whole upload is transcribed")
    params.finish()
    granularities = _granularities(form.getlist("timestamp_granularities[]"), fmt)
    options = TranscribeOptions(word_timestamps="word" in granularities)
    if form.getlist("include[]"):
        raise unsupported("include", "token log-probabilities are not reported")
    audio = await upload.read()
    if not audio:
        raise bad_request("the uploaded file is empty", "file")
    stt = await state.stt(model_id)
    release = state.admit(model_id)
    if stream:
        segments = stt.atranscribe_stream(audio, language=language, options=options)

        async def events() -> AsyncIterator[dict[str, Any]]:
            async for segment in segments:
                yield {"type": "transcript.text.delta", "delta": segment.text + " "}
            result = segments.result
            state.metrics.observe("stt_real_time_factor", model_id, result.real_time_factor)
            yield {"type": "transcript.text.done", "text": result.text}

        return event_stream(events(), done=False, release=release)
    try:
        result = await unless_disconnected(request, stt.atranscribe(audio, language=language, options=options))
    finally:
        release()
    state.metrics.observe("stt_real_time_factor", model_id, result.real_time_factor)
    return transcript_response(result, fmt, granularities=granularities)


def _granularities(asked: list[Any], fmt: str) -> frozenset[str]:
    """The ``timestamp_granularities[]`` asked for (``segment``, ``word``), as OpenAI takes them: with verbose_json."""
    unknown = [g for g in asked if g not in GRANULARITIES]
    if unknown:
        raise bad_request(f"'timestamp_granularities' are {' and '.join(GRANULARITIES)}, got {unknown[0]!r}",
                          "timestamp_granularities")
    if asked and fmt != "verbose_json":
        raise bad_request("'timestamp_granularities' need response_format verbose_json", "timestamp_granularities")
    return frozenset(asked)


def _greedy_only(temperature: str | None) -> None:
    """Decoding is greedy: a ``temperature`` form field is accepted only as 0."""
    try:
        value = float(temperature) if temperature is not None else 0.0
    except ValueError:
        raise bad_request(f"'temperature' must be a number, got {temperature!r}", "temperature") from None
    if value != 0:
        raise unsupported("temperature", "decoding is greedy (temperature 0)")


async def translations(request: Request) -> Response:
    state: ServerState = request.app.state.server
    form = await _form(request)
    model = form.get("model")
    model_id = state.model_id(model if isinstance(model, str) else None, ModelCategory.SPEECH_RECOGNITION)
    raise bad_request(f"{model_id} cannot translate: the speech engines here transcribe only; use "
                      "/v1/audio/transcriptions", "model", "translation_not_supported")


async def speech(request: Request) -> Response:
    state: ServerState = request.app.state.server
    params = await json_body(request)
    model_id = state.model_id(params.take("model", str, required=True), ModelCategory.SPEECH_SYNTHESIS)
    text = params.take("input", str, required=True)
    if not text.strip() or len(text) > MAX_INPUT_CHARS:
        raise bad_request(f"'input' is 1 to {MAX_INPUT_CHARS} characters of text", "input")
    voice_id, speaker = await _voice(state, params.take("voice", (str, dict), required=True), model_id)
    fmt = params.take("response_format", str, "mp3")
    if fmt not in audio_formats.formats():
        raise unsupported("response_format", f"{fmt!r}: choose one of {', '.join(audio_formats.formats())}")
    speed = params.take("speed", float, 1.0)
    if not 0.25 <= speed <= 4.0:
        raise bad_request(f"'speed' must be between 0.25 and 4.0, got {speed}", "speed")
    params.refuse_unless("instructions", "", "the voices here cannot be steered by instructions")
    params.refuse_unless("stream_format", "audio", "audio is streamed as bytes; server-sent events are not offered")
    params.finish()
    tts = await state.tts(voice_id)
    low, high = tts.speed_range
    if not low <= speed <= high:
        raise bad_request(f"'speed' must be between {low} and {high} for {voice_id}, got {speed}", "speed")
    release = state.admit(voice_id)
    return WatchedStreamingResponse(_streamed(state, tts, voice_id, text, speed, speaker, fmt),
                                    media_type=audio_formats.media_type(fmt), release=release)


async def _streamed(state: ServerState, tts: TextToSpeech, voice_id: str, text: str, speed: float,
                    speaker: str | None, fmt: str) -> AsyncIterator[bytes]:
    """The speech in ``fmt`` as it is synthesised, first clause first (encoded off the event loop)."""
    encoder = audio_formats.encoder(fmt, tts.sample_rate)

    async def encoded(work: Callable[[], bytes]) -> bytes:
        return await run_in_thread(lambda _token: work(), name=f"encode-{fmt}")

    stream = tts.asynthesize_stream(text, speed=speed, speaker=speaker)
    async for chunk in stream:
        if data := await encoded(functools.partial(encoder.encode, chunk.audio_data)):
            yield data
    yield await encoded(encoder.finish)
    state.metrics.observe("tts_real_time_factor", voice_id, stream.result.real_time_factor)


async def _voice(state: ServerState, voice: Any, model_id: str) -> tuple[str, str | None]:
    """The installed voice model to speak with and its speaker: a voice id, a speaker of the requested model
    (Kokoro's ``jf_alpha``, say), or an OpenAI voice name read as the model's own (first) voice."""
    name = voice.get("id") if isinstance(voice, dict) else voice
    if name in OPENAI_VOICES:
        return model_id, None
    if isinstance(name, str) and name in state.library.catalog:
        return state.model_id(name, ModelCategory.SPEECH_SYNTHESIS, "voice"), None
    speakers = (await state.tts(model_id)).speakers
    if name in speakers:
        return model_id, name
    voices = [i.id for i in state.library.list_models(ModelCategory.SPEECH_SYNTHESIS)]
    raise bad_request(f"unknown voice {name!r}: use a voice id ({', '.join(voices)}), a speaker of {model_id} "
                      f"({', '.join(speakers)}) or one of OpenAI's names ({', '.join(sorted(OPENAI_VOICES))})",
                      "voice")
