"""A continuous voice conversation over an audio source: a thin driver of a :class:`VoiceSession`.

The agent reads an audio source (a microphone through ``AudioCapture``, any
iterator or async iterator of chunks, or a file), feeds it to a session, which
cuts the user's turns and answers them (barge-in, self-echo guard, early start:
see :mod:`.session`), and hands the reply's audio to a sink (``AudioPlayback``
or a callback), stopping a sink that can stop when the user barges in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ...core.bridge import iterate_blocking, run_in_thread
from ...core.cancel import CancelToken
from ...media.audio import audio_blocks, to_mono_float32
from ..tts import AudioChunk
from ..vad import VAD, VoiceActivityDetector
from .events import (
    Callbacks,
    Listener,
    VoiceAudioOut,
    VoiceEvent,
    VoiceInterrupted,
    VoiceStateChanged,
    VoiceTurnAnswered,
    VoiceTurnFailed,
)
from .history import Conversation
from .pipeline import VoicePipeline
from .results import PipelineState, VoiceTurnResult
from .session import VoiceAgentOptions, VoiceSession

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

Sink = Callable[[AudioChunk], None]


@dataclass
class VoiceAgentCallbacks(Callbacks):
    """What a session reports while it runs. Called from the session's threads: keep them quick.

    ``on_state_change`` follows the session: ``listening`` (for the user),
    ``processingSTT`` and ``generatingResponse`` (a turn the VAD has ended is
    being answered), ``playingTTS`` (from the reply's first audio until it has
    been heard), ``error`` (a turn failed; listening follows), ``idle`` (the
    session is over). ``on_turn`` gets each turn once its reply is complete
    (generated and handed to the sink; a barge-in after that marks it
    interrupted in :attr:`VoiceAgent.turns`). ``on_error`` gets what made a
    turn fail (the session goes on listening) and an error of the sink (the
    session stops: see :meth:`VoiceAgent.run`). ``on_event`` gets every event, typed.
    """

    on_state_change: Callable[[PipelineState], None] | None = None
    on_turn: Callable[[VoiceTurnResult], None] | None = None
    on_error: Callable[[BaseException], None] | None = None
    on_event: Listener | None = None

    _HOOKS: ClassVar[dict[type[VoiceEvent], tuple[str, str]]] = {
        VoiceStateChanged: ("on_state_change", "state"), VoiceTurnAnswered: ("on_turn", "result"),
        VoiceTurnFailed: ("on_error", "error")}


class VoiceAgent:
    """Runs voice turns over an audio stream; keeps the conversation and one metrics record per turn."""

    def __init__(self, pipeline: VoicePipeline | None = None, vad: VoiceActivityDetector | None = None, *,
                 options: VoiceAgentOptions | None = None, callbacks: VoiceAgentCallbacks | None = None) -> None:
        self.pipeline = pipeline or VoicePipeline()
        self.vad = vad or VAD
        self.options = options or VoiceAgentOptions()
        self.callbacks = callbacks or VoiceAgentCallbacks()
        self.conversation = Conversation()
        self._stop = threading.Event()
        self._session: VoiceSession | None = None
        self._state = PipelineState.IDLE

    @property
    def state(self) -> PipelineState:
        """Where the session is (see :class:`VoiceAgentCallbacks`)."""
        return self._state

    @property
    def history(self) -> list[dict[str, Any]]:
        """The conversation as chat messages (an interrupted reply is marked ``"interrupted": True``)."""
        return self.conversation.history

    @property
    def turns(self) -> list[VoiceTurnResult]:
        """Every answered turn, in order."""
        return self.conversation.turns

    def stop(self) -> None:
        """End the session after the current chunk (the reply in progress is cancelled)."""
        self._stop.set()
        session = self._session
        if session is not None:
            session.stop()

    def open_session(self, on_event: Listener | None = None) -> VoiceSession:
        """A session on this agent's pipeline, VAD and conversation, for a caller that pushes the audio itself."""
        early = self.options.early_start_s
        if early is not None and not early < self.vad.settings.min_silence_s:
            early = None
        vad = self.vad.create_session(sample_rate=self.options.sample_rate, pause_s=early)
        return VoiceSession(self.pipeline, vad, options=self.options, conversation=self.conversation,
                            on_event=on_event)

    # ----------------------------------------------------------------- running
    def run(self, source: Iterable[Any] | str | Any, sink: Sink | Any = None) -> list[VoiceTurnResult]:
        """Listen to ``source`` until it ends (or :meth:`stop`) and answer each turn; returns the turns.

        When the source raises (Ctrl-C, an unplugged microphone) or the sink does (its error also goes to
        ``on_error``), the session stops: the turn not yet answered in full is cancelled, sends nothing
        more to the sink and is not recorded; ``run`` waits for it to end, the state settles at ``idle``,
        and the error is raised.
        """
        opts = self.options
        output = _Output(sink)
        broken: list[Exception] = []
        self._stop.clear()

        def on_event(event: VoiceEvent) -> None:
            if isinstance(event, VoiceStateChanged):
                self._state = event.state
            try:
                output.handle(event)
            except Exception as exc:  # nothing more can be heard: the session stops
                if not broken:
                    broken.append(exc)
                    self.callbacks.handle(VoiceTurnFailed(error=exc))
                    self.stop()
            self.callbacks.handle(event)

        session = self._session = self.open_session(on_event)
        paced = opts.realtime and not self._live(source)  # a chunk exists once its last sample was said
        fed_s, started = 0.0, time.monotonic()
        try:
            for samples, rate in self._chunks(source):
                if self._stop.is_set():
                    break
                fed_s += len(samples) / rate
                if paced:
                    time.sleep(max(0.0, started + fed_s - time.monotonic()))
                session.feed(samples, rate)
            session.flush()
            if broken:
                raise broken[0]
        except BaseException:  # e.g. Ctrl-C while reading the microphone: the reply stops too
            session.stop()
            raise
        finally:
            self._session = None
            session.close()  # after a stop, waits for the cancelled turn: nothing of it comes later
        return list(self.turns)

    async def arun(self, source: AsyncIterable[Any] | Iterable[Any] | str,
                   sink: Sink | Any = None) -> list[VoiceTurnResult]:
        """Async twin of :meth:`run`: an async source is read on this loop, the session runs on a thread."""
        import asyncio

        token = CancelToken()
        if isinstance(source, AsyncIterable):
            source = iterate_blocking(source, asyncio.get_running_loop(), token)
        try:
            return await run_in_thread(lambda _token: self.run(source, sink), token, name="voice-agent")
        except asyncio.CancelledError:
            self.stop()
            raise

    # ---------------------------------------------------------------- helpers
    def _chunks(self, source: Any) -> Iterator[tuple[NDArray[np.float32], int]]:
        """Mono float32 chunks with their rates (the session resamples the stream as a whole)."""
        rate, size = self.options.sample_rate, self.options.sample_rate * self.options.chunk_ms // 1000
        if isinstance(source, str | bytes) or hasattr(source, "__fspath__"):
            for block in audio_blocks(source, target_rate=rate):  # a long file is read a block at a time
                for at in range(0, len(block), size):
                    yield block[at: at + size], rate
            return
        for chunk in source:
            samples = getattr(chunk, "samples", chunk)
            chunk_rate = getattr(chunk, "sample_rate", rate)
            yield to_mono_float32(samples), chunk_rate

    @staticmethod
    def _live(source: Any) -> bool:
        from ...media.capture import AudioCapture  # light: sounddevice itself loads only on start()

        return isinstance(source, AudioCapture)


class _Output:
    """The sink: plays each :class:`VoiceAudioOut` (``play()`` of a player, or a callback) and stops at a barge-in."""

    def __init__(self, sink: Any) -> None:
        self._sink = sink
        self._play = getattr(sink, "play", None)
        self._stop = getattr(sink, "stop", None)

    def handle(self, event: VoiceEvent) -> None:
        if isinstance(event, VoiceAudioOut):
            if self._play is not None:
                self._play(event.chunk.audio_data, event.chunk.sample_rate)
            elif self._sink is not None:
                self._sink(event.chunk)
        elif isinstance(event, VoiceInterrupted) and self._stop is not None:
            self._stop()
