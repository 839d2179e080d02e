"""The model store on a bad day: a read-only or full disk, records of the wrong shape, leftovers of killed runs.

The read-only disk is a read-only bind mount of the store's home and the full
disk a small tmpfs, both mounted by the test (as root); where mounting is not
allowed the test says so and skips.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from runanywhere import (
    DownloadError,
    EmbeddingGenerator,
    InsufficientStorageError,
    ModelDownloadFailed,
    SDKErrorCode,
    StorageError,
    TextGenerator,
)
from runanywhere.models.store import RECORD_NAME

from .conftest import LibraryFactory, blob, model_entry, sha
from .fileserver import FileServer
from .mounts import Mounts

MB = 1 << 20
A_DIGEST = "0" * 64


def _served(server: FileServer, library, model_id: str, data: bytes, *, declare_size: bool = True) -> None:
    entry = model_entry(model_id, {f"{model_id}.gguf": (server.add(f"/{model_id}.gguf", data), data)})
    if not declare_size:
        for file in entry["files"]:
            del file["size"], file["sha256"]
    library.register(entry)


def _stored_a_and_b(server: FileServer, make_library: LibraryFactory) -> None:
    """Models a and b (1 MB each) pulled into the store."""
    library = make_library()
    for seed, model_id in enumerate(("a", "b"), start=1):
        _served(server, library, model_id, blob(MB, seed))
        library.pull(model_id)


def _fill(directory: Path) -> None:
    """Write into ``directory`` until its disk has neither a free byte nor a free inode."""
    with open(directory / "filler", "wb", buffering=0) as fh, pytest.raises(OSError) as full:
        while True:
            fh.write(b"\0" * 65536)
    assert full.value.errno == errno.ENOSPC
    with pytest.raises(OSError) as no_inodes:
        for n in range(100_000):
            (directory / f"empty-{n}").touch()
    assert no_inodes.value.errno == errno.ENOSPC


def _temp_files(home: Path) -> list[Path]:
    return [p for p in home.rglob("*.tmp")]


# --------------------------------------------------------------- read-only disk
@pytest.mark.parametrize("lock_files", ["kept", "lost"])
def test_a_read_only_store_lists_verifies_and_serves_its_models(server: FileServer, make_library: LibraryFactory,
                                                                home: Path, mounts: Mounts, events, caplog,
                                                                lock_files: str):
    writer = make_library()
    _served(server, writer, "a", blob(MB, 1))
    _served(server, writer, "b", blob(MB, 2))
    derived = writer.derive(writer.pull("a"), "a.bin", lambda path: path.write_bytes(b"made once"))
    (home / "staging" / "b").mkdir(parents=True)
    (home / "staging" / "b" / "b.gguf").write_bytes(blob(1000, 3))  # a partial download of b
    if lock_files == "lost":  # a store copied onto read-only media without its lock files
        for lock in (home / "locks").iterdir():
            lock.unlink()
    mounts.read_only(home)

    library = make_library()
    _served(server, library, "a", blob(MB, 1))
    _served(server, library, "b", blob(MB, 2))
    with caplog.at_level(logging.WARNING):
        local = library.pull("a")  # recording its last use cannot be written: logged, not fatal
        assert library.resolve("a").main_file.read_bytes() == blob(MB, 1)
    assert local.main_file == home / "models" / "a" / "a.gguf"
    assert "going on without it" in caplog.text
    assert [m.id for m in library.store.models()] == ["a"]
    assert library.verify("a").ok and library.verify("a").checked_files == 2
    assert library.storage_info().used_bytes == MB + len(b"made once")
    assert library.storage_info().reclaimable_bytes == 1000
    assert library.derive(local, "a.bin", lambda path: pytest.fail("made again")) == derived
    with library.pin("a"):
        assert library.info("a").status == "stored"

    with pytest.raises(StorageError, match="read-only file system") as deleting:
        library.delete("a")
    assert deleting.value.code == SDKErrorCode.FILE_WRITE_FAILED
    with pytest.raises(StorageError, match="read-only file system"):
        library.pull("b")
    with pytest.raises(StorageError, match="read-only file system"):
        library.clean()
    assert [e.model_id for e in events if isinstance(e, ModelDownloadFailed)] == ["b"]
    assert library.verify("a").ok, "a failed delete harmed the model"
    assert _temp_files(home) == []


def test_a_read_only_store_loads_a_language_and_an_embedding_model(server: FileServer, make_library: LibraryFactory,
                                                                  home: Path, mounts: Mounts, tiny_llm: Path, bus):
    weights = tiny_llm.read_bytes()
    writer = make_library()
    _served(server, writer, "tiny", weights)
    writer.pull("tiny")
    mounts.read_only(home)

    library = make_library()
    _served(server, library, "tiny", weights)
    generator = TextGenerator(library, events=bus)
    generator.load_model("tiny", n_threads=1)
    try:
        assert generator.generate("Hello", max_tokens=3).output_tokens > 0
    finally:
        generator.unload()
    embeddings = EmbeddingGenerator(library, events=bus)
    embeddings.load_model("tiny", pooling="mean", n_threads=1)
    try:
        vector = embeddings.embed("Hello")
        assert vector.ndim == 1 and vector.size > 0
    finally:
        embeddings.unload()
    assert _temp_files(home) == []


def test_a_corrupt_manifest_on_a_read_only_store_is_rebuilt_in_memory(server: FileServer, home: Path,
                                                                      make_library: LibraryFactory, mounts: Mounts):
    _stored_a_and_b(server, make_library)
    (home / "manifest.json").write_text("{ not json")
    (home / "models" / "b" / RECORD_NAME).unlink()
    mounts.read_only(home)

    library = make_library()
    assert [(m.id, m.size_bytes) for m in library.store.models()] == [("a", MB), ("b", MB)]
    assert library.store.last_recovery.recovered == ["a", "b"]
    assert library.verify("a").ok and library.verify("b").ok
    assert (home / "manifest.json").read_text() == "{ not json", "a read-only store was written"
    assert _temp_files(home) == []


# ------------------------------------------------------------------- full disk
def test_a_full_disk_still_serves_stored_models_and_leaves_no_temp_files(server: FileServer, home: Path,
                                                                         make_library: LibraryFactory,
                                                                         mounts: Mounts, caplog):
    mounts.tmpfs(home, 3 * MB, inodes=64)
    library = make_library(memory_fallback=False)
    _served(server, library, "a", blob(MB, 1))
    _served(server, library, "big", blob(4 * MB, 2))
    library.pull("a")
    (home / "staging" / "old").mkdir(parents=True)
    (home / "staging" / "old" / "old.gguf").write_bytes(blob(1000, 3))  # a partial download of another model
    for lock in (home / "locks").iterdir():  # no room left for a lock file either
        lock.unlink()
    _fill(home)

    with caplog.at_level(logging.WARNING):
        assert library.pull("a").main_file.read_bytes() == blob(MB, 1)
    assert "disk holding" in caplog.text and "is full" in caplog.text
    assert _temp_files(home) == [], "a failed manifest write left its temporary file"
    assert library.verify("a").ok
    with pytest.raises(InsufficientStorageError):
        library.pull("big")
    assert library.store.get("a") is not None and _temp_files(home) == []
    assert library.clean().freed_bytes == 1000, "cleaning a full disk failed"


def test_a_download_larger_than_the_disk_is_a_typed_error_and_leaves_nothing(server: FileServer, home: Path,
                                                                             make_library: LibraryFactory,
                                                                             mounts: Mounts):
    mounts.tmpfs(home, 2 * MB)
    library = make_library(memory_fallback=False)
    _served(server, library, "big", blob(3 * MB, 3), declare_size=False)  # no size: nothing to plan with

    with pytest.raises(InsufficientStorageError, match="no room for big"):
        library.pull("big")

    assert library.store.models() == []
    assert library.storage_info().reclaimable_bytes == 0
    assert [p for p in home.rglob("*") if p.is_file() and p.parent.name != "locks"] == []


def test_a_derived_file_larger_than_the_disk_is_a_typed_error(server: FileServer, home: Path,
                                                              make_library: LibraryFactory, mounts: Mounts):
    mounts.tmpfs(home, 2 * MB)
    library = make_library()
    _served(server, library, "a", blob(MB, 4))
    local = library.pull("a")

    def too_big(path: Path) -> None:
        path.write_bytes(blob(2 * MB, 5))

    with pytest.raises(InsufficientStorageError, match="is full"):
        library.derive(local, "a-f16.gguf", too_big)

    assert library.store.require("a").derived == () and library.verify("a").ok
    assert list((home / "staging").iterdir()) == [] and _temp_files(home) == []


# ------------------------------------------------------ records of the wrong shape
def _record(home: Path, model_id: str) -> dict:
    return json.loads((home / "manifest.json").read_text())["models"][model_id]


def _bend(record: dict, how: str) -> object:
    file = record["files"][0]
    return {
        "files not a list": {**record, "files": {file["path"]: file}},
        "size a string": {**record, "files": [{**file, "size": str(file["size"])}]},
        "size negative": {**record, "files": [{**file, "size": -1}]},
        "no files": {k: v for k, v in record.items() if k != "files"},
        "a file without its digest": {**record, "files": [{"path": file["path"], "size": file["size"]}]},
        "a path outside the model": {**record, "files": [{**file, "path": "../b/b.gguf"}]},
        "another model's id": {**record, "id": "b"},
        "a time that is text": {**record, "last_used_at": "yesterday"},
        "derived files not a list": {**record, "derived": "none"},
        "not an object": [record],
    }[how]


@pytest.mark.parametrize("how", ["files not a list", "size a string", "size negative", "no files",
                                 "a file without its digest", "a path outside the model", "another model's id",
                                 "a time that is text", "derived files not a list", "not an object"])
def test_a_manifest_record_of_the_wrong_shape_is_rebuilt_and_breaks_nothing(server: FileServer, home: Path,
                                                                            make_library: LibraryFactory, how: str):
    _stored_a_and_b(server, make_library)
    manifest = json.loads((home / "manifest.json").read_text())
    manifest["models"]["a"] = _bend(manifest["models"]["a"], how)
    (home / "manifest.json").write_text(json.dumps(manifest))
    requests = len(server.requests)

    reopened = make_library()
    _served(server, reopened, "a", blob(MB, 1))
    assert [m.id for m in reopened.store.models()] == ["a", "b"]
    assert reopened.store.last_recovery.malformed == ["a"]
    assert reopened.verify("a").ok, "an intact model was called bad because its record was malformed"
    assert reopened.pull("a").main_file.read_bytes() == blob(MB, 1)
    assert len(server.requests) == requests, "the model was downloaded again"
    rebuilt = _record(home, "a")  # from the model's own record file, saved back into the manifest
    assert rebuilt["files"] == [{"path": "a.gguf", "size": MB, "sha256": sha(blob(MB, 1))}]
    assert rebuilt["source"] == "catalog"
    assert reopened.storage_info().used_bytes == 2 * MB
    assert reopened.delete("b") == MB


def test_a_record_file_of_the_wrong_shape_is_rebuilt_from_the_files(server: FileServer, home: Path,
                                                                    make_library: LibraryFactory):
    library = make_library()
    _served(server, library, "a", blob(MB, 1))
    library.pull("a")
    (home / "manifest.json").unlink()
    (home / "models" / "a" / RECORD_NAME).write_text(json.dumps({"id": "a", "files": "a.gguf"}))

    stored = make_library().store.require("a")

    assert stored.source == "recovered" and [(f.path, f.size) for f in stored.files] == [("a.gguf", MB)]
    assert make_library().verify("a").ok
    assert json.loads((home / "models" / "a" / RECORD_NAME).read_text())["files"][0]["size"] == MB


def test_unknown_extra_keys_in_a_record_are_fine(server: FileServer, home: Path, make_library: LibraryFactory):
    library = make_library()
    _served(server, library, "a", blob(MB, 1))
    library.pull("a")
    manifest = json.loads((home / "manifest.json").read_text())
    record = manifest["models"]["a"]
    record["note"] = "from a newer version"
    record["files"][0]["modified"] = 1700000000
    (home / "manifest.json").write_text(json.dumps(manifest))

    reopened = make_library()
    assert reopened.store.require("a").size_bytes == MB
    assert reopened.store.last_recovery.malformed == [] and reopened.verify("a").ok
    assert _record(home, "a")["note"] == "from a newer version"


# -------------------------------------------------------- leftovers of killed runs
def _killed_leftovers(home: Path) -> dict[str, Path]:
    """What a process killed mid-deletion, mid-write or mid-derivation, or a pull that got nothing, leaves."""
    trash = home / "models" / ".trash-old-0badc0de"
    (trash / "sub").mkdir(parents=True)
    (trash / "sub" / "weights.gguf").write_bytes(blob(1000, 1))
    manifest_tmp = home / f".manifest.json.{'ab' * 16}.tmp"
    manifest_tmp.write_text('{"half": ')
    record_tmp = home / "models" / "a" / f".{RECORD_NAME}.{'cd' * 16}.tmp"
    record_tmp.write_text("{")
    scratch = home / "staging" / ".derive-0badc0de.a"
    scratch.mkdir(parents=True)
    (scratch / "a-f16.gguf").write_bytes(blob(500, 2))
    empty = home / "staging" / "c"  # a pull that failed before its first byte
    (empty / ".partial").mkdir(parents=True)
    return {"trash": trash, "manifest_tmp": manifest_tmp, "record_tmp": record_tmp, "scratch": scratch,
            "empty": empty}


def _cut_pull(server: FileServer, library, model_id: str, data: bytes) -> Path:
    """A pull that dies after 1 MB, leaving its partial download in staging (as a killed process would)."""
    library.register(model_entry(model_id, {f"{model_id}.gguf": (
        server.add(f"/{model_id}.gguf", data, cut_after=MB), data)}))
    with pytest.raises(DownloadError):
        library.pull(model_id)
    staging: Path = library.store.staging_dir / model_id
    assert (staging / ".partial" / f"{model_id}.gguf.part").stat().st_size == MB
    return staging


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_leftovers_are_swept_on_open_counted_and_cleaned(server: FileServer, home: Path,
                                                         make_library: LibraryFactory):
    library = make_library(max_retries=0)
    _served(server, library, "a", blob(MB, 1))
    library.pull("a")
    partial = _cut_pull(server, library, "b", blob(3 * MB, 2))
    left = _killed_leftovers(home)

    reopened = make_library()  # the next process to open the store
    info = reopened.storage_info()

    assert not any(p.exists() for p in left.values()), "leftovers no pull can resume survived the next open"
    assert partial.is_dir(), "a partial download that a pull would resume was removed on open"
    assert info.reclaimable_bytes == _size(partial) >= MB
    assert [m.id for m in reopened.store.models()] == ["a"] and reopened.verify("a").ok

    report = reopened.clean()

    assert [(i.path, i.kind, i.model_id) for i in report.removed] == [(partial, "partial download", "b")]
    assert report.freed_bytes == info.reclaimable_bytes and report.in_use == ()
    assert not partial.exists() and reopened.storage_info().reclaimable_bytes == 0
    assert reopened.verify("a").ok


def test_a_partial_that_a_live_pull_holds_is_never_touched(server: FileServer, home: Path,
                                                           make_library: LibraryFactory):
    library = make_library(max_retries=0)
    partial = _cut_pull(server, library, "b", blob(3 * MB, 2))
    scratch = home / "staging" / ".derive-0badc0de.b"
    scratch.mkdir()
    held = library.store.pull_lock("b").path
    holder = subprocess.Popen(  # another process, in the middle of pulling b
        [sys.executable, "-c", "import sys; from pathlib import Path; from runanywhere.models.locks import FileLock; "
         f"lock = FileLock(Path({str(held)!r})); lock.acquire(); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1] / "src")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        reopened = make_library()
        assert reopened.storage_info().reclaimable_bytes == 0, "a live pull's partial was counted as reclaimable"
        report = reopened.clean()
        assert report.removed == () and {i.path for i in report.in_use} == {partial, scratch}
        assert partial.is_dir() and scratch.is_dir()
    finally:
        holder.communicate("", timeout=30)
    report = asyncio.run(make_library().aclean())  # the async twin, once the pull is over
    assert {i.path for i in report.removed} == {partial, scratch} and not partial.exists()
