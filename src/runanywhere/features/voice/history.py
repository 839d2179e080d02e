"""A voice conversation: the exchanges so far, and the window of them the model still sees."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from .results import VoiceTurnResult


class Conversation:
    """The turns and chat history of a voice session, and the context-window policy over them. Thread-safe.

    ``limit`` (``VoiceAgentOptions.context_turns``): at most this many past exchanges are in the model's
    prompt (None: all; a long session then outgrows the context window); past it the older half is dropped
    at once, so the prompt's start, and with it the reusable KV cache, changes only every ``limit / 2`` turns.
    """

    def __init__(self) -> None:
        self.history: list[dict[str, Any]] = []
        self.turns: list[VoiceTurnResult] = []
        self._context_from = 0  # the first message of ``history`` that the model still sees
        self._lock = threading.Lock()

    def context(self, limit: int | None) -> list[dict[str, Any]]:
        """Copies of the past messages the model sees (trimmed first when they have grown past ``limit``)."""
        with self._lock:
            self._trim(limit)
            return [dict(m) for m in self.history[self._context_from:]]

    def trim(self, limit: int | None) -> bool:
        """Past ``limit`` exchanges, drop the older half from the model's view; True when it did."""
        with self._lock:
            return self._trim(limit)

    def recent_replies(self) -> list[str]:
        """The agent's last replies, what its own voice heard back would say."""
        with self._lock:
            return [m["content"] for m in self.history[-4:] if m["role"] == "assistant"]

    def record(self, result: VoiceTurnResult) -> tuple[int, int]:
        """Append a turn and its exchange; returns its index in ``turns`` and its reply's in ``history``."""
        reply: dict[str, Any] = {"role": "assistant", "content": result.response}
        if result.interrupted:
            reply["interrupted"] = True
        with self._lock:
            self.turns.append(result)
            self.history += [{"role": "user", "content": result.transcription}, reply]
            return len(self.turns) - 1, len(self.history) - 1

    def mark_interrupted(self, turn: int, reply: int) -> None:
        """The recorded turn ``turn`` (reply at ``reply`` in ``history``) was cut off while being heard."""
        with self._lock:
            self.turns[turn] = replace(self.turns[turn], interrupted=True)
            self.history[reply]["interrupted"] = True

    def _trim(self, limit: int | None) -> bool:
        if limit is None or len(self.history) - self._context_from <= 2 * limit:
            return False
        self._context_from = len(self.history) - 2 * max(1, limit // 2)
        return True
