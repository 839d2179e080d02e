"""Archive models: extracted safely into the store, hostile members rejected."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from runanywhere import ArchiveError, ConfigurationError, InsufficientStorageError, SDKErrorCode
from runanywhere.models.archives import extract_archive

from .conftest import LibraryFactory, blob, model_entry, sha

MB = 1 << 20


def _tar(members: list[tuple[str, bytes | None, str | None]], mode: str = "w:gz") -> bytes:
    """A tar archive of (name, data, symlink target) members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                assert data is not None
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _archive_entry(model_id: str, url: str, data: bytes, path: str | None = None, **file: object) -> dict:
    return {"id": model_id, "category": "speech-recognition", "format": "onnx", "engine": "sherpa-onnx",
            "files": [{"path": path or f"{model_id}.tar.gz", "url": url, "size": len(data), "sha256": sha(data),
                       "archive": True, **file}]}


def _zip(path: Path, zeros: int, head: bytes = b"") -> bytes:
    """A deflated zip of one file: ``head``, then ``zeros`` zero bytes (which shrink about 1000 times)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("model/weights.bin", "w") as out:
        out.write(head)
        for _ in range(zeros // MB):
            out.write(bytes(MB))
        out.write(bytes(zeros % MB))
    return path.read_bytes()


def test_a_tar_gz_model_is_extracted_into_its_directory(server, make_library: LibraryFactory):
    archive = _tar([("whisper-tiny/encoder.onnx", b"E" * 1000, None),
                    ("whisper-tiny/decoder.onnx", b"D" * 1000, None),
                    ("whisper-tiny/tokens.txt", b"a 0\nb 1\n", None)])
    library = make_library()
    library.register(_archive_entry("whisper", server.add("/w.tar.gz", archive), archive))

    local = library.pull("whisper")

    assert sorted(p.name for p in local.files) == ["decoder.onnx", "encoder.onnx", "tokens.txt"]
    assert (local.path / "tokens.txt").read_bytes() == b"a 0\nb 1\n"  # the single top directory is stripped
    assert not (local.path / "w.tar.gz").exists()
    assert library.verify("whisper").ok


def test_an_archive_member_with_dotdot_is_rejected(server, make_library: LibraryFactory, tmp_path: Path):
    archive = _tar([("model/ok.onnx", b"ok", None), ("../../evil.txt", b"pwned", None)])
    library = make_library()
    library.register(_archive_entry("bad", server.add("/bad.tar.gz", archive), archive))

    with pytest.raises(ArchiveError) as err:
        library.pull("bad")

    assert err.value.code == SDKErrorCode.ARCHIVE_INVALID
    assert "escapes" in str(err.value)
    assert library.store.get("bad") is None
    assert not (library.store.staging_dir / "bad").exists()
    assert not list(tmp_path.rglob("evil.txt"))


@pytest.mark.parametrize("members", [
    [("/etc/absolute.txt", b"x", None)],
    [("link", None, "/etc/passwd")],
    [("link", None, "../outside")],
    [("d/link", None, "../../outside")],
    # a link that looks inside on paper but leaves through another link
    [("s", None, "."), ("x", None, "s/.."), ("x/evil", b"x", None)],
])
def test_hostile_archives_are_rejected_before_escaping(tmp_path: Path, members):
    archive = tmp_path / "a.tar"
    archive.write_bytes(_tar(members, mode="w"))
    dest = tmp_path / "out" / "dest"
    dest.mkdir(parents=True)
    with pytest.raises(ArchiveError):
        extract_archive(archive, dest)
    assert not (tmp_path / "out" / "evil").exists()
    assert not (tmp_path / "outside").exists()


def test_zip_archives_and_inner_links_work(tmp_path: Path):
    archive = tmp_path / "m.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("voice/model.onnx", b"M" * 100)
        zf.writestr("voice/espeak-ng-data/phontab", b"P")
    dest = tmp_path / "dest"
    dest.mkdir()
    extracted = sorted(extract_archive(archive, dest), key=lambda f: f.path)
    assert [(f.path, f.size, f.sha256) for f in extracted] == [  # hashed as they were written
        ("espeak-ng-data/phontab", 1, sha(b"P")), ("model.onnx", 100, sha(b"M" * 100))]
    inner = tmp_path / "inner.tar.bz2"
    inner.write_bytes(_tar([("a/real.txt", b"r", None), ("a/alias.txt", None, "real.txt")], mode="w:bz2"))
    dest2 = tmp_path / "dest2"
    dest2.mkdir()
    extract_archive(inner, dest2)
    assert (dest2 / "alias.txt").read_bytes() == b"r"


def test_not_an_archive_and_a_bomb_are_clear_errors(tmp_path: Path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not an archive")
    with pytest.raises(ArchiveError, match="not a tar or zip"):
        extract_archive(junk, tmp_path)
    big = tmp_path / "big.tar.gz"
    big.write_bytes(_tar([("zeros.bin", b"\0" * 100_000, None)]))
    with pytest.raises(ArchiveError, match="beyond"):
        extract_archive(big, tmp_path, max_bytes=10_000)


def test_a_zip_bomb_is_refused_and_nothing_of_it_remains(server, make_library: LibraryFactory, home: Path,
                                                         tmp_path: Path):
    bomb = _zip(tmp_path / "bomb.zip", 64 * MB)  # about 64 KB that would become 64 MB
    library = make_library(storage_quota_bytes=100 * MB)
    library.register(_archive_entry("bomb", server.add("/bomb.zip", bomb), bomb, path="bomb.zip"))

    with pytest.raises(ArchiveError, match=r"bomb\.zip expands beyond 200 times its own \d+ bytes") as err:
        library.pull("bomb")

    assert err.value.code == SDKErrorCode.ARCHIVE_INVALID
    assert library.store.models() == []
    assert not (home / "staging" / "bomb").exists() and not (home / "models" / "bomb").exists()
    assert not list(home.rglob("weights.bin"))


def test_an_archive_that_outgrows_the_quota_is_refused_and_nothing_remains(server, make_library: LibraryFactory,
                                                                          home: Path, tmp_path: Path):
    archive = _zip(tmp_path / "big.zip", 20 * MB, head=os.urandom(MB))  # 1 MB packed, 21 MB unpacked: ratio 21
    library = make_library(storage_quota_bytes=8 * MB, memory_fallback=False)
    library.register(_archive_entry("big", server.add("/big.zip", archive), archive, path="big.zip"))

    with pytest.raises(InsufficientStorageError, match=r"big\.zip expands beyond the room left for it") as err:
        library.pull("big")

    assert err.value.code == SDKErrorCode.INSUFFICIENT_STORAGE
    assert library.store.models() == [] and not (home / "staging" / "big").exists()
    assert not list(home.rglob("weights.bin"))


def test_an_archive_larger_than_its_declared_unpacked_size_is_refused(server, make_library: LibraryFactory,
                                                                     home: Path):
    archive = _tar([("m/model.onnx", blob(5000, 1), None)])
    library = make_library()
    library.register(_archive_entry("liar", server.add("/liar.tar.gz", archive), archive, unpacked_size=1000))

    with pytest.raises(ArchiveError, match="expands beyond its declared unpacked size"):
        library.pull("liar")

    assert library.store.models() == [] and not list(home.rglob("model.onnx"))


def test_a_declared_unpacked_size_makes_room_before_the_download(server, make_library: LibraryFactory,
                                                                 tmp_path: Path):
    old = blob(4 * MB, 2)
    library = make_library(storage_quota_bytes=10 * MB)
    library.register(model_entry("old", {"old.gguf": (server.add("/old.gguf", old), old)}))
    library.pull("old")
    archive = _zip(tmp_path / "new.zip", 7 * MB, head=os.urandom(MB))
    library.register(_archive_entry("new", server.add("/new.zip", archive), archive, path="new.zip",
                                    unpacked_size=8 * MB))

    local = library.pull("new")  # 4 MB stored + 8 MB unpacked > 10 MB: the old model is evicted first

    assert [m.id for m in library.store.models()] == ["new"]
    assert (local.path / "weights.bin").stat().st_size == 8 * MB
    assert library.verify("new").ok


def test_extraction_stops_at_its_limit_and_leaves_the_destination_as_it_was(tmp_path: Path):
    bomb = tmp_path / "bomb.zip"
    _zip(bomb, 16 * MB, head=b"weights")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("an earlier file")

    with pytest.raises(ArchiveError, match="refused as an archive bomb; if the archive is genuine, raise"):
        extract_archive(bomb, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["keep.txt"]

    assert [f.size for f in extract_archive(bomb, dest, max_ratio=2000)] == [16 * MB + 7]  # an option, not a rule


@pytest.mark.parametrize(("file", "problem"), [
    ({"path": "m.gguf", "unpacked_size": 10}, "only an archive has an unpacked_size"),
    ({"path": "m.tar.gz", "archive": True, "unpacked_size": -1}, "unpacked_size must be a whole number"),
    ({"path": "m.tar.gz", "archive": True, "unpacked_size": "10MB"}, "unpacked_size must be a whole number"),
])
def test_a_catalog_unpacked_size_must_be_bytes_of_an_archive(make_library: LibraryFactory, file: dict, problem: str):
    with pytest.raises(ConfigurationError, match=problem):
        make_library().register({"id": "m", "category": "language", "format": "gguf", "engine": "llamacpp",
                                 "files": [file]})
