"""Pulling models over HTTP from a real server on 127.0.0.1: progress, resume, retries, hashes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from runanywhere import (
    CancelledError,
    CancelToken,
    ChecksumMismatchError,
    DownloadError,
    ModelNotFoundError,
    NetworkError,
    NetworkTimeoutError,
    OfflineModeError,
    SDKErrorCode,
    StorageError,
)
from runanywhere.core.events import (
    ModelDownloadCompleted,
    ModelDownloadFailed,
    ModelDownloadProgress,
    ModelDownloadStarted,
)

from .conftest import LibraryFactory, blob, model_entry, sha
from .fileserver import FileServer

MB = 1 << 20


def test_pull_reports_progress_and_stores_a_verified_model(server, make_library: LibraryFactory, events):
    weights, config = blob(3 * MB, 1), b'{"layers": 2}'
    library = make_library()
    library.register(model_entry("tiny", {
        "tiny.gguf": (server.add("/tiny.gguf", weights), weights),
        "config.json": (server.add("/config.json", config), config),
    }))
    events.clear()

    local = library.pull("tiny")

    assert local.main_file.read_bytes() == weights
    assert (local.path / "config.json").read_bytes() == config
    types = [type(e) for e in events]
    assert types[0] is ModelDownloadStarted and ModelDownloadCompleted in types
    progress = [e for e in events if isinstance(e, ModelDownloadProgress)]
    assert progress, "no progress events"
    totals = [e.bytes_downloaded for e in progress]
    assert totals == sorted(totals)
    assert progress[-1].progress == 1.0 and progress[-1].total_bytes == len(weights) + len(config)
    assert library.verify("tiny").ok
    assert [m.id for m in library.store.models()] == ["tiny"]


def test_pull_callback_receives_the_same_progress(server, make_library: LibraryFactory):
    data = blob(2 * MB, 2)
    library = make_library()
    library.register(model_entry("m", {"m.gguf": (server.add("/m.gguf", data), data)}))
    seen: list[ModelDownloadProgress] = []
    library.pull("m", progress=seen.append)
    assert seen[-1].bytes_downloaded == len(data)


def test_second_pull_uses_the_store_without_network(server, make_library: LibraryFactory):
    data = blob(MB, 3)
    library = make_library()
    library.register(model_entry("m", {"m.gguf": (server.add("/m.gguf", data), data)}))
    first = library.pull("m")
    second = library.pull("m")
    assert first.path == second.path
    assert len(server.gets("/m.gguf")) == 1


@pytest.mark.parametrize(("etag", "resumed"), [("strong", True), ("none", False)])
def test_cut_download_is_resumed_by_a_new_process_when_it_can_be_validated(
        server: FileServer, tmp_path: Path, home: Path, subprocess_env: dict[str, str], etag: str, resumed: bool):
    data = blob(5 * MB, 4)
    half = 2 * MB  # a whole number of the downloader's 1 MiB chunks
    url = server.add("/big.gguf", data, stall_after=half, etag=etag)
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"models": [model_entry("big", {"big.gguf": (url, data)})]}))
    env = {**subprocess_env, "RUNANYWHERE_CATALOG": str(catalog)}

    child = subprocess.Popen([sys.executable, "-m", "runanywhere.cli", "models", "pull", "big"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = home / "staging" / "big" / ".partial" / "big.gguf.part"
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size >= half):
        assert child.poll() is None, "the first process ended before the cut"
        assert time.monotonic() < deadline, "the first process never wrote half the file"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)  # the process dies mid-download
    child.wait()
    kept = partial.stat().st_size
    server.behaviour["/big.gguf"].stall_after = None
    server.behaviour["/big.gguf"].release.set()

    result = subprocess.run([sys.executable, "-m", "runanywhere.cli", "models", "pull", "big", "--json"],
                            env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    stored = Path(json.loads(result.stdout)["big"]) / "big.gguf"
    assert sha(stored.read_bytes()) == sha(data)
    assert kept == half
    # Without an ETag the killed process's partial cannot be checked: the second one starts from zero.
    assert [r.range for r in server.gets("/big.gguf")] == [None, f"bytes={half}-" if resumed else None]


def test_cut_connection_is_retried_from_where_it_stopped(server, make_library: LibraryFactory):
    data = blob(3 * MB, 5)
    library = make_library()
    library.register(model_entry("m", {"m.gguf": (server.add("/m.gguf", data, cut_after=MB), data)}))
    library.pull("m")
    ranges = [r.range for r in server.gets("/m.gguf")]
    assert ranges == [None, f"bytes={MB}-"]
    assert library.verify("m").ok


def test_server_that_ignores_range_restarts_cleanly(server, make_library: LibraryFactory):
    data = blob(3 * MB, 6)
    url = server.add("/m.gguf", data, cut_after=MB, ignore_range=True)
    library = make_library(max_retries=0)
    library.register(model_entry("m", {"m.gguf": (url, data)}))
    with pytest.raises(NetworkError):
        library.pull("m")
    assert library.store.get("m") is None

    library.pull("m")  # asks for a range, gets the whole file with 200, starts over

    assert server.gets("/m.gguf")[-1].range == f"bytes={MB}-"
    assert library.verify("m").ok
    assert sha(library.pull("m").main_file.read_bytes()) == sha(data)


def test_404_is_a_clear_error_and_stores_nothing(server, make_library: LibraryFactory, events):
    library = make_library()
    library.register(model_entry("gone", {"gone.gguf": (server.url + "/gone.gguf", b"x")}))
    with pytest.raises(ModelNotFoundError) as err:
        library.pull("gone")
    assert err.value.code == SDKErrorCode.MODEL_NOT_FOUND
    assert "404" in str(err.value)
    assert library.store.get("gone") is None
    assert isinstance(events[-1], ModelDownloadFailed)


def test_500_then_success_is_retried(server, make_library: LibraryFactory):
    data = blob(MB, 7)
    library = make_library(max_retries=3)
    library.register(model_entry("m", {"m.gguf": (server.add("/m.gguf", data, fail_first=2), data)}))
    assert library.pull("m").main_file.read_bytes() == data
    assert len(server.gets("/m.gguf")) == 3


def test_persistent_500_gives_up_after_the_retries(server, make_library: LibraryFactory):
    library = make_library(max_retries=2)
    library.register(model_entry("m", {"m.gguf": (server.add("/m.gguf", b"x" * 10, status=503), b"x" * 10)}))
    with pytest.raises(Exception) as err:
        library.pull("m")
    assert err.value.code == SDKErrorCode.DOWNLOAD_FAILED
    assert len(server.gets("/m.gguf")) == 3


def test_wrong_sha256_stores_nothing(server, make_library: LibraryFactory, home: Path):
    data = blob(MB, 8)
    entry = model_entry("m", {"m.gguf": (server.add("/m.gguf", data), data)})
    entry["files"][0]["sha256"] = sha(b"something else")
    library = make_library()
    library.register(entry)
    with pytest.raises(ChecksumMismatchError) as err:
        library.pull("m")
    assert err.value.code == SDKErrorCode.CHECKSUM_MISMATCH
    assert isinstance(err.value, ValueError)
    assert library.store.get("m") is None
    assert not (home / "models" / "m").exists()
    assert not list((home / "staging").rglob("*.part")), "the bad bytes were kept"


def test_cancel_stops_a_download_and_keeps_the_partial_for_resume(server, make_library: LibraryFactory):
    data = blob(4 * MB, 9)
    url = server.add("/m.gguf", data, stall_after=MB)
    library = make_library()
    library.register(model_entry("m", {"m.gguf": (url, data)}))
    cancel = CancelToken()
    errors: list[BaseException] = []

    def pull() -> None:
        try:
            library.pull("m", cancel=cancel)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=pull)
    worker.start()
    partial = library.store.staging_dir / "m" / ".partial" / "m.gguf.part"
    while not (partial.exists() and partial.stat().st_size >= MB):
        time.sleep(0.02)
    cancel.cancel()
    server.behaviour["/m.gguf"].release.set()  # the next chunk lets the loop see the cancel
    worker.join(timeout=30)

    assert isinstance(errors[0], CancelledError)
    assert errors[0].code == SDKErrorCode.DOWNLOAD_CANCELLED
    assert library.store.get("m") is None
    assert partial.stat().st_size >= MB


def test_two_processes_pulling_the_same_model_download_it_once(server: FileServer, tmp_path: Path,
                                                               subprocess_env: dict[str, str]):
    data = blob(6 * MB, 10)
    url = server.add("/shared.gguf", data)
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"models": [model_entry("shared", {"shared.gguf": (url, data)})]}))
    env = {**subprocess_env, "RUNANYWHERE_CATALOG": str(catalog)}
    command = [sys.executable, "-m", "runanywhere.cli", "models", "pull", "shared", "--json"]

    children = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
    outputs = [c.communicate(timeout=120) for c in children]

    assert all(c.returncode == 0 for c in children), [o[1] for o in outputs]
    paths = {json.loads(out)["shared"] for out, _ in outputs}
    assert len(paths) == 1
    assert sha((Path(paths.pop()) / "shared.gguf").read_bytes()) == sha(data)
    assert len(server.gets("/shared.gguf")) == 1


def test_offline_mode_refuses_the_network(server, make_library: LibraryFactory):
    library = make_library(offline=True)
    library.register(model_entry("m", {"m.gguf": (server.add("/m.gguf", b"abc"), b"abc")},
                                 pip=["some-model-package"]))
    with pytest.raises(OfflineModeError) as err:
        library.pull("m")
    assert err.value.code == SDKErrorCode.OFFLINE_MODE
    assert "pip install some-model-package" in str(err.value)
    assert server.requests == []


def test_http_mirror_replaces_the_public_host(server, make_library: LibraryFactory):
    data = blob(MB, 11)
    server.add("/mirror/m/m.gguf", data)
    library = make_library(mirror=server.url + "/mirror")
    library.register(model_entry("m", {"m.gguf": ("https://public.invalid/m.gguf", data)}))
    assert library.pull("m").main_file.read_bytes() == data


def test_directory_mirror_works_offline(tmp_path: Path, make_library: LibraryFactory):
    weights, tokens = blob(MB, 12), b"a\nb\n"
    mirror = tmp_path / "mirror"
    (mirror / "voice").mkdir(parents=True)
    (mirror / "voice" / "voice.onnx").write_bytes(weights)
    (mirror / "voice" / "tokens.txt").write_bytes(tokens)
    library = make_library(mirror=str(mirror), offline=True)
    library.register(model_entry("voice", {"voice.onnx": ("https://public.invalid/voice.onnx", weights),
                                           "tokens.txt": ("https://public.invalid/tokens.txt", tokens)}))
    local = library.pull("voice")
    assert [p.name for p in local.files] == ["voice.onnx", "tokens.txt"]
    assert library.verify("voice").ok


def test_errors_name_what_to_do_for_unknown_ids_and_paths(make_library: LibraryFactory, tmp_path: Path):
    library = make_library()
    library.register(model_entry("smollm2-135m", {"a.gguf": (None, b"x")}))
    with pytest.raises(ModelNotFoundError) as err:
        library.resolve("smollm2")
    assert err.value.details["suggestions"] == ["smollm2-135m"]
    assert isinstance(err.value, LookupError)
    with pytest.raises(FileNotFoundError):
        library.resolve(str(tmp_path / "missing.gguf"))
    existing = tmp_path / "mine.gguf"
    existing.write_bytes(b"GGUF")
    assert library.resolve(existing).main_file == existing


def test_unknown_id_on_the_command_line_exits_with_a_message(home: Path, subprocess_env: dict[str, str]):
    result = subprocess.run([sys.executable, "-m", "runanywhere.cli", "models", "pull", "no-such-model"],
                            env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "MODEL_NOT_FOUND" in result.stderr and "no-such-model" in result.stderr
    assert "Traceback" not in result.stderr


def test_environment_variables_configure_the_store(home: Path, subprocess_env: dict[str, str]):
    env = {**subprocess_env, "RUNANYWHERE_OFFLINE": "1"}
    code = "from runanywhere import RunAnywhere; c = RunAnywhere.config; print(c.home, c.offline)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(home), "True"]
    assert os.environ.get("RUNANYWHERE_OFFLINE") is None


def test_a_file_larger_than_its_catalog_size_is_refused_and_nothing_is_kept(server, make_library: LibraryFactory,
                                                                           home: Path):
    declared, served = blob(1024, 20), blob(MB, 21)
    library = make_library(max_retries=0)
    url = server.add("/big.gguf", served)
    library.register(model_entry("liar", {"big.gguf": (url, declared)}))  # the catalog says 1 KB

    with pytest.raises(DownloadError, match="catalog declares 1024"):
        library.pull("liar")

    assert library.store.models() == []
    assert not list(home.rglob("*.part")), "a partial of a refused file was kept"


def test_a_body_without_length_stops_at_the_declared_size(server, make_library: LibraryFactory, home: Path):
    declared, served = blob(1024, 22), blob(4 * MB, 23)
    library = make_library(max_retries=0)
    url = server.add("/endless.gguf", served, no_length=True)  # the server never says how long it is
    library.register(model_entry("endless", {"endless.gguf": (url, declared)}))

    with pytest.raises(DownloadError, match="more than its declared 1024 bytes"):
        library.pull("endless")

    assert library.store.models() == [] and not list(home.rglob("*.part"))


def test_a_trickling_server_is_a_timeout_not_a_hang(server, make_library: LibraryFactory):
    data = blob(4096, 24)
    library = make_library(max_retries=1, stall_timeout_s=0.3)
    library.register(model_entry("slow", {"slow.gguf": (server.add("/slow.gguf", data, trickle_s=0.02), data)}))

    with pytest.raises(NetworkTimeoutError, match=r"less than 65536 bytes in 0\.3 s"):
        library.pull("slow")
    assert len(server.gets("/slow.gguf")) == 2  # one retry, then the typed error


def test_the_overall_download_deadline_ends_a_slow_pull(server, make_library: LibraryFactory):
    data = blob(4096, 25)
    library = make_library(max_retries=5, download_deadline_s=0.5)
    library.register(model_entry("slow", {"slow.gguf": (server.add("/slow.gguf", data, trickle_s=0.02), data)}))

    with pytest.raises(NetworkTimeoutError, match="overall deadline"):
        library.pull("slow")


def test_a_pull_stuck_behind_another_process_times_out_naming_it(server, make_library: LibraryFactory,
                                                                 subprocess_env: dict[str, str]):
    data = blob(1024, 26)
    library = make_library(lock_timeout_s=0.5)
    library.register(model_entry("busy", {"busy.gguf": (server.add("/busy.gguf", data), data)}))
    lock_path = library.store.pull_lock("busy").path
    holder = subprocess.Popen(  # another process that took the model's pull lock and hangs
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from runanywhere.models.locks import "
         "FileLock; lock = FileLock(Path(sys.argv[1])); lock.acquire(); print('held', flush=True); time.sleep(60)",
         str(lock_path)], env=subprocess_env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        stuck = rf"timed out after 0\.5 s waiting for busy\.pull, held by pid {holder.pid} "
        with pytest.raises(StorageError, match=stuck):
            library.pull("busy")
    finally:
        holder.kill()
        holder.wait()
    assert library.pull("busy").main_file.read_bytes() == data  # the lock ended with its process


def _unhashed(model_id: str, url: str, data: bytes, *, sized: bool = True) -> dict:
    """A catalog entry whose file has no sha256 (and, unless ``sized``, no size): only the download can tell."""
    entry = model_entry(model_id, {f"{model_id}.gguf": (url, data)})
    del entry["files"][0]["sha256"]
    if not sized:
        del entry["files"][0]["size"]
    return entry


@pytest.mark.parametrize("etag", ["none", "weak"])
def test_a_partial_that_cannot_be_validated_is_not_kept_nor_spliced_with_a_changed_file(
        server: FileServer, make_library: LibraryFactory, etag: str):
    old, new = blob(3 * MB, 30), blob(3 * MB, 31)
    url = server.add("/m.gguf", old, cut_after=MB, etag=etag)  # no ETag, or a weak one that never changes
    library = make_library(max_retries=0)
    library.register(_unhashed("m", url, old))
    with pytest.raises(NetworkError) as err:
        library.pull("m")
    assert "kept for resume" not in str(err.value)
    assert not list(library.store.staging_dir.rglob("*.part")), "a partial that cannot be validated was kept"

    server.files["/m.gguf"] = new  # the file changes on the server before the pull is tried again
    local = library.pull("m")

    assert sha(local.main_file.read_bytes()) == sha(new)
    stored = library.store.get("m")
    assert stored is not None and stored.files[0].sha256 == sha(new)  # hashed while streaming
    assert library.verify("m").ok
    assert [r.range for r in server.gets("/m.gguf")] == [None, None]
    with open(local.main_file, "r+b") as fh:  # the recorded hash is what verify() checks, catalog sha256 or not
        fh.write(b"\0")
    assert library.verify("m").mismatched == ("m.gguf",)


def test_a_last_modified_date_is_enough_to_resume(server: FileServer, make_library: LibraryFactory):
    data, modified = blob(3 * MB, 32), 1_700_000_000.0
    url = server.add("/m.gguf", data, cut_after=MB, etag="none", last_modified=modified)
    library = make_library()
    library.register(_unhashed("m", url, data))

    library.pull("m")

    asked = [(r.range, r.if_range) for r in server.gets("/m.gguf")]
    assert asked == [(None, None), (f"bytes={MB}-", formatdate(modified, usegmt=True))]
    assert library.verify("m").ok


def test_a_file_changed_under_its_last_modified_date_is_downloaded_again_whole(
        server: FileServer, make_library: LibraryFactory):
    old, new = blob(3 * MB, 33), blob(3 * MB, 34)
    url = server.add("/m.gguf", old, cut_after=MB, etag="none", last_modified=1_700_000_000.0)
    library = make_library(max_retries=0)
    library.register(_unhashed("m", url, old))
    with pytest.raises(NetworkError):
        library.pull("m")

    server.files["/m.gguf"] = new
    server.behaviour["/m.gguf"].last_modified = 1_700_000_100.0
    local = library.pull("m")  # If-Range names the old date: the server answers 200 with the new file

    assert sha(local.main_file.read_bytes()) == sha(new)
    assert library.verify("m").ok
    assert [r.range for r in server.gets("/m.gguf")] == [None, f"bytes={MB}-"]


@pytest.mark.parametrize(("change", "size", "logged"), [
    ("size", 4 * MB, f"the file is now {4 * MB} bytes, the partial was of {3 * MB}"),
    ("etag", 3 * MB, "its ETag changed"),
])
def test_a_206_of_another_version_restarts_from_zero(server: FileServer, make_library: LibraryFactory,
                                                     caplog: pytest.LogCaptureFixture, change: str, size: int,
                                                     logged: str):
    old, new = blob(3 * MB, 35), blob(size, 36)
    url = server.add("/m.gguf", old, cut_after=MB, ignore_if_range=True)  # resumes whatever If-Range says
    library = make_library(max_retries=0)
    library.register(_unhashed("m", url, old, sized=change == "etag"))
    with pytest.raises(NetworkError):
        library.pull("m")

    server.files["/m.gguf"] = new  # the 206 now carries another total or another ETag
    local = library.pull("m")

    assert sha(local.main_file.read_bytes()) == sha(new)
    assert library.verify("m").ok
    assert [r.range for r in server.gets("/m.gguf")] == [None, f"bytes={MB}-", None]
    assert f"not resuming {url}: {logged}" in caplog.text


def test_a_range_that_was_not_asked_for_is_refused(server: FileServer, make_library: LibraryFactory, home: Path):
    data = blob(MB, 37)
    library = make_library()
    library.register(_unhashed("m", server.add("/m.gguf", data, range_from=1000), data, sized=False))

    with pytest.raises(DownloadError, match="answered a range that was not asked for"):
        library.pull("m")

    assert library.store.models() == [] and not list(home.rglob("*.part"))
