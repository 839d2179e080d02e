"""One voice turn: speech → text (STT) → streamed reply (LLM) → streamed speech (TTS).

The LLM's tokens flow straight into streaming TTS, so the first audio chunk
(the reply's first clause) is ready long before the reply is finished. Each
turn returns a :class:`VoiceTurnResult` with one :class:`TurnMetrics` record;
the stages report typed :mod:`events <.events>` to callbacks and to :meth:`VoicePipeline.events`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, TypeVar

from ...core.bridge import run_in_thread
from ...core.cancel import CancelToken
from ...core.errors import CancelledError, InvalidInputError
from ...core.events import EventBus, VoiceTurnCompleted
from ...media.audio import AudioSource
from ..stt import STT, SpeechToText, TranscriptionResult
from ..text import GenerationOptions, GenerationResult, GenerationStream, TextGeneration, TextGenerator
from ..tools import ToolCaller, ToolChoice
from ..tools.parsing import parse_tool_calls
from ..tools.types import ToolCall, ToolCallFormat, ToolResult
from ..tts import TTS, AudioChunk, TextToSpeech
from .events import (
    Callbacks,
    EventFeed,
    Listener,
    VoiceAudioOut,
    VoiceEvent,
    VoiceResponseCompleted,
    VoiceResponseDelta,
    VoiceStateChanged,
    VoiceTranscription,
    VoiceTurnAnswered,
    VoiceTurnFailed,
)
from .results import PipelineState, TurnMetrics, VoiceTurnResult

T = TypeVar("T")


_VOICE_GENERATION = GenerationOptions(max_tokens=80, temperature=0.7)


@dataclass(frozen=True)
class VoicePipelineOptions:
    """How a turn is answered. ``stream_tts=False`` waits for the whole reply before speaking;
    ``speak=False`` answers in text only (no speech is synthesised). ``execute_tools=False``: the tool
    calls the model asks for end the turn and come back in its result, for the caller to run.

    ``generation`` is how the reply is generated (80 tokens at temperature 0.7 unless told);
    :meth:`with_generation` changes some of its fields. Its ``system_prompt`` (None: the voice
    default) leads every turn's conversation.

    The default system prompt was chosen on the default model (SmolLM2-135M): over a 10-question
    conversation it answers each in one short, correct English sentence, while a prompt naming a
    "voice assistant" made it drift into French nonsense from the second turn on.
    """

    DEFAULT_SYSTEM_PROMPT: ClassVar[str] = "You are a helpful assistant. Keep your answers short."

    generation: GenerationOptions = _VOICE_GENERATION
    language: str | None = None
    speaker_id: int = 0
    speed: float = 1.0
    stream_tts: bool = True
    speak: bool = True
    execute_tools: bool = True
    max_tool_calls: int = 3
    tool_choice: ToolChoice = "auto"

    @property
    def system_prompt(self) -> str:
        """The system message of every turn."""
        prompt = self.generation.system_prompt
        return self.DEFAULT_SYSTEM_PROMPT if prompt is None else prompt

    def with_generation(self, **changes: Any) -> VoicePipelineOptions:
        """These options with some generation fields changed, e.g. ``with_generation(temperature=0, max_tokens=40)``."""
        unknown = set(changes) - {f.name for f in fields(GenerationOptions)}
        if unknown:
            raise InvalidInputError(f"not a generation option: {', '.join(sorted(unknown))}")
        return replace(self, generation=replace(self.generation, **changes))


@dataclass
class VoicePipelineCallbacks(Callbacks):
    """Optional hooks, each fed from one event type; ``on_event`` gets every event, typed.

    They may be called from worker threads, so keep them quick.
    """

    on_state_change: Callable[[PipelineState], None] | None = None
    on_transcription: Callable[[TranscriptionResult], None] | None = None
    on_response_token: Callable[[str], None] | None = None
    on_response_complete: Callable[[GenerationResult], None] | None = None
    on_audio_chunk: Callable[[AudioChunk], None] | None = None
    on_synthesis_complete: Callable[[VoiceTurnResult], None] | None = None
    on_error: Callable[[BaseException], None] | None = None
    on_event: Listener | None = None

    _HOOKS: ClassVar[dict[type[VoiceEvent], tuple[str, str]]] = {
        VoiceStateChanged: ("on_state_change", "state"),
        VoiceTranscription: ("on_transcription", "result"),
        VoiceResponseDelta: ("on_response_token", "text"),
        VoiceResponseCompleted: ("on_response_complete", "generation"),
        VoiceAudioOut: ("on_audio_chunk", "chunk"),
        VoiceTurnAnswered: ("on_synthesis_complete", "result"),
        VoiceTurnFailed: ("on_error", "error")}


class VoicePipeline:
    """STT → LLM → TTS for one turn at a time, with models loaded by the caller (or defaults).

    With ``tools`` (a :class:`ToolCaller` on the same ``llm``) a turn may call
    them: rounds that ask for a tool are not spoken, the answer after the
    results is; the calls and results are in the turn's result.
    """

    def __init__(self, *, stt: SpeechToText | None = None, llm: TextGenerator | None = None,
                 tts: TextToSpeech | None = None, options: VoicePipelineOptions | None = None,
                 events: EventBus | None = None, tools: ToolCaller | None = None) -> None:
        self.stt = stt or STT
        self.llm = llm or TextGeneration
        self.tts = tts or TTS
        if tools is not None and tools.generator is not self.llm:
            raise InvalidInputError("the ToolCaller must use the pipeline's language model (ToolCaller(llm))")
        self.tools = tools
        self.options = options or VoicePipelineOptions()
        self._events = events or EventBus.shared
        self._state = PipelineState.IDLE
        self._cancel: CancelToken | None = None
        self._feed = EventFeed()

    @property
    def state(self) -> PipelineState:
        return self._state

    def cancel(self) -> None:
        """Stop the turn in progress at once: transcription, generation (prefill too) and speech."""
        token = self._cancel
        if token is not None:
            token.cancel()

    def warm_up(self) -> None:
        """Run each loaded engine once on a tiny input, so the first real turn pays no first-call costs."""
        import numpy as np

        self.stt.transcribe(np.zeros(1600, dtype=np.float32), 16000)
        self.llm.generate("Hi", max_tokens=2)
        self.tts.synthesize("Hi.")

    async def awarm_up(self) -> None:
        """Async twin of :meth:`warm_up`."""
        import numpy as np

        await self.stt.atranscribe(np.zeros(1600, dtype=np.float32), 16000)
        await self.llm.agenerate("Hi", max_tokens=2)
        await self.tts.asynthesize("Hi.")

    # ------------------------------------------------------------------ turn
    def process_turn(self, audio: AudioSource, sample_rate: int | None = None, *,
                     history: Sequence[Mapping[str, Any]] = (), callbacks: VoicePipelineCallbacks | None = None,
                     cancel: CancelToken | None = None, speech_end_at: float | None = None,
                     vad_delay_ms: float = 0.0,
                     accept_transcription: Callable[[str], bool] | None = None,
                     before_tools: Callable[[], None] | None = None) -> VoiceTurnResult:
        """Answer one utterance. ``history`` is the conversation so far (chat messages, no system prompt).

        ``accept_transcription`` may veto a transcript (the turn then ends unanswered), e.g. the
        agent's own voice heard back. ``before_tools`` runs before any tool does and may wait or
        raise :class:`CancelledError` (a turn started before it is sure must not have side effects).
        Errors reach ``callbacks.on_error`` (and the state becomes
        ``error``) before they are raised. Cancelling is not an error: once the reply has started
        the turn returns ``interrupted``; before that :class:`CancelledError` is raised, with no
        ``on_error`` and no ``VoiceTurnCompleted`` event (nothing was answered).
        """
        started = speech_end_at if speech_end_at is not None else time.perf_counter()
        return self._guarded(callbacks, cancel, lambda hooks, token: self._turn(
            audio, sample_rate, list(history), hooks, token, started, vad_delay_ms, accept_transcription, before_tools))

    def respond(self, history: Sequence[Mapping[str, Any]], *, callbacks: VoicePipelineCallbacks | None = None,
                cancel: CancelToken | None = None) -> VoiceTurnResult:
        """Speak the reply to a conversation whose last message is the user's (typed, or transcribed
        before) or a tool's result: LLM → TTS, no STT. Errors and cancelling behave as in :meth:`process_turn`."""
        messages = list(history)
        if not messages or messages[-1].get("role") not in ("user", "tool") or not str(
                messages[-1].get("content", "")).strip():
            raise InvalidInputError("respond() needs a conversation that ends with the user's message or a tool result")
        question = next((str(m["content"]) for m in reversed(messages) if m.get("role") == "user"), "")
        started = time.perf_counter()
        return self._guarded(callbacks, cancel, lambda hooks, token: self._reply(
            question.strip(), None, self._with_system(messages), hooks, token, started, 0.0, None))

    async def arespond(self, history: Sequence[Mapping[str, Any]], *, callbacks: VoicePipelineCallbacks | None = None,
                       cancel: CancelToken | None = None) -> VoiceTurnResult:
        """Async twin of :meth:`respond`; cancelling the task cancels the reply."""
        return await run_in_thread(lambda token: self.respond(history, callbacks=callbacks, cancel=token), cancel,
                                   name="voice-respond")

    def _guarded(self, callbacks: VoicePipelineCallbacks | None, cancel: CancelToken | None,
                 body: Callable[[VoicePipelineCallbacks, CancelToken], VoiceTurnResult]) -> VoiceTurnResult:
        """Run one turn's ``body`` with its own cancel token: a failure is reported (state ``error``,
        ``VoiceTurnFailed``) and raised; a cancel is raised as is; the state ends ``idle``."""
        hooks = callbacks or VoicePipelineCallbacks()
        token = cancel.child() if cancel is not None else CancelToken()  # a failure stops this turn only
        self._cancel = token
        try:
            return body(hooks, token)
        except CancelledError:
            raise
        except BaseException as exc:
            token.cancel()  # a stage still running (the reply's generation when speech failed) stops too
            self._set_state(PipelineState.ERROR, hooks)
            self._emit(VoiceTurnFailed(error=exc), hooks)
            raise
        finally:
            self._cancel = None
            if self._state is not PipelineState.ERROR:
                self._set_state(PipelineState.IDLE, hooks)

    async def aprocess_turn(self, audio: AudioSource, sample_rate: int | None = None, *,
                            history: Sequence[Mapping[str, Any]] = (),
                            callbacks: VoicePipelineCallbacks | None = None, cancel: CancelToken | None = None,
                            speech_end_at: float | None = None, vad_delay_ms: float = 0.0,
                            accept_transcription: Callable[[str], bool] | None = None,
                            before_tools: Callable[[], None] | None = None) -> VoiceTurnResult:
        """Async twin of :meth:`process_turn`; cancelling the task cancels the turn.

        The turn's stages run on their models' workers; the turn itself is driven from a thread of
        its own, never one of the default executor's.
        """
        def turn(token: CancelToken) -> VoiceTurnResult:
            return self.process_turn(audio, sample_rate, history=history, callbacks=callbacks, cancel=token,
                                     speech_end_at=speech_end_at, vad_delay_ms=vad_delay_ms,
                                     accept_transcription=accept_transcription, before_tools=before_tools)

        return await run_in_thread(turn, cancel, name="voice-turn")

    def prefill(self, history: Sequence[Mapping[str, Any]], *, cancel: CancelToken | None = None) -> int:
        """Evaluate the system prompt and ``history`` into the model's cache, so the next turn evaluates only
        its question (e.g. after the history was shortened); returns the tokens evaluated."""
        return self.llm.prefill(self._with_system(history), cancel=cancel)

    async def aprefill(self, history: Sequence[Mapping[str, Any]], *, cancel: CancelToken | None = None) -> int:
        """Async twin of :meth:`prefill`; cancelling the task cancels the prefill (on the model's worker)."""
        return await self.llm.aprefill(self._with_system(history), cancel=cancel)

    def _with_system(self, history: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The turn's prompt before the question: one builder, so a prefill matches the next turn's prefix."""
        return [{"role": "system", "content": self.options.system_prompt}, *history]

    def _turn(self, audio: AudioSource, sample_rate: int | None, history: list[Mapping[str, Any]],
              hooks: VoicePipelineCallbacks, token: CancelToken, started: float,
              vad_delay_ms: float, accept: Callable[[str], bool] | None,
              before_tools: Callable[[], None] | None) -> VoiceTurnResult:
        opts = self.options
        self._set_state(PipelineState.PROCESSING_STT, hooks)
        heard = self.stt.transcribe(audio, sample_rate, opts.language, cancel=token)
        token.raise_if_cancelled("voice turn")
        self._emit(VoiceTranscription(result=heard), hooks)
        if not heard.text.strip() or (accept is not None and not accept(heard.text)):
            return self._finish(hooks, heard.text, heard, None, [], started, None, None, vad_delay_ms, token)
        messages = [*self._with_system(history), {"role": "user", "content": heard.text.strip()}]
        return self._reply(heard.text, heard, messages, hooks, token, started, vad_delay_ms, before_tools)

    def _reply(self, question: str, heard: TranscriptionResult | None, messages: list[Mapping[str, Any]],
               hooks: VoicePipelineCallbacks, token: CancelToken, started: float, vad_delay_ms: float,
               before_tools: Callable[[], None] | None) -> VoiceTurnResult:
        """The spoken reply to ``messages`` (the prompt, ending with ``question``): LLM streamed into TTS."""
        opts = self.options
        self._set_state(PipelineState.GENERATING_RESPONSE, hooks)
        generation_options = opts.generation
        run = None
        rounds: Iterable[GenerationStream]
        if self.tools is not None and self.tools.tools:
            run = self.tools.start_run(messages, generation_options, max_tool_calls=opts.max_tool_calls,
                                       auto_execute=opts.execute_tools, tool_choice=opts.tool_choice, cancel=token,
                                       before_calls=before_tools)
            rounds = run
        else:
            rounds = (self.llm.generate_stream(messages, generation_options, cancel=token),)
        streams: list[GenerationStream] = []
        first_token_at: list[float] = []

        def pieces() -> Iterator[str]:
            for stream in rounds:
                streams.append(stream)
                gate = _SpokenText(run.tool_names if run is not None else None)
                for event in stream:
                    yield from self._said(gate.feed(event.text), hooks, first_token_at)
                yield from self._said(gate.finish(), hooks, first_token_at)

        chunks: list[AudioChunk] = []
        first_audio_at: float | None = None
        rtf: list[float] = []
        try:
            for chunk in self._speak(pieces(), token, rtf):
                if first_audio_at is None:
                    first_audio_at = time.perf_counter()
                    self._set_state(PipelineState.PLAYING_TTS, hooks)
                chunks.append(chunk)
                self._emit(VoiceAudioOut(chunk=chunk), hooks)
        except CancelledError:
            pass
        if not chunks:
            token.raise_if_cancelled("voice turn")  # cancelled before a word of the reply was said
        tts_rtf = rtf[0] if rtf else None
        generation = streams[-1].result if streams else None
        if generation is not None:
            self._emit(VoiceResponseCompleted(generation=generation), hooks)
        answer = run.result() if run is not None else None
        return self._finish(hooks, question, heard, generation, chunks, started,
                            first_token_at[0] if first_token_at else None,
                            first_audio_at, vad_delay_ms, token, tts_rtf,
                            tools=(answer.text, answer.tool_calls, answer.tool_results) if answer else None)

    def _said(self, text: str, hooks: VoicePipelineCallbacks, first_at: list[float]) -> Iterator[str]:
        """Pass reply text on to be spoken, telling ``on_response_token``; notes when the first came."""
        if text:
            if not first_at:
                first_at.append(time.perf_counter())
            self._emit(VoiceResponseDelta(text=text), hooks)
            yield text

    def _speak(self, pieces: Iterator[str], token: CancelToken, rtf: list[float]) -> Iterator[AudioChunk]:
        """Audio for the reply: streamed clause by clause, or (``stream_tts=False``) all at once at the end.

        The synthesis's real-time factor is appended to ``rtf`` when it completes.
        """
        opts = self.options
        if not opts.speak:  # text only: the reply is read (and reported) as it is generated, not spoken
            for _ in pieces:
                pass
            return
        if opts.stream_tts:
            stream = self.tts.synthesize_stream(pieces, speaker_id=opts.speaker_id, speed=opts.speed, cancel=token)
            yield from stream
            rtf.append(stream.result.real_time_factor)
            return
        text = "".join(pieces).strip()
        if text and not token.cancelled:
            whole = self.tts.synthesize(text, speaker_id=opts.speaker_id, speed=opts.speed, cancel=token)
            rtf.append(whole.real_time_factor)
            yield AudioChunk(whole.audio_data, whole.sample_rate, text, 0, True)

    def _finish(self, hooks: VoicePipelineCallbacks, question: str, heard: TranscriptionResult | None,
                generation: GenerationResult | None,
                chunks: list[AudioChunk], started: float, first_token_at: float | None, first_audio_at: float | None,
                vad_delay_ms: float, token: CancelToken, tts_rtf: float | None = None,
                tools: tuple[str, tuple[ToolCall, ...], tuple[ToolResult, ...]] | None = None) -> VoiceTurnResult:
        """The turn's result and metrics (``heard`` None: a typed question, no STT); ``tools`` is
        (final answer, calls, results) of a tool-calling run."""
        import numpy as np

        self._set_state(PipelineState.COOLDOWN, hooks)
        rate = chunks[0].sample_rate if chunks else (self.tts.sample_rate if self.tts.is_loaded else 22050)
        audio = np.concatenate([c.audio_data for c in chunks]) if chunks else np.zeros(0, dtype=np.float32)
        metrics = TurnMetrics(
            vad_end_of_speech_delay_ms=vad_delay_ms,
            stt_ms=heard.processing_ms if heard else 0.0,
            stt_real_time_factor=heard.real_time_factor if heard else 0.0,
            llm_time_to_first_token_ms=generation.time_to_first_token_ms if generation else None,
            llm_decode_tokens_per_second=generation.decode_tokens_per_second if generation else None,
            llm_prompt_tokens_evaluated=generation.prompt_tokens_evaluated if generation else 0,
            tts_time_to_first_audio_ms=(first_audio_at - first_token_at) * 1000
            if first_audio_at and first_token_at else None,
            tts_real_time_factor=tts_rtf,
            speech_end_to_first_audio_ms=(first_audio_at - started) * 1000 + vad_delay_ms if first_audio_at else None,
            total_ms=(time.perf_counter() - started) * 1000,
        )
        response = tools[0] if tools is not None else generation.text if generation else ""
        result = VoiceTurnResult(question.strip(), response.strip(), audio, rate, metrics,
                                 interrupted=token.cancelled, tool_calls=tools[1] if tools else (),
                                 tool_results=tools[2] if tools else ())
        self._emit(VoiceTurnAnswered(result=result), hooks)
        self._events.emit(VoiceTurnCompleted(speech_detected=result.speech_detected,
                                             transcription=result.transcription, response=result.response))
        return result

    # ---------------------------------------------------------------- events
    def _set_state(self, state: PipelineState, hooks: VoicePipelineCallbacks) -> None:
        if state is self._state:
            return
        self._state = state
        self._emit(VoiceStateChanged(state=state), hooks)

    def _emit(self, event: VoiceEvent, hooks: VoicePipelineCallbacks) -> None:
        hooks.handle(event)
        self._feed.emit(event)

    def events(self) -> AsyncIterator[VoiceEvent]:
        """Every turn's events from this call on, typed and in order, for ``async for`` (call it in a coroutine).

        Events reach the loop through ``call_soon_threadsafe``: no thread waits on behalf of the stream.
        """
        return self._feed.stream()


class _SpokenText:
    """Decides which of a round's text is said aloud: none of a tool call.

    Text that opens like a call (``<tool_call>``, JSON, a bracketed list, a code
    fence) is held until the round ends, then said only if it parses as no
    call; any other text is said as it streams. Without tools, all is said.
    """

    _CALL_OPENERS = "<{[`"

    def __init__(self, tool_names: list[str] | None) -> None:
        self._names = tool_names
        self._held = ""
        self._speak: bool | None = None if tool_names else True

    def feed(self, text: str) -> str:
        if self._speak is None:
            self._held += text
            head = self._held.lstrip()
            if not head:
                return ""
            self._speak = head[0] not in self._CALL_OPENERS
            text, self._held = (self._held, "") if self._speak else ("", self._held)
            return text
        if self._speak:
            return text
        self._held += text
        return ""

    def finish(self) -> str:
        held, self._held = self._held, ""
        calls, _ = parse_tool_calls(held, ToolCallFormat.AUTO, known=self._names) if held.strip() else ([], "")
        return "" if calls else held
