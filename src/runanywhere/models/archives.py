"""Safe, bounded extraction of model archives (tar.gz, tar.bz2, tar.xz, tar, zip).

Every member is checked before anything is written: absolute paths, ``..``
components, links that point outside the destination, and device files are
rejected with :class:`ArchiveError`. When every member sits under one top-level
directory (``sherpa-onnx-whisper-tiny.en/...``) that directory is stripped, so
the model's files land directly in its own directory.

Nothing expands without limit: the bytes actually written (the headers are
checked too, never trusted alone) stop at the tightest of the archive's declared
unpacked size, the room left at the destination (quota, free disk) and
``max_ratio`` times the archive's own size. Members land in a scratch directory
and move into place only when all of them fit, so nothing of a refused archive
remains. Files are hashed as they are written.
"""

from __future__ import annotations

import errno
import hashlib
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..core.config import ARCHIVE_MAX_RATIO
from ..core.errors import ArchiveError, InsufficientStorageError, SDKError
from .store import StoredFile

CHUNK = 1 << 20
MAX_MEMBERS = 100_000  # more entries than any model archive has: refused before reading them all
RATIO_FLOOR_BYTES = 1 << 20  # an archive may always expand to 1 MiB (a tiny archive of text compresses well)
_MAX_LINK = 4096  # the longest symlink target read from a zip


@dataclass(frozen=True)
class _Cap:
    """One limit on what an archive may expand to, with the error it raises and what to do."""

    limit: int
    error: type[SDKError]
    what: str
    hint: str

    def check(self, archive: str, total: int) -> None:
        if total > self.limit:
            raise self.error(f"{archive} expands beyond {self.what} ({self.limit} bytes); {self.hint}",
                             details={"archive": archive, "limit_bytes": self.limit})


def _tightest(archive: Path, max_bytes: int | None, room_bytes: int | None, max_ratio: float) -> _Cap:
    """The smallest of the limits on what ``archive`` may expand to."""
    packed = archive.stat().st_size
    caps = [_Cap(max(int(packed * max_ratio), RATIO_FLOOR_BYTES), ArchiveError,
                 f"{max_ratio:g} times its own {packed} bytes",
                 "refused as an archive bomb; if the archive is genuine, raise archive_max_ratio")]
    if max_bytes is not None:
        caps.append(_Cap(max_bytes, ArchiveError, "its declared unpacked size",
                         "it is not the archive its catalog entry describes: fix the entry's unpacked_size "
                         "or the file"))
    if room_bytes is not None:
        caps.append(_Cap(max(room_bytes, 0), InsufficientStorageError,
                         "the room left for it (the store's quota and the free disk)",
                         "free space or raise the quota (declaring the entry's unpacked_size lets a pull "
                         "evict older models to make room)"))
    return min(caps, key=lambda cap: cap.limit)


@dataclass(frozen=True)
class _Member:
    name: str  # normalised posix path inside the archive
    kind: str  # "file", "dir", "symlink" or "hardlink"
    link: str = ""
    mode: int = 0o644
    ref: object = None  # the TarInfo / ZipInfo to read a file's bytes from
    size: int = 0  # what the header says a file holds


def _normalise(name: str) -> str:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"archive member has an absolute path: {name!r}")
    clean = posixpath.normpath(name.replace("\\", "/"))
    if clean == ".." or clean.startswith("../") or "/../" in f"/{clean}/":
        raise ArchiveError(f"archive member escapes the destination: {name!r}")
    return "" if clean == "." else clean


def _check_link(name: str, link: str) -> None:
    """Reject a symlink at ``name`` (relative to the destination) that leaves it."""
    if posixpath.isabs(link):
        raise ArchiveError(f"archive link {name!r} points to an absolute path {link!r}")
    target = posixpath.normpath(posixpath.join(posixpath.dirname(name), link))
    if target == ".." or target.startswith("../"):
        raise ArchiveError(f"archive link {name!r} points outside the destination: {link!r}")


def _too_many(count: int) -> None:
    if count > MAX_MEMBERS:
        raise ArchiveError(f"the archive has more than {MAX_MEMBERS} entries; refused (no model has that many)")


def _tar_members(tar: tarfile.TarFile) -> list[_Member]:
    members = []
    for count, info in enumerate(tar, 1):
        _too_many(count)
        name = _normalise(info.name)
        if not name:
            continue
        if info.isdir():
            members.append(_Member(name, "dir"))
        elif info.isfile():
            members.append(_Member(name, "file", mode=info.mode, ref=info, size=info.size))
        elif info.issym():
            members.append(_Member(name, "symlink", info.linkname))
        elif info.islnk():
            # A hard link is extracted as a copy of its (already checked) target.
            members.append(_Member(name, "hardlink", _normalise(info.linkname)))
        else:
            raise ArchiveError(f"archive member {info.name!r} is a device or special file")
    return members


def _zip_members(zf: zipfile.ZipFile) -> list[_Member]:
    _too_many(len(zf.infolist()))
    members = []
    for info in zf.infolist():
        name = _normalise(info.filename)
        if not name:
            continue
        mode = info.external_attr >> 16
        if info.is_dir():
            members.append(_Member(name, "dir"))
        elif stat.S_ISLNK(mode):
            with zf.open(info) as src:
                link = src.read(_MAX_LINK + 1)
            if len(link) > _MAX_LINK:
                raise ArchiveError(f"archive link {name!r} has a target longer than {_MAX_LINK} bytes")
            members.append(_Member(name, "symlink", link.decode("utf-8")))
        else:
            members.append(_Member(name, "file", mode=mode or 0o644, ref=info, size=info.file_size))
    return members


def _common_root(members: list[_Member]) -> str:
    """``"top/"`` when every member is the directory ``top`` or inside it, else ``""``."""
    top = members[0].name.split("/", 1)[0] if members else ""
    inside = [m for m in members if m.name.startswith(top + "/")]
    rest = [m for m in members if not m.name.startswith(top + "/")]
    if inside and all(m.name == top and m.kind == "dir" for m in rest):
        return top + "/"
    return ""


def extract_archive(archive: Path, dest: Path, *, max_bytes: int | None = None, room_bytes: int | None = None,
                    max_ratio: float = ARCHIVE_MAX_RATIO) -> list[StoredFile]:
    """Extract ``archive`` into the existing directory ``dest``; returns the regular files written (hashed).

    ``max_bytes`` is its declared unpacked size, ``room_bytes`` what ``dest`` may still hold; passing
    either, or ``max_ratio`` times the archive's size, stops at once and leaves nothing behind.
    """
    cap = _tightest(archive, max_bytes, room_bytes, max_ratio)
    scratch = dest / f".extracting-{archive.name}"
    shutil.rmtree(scratch, ignore_errors=True)  # left by a process killed mid-extraction
    scratch.mkdir()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                files, entries = _extract(_zip_members(zf), zf.open, scratch, cap, archive.name)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive, "r:*") as tar:
                files, entries = _extract(_tar_members(tar), tar.extractfile, scratch, cap, archive.name)
        else:
            raise ArchiveError(f"{archive.name} is not a tar or zip archive")
        _move_into(scratch, dest, entries)
        return files
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
        if isinstance(exc, SDKError):
            raise
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InsufficientStorageError(f"no room to extract {archive.name} into {dest}: {exc}; free space "
                                           "or raise the quota") from exc
        raise ArchiveError(f"cannot extract archive {archive.name}: {exc}") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _inside(base: Path, path: Path) -> bool:
    return path == base or base in path.parents


def _extract(
    members: list[_Member], open_member: Callable[[Any], IO[bytes] | None], dest: Path, cap: _Cap, archive: str
) -> tuple[list[StoredFile], list[str]]:
    """Write ``members`` under ``dest``; returns the regular files and every entry written, in order."""
    root = _common_root(members)
    for member in members:
        if member.kind == "symlink":
            _check_link(member.name[len(root):], member.link)
    by_name = {m.name: m for m in members}
    declared = sum(by_name[m.link].size if m.kind == "hardlink" and m.link in by_name else m.size for m in members)
    cap.check(archive, declared)  # the headers alone already say too much
    files: list[StoredFile] = []
    entries: list[str] = []
    total = 0
    base = dest.resolve()
    for member in members:
        relative = member.name[len(root):] if root else member.name
        if not relative:
            continue
        target = dest / relative
        # Never write through a link laid down by an earlier member.
        if target.is_symlink() or not _inside(base, target.parent.resolve()):
            raise ArchiveError(f"archive member {member.name!r} would be written through a link")
        entries.append(relative)
        if member.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if member.kind == "symlink":
            os.symlink(member.link, target)
            if not _inside(base, target.resolve()):
                raise ArchiveError(f"archive link {member.name!r} resolves outside the destination")
            continue
        source = by_name.get(member.link) if member.kind == "hardlink" else member
        if source is None or source.kind != "file":
            raise ArchiveError(f"archive hard link {member.name!r} does not point to a file in the archive")
        src = open_member(source.ref)
        if src is None:
            raise ArchiveError(f"cannot read {member.name!r} from the archive")
        digest, size = hashlib.sha256(), 0
        with src, open(target, "wb") as out:
            while block := src.read(CHUNK):
                total += len(block)
                cap.check(archive, total)  # counted as written, before the block reaches the disk
                out.write(block)
                digest.update(block)
                size += len(block)
        os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
        files.append(StoredFile(relative, size, digest.hexdigest()))
    return files, entries


def _move_into(scratch: Path, dest: Path, entries: list[str]) -> None:
    """Move extracted ``entries`` from ``scratch`` into ``dest``, keeping their layout."""
    base = dest.resolve()
    for relative in entries:
        source, target = scratch / relative, dest / relative
        if source.is_dir() and not source.is_symlink():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if not _inside(base, target.parent.resolve()):
            raise ArchiveError(f"archive member {relative!r} would be written through a link in {dest}")
        os.replace(source, target)
