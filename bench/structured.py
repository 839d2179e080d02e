"""Structured output over real-world JSON schemas: which schemas each engine accepts, refuses, errors or crashes on.

The corpus is the seeded JSONSchemaBench sample in tests/data/schemas/ (200 ``github_easy``, 100
``github_medium``) plus the keyword cases of tests/schemacases.py. Each engine compiles every schema
in a worker process of its own (``structured_compile.py``); a schema that kills the worker (SIGSEGV in
llama.cpp's grammar parser) or takes longer than ``TIMEOUT_S`` is counted, and a fresh worker goes on
with the next. Engines measured today, both raw (no SDK code in the process):

- ``llama_cpp_raw``: llama-cpp-python's ``json_schema_to_gbnf`` + llama.cpp's grammar parser on
  SmolLM2's vocabulary, the path the SDK takes today;
- ``llguidance_raw``: llguidance's JSON-schema compiler and token matcher on the same vocabulary,
  strict (unsupported keywords are errors), the ceiling a llguidance-backed SDK can reach;
  ``llguidance_raw_lenient`` the same with unsupported keywords ignored.

Adding the SDK: an ``ENGINES`` entry in ``structured_compile.py`` whose refusals are ``SDKError``;
``measure`` does the rest. Per engine and split the report has accepted / refused / errors by type /
crashes by signal / timeouts, the acceptance rate, compile-time median and p95, and each failure.
Run: ``.venv/bin/python bench/structured.py [--smoke]`` (a minute or two; ``--smoke``: seconds).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import header, parse_args, scratch_library, write_report

from tests import schemacases, schemacorpus

HERE = Path(__file__).resolve().parent
ENGINES = ("llama_cpp_raw", "llguidance_raw", "llguidance_raw_lenient")
TIMEOUT_S = 60.0
SMOKE_SCHEMAS = 8
SMOKE_CASES = ("pattern_unanchored", "items_empty", "max_length_32767", "remote_ref")
#: The worker runs offline: a remote ``$ref`` fetch (llama-cpp-python's converter tries one) fails at once.
OFFLINE = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}


@dataclass(frozen=True)
class Item:
    """One schema to compile: the group it is counted in (a split, or the keyword cases) and its id."""

    group: str
    id: str
    schema: Any


class Worker:
    """A ``structured_compile.py`` process for one engine; answers one schema at a time, may die doing it."""

    def __init__(self, engine: str, model: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "structured_compile.py"), engine, str(model)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, **OFFLINE})
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        ready = self.lines.get(timeout=TIMEOUT_S)
        if ready is None:
            raise SystemExit(f"the {engine} worker did not start (exit {self.process.wait()})")
        self.version: str = json.loads(ready)["version"]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def compile(self, schema: Any) -> dict[str, Any]:
        """The worker's answer for one schema, or a crash (the signal that killed it) or a timeout."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(schema) + "\n")
            self.process.stdin.flush()
            line = self.lines.get(timeout=TIMEOUT_S)
        except BrokenPipeError:
            line = None
        except queue.Empty:
            self.close()
            return {"outcome": "timeout", "error": f"no answer in {TIMEOUT_S:.0f} s"}
        if line is not None:
            answer: dict[str, Any] = json.loads(line)
            return answer
        code = self.process.wait()
        name = signal.Signals(-code).name if code < 0 else f"exit {code}"
        return {"outcome": "crash", "error": name}

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        if self.alive:
            self.process.kill()
        self.process.wait()


def measure(engine: str, model: Path, items: Iterable[Item]) -> dict[str, Any]:
    """Compile every item with one engine (a fresh worker after each crash); results per group and per item."""
    worker = Worker(engine, model)
    version = worker.version
    rows: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        if not worker.alive:
            worker = Worker(engine, model)
        rows.setdefault(item.group, []).append({"id": item.id, **worker.compile(item.schema)})
    worker.close()
    return {"version": version, "groups": rows}


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and rates of one group: accepted, refused, untyped errors by type, crashes, timeouts, compile ms."""
    outcomes = Counter(row["outcome"] for row in rows)
    times = sorted(row["ms"] for row in rows if "ms" in row)
    return {
        "schemas": len(rows), "accepted": outcomes["accepted"],
        "acceptance": round(outcomes["accepted"] / len(rows), 4) if rows else None,
        "refused": outcomes["refused"],
        "errors": dict(Counter(row["error"] for row in rows if row["outcome"] == "error").most_common()),
        "crashes": dict(Counter(row["error"] for row in rows if row["outcome"] == "crash")),
        "timeouts": outcomes["timeout"],
        "compile_ms_median": round(statistics.median(times), 3) if times else None,
        "compile_ms_p95": round(times[min(len(times) - 1, int(0.95 * len(times)))], 3) if times else None,
        "failures": [row for row in rows if row["outcome"] != "accepted"]}


def keyword_verdicts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per keyword case: what a correct engine must do, what this one did, and whether that is right."""
    out: dict[str, Any] = {}
    for row in rows:
        expect = schemacases.case(row["id"]).expect
        right = row["outcome"] == "accepted" if expect == "accept" else row["outcome"] == "refused"
        out[row["id"]] = {"expect": expect, "outcome": row["outcome"], "as_expected": right,
                          **({"error": row["error"], "message": row.get("message", "")} if "error" in row else {})}
    return out


def corpus(smoke: bool) -> list[Item]:
    """The real-world sample and the keyword cases (a few of each in smoke mode)."""
    items = []
    for split in schemacorpus.SPLITS:
        cases = schemacorpus.load(split)
        items += [Item(split, case.id, case.schema) for case in cases[:SMOKE_SCHEMAS if smoke else None]]
    keyword = [case for case in schemacases.CASES if not smoke or case.id in SMOKE_CASES]
    return items + [Item("keyword_cases", case.id, case.schema) for case in keyword]


def main() -> None:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "structured")
    model = scratch_library().pull("smollm2-135m-instruct-q4_1").main_file
    items = corpus(args.smoke)
    engines: dict[str, Any] = {}
    for engine in ENGINES:
        print(f"--- {engine}", flush=True)
        result = measure(engine, model, items)
        groups = result["groups"]
        engines[engine] = {"version": result["version"],
                           "splits": {split: summary(groups[split]) for split in schemacorpus.SPLITS},
                           "keyword_cases": keyword_verdicts(groups["keyword_cases"])}
        for split in schemacorpus.SPLITS:
            s = engines[engine]["splits"][split]
            print(f"{split}: {s['accepted']}/{s['schemas']} accepted, {s['refused']} refused, errors {s['errors']}, "
                  f"crashes {s['crashes']}, timeouts {s['timeouts']}", flush=True)
    manifest = schemacorpus.manifest()
    report = {**header("structured", args.smoke),
              "corpus": {"source": manifest["source"], "source_commit": manifest["source_commit"],
                         "licence": manifest["licence"], "seed": manifest["seed"],
                         "sizes": {split: len([i for i in items if i.group == split]) for split in schemacorpus.SPLITS},
                         "keyword_cases": len([i for i in items if i.group == "keyword_cases"])},
              "model_vocabulary": model.name, "timeout_s": TIMEOUT_S, "engines": engines}
    write_report(args.results, "structured", report)


if __name__ == "__main__":
    main()
