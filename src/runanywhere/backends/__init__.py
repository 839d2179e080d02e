"""Inference engines: the only package that imports one.

Engines are optional extras. :func:`engine_versions` lists what is installed
without importing anything (importing ``llama_cpp`` alone takes a noticeable
fraction of a second); :func:`require_engine` imports one on first use and turns
a missing or broken install into a :class:`BackendNotAvailableError` that says
what to ``pip install``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from types import ModuleType

from ..core.errors import BackendNotAvailableError

ENGINE_MODULES: dict[str, str] = {
    "llama-cpp-python": "llama_cpp",
    "faster-whisper": "faster_whisper",
    "sherpa-onnx": "sherpa_onnx",
    "piper-tts": "piper",
    "pywhispercpp": "pywhispercpp",
    "onnxruntime": "onnxruntime",
}
"""Each known engine's distribution (what pip installs) and top-level module (what Python imports)."""


def engine_versions() -> dict[str, str | None]:
    """Installed version of every known engine, or None; nothing is imported."""
    return {name: _installed_version(name, module) for name, module in ENGINE_MODULES.items()}


def _installed_version(distribution: str, module: str) -> str | None:
    # Both checks: metadata can outlive a deleted package, and a module can be
    # importable from a source tree without any distribution metadata.
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    return version if importlib.util.find_spec(module) is not None else None


def require_engine(module: str, extra: str) -> ModuleType:
    """Import an engine module, or raise an error naming the pip extra that provides it."""
    try:
        return importlib.import_module(module)
    except (ImportError, OSError, RuntimeError) as exc:
        # OSError/RuntimeError: engines raise these when their native library fails to load.
        root = module.partition(".")[0]
        name = next((dist for dist, top in ENGINE_MODULES.items() if top == root), root)
        hint = f"pip install 'runanywhere[{extra}]'"
        if importlib.util.find_spec(root) is None:
            message = f"{name} is not installed: {hint}"
        else:
            message = f"{name} is installed but failed to load ({exc}); reinstall it: {hint}"
        raise BackendNotAvailableError(message, details={"module": module, "extra": extra}) from exc
