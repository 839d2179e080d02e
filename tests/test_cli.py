"""The real ``runanywhere`` command in a child process, with its store in a temporary home."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import runanywhere

from .conftest import blob, model_entry, sha
from .fileserver import FileServer
from .mounts import Mounts

MB = 1 << 20
DEFAULT_MODELS = {"smollm2-135m-instruct-q4_1", "all-minilm-l6-v2", "faster-whisper-tiny.en",
                  "piper-en_US-joe-medium", "silero-vad-v6"}


def runanywhere_cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runanywhere.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def weights() -> bytes:
    return blob(2 * MB, 42)


@pytest.fixture
def served_env(server: FileServer, weights: bytes, tmp_path: Path, subprocess_env: dict[str, str]) -> dict[str, str]:
    """The environment of a user whose extra catalog file lists a model on the local server."""
    catalog = tmp_path / "my-models.json"
    entry = model_entry("tiny-test", {"tiny-test.gguf": (server.add("/tiny-test.gguf", weights), weights)},
                        license="mit")
    catalog.write_text(json.dumps({"models": [entry]}))
    return {**subprocess_env, "RUNANYWHERE_CATALOG": str(catalog)}


def test_version(subprocess_env: dict[str, str]) -> None:
    result = runanywhere_cli("--version", env=subprocess_env)
    assert result.returncode == 0
    assert result.stdout.strip() == f"runanywhere {runanywhere.__version__}"


def test_models_list_json_shows_the_catalog_and_the_offline_defaults(subprocess_env: dict[str, str]) -> None:
    models = {m["id"]: m for m in json_of(runanywhere_cli("models", "list", "--json", env=subprocess_env))}

    assert "smollm2-360m-q8_0" in models and models["smollm2-360m-q8_0"]["status"] == "remote"
    for model_id in DEFAULT_MODELS:
        assert "default" in models[model_id]["tags"]
        assert models[model_id]["status"] in ("packaged", "stored"), model_id
    assert {"id", "name", "category", "engine", "files", "size_bytes", "path"} <= set(models["silero-vad-v6"])


def test_models_list_filters_by_category(subprocess_env: dict[str, str]) -> None:
    models = json_of(runanywhere_cli("models", "list", "--category", "embedding", "--json", env=subprocess_env))
    assert "all-minilm-l6-v2" in [m["id"] for m in models]
    assert {m["category"] for m in models} == {"embedding"}


def test_unknown_category_is_a_usage_error(subprocess_env: dict[str, str]) -> None:
    result = runanywhere_cli("models", "list", "--category", "telepathy", env=subprocess_env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "telepathy" in result.stderr and "speech-recognition" in result.stderr


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("RUNANYWHERE_QUOTA", "lots", "'lots'"),
    ("RUNANYWHERE_CATALOG", "/nonexistent/catalog.json", "/nonexistent/catalog.json"),
])
def test_bad_configuration_is_a_one_line_error(variable: str, value: str, says: str,
                                               subprocess_env: dict[str, str]) -> None:
    result = runanywhere_cli("models", "list", "--json", env={**subprocess_env, variable: value})
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: [INVALID_CONFIGURATION]") and says in line
    assert result.stdout == ""


def test_models_list_as_a_table(subprocess_env: dict[str, str]) -> None:
    result = runanywhere_cli("models", "list", env=subprocess_env)
    assert result.returncode == 0, result.stderr
    assert "silero-vad-v6" in result.stdout and "packaged" in result.stdout


def test_pull_info_verify_damage_and_remove(served_env: dict[str, str], server: FileServer, weights: bytes,
                                           home: Path) -> None:
    pulled = json_of(runanywhere_cli("models", "pull", "tiny-test", "--json", env=served_env))
    stored_file = Path(pulled["tiny-test"]) / "tiny-test.gguf"
    assert stored_file.is_relative_to(home)
    assert sha(stored_file.read_bytes()) == sha(weights)
    assert len(server.gets("/tiny-test.gguf")) == 1

    info = json_of(runanywhere_cli("models", "info", "tiny-test", "--json", env=served_env))
    assert info["id"] == "tiny-test" and info["status"] == "stored" and info["license"] == "mit"
    assert info["size_bytes"] == len(weights) and info["path"] == pulled["tiny-test"]
    assert [(f["path"], f["sha256"]) for f in info["files_stored"]] == [("tiny-test.gguf", sha(weights))]

    stored = json_of(runanywhere_cli("models", "list", "--stored", "--json", env=served_env))
    assert [m["id"] for m in stored] == ["tiny-test"]

    ok = runanywhere_cli("models", "verify", env=served_env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "tiny-test: ok" in ok.stdout

    damaged = bytearray(weights)
    damaged[MB] ^= 0xFF  # one flipped byte, same size
    stored_file.write_bytes(bytes(damaged))
    bad = runanywhere_cli("models", "verify", env=served_env)
    assert bad.returncode == 1
    assert "tiny-test" in bad.stdout and "tiny-test.gguf" in bad.stdout and "BAD" in bad.stdout
    [report] = json.loads(runanywhere_cli("models", "verify", "tiny-test", "--json", env=served_env).stdout)
    assert report["ok"] is False and report["mismatched"] == ["tiny-test.gguf"]

    removed = runanywhere_cli("models", "rm", "tiny-test", env=served_env)
    assert removed.returncode == 0, removed.stderr
    assert "deleted tiny-test" in removed.stdout
    assert json_of(runanywhere_cli("models", "list", "--stored", "--json", env=served_env)) == []
    assert not stored_file.exists()


def test_second_pull_is_served_from_the_store(served_env: dict[str, str], server: FileServer) -> None:
    first = json_of(runanywhere_cli("models", "pull", "tiny-test", "--json", env=served_env))
    second = json_of(runanywhere_cli("models", "pull", "tiny-test", "--json", env=served_env))
    assert first == second
    assert len(server.gets("/tiny-test.gguf")) == 1


def test_doctor_json(subprocess_env: dict[str, str], home: Path) -> None:
    report = json_of(runanywhere_cli("doctor", "--json", "--no-bandwidth", env=subprocess_env))
    assert report["logical_cores"] >= 1 and report["physical_cores"] >= 1
    assert "llama-cpp-python" in report["engines"]
    assert report["memory_bandwidth_gb_per_s"] is None  # --no-bandwidth
    assert Path(report["store_path"]) == home


@pytest.mark.parametrize("command", [
    ["models", "info", "no-such-model"],
    ["models", "pull", "no-such-model"],
    ["models", "pull", "silero-vad-v6", "no-such-model"],  # a typo fails before anything is pulled
    ["models", "rm", "no-such-model"],
    ["models", "verify", "no-such-model"],
])
def test_unknown_model_is_a_one_line_error(command: list[str], subprocess_env: dict[str, str], home: Path) -> None:
    result = runanywhere_cli(*command, env=subprocess_env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("error: [MODEL_NOT_FOUND]") and "no-such-model" in line
    assert not (home / "models" / "silero-vad-v6").exists()


def test_pull_without_a_model_is_a_usage_error(subprocess_env: dict[str, str]) -> None:
    result = runanywhere_cli("models", "pull", env=subprocess_env)
    assert result.returncode == 2
    assert "--defaults" in result.stderr


def test_offline_pull_of_a_remote_model_explains_itself(subprocess_env: dict[str, str]) -> None:
    result = runanywhere_cli("models", "pull", "smollm2-360m-q8_0", env={**subprocess_env, "RUNANYWHERE_OFFLINE": "1"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "OFFLINE_MODE" in result.stderr and "RUNANYWHERE_MIRROR" in result.stderr


@pytest.mark.slow
def test_pull_defaults_offline_from_their_packages(subprocess_env: dict[str, str], home: Path) -> None:
    env = {**subprocess_env, "RUNANYWHERE_OFFLINE": "1"}

    pulled = json_of(runanywhere_cli("models", "pull", "--defaults", "--json", env=env, timeout=900))

    assert set(pulled) == DEFAULT_MODELS
    assert all(Path(path).is_relative_to(home) for path in pulled.values())
    stored = json_of(runanywhere_cli("models", "list", "--stored", "--json", env=env))
    assert {m["id"] for m in stored} == DEFAULT_MODELS
    assert {m["status"] for m in stored} == {"stored"}
    verified = runanywhere_cli("models", "verify", env=env, timeout=900)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert sorted(line.split(":")[0] for line in verified.stdout.splitlines()) == sorted(DEFAULT_MODELS)


@pytest.mark.parametrize(("args", "message"), [
    (("speak", "hi", "-o", "/nonexistent-folder/x.wav"), "the folder /nonexistent-folder does not exist"),
    (("speak", "hi", "-o", "{tmp}"), "is a directory; give a file name"),
    (("transcribe", "/nonexistent-folder/x.wav"), "nonexistent-folder"),
])
def test_bad_files_are_one_line_errors_and_leave_nothing_behind(args, message, subprocess_env, tmp_path):
    args = tuple(a.format(tmp=tmp_path) for a in args)
    around = set(tmp_path.parent.iterdir())
    done = runanywhere_cli(*args, env=subprocess_env)
    assert done.returncode != 0 and message in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert set(tmp_path.parent.iterdir()) == around  # no stray temp file next to the target folder
    debug = runanywhere_cli("--debug", *args, env=subprocess_env)
    assert "Traceback" in debug.stderr  # --debug shows where it came from


def test_a_home_that_is_a_file_is_a_configuration_error(subprocess_env, tmp_path):
    home = tmp_path / "not-a-folder"
    home.write_text("x")
    done = runanywhere_cli("models", "list", env={**subprocess_env, "RUNANYWHERE_HOME": str(home)})
    assert done.returncode == 2 and "is a file, not a folder" in done.stderr and "Traceback" not in done.stderr


def test_models_clean_removes_what_a_killed_pull_left_and_says_what_it_freed(subprocess_env: dict[str, str],
                                                                             home: Path) -> None:
    staging = home / "staging" / "gone"
    (staging / ".partial").mkdir(parents=True)
    (staging / ".partial" / "gone.gguf.part").write_bytes(blob(MB, 1))
    (staging / ".partial" / "gone.gguf.part.json").write_text('{"url": "http://127.0.0.1:9/gone.gguf"}')

    result = runanywhere_cli("models", "clean", env=subprocess_env)

    assert result.returncode == 0, result.stderr
    assert f"removed partial download {staging} (1.0 MB)" in result.stdout
    assert result.stdout.strip().endswith("freed 1.0 MB")
    assert not staging.exists()
    assert json_of(runanywhere_cli("models", "clean", "--json", env=subprocess_env)) == {
        "freed_bytes": 0, "removed": [], "in_use": []}


def test_a_read_only_store_lists_its_models_and_refuses_removal_in_one_line(served_env: dict[str, str], home: Path,
                                                                            mounts: Mounts) -> None:
    json_of(runanywhere_cli("models", "pull", "tiny-test", "--json", env=served_env))
    mounts.read_only(home)

    stored = json_of(runanywhere_cli("models", "list", "--stored", "--json", env=served_env))
    verified = runanywhere_cli("models", "verify", env=served_env)
    removed = runanywhere_cli("models", "rm", "tiny-test", env=served_env)

    assert [m["id"] for m in stored] == ["tiny-test"]
    assert verified.returncode == 0 and "tiny-test: ok" in verified.stdout, verified.stderr
    assert removed.returncode != 0 and "Traceback" not in removed.stderr
    [line] = removed.stderr.splitlines()
    assert line.startswith("error: [FILE_WRITE_FAILED]") and "read-only file system" in line
