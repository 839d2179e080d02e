"""Structured output over real-world JSON schemas: which schemas each engine accepts, refuses, errors or crashes on.

The corpus is the seeded JSONSchemaBench sample in tests/data/schemas/ (200 ``github_easy``, 100
``github_medium``) plus the keyword cases of tests/schemacases.py. Each engine compiles every schema
in a worker process of its own (``structured_compile.py``); a schema that kills the worker (SIGSEGV in
llama.cpp's grammar parser) or takes longer than ``TIMEOUT_S`` is counted, and a fresh worker goes on
with the next. Engines:

- ``sdk``: the SDK's own path (schema checks, then llguidance on the model's tokenizer); refusals are
  typed ``SDKError`` exceptions naming the keyword;
- ``llama_cpp_raw``: llama-cpp-python's ``json_schema_to_gbnf`` + llama.cpp's grammar parser on
  SmolLM2's vocabulary, the path the SDK took before llguidance;
- ``llguidance_raw``: llguidance's JSON-schema compiler and token matcher on the same vocabulary,
  strict (unsupported keywords are errors); ``llguidance_raw_lenient`` the same with them ignored.

Per engine and split the report has accepted / refused / errors by type / crashes by signal /
timeouts, the acceptance rate, compile-time median and p95, and each failure. Then a generation
phase (``structured_generate.py``, a process per engine, the three taking each schema in turn):
SmolLM2 writes a value for the first ``GEN_SCHEMAS`` accepted schemas of each split, greedy, through
the SDK with the mask, through the SDK without it (same prompt, as many tokens) and through raw
llama-cpp-python with the converter's grammar: outputs valid under the schema's draft, time to
first token, decode tokens/s, the mask's and the token accept's milliseconds per token, and decode
with the mask over without.
Run: ``.venv/bin/python bench/structured.py [--smoke]`` (about 15 minutes; ``--smoke``: a minute).
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
ENGINES = ("sdk", "llama_cpp_raw", "llguidance_raw", "llguidance_raw_lenient")
#: Generation phase: engines of structured_generate.py, schemas per split, token budget, longest schema shown.
GENERATORS = ("sdk", "sdk_free", "llama_cpp_raw")  # sdk before sdk_free: see generation()
GEN_SCHEMAS, SMOKE_GEN_SCHEMAS, GEN_TOKENS, GEN_SCHEMA_CHARS = 10, 2, 256, 4000
PROMPT = "Write one example JSON value that matches this JSON schema. Answer with the JSON only.\n{schema}"
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

    def __init__(self, engine: str, model: Path, script: str = "structured_compile.py") -> None:
        self.engine, self.model, self.script = engine, model, script
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / script), engine, str(model)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, **OFFLINE})
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        ready = self.lines.get(timeout=TIMEOUT_S)
        if ready is None:
            raise SystemExit(f"the {engine} worker did not start (exit {self.process.wait()})")
        self.version: str = json.loads(ready)["version"]

    def _read(self) -> None:
        """Hand each line the worker prints to the queue, then None once it has exited."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def compile(self, schema: Any) -> dict[str, Any]:
        """The worker's answer for one schema (or generation job), or a crash (the signal that killed it) or a
        timeout."""
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
        """Whether the worker still runs (a crash ends it)."""
        return self.process.poll() is None

    def close(self) -> None:
        """Stop the worker (killed: it may be stuck in a compile) and reap it."""
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
        "failures": [row for row in rows if row["outcome"] != "accepted"],
        "accepted_ids": [row["id"] for row in rows if row["outcome"] == "accepted"]}


def keyword_verdicts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per keyword case: what a correct engine must do, what this one did, and whether that is right."""
    out: dict[str, Any] = {}
    for row in rows:
        case = schemacases.case(row["id"])
        out[row["id"]] = {"expect": case.expect, "outcome": row["outcome"],
                          "as_expected": row["outcome"] in case.allowed,
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


def generation(model: Path, items: list[Item], accepted: dict[str, set[str]]) -> dict[str, Any]:
    """Each generator writes a value for the same schemas (accepted by the SDK, short enough to show):
    outputs valid under the schema's draft, time to first token, decode tokens/s, the mask's cost."""
    jobs = [{"group": i.group, "id": i.id, "schema": i.schema, "max_tokens": GEN_TOKENS,
             "prompt": PROMPT.format(schema=json.dumps(i.schema))} for i in items]
    # All three workers live at once and take each schema in turn (raw first or last), so a machine that slows
    # down during the run slows every engine alike. The SDK without the mask follows the SDK with it, with as
    # many tokens as that wrote: both decode at the same context lengths.
    workers = {engine: Worker(engine, model, "structured_generate.py") for engine in GENERATORS}
    out: dict[str, list[dict[str, Any]]] = {engine: [] for engine in GENERATORS}
    for n, job in enumerate(jobs):
        print(f"--- generate {job['id']}", flush=True)
        for engine in GENERATORS if n % 2 else GENERATORS[-1:] + GENERATORS[:-1]:
            budget = out["sdk"][-1].get("tokens") if engine == "sdk_free" else None
            job_ = {**job, "max_tokens": budget} if budget and budget > 1 else job
            out[engine].append({"id": job["id"], **generate_one(workers, engine, model, job_, accepted)})
    for worker in workers.values():
        worker.close()
    summaries = {engine: generation_summary(rows) for engine, rows in out.items()}
    return {"schemas": len(jobs), "max_tokens": GEN_TOKENS, "engines": summaries, **speed_ratios(out)}


def generate_one(workers: dict[str, Worker], engine: str, model: Path, job: dict[str, Any],
                 accepted: dict[str, set[str]]) -> dict[str, Any]:
    """One engine's answer for one job (a fresh worker after a crash), checked under the schema's draft."""
    from runanywhere.core.schema_drafts import validator_for

    if engine == "llama_cpp_raw" and job["id"] not in accepted["llama_cpp_raw"]:
        return {"outcome": "refused"}
    if not workers[engine].alive:
        workers[engine] = Worker(engine, model, "structured_generate.py")
    answer = workers[engine].compile({k: job[k] for k in ("schema", "prompt", "max_tokens")})
    if answer["outcome"] == "generated" and engine != "sdk_free":
        try:
            answer["valid"] = not list(validator_for(job["schema"]).iter_errors(json.loads(answer["text"])))
        except ValueError:
            answer["valid"] = False
    return answer


def generation_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in rows if r["outcome"] == "generated"]

    def median(key: str) -> float | None:
        values = [r[key] for r in done if r.get(key) is not None]
        return round(statistics.median(values), 3) if values else None

    masks = [r["mask_ms"] / r["mask_steps"] for r in done if r.get("mask_steps")]
    accepts = [r["accept_ms"] / r["mask_steps"] for r in done if r.get("mask_steps")]
    return {"generated": len(done), "valid": sum(1 for r in done if r.get("valid")),
            "outcomes": dict(Counter(r["outcome"] if r["outcome"] != "error" else r["error"] for r in rows)),
            "finish": dict(Counter(r.get("finish") for r in done)), "ttft_ms_median": median("ttft_ms"),
            "decode_tps_median": median("decode_tps"), "tokens_median": median("tokens"),
            **({"mask_ms_per_token_median": round(statistics.median(masks), 4),
                "accept_ms_per_token_median": round(statistics.median(accepts), 4)} if masks else {}),
            "rows": rows}


def speed_ratios(out: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Decode tokens/s with the mask over without, per schema (same prompt, greedy), and their median."""
    free = {r["id"]: r.get("decode_tps") for r in out["sdk_free"]}
    ratios = [r["decode_tps"] / free[r["id"]] for r in out["sdk"] if r.get("decode_tps") and free.get(r["id"])]
    return {"decode_with_mask_over_without_median": round(statistics.median(ratios), 3) if ratios else None,
            "decode_ratio_schemas": len(ratios)}


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
    accepted = {engine: {id_ for split in schemacorpus.SPLITS
                         for id_ in engines[engine]["splits"][split]["accepted_ids"]}
                for engine in ("sdk", "llama_cpp_raw")}
    chosen = []
    for split in schemacorpus.SPLITS:
        shown = [i for i in items if i.group == split and i.id in accepted["sdk"]
                 and len(json.dumps(i.schema)) <= GEN_SCHEMA_CHARS]
        chosen += shown[:SMOKE_GEN_SCHEMAS if args.smoke else GEN_SCHEMAS]
    generated = generation(model, chosen, accepted)
    for engine, summary_ in generated["engines"].items():
        print(f"{engine}: {summary_['valid']}/{summary_['generated']} valid, ttft {summary_['ttft_ms_median']} ms, "
              f"decode {summary_['decode_tps_median']} tok/s", flush=True)
    print(f"decode with mask / without: {generated['decode_with_mask_over_without_median']}", flush=True)
    manifest = schemacorpus.manifest()
    report = {**header("structured", args.smoke),
              "corpus": {"source": manifest["source"], "source_commit": manifest["source_commit"],
                         "licence": manifest["licence"], "seed": manifest["seed"],
                         "sizes": {split: len([i for i in items if i.group == split]) for split in schemacorpus.SPLITS},
                         "keyword_cases": len([i for i in items if i.group == "keyword_cases"])},
              "model_vocabulary": model.name, "timeout_s": TIMEOUT_S, "engines": engines, "generation": generated}
    write_report(args.results, "structured", report)


if __name__ == "__main__":
    main()
