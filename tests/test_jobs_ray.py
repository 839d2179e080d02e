"""Batch jobs on a real local Ray cluster: the same rows as in-process, and nothing lost when a worker dies.

The cluster (a head and one more node, 1 CPU each, started with ``ray start``) lives in namespaces of its own:
a network one with only loopback, so Ray's nodes use 127.0.0.1 and its traffic never leaves this machine, and a
process one, so no Ray process outlives the scenario and no other Ray on the machine is touched.
``ray_scenario.py`` runs there and the tests read what it wrote. ``unshare`` needs root (CI's case); without it
the test fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runanywhere import GenerationOptions, ModelLibrary, jobs

from .jobdata import SENTENCES, rows, write_inputs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster_run(packaged_models: ModelLibrary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scenario's folder once it has run: inputs, the Ray outputs and ``report.json``."""
    work = write_inputs(tmp_path_factory.mktemp("ray-job"), packaged_models)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(work), "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
           "RAY_USAGE_STATS_ENABLED": "0"}
    command = ["unshare", "--net", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "tests.ray_scenario",
               str(work)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return work


@pytest.fixture(scope="module")
def report(cluster_run: Path) -> dict:
    return json.loads((cluster_run / "report.json").read_text())


def by_id(path: Path) -> dict[str, dict]:
    return {row["id"]: row for row in rows(path)}


def test_the_cluster_had_two_nodes_on_loopback_only(report: dict):
    assert report["nodes"] == 2 and report["node_addresses"] == ["127.0.0.1"]


def test_a_transcription_job_on_ray_gives_the_rows_of_the_in_process_job(cluster_run: Path,
                                                                        packaged_models: ModelLibrary):
    local = cluster_run / "local-transcribe.jsonl"
    jobs.transcribe(str(cluster_run / "wavs"), local, config=packaged_models.config)
    on_ray, here = rows(cluster_run / "ray-transcribe.jsonl"), rows(local)
    assert [r["id"] for r in on_ray] == [r["id"] for r in here]  # input order kept
    assert [(r["text"] if r["ok"] else r["error"]["code"]) for r in on_ray] == \
           [(r["text"] if r["ok"] else r["error"]["code"]) for r in here]
    assert sum(r["ok"] for r in on_ray) == len(SENTENCES)


def test_embed_and_generate_jobs_on_ray_agree_with_in_process(cluster_run: Path, packaged_models: ModelLibrary):
    config = packaged_models.config
    jobs.embed(str(cluster_run / "texts.jsonl"), cluster_run / "local-embed.jsonl", config=config)
    on_ray, here = by_id(cluster_run / "ray-embed.jsonl"), by_id(cluster_run / "local-embed.jsonl")
    assert on_ray.keys() == here.keys()
    for key, row in here.items():
        assert row["ok"] == on_ray[key]["ok"]
        if row["ok"]:
            assert float(np.dot(row["embedding"], on_ray[key]["embedding"])) >= 0.9999
    options = GenerationOptions(max_tokens=24, temperature=0)
    jobs.generate(str(cluster_run / "prompts.jsonl"), cluster_run / "local-generate.jsonl", options, config=config)
    assert [r["text"] for r in rows(cluster_run / "ray-generate.jsonl")] == \
           [r["text"] for r in rows(cluster_run / "local-generate.jsonl")]


def test_a_worker_killed_mid_job_loses_and_duplicates_nothing(cluster_run: Path, report: dict):
    killed = report["killed"]
    assert killed["killed_pid"] is not None and killed["rows_when_killed"] < len(SENTENCES)  # really mid-job
    ids = [row["id"] for row in rows(cluster_run / "ray-killed.jsonl")]
    assert len(ids) == len(SENTENCES) + 1 and len(set(ids)) == len(ids)
    assert sorted(ids) == sorted(by_id(cluster_run / "ray-transcribe.jsonl"))
