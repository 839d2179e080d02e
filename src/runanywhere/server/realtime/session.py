"""One realtime connection: its settings, conversation, input audio, turn detection and replies.

With ``server_vad`` the appended audio feeds a :class:`VoiceSession` (VAD, early start, barge-in, echo guard),
whose typed events become protocol events; with turn detection off, the client commits the buffer and asks
for each reply with ``response.create``. A manual commit works under ``server_vad`` too, as OpenAI's does:
the audio since the last turn becomes a user item (transcribed, not answered until ``response.create``)
and the VAD starts afresh, so that speech is not answered a second time. Client events are applied in
order on the connection's own thread (the VAD and STT run there, never on the event loop); replies run on
threads of their own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...core.cancel import CancelToken
from ...core.errors import CancelledError, SDKError
from ...core.logging import SDKLogger
from ...features.tools import ToolCaller, ToolChoice
from ...features.vad import SpeechActivity, SpeechActivityChange, VADSession
from ...features.voice import VoicePipeline, VoicePipelineCallbacks, VoicePipelineOptions, VoiceSession
from ...features.voice.events import (
    VoiceAudioOut,
    VoiceEvent,
    VoiceInterrupted,
    VoiceResponseCompleted,
    VoiceResponseDelta,
    VoiceTranscription,
    VoiceTurnAnswered,
    VoiceTurnFailed,
)
from ...runtime.worker import EngineWorker
from .audio import PROTOCOL_RATE, duration_ms
from .config import RealtimeEngines, SessionConfig
from .items import Item, Items, with_text
from .protocol import (
    AppendAudio,
    CancelResponse,
    ClearAudio,
    CommitAudio,
    CreateItem,
    CreateResponse,
    DeleteItem,
    Fields,
    RealtimeProtocolError,
    RetrieveItem,
    SessionUpdate,
    TruncateItem,
    new_id,
    parse_event,
    server_event,
)
from .response import Response, Send
from .turns import ConversationTurns

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

_log = SDKLogger("Realtime")
_KEEP_REPLIES = 16  # recent replies kept for conversation.item.truncate
_MIN_COMMIT_MS = 100
_MAX_BUFFER_MS = 60_000  # under server_vad the buffer keeps the last minute since the last turn, for a manual commit
_CHOICE: dict[str, ToolChoice] = {"auto": "auto", "none": "none", "required": "required"}


class RealtimeSession:
    """The state of one connection; :meth:`handle` takes its client events, ``send`` gets its server events."""

    def __init__(self, engines: RealtimeEngines, send: Send, model: str) -> None:
        self.engines, self._send = engines, send
        self.config = SessionConfig(model=model, voice=engines.voice, transcription_model=engines.transcriber)
        self.items = Items()
        self._worker = EngineWorker("realtime-input")
        self._lock = threading.Lock()
        self._reply: Response | None = None  # the latest reply (at most one is active)
        self._replies: OrderedDict[str, Response] = OrderedDict()  # by item id, for truncate
        self._buffer: deque[NDArray[np.float32]] = deque()  # the audio since the last commit (or VAD turn)
        self._speech: deque[str] = deque()  # item ids of the speech the VAD ended, waiting for their transcripts
        self._speech_item: str | None = None  # the item id of the speech going on
        self._turns = ConversationTurns(self.items, self._pipeline())
        self._voice: VoiceSession | None = None
        self._closing = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Say hello (``session.created``) and start listening (on the connection's thread)."""
        self._worker.submit(self._run, self._start)

    def handle(self, message: str | bytes) -> None:
        """Parse and apply one client message, in order, on the connection's thread."""
        self._worker.submit(self._run, self._apply, message)

    def close(self) -> None:
        """The client left: the reply stops, events still queued are skipped, the VAD stream is released."""
        self._closing.set()
        with self._lock:
            reply = self._reply
        if reply is not None:
            reply.cancel("client_cancelled")
        self._worker.submit(self._stop_listening, True)
        self._worker.close(wait=False)

    def _run(self, step: Callable[..., None], *args: Any) -> None:
        """Run one step; a bad event is answered with an ``error`` event and the session goes on."""
        if self._closing.is_set():
            return
        try:
            step(*args)
        except RealtimeProtocolError as exc:
            self._send(exc.to_event())
        except SDKError as exc:
            self._send(RealtimeProtocolError(exc.message, protocol_code=exc.code.name.lower()).to_event())
        except Exception as exc:  # the connection must survive whatever one event does
            _log.error("realtime event failed: %r", exc)
            self._send(server_event("error", error={"type": "server_error", "code": None, "message": str(exc),
                                                    "param": None, "event_id": None}))

    def _start(self) -> None:
        self._send(server_event("session.created", session=self._session_json()))
        self._listen()

    def _apply(self, message: str | bytes) -> None:
        event = parse_event(message)
        handlers: dict[type, Callable[[Any], None]] = {
            AppendAudio: self._append, CommitAudio: self._commit, ClearAudio: self._clear,
            SessionUpdate: self._update, CreateItem: self._create_item, TruncateItem: self._truncate,
            DeleteItem: self._delete_item, RetrieveItem: self._retrieve_item, CreateResponse: self._create_response,
            CancelResponse: self._cancel_response}
        handlers[type(event)](event)

    # ------------------------------------------------------------------ settings
    def _update(self, event: SessionUpdate) -> None:
        old = self.config
        self.config = old.updated(event.session, event.event_id)
        self._turns.pipeline = self._pipeline()
        if self.config.turn_detection != old.turn_detection:
            self._stop_listening()
            self._listen()
        self._send(server_event("session.updated", session=self._session_json()))

    def _session_json(self) -> dict[str, Any]:
        return self.config.to_json(self._pipeline().options)

    def _pipeline(self, overrides: dict[str, Any] | None = None, speaks: bool | None = None) -> VoicePipeline:
        """A pipeline on the shared engines with this session's settings (and a reply's own generation
        ``overrides`` and modality)."""
        config, base = self.config, self.engines.pipeline
        settings = {"system_prompt": config.instructions, "max_tokens": config.max_output_tokens,
                    "temperature": config.temperature, "top_p": config.top_p}
        changes: dict[str, Any] = {name: value for name, value in settings.items() if value is not None}
        changes.update(overrides or {})
        options: VoicePipelineOptions = replace(
            base.with_generation(**changes), speed=config.speed, language=config.language or base.language,
            speak=config.speaks if speaks is None else speaks, execute_tools=False,
            tool_choice=_CHOICE.get(config.tool_choice, "required"))  # a named function is forced
        e = self.engines
        return VoicePipeline(stt=e.stt, llm=e.llm, tts=e.tts, options=options, tools=self._tools(config))

    def _tools(self, config: SessionConfig) -> ToolCaller | None:
        """The functions the client declared (the one it forces, if it names one); the client runs them."""
        if not config.tools:
            return None
        caller = ToolCaller(self.engines.llm)
        for tool in config.tools:
            if config.tool_choice in ("auto", "none", "required", tool.name):
                caller.declare_tool(tool)
        return caller

    # ------------------------------------------------------------------ listening (server_vad)
    def _listen(self) -> None:
        detection = self.config.turn_detection
        if detection is None:
            return
        vad, agent = self.engines.vad, self.engines.agent
        settings = detection.vad_settings(vad.settings)
        early = agent.early_start_s if agent.early_start_s is not None and (
            agent.early_start_s < settings.min_silence_s) else None
        # the voice session resamples the 24 kHz input to its own rate before the VAD hears it
        stream: VADSession = vad.create_session("realtime", sample_rate=agent.sample_rate, pause_s=early,
                                                settings=settings)
        options = replace(agent, barge_in=detection.interrupt_response, early_start_s=early, context_turns=None)
        stream.on_speech_activity(self._on_activity)  # first: speech_started goes out before the cut reply's done
        self._voice = VoiceSession(self._turns, stream, options=options, on_event=self._on_voice)

    def _stop_listening(self, hang_up: bool = False) -> None:
        """Release the VAD stream (``hang_up``: and cancel the turn in progress, even before its reply)."""
        voice, self._voice = self._voice, None
        if voice is not None:
            if hang_up:
                voice.stop()
            voice.close()

    def _on_activity(self, change: SpeechActivityChange) -> None:
        """The VAD heard the user start or stop speaking (on the connection's thread, inside ``feed``)."""
        if change.activity is SpeechActivity.STARTED:
            self._speech_item = new_id("item")
            self._send(server_event("input_audio_buffer.speech_started", audio_start_ms=round(change.time_s * 1000),
                                    item_id=self._speech_item))
            detection = self.config.turn_detection
            with self._lock:
                reply = self._reply
            if detection is not None and detection.interrupt_response and reply is not None:
                reply.cancel("turn_detected")  # barge-in: generation (prefill included) and speech stop now
        elif change.activity is SpeechActivity.ENDED:  # the turn is committed; its transcript comes later
            item = Item(self._speech_item or new_id("item"), "user", "input_audio", None)
            self._speech_item = None
            self._speech.append(item.id)
            self._buffer.clear()  # the VAD committed the buffer
            self._send(server_event("input_audio_buffer.speech_stopped", audio_end_ms=round(change.time_s * 1000),
                                    item_id=item.id))
            self._committed(item)

    def _on_voice(self, event: VoiceEvent) -> None:
        """A voice session event (on its threads) as protocol events."""
        if isinstance(event, VoiceTranscription):
            if self._speech:
                self._transcribed(self._speech.popleft(), event.result.text, event.result.audio_duration_s)
            self._new_reply(self._turns.token, self.config.speaks)
            return
        with self._lock:
            reply = self._reply
        if reply is None:
            return
        if isinstance(event, VoiceTurnFailed):
            self._failed(reply, event.error)
        elif isinstance(event, VoiceInterrupted):
            reply.cancel("turn_detected")
        else:
            _fill(reply, event)

    # ------------------------------------------------------------------ input audio
    def _append(self, event: AppendAudio) -> None:
        self._buffer.append(event.samples)
        if self._voice is not None:
            while len(self._buffer) > 1 and duration_ms(sum(map(len, self._buffer))) > _MAX_BUFFER_MS:
                self._buffer.popleft()
            self._voice.feed(event.samples, PROTOCOL_RATE)

    def _commit(self, event: CommitAudio) -> None:
        """The buffer becomes a user item, transcribed; under server_vad the VAD then starts afresh."""
        import numpy as np

        audio = np.concatenate(self._buffer) if self._buffer else np.zeros(0, np.float32)
        if duration_ms(len(audio)) < _MIN_COMMIT_MS:
            raise RealtimeProtocolError(f"the buffer holds {duration_ms(len(audio)):.0f} ms of audio; commit at "
                                        f"least {_MIN_COMMIT_MS} ms", protocol_code="input_audio_buffer_commit_empty",
                                        event_id=event.event_id)
        self._buffer.clear()
        item = Item(self._speech_item or new_id("item"), "user", "input_audio", None)  # the speech started, if any
        if self._voice is not None:  # the speech in progress is committed here, not again when the VAD ends it
            self._stop_listening()
            self._listen()
            self._speech_item = None
        self._committed(item)
        heard = self.engines.stt.transcribe(audio, PROTOCOL_RATE, self.config.language)
        self._transcribed(item.id, heard.text, heard.audio_duration_s)

    def _clear(self, event: ClearAudio) -> None:
        self._buffer.clear()
        if self._voice is not None:  # the speech not yet ended is dropped with its VAD stream
            self._stop_listening()
            self._listen()
        self._send(server_event("input_audio_buffer.cleared"))

    def _committed(self, item: Item) -> None:
        """The user's speech is a conversation item now (its transcript follows)."""
        previous = self.items.add(item)
        self._send(server_event("input_audio_buffer.committed", item_id=item.id, previous_item_id=previous))
        self._send(server_event("conversation.item.added", previous_item_id=previous, item=item.to_json()))

    def _transcribed(self, item_id: str, text: str, seconds: float) -> None:
        """The speech of item ``item_id`` was transcribed: the model sees the item from now on."""
        try:
            item = with_text(self.items.get(item_id), text.strip())
        except RealtimeProtocolError:
            return  # the client deleted the item meanwhile
        self.items.put(item)
        self._send(server_event("conversation.item.input_audio_transcription.completed", item_id=item.id,
                                content_index=0, transcript=item.text,
                                usage={"type": "duration", "seconds": seconds}))
        self._send(server_event("conversation.item.done", previous_item_id=None, item=item.to_json()))

    # ------------------------------------------------------------------ conversation
    def _create_item(self, event: CreateItem) -> None:
        item = Item.from_client(event.item, event.event_id)
        previous = self.items.add(item, event.previous_item_id, event.event_id)
        self._send(server_event("conversation.item.added", previous_item_id=previous, item=item.to_json()))
        self._send(server_event("conversation.item.done", previous_item_id=previous, item=item.to_json()))

    def _truncate(self, event: TruncateItem) -> None:
        """Trim an assistant reply to what the user heard of it: the model sees only that from now on."""
        item = self.items.get(event.item_id, event.event_id)
        with self._lock:
            reply = self._replies.get(event.item_id)
        if item.role != "assistant" or reply is None or not reply.speaks:
            raise RealtimeProtocolError(f"item {event.item_id!r} is not a spoken reply of this session",
                                        param="item_id", event_id=event.event_id)
        if event.content_index != 0:
            raise RealtimeProtocolError("a reply has one content part: content_index must be 0",
                                        param="content_index", event_id=event.event_id)
        heard = reply.heard(event.audio_end_ms, event.event_id)
        reply.cancel("client_cancelled")  # what was not heard is not said either
        self.items.put(replace(reply.item, text=heard, status="incomplete"))
        self._send(server_event("conversation.item.truncated", item_id=item.id, content_index=0,
                                audio_end_ms=event.audio_end_ms))

    def _delete_item(self, event: DeleteItem) -> None:
        self.items.delete(event.item_id, event.event_id)
        self._send(server_event("conversation.item.deleted", item_id=event.item_id))

    def _retrieve_item(self, event: RetrieveItem) -> None:
        item = self.items.get(event.item_id, event.event_id)
        self._send(server_event("conversation.item.retrieved", item=item.to_json()))

    # ------------------------------------------------------------------ replies
    def _new_reply(self, token: CancelToken, speaks: bool) -> Response:
        reply = Response(self._send, self.items, speaks=speaks, token=token)
        with self._lock:
            self._reply = reply
            self._replies[reply.item.id] = reply
            while len(self._replies) > _KEEP_REPLIES:
                self._replies.popitem(last=False)
        return reply

    def _create_response(self, event: CreateResponse) -> None:
        """Answer the conversation as it is now (its last item must be the user's), on a thread of its own."""
        with self._lock:
            active = self._reply is not None and self._reply.active
        if active:
            raise RealtimeProtocolError("a reply is in progress; cancel it first (response.cancel)",
                                        protocol_code="conversation_already_has_active_response",
                                        event_id=event.event_id)
        overrides, speaks = _response_options(event, self.config.speaks)
        history = self.items.history()
        if not history or history[-1]["role"] not in ("user", "tool"):
            raise RealtimeProtocolError("the conversation must end with a user message or a function_call_output",
                                        protocol_code="invalid_request", event_id=event.event_id)
        pipeline = self._pipeline(overrides, speaks)
        reply = self._new_reply(CancelToken(), speaks)
        reply.open()
        threading.Thread(target=self._respond, args=(pipeline, history, reply), name="runanywhere-realtime-reply",
                         daemon=True).start()

    def _respond(self, pipeline: VoicePipeline, history: list[dict[str, Any]], reply: Response) -> None:
        try:  # the reply is completed by the turn's VoiceTurnAnswered, like a voice session's
            pipeline.respond(history, callbacks=VoicePipelineCallbacks(on_event=lambda e: _fill(reply, e)),
                             cancel=reply.token)
        except CancelledError:
            pass
        except Exception as exc:
            self._failed(reply, exc)

    def _cancel_response(self, event: CancelResponse) -> None:
        with self._lock:
            reply = self._reply
        if reply is None or (event.response_id is not None and event.response_id != reply.id) or not reply.cancel(
                "client_cancelled"):
            raise RealtimeProtocolError("no reply in progress to cancel", protocol_code="response_cancel_not_active",
                                        param="response_id", event_id=event.event_id)

    def _failed(self, reply: Response, error: BaseException) -> None:
        reply.fail(error)
        code = error.code.name.lower() if isinstance(error, SDKError) else None
        self._send(server_event("error", error={"type": "server_error", "code": code, "message": str(error),
                                                "param": None, "event_id": None}))


def _fill(reply: Response, event: VoiceEvent) -> None:
    """A turn's output event into its reply."""
    if isinstance(event, VoiceResponseDelta):
        reply.text(event.text)
    elif isinstance(event, VoiceAudioOut):
        reply.audio(event.chunk)
    elif isinstance(event, VoiceResponseCompleted):
        reply.generated(event.generation)
    elif isinstance(event, VoiceTurnAnswered) and not event.result.interrupted:
        reply.complete(event.result.response, event.result.metrics, event.result.tool_calls)


def _response_options(event: CreateResponse, speaks: bool) -> tuple[dict[str, Any], bool]:
    """A ``response.create``'s own settings: generation overrides, and whether it speaks."""
    f = Fields(event.response, event.event_id, "response.")
    f.refuse_unknown({"instructions", "output_modalities", "modalities", "max_output_tokens", "conversation"})
    if f.get("conversation", str) not in (None, "auto"):
        raise f.error("conversation", "only the session's conversation ('auto') is supported", "unsupported_parameter")
    overrides: dict[str, Any] = {}
    instructions = f.get("instructions", str)
    if instructions is not None:
        overrides["system_prompt"] = instructions
    tokens = f.get("max_output_tokens", (int, str))
    if tokens is not None and tokens != "inf":
        if not isinstance(tokens, int) or not 1 <= tokens <= 4096:
            raise f.error("max_output_tokens", f"max_output_tokens must be 1..4096 or 'inf', got {tokens!r}")
        overrides["max_tokens"] = tokens
    modalities = f.get("output_modalities", list) or f.get("modalities", list)
    if modalities is not None:
        if set(modalities) not in ({"audio"}, {"text"}, {"text", "audio"}):
            raise f.error("output_modalities", f"output_modalities must be ['audio'] or ['text'], got {modalities}")
        speaks = "audio" in modalities
    return overrides, speaks
