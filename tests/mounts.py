"""Disks on a bad day for tests: a read-only bind mount and a small tmpfs, always unmounted afterwards.

Mounting needs root with CAP_SYS_ADMIN; where it is not allowed the test skips and says so.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


class Mounts:
    """Mounts made for one test; every one is unmounted at teardown, whatever happened."""

    def __init__(self) -> None:
        self.made: list[Path] = []

    def read_only(self, path: Path) -> Path:
        """``path`` from now on read-only (a read-only bind mount of itself)."""
        self._mount(path, "--bind", str(path), str(path))
        self._run("mount", "-o", "remount,ro,bind", str(path))
        return path

    def tmpfs(self, path: Path, size: int, *, inodes: int = 1000) -> Path:
        """A fresh tmpfs of ``size`` bytes and ``inodes`` files at ``path`` (a small, soon full disk)."""
        path.mkdir(parents=True, exist_ok=True)
        self._mount(path, "-t", "tmpfs", "-o", f"size={size},nr_inodes={inodes}", "tmpfs", str(path))
        return path

    def _mount(self, path: Path, *args: str) -> None:
        result = subprocess.run(["mount", *args], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount here (needs root with CAP_SYS_ADMIN): {result.stderr.strip()}")
        self.made.append(path)

    @staticmethod
    def _run(*command: str) -> None:
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"{' '.join(command)} failed (needs root with CAP_SYS_ADMIN): {result.stderr.strip()}")

    def unmount_all(self) -> None:
        for path in reversed(self.made):
            if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(path)], check=True)
        self.made.clear()
