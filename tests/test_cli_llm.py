"""`runanywhere run`, `chat` and `embed` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _cli(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runanywhere.cli", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_run_prints_the_answer_and_its_metrics(smollm2: Path, subprocess_env: dict[str, str]):
    out = _cli("run", str(smollm2), "What is the capital of France? Answer in one sentence.",
               "--temperature", "0", "--max-tokens", "30", env=subprocess_env)
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout
    assert "tokens" in out.stderr and "first token" in out.stderr


def test_run_json_has_the_result_fields(tiny_llm: Path, subprocess_env: dict[str, str]):
    out = _cli("run", str(tiny_llm), "the cat", "--max-tokens", "5", "--json", env=subprocess_env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["output_tokens"] == 5 and result["finish_reason"] == "length"
    assert result["time_to_first_token_ms"] > 0


def test_chat_keeps_the_conversation(smollm2: Path, subprocess_env: dict[str, str]):
    out = _cli("chat", str(smollm2), "--temperature", "0", "--max-tokens", "40",
               env=subprocess_env, stdin="Remember the number 42.\nWhat number did I ask you to remember?\n")
    assert out.returncode == 0, out.stderr
    replies = [line for line in out.stdout.splitlines() if line.strip()]
    assert len(replies) >= 2 and "42" in replies[-1]


def test_embed_similarity_matrix(subprocess_env: dict[str, str]):
    env = {**subprocess_env, "RUNANYWHERE_OFFLINE": "1"}
    out = _cli("embed", "cat", "kitten", "the stock market fell today", "--similarity", env=env)
    assert out.returncode == 0, out.stderr
    matrix = json.loads(out.stdout)
    assert matrix[0][0 + 1] > matrix[0][2] + 0.3


def test_a_missing_model_file_is_one_clear_line(tmp_path: Path, subprocess_env: dict[str, str]):
    out = _cli("run", str(tmp_path / "nope.gguf"), "hi", env=subprocess_env)
    assert out.returncode == 2
    assert "FILE_NOT_FOUND" in out.stderr and "Traceback" not in out.stderr
