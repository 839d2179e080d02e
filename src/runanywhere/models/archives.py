"""Safe extraction of model archives (tar.gz, tar.bz2, tar.xz, tar, zip).

Every member is checked before anything is written: absolute paths, ``..``
components, links that point outside the destination, and device files are
rejected with :class:`ArchiveError`. When every member sits under one top-level
directory (``sherpa-onnx-whisper-tiny.en/...``) that directory is stripped, so
the model's files land directly in its own directory.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..core.errors import ArchiveError


@dataclass(frozen=True)
class _Member:
    name: str  # normalised posix path inside the archive
    kind: str  # "file", "dir", "symlink" or "hardlink"
    link: str = ""
    mode: int = 0o644
    ref: object = None  # the TarInfo / ZipInfo to read a file's bytes from


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


def _tar_members(tar: tarfile.TarFile) -> list[_Member]:
    members = []
    for info in tar.getmembers():
        name = _normalise(info.name)
        if not name:
            continue
        if info.isdir():
            members.append(_Member(name, "dir"))
        elif info.isfile():
            members.append(_Member(name, "file", mode=info.mode, ref=info))
        elif info.issym():
            members.append(_Member(name, "symlink", info.linkname))
        elif info.islnk():
            # A hard link is extracted as a copy of its (already checked) target.
            members.append(_Member(name, "hardlink", _normalise(info.linkname)))
        else:
            raise ArchiveError(f"archive member {info.name!r} is a device or special file")
    return members


def _zip_members(zf: zipfile.ZipFile) -> list[_Member]:
    members = []
    for info in zf.infolist():
        name = _normalise(info.filename)
        if not name:
            continue
        mode = info.external_attr >> 16
        if info.is_dir():
            members.append(_Member(name, "dir"))
        elif stat.S_ISLNK(mode):
            members.append(_Member(name, "symlink", zf.read(info).decode("utf-8")))
        else:
            members.append(_Member(name, "file", mode=mode or 0o644, ref=info))
    return members


def _common_root(members: list[_Member]) -> str:
    """``"top/"`` when every member is the directory ``top`` or inside it, else ``""``."""
    top = members[0].name.split("/", 1)[0] if members else ""
    inside = [m for m in members if m.name.startswith(top + "/")]
    rest = [m for m in members if not m.name.startswith(top + "/")]
    if inside and all(m.name == top and m.kind == "dir" for m in rest):
        return top + "/"
    return ""


def extract_archive(archive: Path, dest: Path, *, max_bytes: int | None = None) -> list[str]:
    """Extract ``archive`` into the existing directory ``dest``; returns the files written.

    ``max_bytes`` bounds the total uncompressed size (a guard against archive bombs).
    """
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                return _extract(_zip_members(zf), zf.open, dest, max_bytes)
        if tarfile.is_tarfile(archive):
            with tarfile.open(archive, "r:*") as tar:
                return _extract(_tar_members(tar), tar.extractfile, dest, max_bytes)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        if isinstance(exc, ArchiveError):
            raise
        raise ArchiveError(f"cannot read archive {archive.name}: {exc}") from exc
    raise ArchiveError(f"{archive.name} is not a tar or zip archive")


def _inside(base: Path, path: Path) -> bool:
    return path == base or base in path.parents


def _extract(
    members: list[_Member], open_member: Callable[[Any], IO[bytes] | None], dest: Path, max_bytes: int | None
) -> list[str]:
    root = _common_root(members)
    for member in members:
        if member.kind == "symlink":
            _check_link(member.name[len(root):], member.link)
    written: list[str] = []
    total = 0
    by_name = {m.name: m for m in members}
    base = dest.resolve()
    for member in members:
        relative = member.name[len(root):] if root else member.name
        if not relative:
            continue
        target = dest / relative
        # Never write through a link laid down by an earlier member.
        if target.is_symlink() or not _inside(base, target.parent.resolve()):
            raise ArchiveError(f"archive member {member.name!r} would be written through a link")
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
        with src, open(target, "wb") as out:
            while block := src.read(1 << 20):
                total += len(block)
                if max_bytes is not None and total > max_bytes:
                    raise ArchiveError(f"archive expands beyond the allowed {max_bytes} bytes")
                out.write(block)
        os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
        written.append(relative)
    return written
