"""The sequence ids of a batched model: the ones generating, and recent conversations kept in the KV cache.

A finished generation leaves its sequence (prompt + reply) parked in its KV stream instead of
freed, so the conversation's next turn, whose prompt starts with that text, takes the sequence
over and only evaluates its new tokens. The least recently used parked conversation is evicted
when a new generation needs its id. Touched only on the model's worker.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ...backends.llamacpp_batch import BatchContext
from ...runtime.llama import LlamaSession


@dataclass
class Parked:
    """A conversation left in the cache: its text and tokens, and how many of them are in the KV cells."""

    session: LlamaSession
    in_cache: int


class SequenceIds:
    """Which sequence ids are free, generating, or parked (LRU, at most ``capacity``)."""

    def __init__(self, batch: BatchContext, capacity: int) -> None:
        self.batch, self.capacity = batch, capacity
        self.free = list(range(batch.n_seq))
        self.parked: OrderedDict[int, Parked] = OrderedDict()

    def tokenize(self, session: LlamaSession, text: str, *, add_bos: bool, special: bool) -> list[int]:
        """``text`` as tokens, keeping the exact tokens of the most recent parked conversation it continues."""
        for parked in reversed(self.parked.values()):
            if parked.session.text and text.startswith(parked.session.text):
                return parked.session.tokenize(text, add_bos=add_bos, special=special)
        return session.tokenize(text, add_bos=add_bos, special=special)

    def best_match(self, tokens: list[int]) -> tuple[int | None, int]:
        """The parked sequence ``tokens`` continues (or repeats) with the longest prefix, and how many it reuses.

        A conversation that only shares a beginning (the chat template's first tokens, a common system
        prompt) is not taken over: that would throw away its cache, which its own next turn needs.
        """
        best, reuse = None, 0
        for seq, parked in self.parked.items():
            n = 0
            for cached, new in zip(parked.session.tokens[:parked.in_cache], tokens, strict=False):
                if cached != new:
                    break
                n += 1
            continues = n == parked.in_cache or n >= len(tokens) - 1  # all of it, or the whole prompt
            n = min(n, len(tokens) - 1)  # the last prompt token is evaluated again for its logits
            if continues and n > reuse:
                best, reuse = seq, n
        return best, reuse

    def take(self, seq: int | None, reuse: int) -> int:
        """A sequence id for a new generation: ``seq`` (parked) cut to ``reuse`` tokens, else a new one.

        llama.cpp decodes only consecutive streams in one micro-batch, so a new generation takes an id in
        or next to the block of ids generating now: a free one there, else a parked one there (its
        conversation is evicted), else the closest free one (evicting the least recently used parked
        conversation when none is free).
        """
        if seq is not None:
            del self.parked[seq]
            self.batch.drop(seq, reuse)
            return seq
        running = set(range(self.batch.n_seq)) - set(self.free) - set(self.parked)
        low, high = (min(running), max(running)) if running else (0, self.batch.n_seq - 1)
        near = [i for i in range(low - 1, high + 2) if i not in running] if running else []
        if not any(i in self.free for i in near) and any(i in self.parked for i in near):
            seq = next(i for i in self.parked if i in near)  # the least recently used of them
            del self.parked[seq]
            self.release(seq)
        elif not self.free:
            self.evict()
        seq = min(self.free, key=lambda i: (max(low - i, i - high, 0), i))  # inside or closest to the block
        self.free.remove(seq)
        return seq

    def evict(self) -> None:
        """Free the least recently used parked conversation."""
        seq = next(iter(self.parked))
        del self.parked[seq]
        self.release(seq)

    def forget(self) -> None:
        """Free every parked conversation."""
        while self.parked:
            self.evict()

    def park(self, seq: int, session: LlamaSession, in_cache: int) -> None:
        """Keep a finished sequence for its conversation's next turn (evicting the oldest beyond capacity)."""
        self.parked[seq] = Parked(session, in_cache)
        while len(self.parked) > self.capacity:
            self.evict()

    def release(self, seq: int) -> None:
        """Free a sequence's cells and id at once."""
        self.batch.drop(seq)
        self.free.append(seq)

