"""The model store: quota with LRU eviction, pins, memory fallback, manifest recovery, deletion."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from runanywhere import (
    InsufficientStorageError,
    InvalidInputError,
    InvalidStateError,
    ModelEvicted,
    ModelNotFoundError,
    SDKErrorCode,
    StorageError,
)
from runanywhere.models.store import RECORD_NAME

from .conftest import LibraryFactory, blob, model_entry

MB = 1 << 20


def _library_with_models(server, make_library: LibraryFactory, sizes: dict[str, int], **options):
    library = make_library(**options)
    for index, (model_id, size) in enumerate(sizes.items()):
        data = blob(size, index)
        library.register(model_entry(model_id, {f"{model_id}.gguf": (server.add(f"/{model_id}.gguf", data), data)}))
    return library


def test_quota_evicts_the_least_recently_used_unpinned_model(server, make_library: LibraryFactory, events):
    library = _library_with_models(server, make_library, {"a": MB, "b": MB, "c": MB},
                                   storage_quota_bytes=int(2.5 * MB))
    library.pull("a")
    library.pull("b")
    with library.pin("a"):  # a is the oldest, but in use
        plan = library.plan_eviction(MB, exclude=("c",))
        assert plan.model_ids == ["b"] and plan.fits
        library.pull("c")
        assert sorted(m.id for m in library.store.models()) == ["a", "c"]
    evicted = [e for e in events if isinstance(e, ModelEvicted)]
    assert [(e.model_id, e.freed_bytes) for e in evicted] == [("b", MB)]
    assert library.storage_info().used_bytes <= 2.5 * MB


def test_using_a_model_makes_it_recent(server, make_library: LibraryFactory):
    library = _library_with_models(server, make_library, {"a": MB, "b": MB, "c": MB},
                                   storage_quota_bytes=int(2.5 * MB))
    library.pull("a")
    library.pull("b")
    time.sleep(0.01)
    library.resolve("a")  # touches a: b becomes the least recently used
    library.pull("c")
    assert sorted(m.id for m in library.store.models()) == ["a", "c"]


def test_quota_too_small_keeps_the_model_in_memory(server, make_library: LibraryFactory):
    library = _library_with_models(server, make_library, {"a": MB, "big": 3 * MB}, storage_quota_bytes=2 * MB)
    library.pull("a")
    with library.pin("a"):
        local = library.pull("big")
    assert local.in_memory
    assert local.main_file.read_bytes() == blob(3 * MB, 1)
    assert library.info("big").status == "in-memory"
    assert library.store.get("a") is not None, "a pinned model was evicted"
    library.delete("big")
    assert not local.main_file.exists()


def test_quota_too_small_without_memory_fallback_is_a_clear_error(server, make_library: LibraryFactory, home):
    library = _library_with_models(server, make_library, {"big": 3 * MB},
                                   storage_quota_bytes=MB, memory_fallback=False)
    with pytest.raises(InsufficientStorageError) as err:
        library.pull("big")
    assert err.value.code == SDKErrorCode.INSUFFICIENT_STORAGE
    assert isinstance(err.value, OSError)
    assert server.requests == [], "it downloaded a model that could never fit"
    assert library.store.get("big") is None


def test_a_pinned_model_cannot_be_deleted(server, make_library: LibraryFactory):
    library = _library_with_models(server, make_library, {"a": MB})
    library.pull("a")
    pin = library.pin("a")
    with pytest.raises(InvalidStateError):
        library.delete("a")
    pin.release()
    assert library.delete("a") == MB
    with pytest.raises(ModelNotFoundError):
        library.delete("a")


def test_clear_keeps_pinned_models(server, make_library: LibraryFactory):
    library = _library_with_models(server, make_library, {"a": MB, "b": MB})
    library.pull("a")
    library.pull("b")
    with library.pin("b"):
        assert library.clear() == ["a"]
    assert [m.id for m in library.store.models()] == ["b"]


def test_corrupt_manifest_is_rebuilt_without_losing_models(server, make_library: LibraryFactory, home: Path):
    library = _library_with_models(server, make_library, {"a": MB, "b": MB})
    library.pull("a")
    library.pull("b")
    (home / "manifest.json").write_text("{ this is not json")

    assert sorted(m.id for m in library.store.models()) == ["a", "b"]
    report = library.store.last_recovery
    assert report.corrupt_manifest_moved_to is not None and report.corrupt_manifest_moved_to.exists()
    assert json.loads((home / "manifest.json").read_text())["models"].keys() == {"a", "b"}
    assert library.verify("a").ok


def test_model_without_its_record_is_recovered_by_hashing(server, make_library: LibraryFactory, home: Path):
    library = _library_with_models(server, make_library, {"a": MB})
    library.pull("a")
    (home / "manifest.json").unlink()
    (home / "models" / "a" / RECORD_NAME).unlink()

    stored = library.store.get("a")

    assert stored is not None and stored.source == "recovered"
    assert library.verify("a").ok
    assert library.store.last_recovery.recovered == ["a"]


def test_verify_finds_a_damaged_file(server, make_library: LibraryFactory):
    library = _library_with_models(server, make_library, {"a": MB})
    local = library.pull("a")
    with open(local.main_file, "r+b") as fh:
        fh.write(b"\x00\x01")
    report = library.verify("a")
    assert not report.ok and report.mismatched == ("a.gguf",)


def test_a_model_directory_deleted_by_hand_leaves_the_index(server, make_library: LibraryFactory, home: Path):
    import shutil

    library = _library_with_models(server, make_library, {"a": MB})
    library.pull("a")
    shutil.rmtree(home / "models" / "a")
    assert library.store.get("a") is None
    assert library.store.last_recovery.dropped == ["a"]
    library.pull("a")  # and it can be pulled again
    assert library.verify("a").ok


# ------------------------------------------------------------ derived files
def _writer(data: bytes, calls: list[Path] | None = None):
    def make(path: Path) -> None:
        if calls is not None:
            calls.append(path)
        path.write_bytes(data)
    return make


def test_a_derived_file_is_made_once_and_counts_toward_the_model(server, make_library: LibraryFactory, home: Path):
    library = _library_with_models(server, make_library, {"a": MB})
    local = library.pull("a")
    calls: list[Path] = []
    path = library.derive(local, "a-f16.gguf", _writer(blob(MB // 2, 7), calls))
    assert path == home / "models" / "a" / "derived" / "a-f16.gguf"
    assert path.read_bytes() == blob(MB // 2, 7)
    assert library.derive(library.pull("a"), "a-f16.gguf", _writer(b"other", calls)) == path
    assert len(calls) == 1, "the derived file was made twice"
    assert not calls[0].is_relative_to(home / "models"), "it was written in place, not beside the store"
    stored = library.store.require("a")
    assert stored.size_bytes == MB + MB // 2
    assert library.storage_info().used_bytes == MB + MB // 2
    assert library.verify("a").ok and library.verify("a").checked_files == 2
    path.write_bytes(b"damaged")
    assert library.verify("a").mismatched == ("derived/a-f16.gguf",)
    record = json.loads((home / "models" / "a" / RECORD_NAME).read_text())
    assert [f["path"] for f in record["derived"]] == ["derived/a-f16.gguf"]


def test_a_derived_file_is_deleted_and_evicted_with_its_model(server, make_library: LibraryFactory, home: Path):
    library = _library_with_models(server, make_library, {"a": MB, "b": MB, "c": MB},
                                   storage_quota_bytes=int(3.2 * MB))
    library.derive(library.pull("a"), "big.gguf", _writer(blob(MB // 2, 1)))
    library.pull("b")
    plan = library.plan_eviction(MB, exclude=("c",))
    assert plan.model_ids == ["a"] and plan.freed_bytes == MB + MB // 2  # the derived file is part of a
    library.pull("c")
    assert not (home / "models" / "a").exists()
    assert sorted(m.id for m in library.store.models()) == ["b", "c"]
    library.derive(library.pull("b"), "x.bin", _writer(blob(1000, 2)))
    assert library.delete("b") == MB + 1000
    assert not (home / "models" / "b").exists()


def test_a_derived_file_is_pinned_with_its_model(server, make_library: LibraryFactory):
    library = _library_with_models(server, make_library, {"a": MB, "b": MB}, storage_quota_bytes=int(2.05 * MB))
    library.pull("a")
    with library.pin("a"):
        path = library.derive(library.pull("a"), "a.bin", _writer(blob(MB // 10, 3)))
        with pytest.raises(InvalidStateError):
            library.delete("a")
        plan = library.plan_eviction(MB, exclude=("b",))
        assert plan.model_ids == [] and not plan.fits  # a with its derived file leaves too little room
        assert library.pull("b").in_memory, "b should not fit beside the pinned a and its derived file"
    assert path.read_bytes() == blob(MB // 10, 3)
    assert library.store.require("a").size_bytes == MB + MB // 10


def test_a_derived_file_over_the_quota_is_refused_and_not_kept(server, make_library: LibraryFactory, home: Path):
    library = _library_with_models(server, make_library, {"a": MB}, storage_quota_bytes=int(1.5 * MB))
    local = library.pull("a")
    with pytest.raises(InsufficientStorageError):
        library.derive(local, "huge.gguf", _writer(blob(MB, 4)))
    assert not (home / "models" / "a" / "derived").exists()
    assert list((home / "staging").iterdir()) == []
    assert library.store.require("a").derived == ()
    assert library.store.require("a").size_bytes == MB


def test_a_model_outside_the_store_keeps_its_derived_files_in_a_store_entry(make_library: LibraryFactory,
                                                                             tmp_path: Path, home: Path):
    library = make_library()
    source = tmp_path / "my-bert"
    source.mkdir()
    (source / "config.json").write_text("{}")
    local = library.resolve(source)
    path = library.derive(local, "model-f16.gguf", _writer(b"GGUF converted"))
    assert path.is_relative_to(home / "models") and path.read_bytes() == b"GGUF converted"
    owners = [m for m in library.store.models() if m.source == "derived"]
    assert [(m.id.split(".")[0], m.size_bytes) for m in owners] == [("my-bert", len(b"GGUF converted"))]
    assert library.derive(library.resolve(source), "model-f16.gguf", _writer(b"again")) == path
    library.delete(owners[0].id)
    assert not path.exists()


def test_a_lost_record_is_rebuilt_with_the_derived_files_apart(server, make_library: LibraryFactory, home: Path):
    library = _library_with_models(server, make_library, {"a": MB})
    library.derive(library.pull("a"), "a.bin", _writer(b"derived bytes"))
    (home / "manifest.json").unlink()
    (home / "models" / "a" / RECORD_NAME).unlink()
    stored = library.store.require("a")
    assert stored.source == "recovered"
    assert [f.path for f in stored.files] == ["a.gguf"]
    assert [f.path for f in stored.derived] == ["derived/a.bin"]
    assert stored.size_bytes == MB + len(b"derived bytes")
    assert hash(library.pull("a")) == hash(library.pull("a"))  # LocalModel stays hashable with its roles


@pytest.mark.parametrize("bad_id", ["../../outside", "/tmp/pinned-from-outside", "a\x00b", "", ".hidden", 42, None])
def test_a_model_id_never_becomes_a_path_outside_the_store(make_library: LibraryFactory, home: Path, tmp_path: Path,
                                                           bad_id):
    library = make_library()
    before = {p for p in tmp_path.rglob("*")}
    for use in (library.delete, library.pin, library.store.is_pinned, library.store.pull_lock, library.store.get,
                library.store.touch, library.verify):
        with pytest.raises(InvalidInputError, match="invalid model id"):
            use(bad_id)
    assert {p for p in tmp_path.rglob("*")} - before <= {p for p in home.rglob("*")}  # nothing written elsewhere
    assert not Path("/tmp/pinned-from-outside.pin").exists()


def test_a_stored_file_the_user_cannot_read_is_a_storage_error(server, make_library: LibraryFactory, tmp_path: Path):
    """Run as an unprivileged user (root reads everything): verify names the file instead of an OSError."""
    import os
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user for the check")
    home = Path(tempfile.mkdtemp(prefix="runanywhere-unreadable-"))  # outside pytest's 0700 tmp tree
    try:
        home.chmod(0o755)
        library = _library_with_models(server, make_library, {"a": MB}, home=home)
        local = library.pull("a")
        for path in [home, *home.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        local.main_file.chmod(0o000)
        os.seteuid(65534)  # nobody
        try:
            with pytest.raises(StorageError) as caught:
                library.verify("a")
        finally:
            os.seteuid(0)
        assert caught.value.code is SDKErrorCode.STORAGE_ERROR and "permission denied" in caught.value.message
        assert str(local.main_file) in caught.value.message
    finally:
        import shutil

        shutil.rmtree(home, ignore_errors=True)
