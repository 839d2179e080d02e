"""Archive models: extracted safely into the store, hostile members rejected."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from runanywhere import ArchiveError, SDKErrorCode
from runanywhere.models.archives import extract_archive

from .conftest import LibraryFactory, sha


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


def _archive_entry(model_id: str, url: str, data: bytes) -> dict:
    return {"id": model_id, "category": "speech-recognition", "format": "onnx", "engine": "sherpa-onnx",
            "files": [{"path": f"{model_id}.tar.gz", "url": url, "size": len(data), "sha256": sha(data),
                       "archive": True}]}


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
    assert sorted(extract_archive(archive, dest)) == ["espeak-ng-data/phontab", "model.onnx"]
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
