"""``runanywhere jobs transcribe|embed|generate|speak INPUT --output OUT``: a whole collection, in this process
or on a Ray cluster (``--ray auto|ADDRESS``), with a progress bar and a summary."""

from __future__ import annotations

import argparse
from typing import Any

KINDS = {"transcribe": "transcribe every audio file of a directory or glob",
         "embed": "embed every text of a JSONL/CSV/Parquet column",
         "generate": "answer every prompt of a JSONL/CSV/Parquet column",
         "speak": "speak every text of a JSONL/CSV/Parquet column into WAV files"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    jobs = sub.add_parser("jobs", help="batch jobs over whole collections, in-process or on Ray")
    kinds = jobs.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, help_text in KINDS.items():
        cmd = kinds.add_parser(kind, help=help_text)
        cmd.add_argument("input", help="a directory or glob of audio files" if kind == "transcribe"
                         else "a .jsonl, .csv or .parquet file")
        cmd.add_argument("--output", "-o", required=True, help="a .jsonl or .parquet file, one row per input")
        cmd.add_argument("--model", help="a catalog id or a path (default: the catalog's default)")
        if kind != "transcribe":
            default = "prompt" if kind == "generate" else "text"
            cmd.add_argument("--column", help=f"the column to read (default: {default})")
        if kind == "generate":
            cmd.add_argument("--max-tokens", type=int, default=256)
            cmd.add_argument("--temperature", type=float, default=0.0)
            cmd.add_argument("--seed", type=int)
        if kind == "speak":
            cmd.add_argument("--audio-dir", help="where the WAVs go (default: OUTPUT's name with .audio)")
            cmd.add_argument("--speed", type=float, default=1.0)
        if kind == "transcribe":
            cmd.add_argument("--language", help="language code, e.g. en")
        cmd.add_argument("--ray", metavar="auto|local|ADDRESS",
                         help="run on a Ray cluster: auto (this machine's), local (start one for the job), or "
                              "host:port (default: in this process)")
        cmd.add_argument("--workers", type=int, default=1, help="Ray actors, each with the model loaded once")
        cmd.add_argument("--batch-size", type=int, default=8, help="inputs handed to a worker at once")
        cmd.add_argument("--resume", action="store_true", help="skip the inputs already in the output")
        cmd.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .. import GenerationOptions, SynthesisOptions, TranscribeOptions
    from ..jobs import JobKind, JobSpec, run

    kind = JobKind(args.kind)
    options: Any = None
    if kind is JobKind.GENERATE:
        options = GenerationOptions(max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed)
    elif kind is JobKind.SPEAK:
        options = SynthesisOptions(speed=args.speed)
    elif kind is JobKind.TRANSCRIBE and args.language:
        options = TranscribeOptions(language=args.language)
    audio_dir = None
    if kind is JobKind.SPEAK:
        from pathlib import Path

        audio_dir = Path(args.audio_dir or Path(args.output).with_suffix(".audio")).expanduser().resolve()
    spec = JobSpec(kind, args.model, options, None, audio_dir, args.batch_size)
    console = Console(stderr=True)
    columns = (TextColumn(f"{kind.value}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]:.2f} items/s"), TimeRemainingColumn())
    bar = Progress(*columns, console=console, transient=True)
    task = bar.add_task(kind.value, total=None, rate=0.0, start=False)

    def progress(done: int, total: int | None) -> None:
        if not bar.live.is_started:  # shown from the first row on: an argument error prints one line alone
            bar.start()
            bar.start_task(task)
        elapsed = bar.tasks[0].elapsed or 0.0
        bar.update(task, completed=done, total=total, rate=done / elapsed if elapsed else 0.0)
    try:
        summary = run(spec, args.input, args.output, column=getattr(args, "column", None), ray=args.ray,
                      workers=args.workers, resume=args.resume, progress=progress)
    finally:
        if bar.live.is_started:
            bar.stop()
    console.print(f"{summary.kind}: {summary.processed} processed ({summary.failed} failed), {summary.skipped} "
                  f"skipped, {summary.elapsed_s:.1f} s, {summary.items_per_s:.2f} items/s, {summary.where}"
                  f"{f' with {summary.workers} workers' if summary.where != 'in-process' else ''} -> {summary.output}")
    return 1 if summary.failed else 0
