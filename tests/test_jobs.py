"""Batch jobs in this process: whole collections transcribed, embedded, answered and spoken, one row per input.

The recordings are 20 sentences the Piper voice speaks (plus one corrupt file); every row must equal what the
feature gives for that input alone, a bad input must be its own error row, and a job killed halfway must finish
on ``--resume`` with every input in the output exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from runanywhere import (
    EmbeddingGenerator,
    GenerationOptions,
    InvalidInputError,
    ModelLibrary,
    SpeechToText,
    TextGenerator,
    jobs,
)

from .jobdata import PROMPTS, SENTENCES, TEXTS, rows, write_inputs
from .wer import wer


@pytest.fixture(scope="module")
def inputs(packaged_models: ModelLibrary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_inputs(tmp_path_factory.mktemp("job-inputs"), packaged_models)


def test_a_folder_of_recordings_becomes_one_row_each_equal_to_transcribing_it_alone(
        inputs: Path, packaged_models: ModelLibrary, tmp_path: Path):
    summary = jobs.transcribe(str(inputs / "wavs"), tmp_path / "out.jsonl", config=packaged_models.config)
    assert (summary.processed, summary.failed, summary.skipped) == (21, 1, 0)
    out = rows(tmp_path / "out.jsonl")
    stt = SpeechToText(packaged_models)
    stt.load_model()
    try:
        for row, sentence in zip(out[:20], SENTENCES, strict=True):
            assert row["ok"] and row["text"] == stt.transcribe(row["input"]).text
            assert wer(sentence, row["text"]) <= 0.2
            assert row["segments"] and row["metrics"]["audio_duration_s"] > 0
    finally:
        stt.unload()
    corrupt = out[20]
    assert corrupt["id"].endswith("zz-corrupt.wav") and not corrupt["ok"]
    assert corrupt["error"]["code"] == "invalid_input" and "audio" in corrupt["error"]["message"]


def test_texts_are_embedded_from_jsonl_to_parquet_with_empty_text_as_an_error_row(
        inputs: Path, packaged_models: ModelLibrary, tmp_path: Path):
    summary = jobs.embed(str(inputs / "texts.jsonl"), tmp_path / "vectors.parquet", config=packaged_models.config)
    assert (summary.processed, summary.failed) == (len(TEXTS), 1)
    table = pq.read_table(tmp_path / "vectors.parquet").to_pylist()
    assert [r["id"] for r in table] == [f"t{i}" for i in range(len(TEXTS))]
    embedder = EmbeddingGenerator(packaged_models)
    embedder.load_model()
    try:
        for row in table:
            if row["input"]:
                assert row["ok"]
                alone = embedder.embed(row["input"])  # batched float sums differ in the 5th digit
                assert float(np.dot(row["embedding"], alone)) >= 0.9999
    finally:
        embedder.unload()
    empty = table[3]
    assert not empty["ok"] and "empty" in json.loads(empty["error"])["message"]


def test_prompts_are_answered_as_the_generator_answers_each_alone(inputs: Path, packaged_models: ModelLibrary,
                                                                   tmp_path: Path):
    options = GenerationOptions(max_tokens=24, temperature=0)
    jobs.generate(str(inputs / "prompts.jsonl"), tmp_path / "answers.jsonl", options, config=packaged_models.config)
    out = rows(tmp_path / "answers.jsonl")
    generator = TextGenerator(packaged_models)
    generator.load_model()
    try:
        assert [r["text"] for r in out] == [generator.generate(p, options).text for p in PROMPTS]
    finally:
        generator.unload()
    assert "Paris" in out[0]["text"] and [r["id"] for r in out] == ["1", "2", "3"]


def test_texts_are_spoken_into_wav_files_that_transcribe_back(inputs: Path, packaged_models: ModelLibrary,
                                                             tmp_path: Path):
    table = tmp_path / "say.csv"
    table.write_text("id,text\na,The train leaves at nine.\nb,The birds sing every morning.\n")
    summary = jobs.speak(str(table), tmp_path / "spoken.jsonl", config=packaged_models.config)
    assert (summary.processed, summary.failed) == (2, 0)
    stt = SpeechToText(packaged_models)
    stt.load_model()
    try:
        for row in rows(tmp_path / "spoken.jsonl"):
            assert Path(row["audio_path"]).parent == tmp_path / "spoken.audio"
            assert wer(row["input"], stt.transcribe(row["audio_path"]).text) <= 0.2
    finally:
        stt.unload()


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runanywhere.cli", "jobs", *args], capture_output=True, text=True,
                          env=env, timeout=600)


def test_a_job_killed_halfway_finishes_on_resume_with_every_input_exactly_once(
        inputs: Path, packaged_models: ModelLibrary, subprocess_env: dict[str, str], tmp_path: Path):
    env = {**subprocess_env, "RUNANYWHERE_HOME": str(packaged_models.config.home)}
    out = tmp_path / "cut.jsonl"
    child = subprocess.Popen([sys.executable, "-m", "runanywhere.cli", "jobs", "transcribe", str(inputs / "wavs"),
                              "-o", str(out), "--batch-size", "1"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while (not out.exists() or out.read_bytes().count(b"\n") < 5) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    before = out.read_bytes().count(b"\n")
    assert 5 <= before < 21
    with out.open("ab") as fh:
        fh.write(b'{"id": "half a li')  # a row the kill tore in two
    resumed = cli("transcribe", str(inputs / "wavs"), "-o", str(out), "--resume", env=env)
    assert f"{21 - before} processed (1 failed), {before} skipped" in resumed.stderr
    ids = [row["id"] for row in rows(out)]
    assert len(ids) == 21 and len(set(ids)) == 21


def test_bad_arguments_get_a_one_line_error_and_a_non_zero_exit(inputs: Path, subprocess_env: dict[str, str],
                                                                 tmp_path: Path):
    out, texts = str(tmp_path / "out.jsonl"), str(inputs / "texts.jsonl")
    for args, words in [(("transcribe", str(tmp_path / "missing"), "-o", out), "no such audio file"),
                        (("embed", texts, "-o", out, "--model", "no-such-model"), "no-such-model"),
                        (("embed", texts, "-o", str(tmp_path / "out.txt")), ".jsonl or .parquet"),
                        (("embed", texts, "-o", out, "--ray", "127.0.0.1:1"), "no Ray cluster")]:
        result = cli(*args, env=subprocess_env)
        assert result.returncode != 0, args
        assert result.stderr.startswith("error: ") and words in result.stderr and result.stderr.count("\n") == 1


def test_options_of_the_wrong_kind_or_bad_sizes_are_refused_up_front(inputs: Path, tmp_path: Path):
    with pytest.raises(InvalidInputError, match="TranscribeOptions"):
        jobs.transcribe(str(inputs / "wavs"), tmp_path / "o.jsonl", GenerationOptions())  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="workers"):
        jobs.embed(str(inputs / "texts.jsonl"), tmp_path / "o.jsonl", workers=0)
    with pytest.raises(InvalidInputError, match="batch_size"):
        jobs.run(jobs.JobSpec(jobs.JobKind.EMBED, batch_size=0), str(inputs / "texts.jsonl"), tmp_path / "o.jsonl")
