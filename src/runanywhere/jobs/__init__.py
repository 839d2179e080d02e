"""Batch jobs: transcribe, embed, generate or speak a whole collection, in this process or on a Ray cluster.

``import runanywhere`` never loads this package (nor Ray). Each function reads its inputs lazily, skips those
already in the output when ``resume``, writes one row per input (its result and metrics, or its error) to a
JSONL or Parquet file, and returns a :class:`JobSummary`::

    from runanywhere import jobs
    summary = jobs.transcribe("recordings/", "transcripts.jsonl")
    summary = jobs.embed("corpus.parquet", "vectors.parquet", column="body", ray="auto", workers=4)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import GenerationOptions, InvalidInputError, SDKConfig, SynthesisOptions, TranscribeOptions
from .inputs import JobInput, count_inputs, read_inputs
from .run import JobSummary, Progress, in_process, run_job
from .spec import JobKind, JobSpec
from .work import JobWorker

__all__ = ["JobInput", "JobKind", "JobSpec", "JobSummary", "JobWorker", "embed", "generate", "run", "speak",
           "transcribe"]


def run(spec: JobSpec, inputs: str | Iterable[JobInput], output: str | os.PathLike[str], *, column: str | None = None,
        ray: str | None = None, workers: int = 1, resume: bool = False,
        progress: Progress | None = None) -> JobSummary:
    """Run ``spec`` over ``inputs`` (a path, glob or table file; or :class:`JobInput` items) into ``output``.

    ``ray`` is a cluster address (``"auto"``: the one this machine runs; ``"local"``: a one-machine cluster
    started for this job) or None for this process;
    ``workers`` is the number of Ray actors (each loads the model once). ``progress(done, total)`` is
    called after each row (``total`` None when unknown).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 1024:
        raise InvalidInputError(f"workers must be an integer from 1 to 1024, got {workers!r}")
    if ray is not None and (not isinstance(ray, str) or not ray.strip()):
        raise InvalidInputError(f"ray must be a cluster address (host:port) or 'auto', got {ray!r}")
    if isinstance(inputs, str):
        items: Iterable[JobInput] = read_inputs(inputs, audio=spec.kind.reads_audio,
                                                column=column or spec.kind.default_column)
        total = count_inputs(inputs, audio=spec.kind.reads_audio)
    else:
        items, total = inputs, None
    path = Path(output).expanduser()

    def report(done: int, _: int | None) -> None:
        if progress is not None:
            progress(done, total)
    if ray is None:
        return run_job(spec, items, path, resume=resume, source=in_process, where="in-process", workers=1,
                       progress=report)
    from .cluster import connect, on_ray

    address = connect(ray, workers)
    return run_job(spec, items, path, resume=resume, source=on_ray(workers), where=address, workers=workers,
                   progress=report)


def transcribe(inputs: str | Iterable[JobInput], output: str | os.PathLike[str],
               options: TranscribeOptions | None = None, *, model: str | None = None,
               config: SDKConfig | None = None, batch_size: int = 8, **how: Any) -> JobSummary:
    """Transcribe every audio file of a directory or glob; rows carry text, segments and language."""
    return run(JobSpec(JobKind.TRANSCRIBE, model, options, config, batch_size=batch_size), inputs, output, **how)


def embed(inputs: str | Iterable[JobInput], output: str | os.PathLike[str], *, model: str | None = None,
          config: SDKConfig | None = None, batch_size: int = 8, **how: Any) -> JobSummary:
    """Embed every text of a table's column (default ``text``); rows carry the vector."""
    return run(JobSpec(JobKind.EMBED, model, None, config, batch_size=batch_size), inputs, output, **how)


def generate(inputs: str | Iterable[JobInput], output: str | os.PathLike[str],
             options: GenerationOptions | None = None, *, model: str | None = None,
             config: SDKConfig | None = None, batch_size: int = 8, **how: Any) -> JobSummary:
    """Answer every prompt of a table's column (default ``prompt``); rows carry the text and finish reason."""
    return run(JobSpec(JobKind.GENERATE, model, options, config, batch_size=batch_size), inputs, output, **how)


def speak(inputs: str | Iterable[JobInput], output: str | os.PathLike[str], options: SynthesisOptions | None = None,
          *, audio_dir: str | os.PathLike[str] | None = None, model: str | None = None,
          config: SDKConfig | None = None, batch_size: int = 8, **how: Any) -> JobSummary:
    """Speak every text of a table's column (default ``text``) into WAV files in ``audio_dir`` (default: a
    folder named after the output); rows carry the WAV's path and duration."""
    folder = Path(audio_dir) if audio_dir is not None else Path(output).with_suffix(".audio")
    spec = JobSpec(JobKind.SPEAK, model, options, config, folder.expanduser().resolve(), batch_size)
    return run(spec, inputs, output, **how)
