"""What ``/metrics`` reports, in Prometheus' text format: requests, queue depth, speeds, real-time factors."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Metrics:
    """Counters and last-seen gauges, updated by the endpoints (thread-safe; the loop is the only writer today)."""

    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    queue_depth: dict[str, int] = field(default_factory=dict)
    gauges: dict[tuple[str, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, path: str, status: int) -> None:
        with self.lock:
            self.requests[(path, status)] += 1

    def queued(self, model: str, change: int) -> int:
        """Add ``change`` to a model's queue depth; returns the new depth."""
        with self.lock:
            depth = self.queue_depth.get(model, 0) + change
            self.queue_depth[model] = depth
            return depth

    def observe(self, name: str, model: str, value: float | None) -> None:
        if value is not None:
            with self.lock:
                self.gauges[(name, model)] = float(value)

    def render(self) -> str:
        """The Prometheus exposition text."""
        with self.lock:
            lines = ["# HELP runanywhere_requests_total HTTP requests by path and status.",
                     "# TYPE runanywhere_requests_total counter"]
            lines += [f'runanywhere_requests_total{{path="{p}",status="{s}"}} {n}'
                      for (p, s), n in sorted(self.requests.items())]
            lines += ["# HELP runanywhere_queue_depth Requests waiting for or running on a model.",
                      "# TYPE runanywhere_queue_depth gauge"]
            lines += [f'runanywhere_queue_depth{{model="{m}"}} {d}' for m, d in sorted(self.queue_depth.items())]
            for name in sorted({n for n, _ in self.gauges}):
                lines += [f"# HELP runanywhere_{name} {_HELP.get(name, name)}", f"# TYPE runanywhere_{name} gauge"]
                lines += [f'runanywhere_{name}{{model="{m}"}} {v:g}'
                          for (n, m), v in sorted(self.gauges.items()) if n == name]
            return "\n".join(lines) + "\n"


_HELP = {
    "decode_tokens_per_second": "Decode speed of the last generation.",
    "prefill_tokens_per_second": "Prompt evaluation speed of the last generation.",
    "time_to_first_token_ms": "Time to first token of the last generation.",
    "running_sequences": "Generations decoding together on the model now (continuous batching).",
    "queued_sequences": "Generations waiting for a free sequence or context budget on the model.",
    "max_sequences": "How many generations the model runs at once.",
    "stt_real_time_factor": "Processing time over audio duration of the last transcription.",
    "tts_real_time_factor": "Processing time over audio duration of the last speech.",
}
