"""One assistant reply on the wire: opened, filled with transcript and audio deltas, closed exactly once.

Its output is a message (text, or audio with its transcript) and/or the tool calls the model asked
for, which the client runs. It also remembers which text went out with which stretch of audio, so
that ``conversation.item.truncate`` can trim the reply to what the user actually heard.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from ...core.cancel import CancelToken
from ...core.errors import SDKError
from ...features.text import GenerationResult
from ...features.tools import ToolCall
from ...features.tts import AudioChunk
from ...features.voice import TurnMetrics
from .audio import AudioEncoder
from .items import Item, Items, with_text
from .protocol import RealtimeProtocolError, new_id, server_event

Send = Callable[[dict[str, Any]], None]


class Response:
    """A reply's events, in the protocol's order, for a client that plays the audio as it comes.

    Thread-safe: the turn's thread fills it while a barge-in or ``response.cancel`` may close it.
    Once closed, nothing more of it goes out.
    """

    def __init__(self, send: Send, items: Items, *, speaks: bool, token: CancelToken) -> None:
        self.id, self.token, self.speaks = new_id("resp"), token, speaks
        self.item = Item(new_id("item"), "assistant", "output_audio" if speaks else "output_text", None, "in_progress")
        self._send, self._items = send, items
        self._lock = threading.Lock()
        self._opened = self._speaking = self._closed = False  # _speaking: the message item is out
        self._output: list[Item] = []
        self._deltas: list[str] = []
        self._spoken: list[tuple[float, str]] = []  # (start in the reply's audio, ms; the text it says)
        self._encoder = AudioEncoder()
        self._usage: dict[str, int] | None = None

    @property
    def active(self) -> bool:
        """On the wire (``response.created`` went out) and not done yet."""
        return self._opened and not self._closed

    def open(self) -> None:
        """Send ``response.created`` now, before any output (a reply the client asked for)."""
        with self._lock:
            self._begin()

    # ------------------------------------------------------------------ filling
    def text(self, delta: str) -> None:
        """The next piece of the reply's text: the audio's transcript, or the reply itself when not speaking."""
        kind = "response.output_audio_transcript.delta" if self.speaks else "response.output_text.delta"
        with self._lock:
            if self._message():
                self._deltas.append(delta)
                self._send(server_event(kind, **self._where(), delta=delta))

    def audio(self, chunk: AudioChunk) -> None:
        """The next chunk of speech, sent as 24 kHz PCM16 (nothing when the reply is text only)."""
        with self._lock:
            if not self.speaks or not self._message():
                return
            self._spoken.append((self._encoder.sent_ms, chunk.text))
            self._audio(self._encoder.encode(chunk.audio_data, chunk.sample_rate))

    def generated(self, generation: GenerationResult) -> None:
        self._usage = {"input_tokens": generation.input_tokens, "output_tokens": generation.output_tokens,
                       "total_tokens": generation.input_tokens + generation.output_tokens}

    # ------------------------------------------------------------------ closing
    def complete(self, text: str, metrics: TurnMetrics | None, calls: Sequence[ToolCall] = ()) -> None:
        """The reply was generated and sent in full, with the tool ``calls`` it asks the client to run:
        close it, with this turn's latency record."""
        with self._lock:
            if not self._begin():
                return
            if self._speaking:
                self._audio(self._encoder.finish())
                self._end_message("completed", text)
            for call in calls:
                self._call(Item.call(call))
            self._done("completed", None, metrics)

    def cancel(self, reason: str) -> bool:
        """Stop the reply now (``turn_detected``: barge-in; ``client_cancelled``); False if it was already over."""
        with self._lock:
            if self._closed:
                return False
            self.token.cancel()
            if not self._opened:
                self._closed = True  # nothing went out: the reply just never starts
                return True
            if self._speaking:
                heard = "".join(t for _, t in self._spoken) if self.speaks else "".join(self._deltas)
                self._end_message("incomplete", heard.strip())
            self._done("cancelled", reason, None)
            return True

    def fail(self, error: BaseException) -> None:
        with self._lock:
            if self._opened and not self._closed:
                if self._speaking:
                    self._end_message("incomplete", "".join(self._deltas).strip())
                self._done("failed", None, None, error)
            self._closed = True

    def heard(self, audio_end_ms: int, event_id: str | None) -> str:
        """The reply's text said before ``audio_end_ms`` into its audio (a chunk just started counts as heard)."""
        with self._lock:
            if audio_end_ms > self._encoder.sent_ms + 1:
                raise RealtimeProtocolError(f"audio_end_ms {audio_end_ms} is past the end of the reply's audio "
                                            f"({self._encoder.sent_ms:.0f} ms)", param="audio_end_ms",
                                            event_id=event_id)
            return "".join(text for start, text in self._spoken if start < audio_end_ms).strip()

    # ------------------------------------------------------------------ internals (lock held)
    def _begin(self) -> bool:
        """Open the reply on the wire (``response.created``); False once it is closed."""
        if self._closed:
            return False
        if not self._opened:
            self._opened = True
            self._send(server_event("response.created", response=self._json("in_progress")))
        return True

    def _message(self) -> bool:
        """Start the message item at the reply's first text or audio; False once the reply is closed."""
        if not self._begin():
            return False
        if not self._speaking:
            self._speaking = True
            self._add(self.item)
            self._send(server_event("response.content_part.added", **self._where(), part=self._part(None)))
        return True

    def _add(self, item: Item) -> int:
        """Put ``item`` in the conversation and the reply's output; returns its output index."""
        previous = self._items.add(item)
        self._output.append(item)
        self._send(server_event("response.output_item.added", response_id=self.id,
                                output_index=len(self._output) - 1, item=item.to_json()))
        self._send(server_event("conversation.item.added", previous_item_id=previous, item=item.to_json()))
        return len(self._output) - 1

    def _finish_item(self, at: int, item: Item) -> None:
        self._items.put(item)
        self._output[at] = item
        self._send(server_event("response.output_item.done", response_id=self.id, output_index=at,
                                item=item.to_json()))
        self._send(server_event("conversation.item.done", previous_item_id=None, item=item.to_json()))

    def _audio(self, data: str) -> None:
        if data:
            self._send(server_event("response.output_audio.delta", **self._where(), delta=data))

    def _end_message(self, status: str, text: str) -> None:
        self.item = with_text(self.item, text, status)
        where = self._where()
        if self.speaks:
            self._send(server_event("response.output_audio.done", **where))
            self._send(server_event("response.output_audio_transcript.done", **where, transcript=text))
        else:
            self._send(server_event("response.output_text.done", **where, text=text))
        self._send(server_event("response.content_part.done", **where, part=self._part(text)))
        self._finish_item(0, self.item)  # the message comes first: it starts at the reply's first word

    def _call(self, item: Item) -> None:
        """A tool call the client is to run: its item and its arguments (in one delta, then done)."""
        at = self._add(item)
        where = {"response_id": self.id, "item_id": item.id, "output_index": at, "call_id": item.call_id}
        self._send(server_event("response.function_call_arguments.delta", **where, delta=item.text))
        self._send(server_event("response.function_call_arguments.done", **where, name=item.name,
                                arguments=item.text))
        self._finish_item(at, item)

    def _done(self, status: str, reason: str | None, metrics: TurnMetrics | None,
              error: BaseException | None = None) -> None:
        self._closed = True
        details: dict[str, Any] = {"type": status}
        if reason is not None:
            details["reason"] = reason
        if error is not None:
            code = error.code.name.lower() if isinstance(error, SDKError) else None
            details["error"] = {"type": type(error).__name__, "code": code, "message": str(error)}
        done = self._json(status, details)
        if metrics is not None:
            done["latency"] = asdict(metrics)  # the turn's record, in ms: VAD end of speech, STT, first token, audio
        self._send(server_event("response.done", response=done))

    def _where(self) -> dict[str, Any]:
        return {"response_id": self.id, "item_id": self.item.id, "output_index": 0, "content_index": 0}

    def _part(self, text: str | None) -> dict[str, Any]:
        return {"type": "audio", "transcript": text} if self.speaks else {"type": "text", "text": text}

    def _json(self, status: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"id": self.id, "object": "realtime.response", "status": status, "status_details": details,
                "output": [item.to_json() for item in self._output],
                "output_modalities": ["audio" if self.speaks else "text"], "usage": self._usage,
                "conversation_id": None, "metadata": None}
