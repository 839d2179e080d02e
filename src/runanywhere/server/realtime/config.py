"""A realtime session's settings: what ``session.update`` may change, checked field by field.

GA fields (``audio.input.turn_detection``, ``audio.output.voice``, ``output_modalities``...) and their
beta aliases (``turn_detection``, ``voice``, ``modalities``, ``input_audio_format``...). A field the
session cannot honour is refused by name with an ``error`` event, never silently dropped.

Extension: ``temperature`` (0..2; the beta session had it) and ``top_p`` (0..1) set how every reply of
the session is sampled, as they do for chat completions; the GA session has no such fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ...backends.base import VadSettings
from ...core.errors import InvalidInputError
from ...features.stt import SpeechToText
from ...features.text import TextGenerator
from ...features.tools import ToolDefinition
from ...features.tts import TextToSpeech
from ...features.vad import VoiceActivityDetector
from ...features.voice import VoiceAgentOptions, VoicePipelineOptions
from .audio import PROTOCOL_RATE
from .protocol import Fields, new_id


@dataclass(frozen=True)
class RealtimeEngines:
    """The loaded engines every connection shares (each connection has its own VAD stream and conversation).

    ``pipeline`` is how replies are generated and spoken (``max_output_tokens`` and ``instructions``
    override it per session); ``agent`` how a session listens (barge-in, echo guard, early start;
    ``turn_detection`` overrides its VAD settings).
    """

    stt: SpeechToText
    llm: TextGenerator
    tts: TextToSpeech
    vad: VoiceActivityDetector
    pipeline: VoicePipelineOptions = field(default_factory=VoicePipelineOptions)
    agent: VoiceAgentOptions = field(default_factory=VoiceAgentOptions)

    @property
    def voice(self) -> str:
        """The installed voice's id: what ``session.created`` reports (OpenAI voice names speak with it too)."""
        return self.tts.voice_id or "default"

    @property
    def transcriber(self) -> str:
        """The speech-to-text model's id: the session's transcription model, whatever name a client asks for."""
        return self.stt.loaded_model or "default"


_OPENAI_VOICES = {"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"}
_CHOICES = ("auto", "none", "required")
_MODALITIES = ({"audio"}, {"text"}, {"text", "audio"})


@dataclass(frozen=True)
class TurnDetection:
    """``server_vad``: the VAD ends a turn after ``silence_duration_ms`` of silence and it is answered at once
    (``create_response`` is always true); speech over a reply cuts it when ``interrupt_response``."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    interrupt_response: bool = True

    def vad_settings(self, base: VadSettings) -> VadSettings:
        """The VAD stream's settings: the model's, with this threshold, end-of-turn silence and pre-roll."""
        return replace(base, threshold=self.threshold, min_silence_s=self.silence_duration_ms / 1000,
                       speech_pad_s=self.prefix_padding_ms / 1000)

    def to_json(self) -> dict[str, Any]:
        return {"type": "server_vad", "threshold": self.threshold, "prefix_padding_ms": self.prefix_padding_ms,
                "silence_duration_ms": self.silence_duration_ms, "interrupt_response": self.interrupt_response,
                "create_response": True}

    def updated(self, f: Fields) -> TurnDetection:
        f.refuse_unknown({"type", "threshold", "prefix_padding_ms", "silence_duration_ms", "interrupt_response",
                          "create_response"})
        kind = f.get("type", str) or "server_vad"
        if kind != "server_vad":
            raise f.error("type", f"turn detection {kind!r} is not supported; use 'server_vad' or null",
                          "unsupported_parameter")
        threshold = f.number("threshold", 0.01, 0.99)
        padding, silence = f.number("prefix_padding_ms", 0, 1000), f.number("silence_duration_ms", 50, 10000)
        interrupt = f.get("interrupt_response", bool)
        if f.get("create_response", bool) is False:
            raise f.error("create_response", "create_response false is not supported: with server_vad each turn is "
                                             "answered; set turn_detection to null to ask for replies yourself",
                          "unsupported_parameter")
        return TurnDetection(
            self.threshold if threshold is None else threshold,
            self.prefix_padding_ms if padding is None else int(padding),
            self.silence_duration_ms if silence is None else int(silence),
            self.interrupt_response if interrupt is None else interrupt)


_SESSION_FIELDS = {"type", "object", "id", "model", "instructions", "output_modalities", "max_output_tokens", "audio",
                   "tools", "tool_choice", "modalities", "voice", "turn_detection", "input_audio_format",
                   "output_audio_format", "max_response_output_tokens", "input_audio_transcription", "speed",
                   "temperature", "top_p"}


@dataclass(frozen=True)
class SessionConfig:
    """The settings of one connection. ``instructions``, ``temperature``, ``top_p`` None: the voice
    pipeline's own (its default system prompt and sampling)."""

    model: str
    voice: str
    id: str = ""
    instructions: str | None = None
    output_modalities: tuple[str, ...] = ("audio",)
    max_output_tokens: int | None = None
    speed: float = 1.0
    temperature: float | None = None
    top_p: float | None = None
    language: str | None = None
    transcription_model: str = "default"
    turn_detection: TurnDetection | None = TurnDetection()
    tools: tuple[ToolDefinition, ...] = ()
    tool_choice: str = "auto"  # auto / none / required, or the name of the one function the model must call

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", new_id("sess"))

    @property
    def speaks(self) -> bool:
        return "audio" in self.output_modalities

    def updated(self, session: Mapping[str, Any], event_id: str | None) -> SessionConfig:
        """These settings with the ``session`` object of a ``session.update`` applied (GA or beta field names)."""
        f = Fields(session, event_id, "session.")
        f.refuse_unknown(_SESSION_FIELDS)
        kind = f.get("type", str)
        if kind not in (None, "realtime"):
            raise f.error("type", f"session type {kind!r} is not supported; use 'realtime'", "unsupported_parameter")
        changes: dict[str, Any] = {}
        tools = f.get("tools", list)
        if tools is not None:
            changes["tools"] = tuple(_tool(Fields(t if isinstance(t, dict) else {"type": t}, event_id,
                                                  f"session.tools[{at}].")) for at, t in enumerate(tools))
        if "tool_choice" in session:
            changes["tool_choice"] = _tool_choice(f, changes.get("tools", self.tools))
        if "instructions" in session:
            changes["instructions"] = f.get("instructions", str)
        modalities = f.get("output_modalities", list) or f.get("modalities", list)
        if modalities is not None:
            if set(modalities) not in _MODALITIES:
                raise f.error("output_modalities", f"output_modalities must be ['audio'] or ['text'], got {modalities}")
            changes["output_modalities"] = tuple(modalities)
        sampling = {"temperature": f.number("temperature", 0.0, 2.0), "top_p": f.number("top_p", 0.0, 1.0)}
        if sampling["top_p"] == 0:
            raise f.error("top_p", "'session.top_p' must be above 0 (a small value keeps only the likeliest token)")
        changes.update({name: value for name, value in sampling.items() if value is not None})
        tokens = session.get("max_output_tokens", session.get("max_response_output_tokens"))
        if tokens is not None:
            changes["max_output_tokens"] = _max_tokens(f, tokens)
        audio = f.nested("audio")
        audio.refuse_unknown({"input", "output"})
        self._input(audio.nested("input"), f, session, changes)
        self._output(audio.nested("output"), f, changes)
        updated = replace(self, **changes)
        if updated.tool_choice not in _CHOICES and updated.tool_choice not in {t.name for t in updated.tools}:
            raise f.error("tool_choice", f"tool_choice names {updated.tool_choice!r}, which is no longer a tool")
        return updated

    def _input(self, inp: Fields, top: Fields, session: Mapping[str, Any], changes: dict[str, Any]) -> None:
        inp.refuse_unknown({"format", "turn_detection", "transcription", "noise_reduction"})
        _check_format(inp, "format")
        _check_format(top, "input_audio_format")
        if inp.get("noise_reduction", dict):
            raise inp.error("noise_reduction", "noise reduction is not supported; send null", "unsupported_parameter")
        transcription = inp.nested("transcription") if "transcription" in inp.data else top.nested(
            "input_audio_transcription")
        transcription.refuse_unknown({"model", "language"})
        if transcription.data:  # any model name is answered by the installed one, which the session reports
            transcription.get("model", str)
            changes["language"] = transcription.get("language", str)
        holder, name = (inp, "turn_detection") if "turn_detection" in inp.data else (top, "turn_detection")
        if name in holder.data:
            if holder.data[name] is None:
                changes["turn_detection"] = None
            else:
                current = self.turn_detection or TurnDetection()
                changes["turn_detection"] = current.updated(holder.nested(name))

    def _output(self, out: Fields, top: Fields, changes: dict[str, Any]) -> None:
        out.refuse_unknown({"format", "voice", "speed"})
        _check_format(out, "format")
        _check_format(top, "output_audio_format")
        voice = out.get("voice", str) or top.get("voice", str)
        if voice is not None:
            if voice != self.voice and voice not in _OPENAI_VOICES:
                raise out.error("voice", f"unknown voice {voice!r}: use {self.voice!r} (the installed voice) or an "
                                         "OpenAI voice name, which speaks with it", "invalid_value")
            changes["voice"] = voice
        speed = out.number("speed", 0.25, 4.0) or top.number("speed", 0.25, 4.0)
        if speed is not None:
            changes["speed"] = speed

    def to_json(self, replies: VoicePipelineOptions) -> dict[str, Any]:
        """The ``session`` object of ``session.created`` / ``session.updated``; ``replies``: the options its
        replies are made with (this session's settings applied), whose prompt and sampling it reports."""
        pcm = {"type": "audio/pcm", "rate": PROTOCOL_RATE}
        detection = None if self.turn_detection is None else self.turn_detection.to_json()
        return {
            "type": "realtime", "object": "realtime.session", "id": self.id, "model": self.model,
            "instructions": replies.system_prompt, "temperature": replies.generation.temperature,
            "top_p": replies.generation.top_p,
            "output_modalities": list(self.output_modalities),
            "max_output_tokens": "inf" if self.max_output_tokens is None else self.max_output_tokens,
            "tools": [{"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}
                      for t in self.tools],
            "tool_choice": self.tool_choice if self.tool_choice in _CHOICES else {"type": "function",
                                                                                  "name": self.tool_choice},
            "audio": {"input": {"format": pcm, "noise_reduction": None,
                                "transcription": {"model": self.transcription_model, "language": self.language},
                                "turn_detection": detection},
                      "output": {"format": pcm, "voice": self.voice, "speed": self.speed}}}


def _tool(f: Fields) -> ToolDefinition:
    """A function the client declares (and runs when the model calls it)."""
    f.refuse_unknown({"type", "name", "description", "parameters"})
    if f.get("type", str) not in (None, "function"):
        raise f.error("type", "only function tools are supported", "unsupported_parameter")
    try:
        return ToolDefinition(f.get("name", str, required=True), f.get("description", str) or "",
                              f.get("parameters", dict) or {"type": "object", "properties": {}})
    except InvalidInputError as exc:
        raise f.error("name", exc.message) from exc


def _tool_choice(f: Fields, tools: tuple[ToolDefinition, ...]) -> str:
    """``auto`` / ``none`` / ``required``, or ``{"type": "function", "name": ...}`` for one declared tool."""
    choice = f.get("tool_choice", (str, dict))
    if isinstance(choice, str):
        if choice not in _CHOICES:
            raise f.error("tool_choice", f"tool_choice must be one of {', '.join(_CHOICES)} or a function")
        return choice
    named = Fields(choice, f.event_id, "session.tool_choice.")
    named.refuse_unknown({"type", "name"})
    name = named.get("name", str, required=True)
    if named.get("type", str) != "function" or name not in {t.name for t in tools}:
        raise named.error("name", f"tool_choice names no declared function: {choice!r}")
    return str(name)


def _max_tokens(f: Fields, value: Any) -> int | None:
    if value == "inf":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
        raise f.error("max_output_tokens", f"max_output_tokens must be 1..4096 or 'inf', got {value!r}")
    return value


def _check_format(f: Fields, name: str) -> None:
    """Only PCM16 at 24 kHz: ``{"type": "audio/pcm", "rate": 24000}`` (beta: ``"pcm16"``)."""
    value = f.data.get(name)
    if value is None or value == "pcm16":
        return
    if isinstance(value, dict) and value.get("type", "audio/pcm") == "audio/pcm" and value.get(
            "rate", PROTOCOL_RATE) == PROTOCOL_RATE:
        return
    raise f.error(name, f"audio format {value!r} is not supported; this server speaks audio/pcm at 24000 Hz",
                  "unsupported_parameter")
