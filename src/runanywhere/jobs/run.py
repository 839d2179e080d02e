"""Running a job: inputs read lazily, those already in the output skipped, rows written as they come.

The in-process path and the Ray path share everything but who computes the rows: here one
:class:`~.work.JobWorker` in this process, batch by batch; on Ray (:mod:`.cluster`) a pool of them.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .inputs import JobInput
from .outputs import RowWriter, check_output, done_ids
from .spec import JobSpec
from .work import JobWorker, Row

Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class JobSummary:
    """How a job went: ``processed`` inputs this run (``failed`` of them with an error row), ``skipped`` ones
    already in the output, over ``elapsed_s``; ``where`` is ``"in-process"`` or the Ray address."""

    kind: str
    output: Path
    processed: int
    failed: int
    skipped: int
    elapsed_s: float
    where: str
    workers: int

    @property
    def items_per_s(self) -> float:
        return self.processed / self.elapsed_s if self.elapsed_s > 0 else 0.0


RowSource = Callable[[JobSpec, Iterator[JobInput]], Iterable[Row]]


def run_job(spec: JobSpec, inputs: Iterable[JobInput], output: Path, *, resume: bool, source: RowSource,
            where: str, workers: int, progress: Progress | None = None) -> JobSummary:
    """Process every input not yet in ``output`` with ``source`` and write its rows; returns the summary."""
    check_output(output)
    seen = done_ids(output) if resume else set()
    skipped = 0

    def todo() -> Iterator[JobInput]:
        nonlocal skipped
        for item in inputs:
            if item.id in seen:
                skipped += 1
                continue
            seen.add(item.id)  # a repeated id in the input is done once
            yield item

    started, processed, failed = time.perf_counter(), 0, 0
    writer = RowWriter(output, spec.kind, resume=resume)
    try:
        for row in source(spec, todo()):
            writer.write(row)
            processed += 1
            failed += not row["ok"]
            if progress is not None:
                progress(processed, None)
    finally:
        writer.close()
    return JobSummary(spec.kind.value, output, processed, failed, skipped, time.perf_counter() - started, where,
                      workers)


def in_process(spec: JobSpec, items: Iterator[JobInput]) -> Iterator[Row]:
    """The rows of ``items`` computed by one worker in this process, batch by batch, in input order."""
    worker: JobWorker | None = None
    try:
        while batch := list(itertools.islice(items, spec.batch_size)):
            worker = worker or JobWorker(spec)
            yield from worker.run(batch)
    finally:
        if worker is not None:
            worker.close()
