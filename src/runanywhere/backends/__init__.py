"""Inference engines: the only package that imports one.

Engines are optional extras. :func:`require_engine` imports one on first use and
turns a missing or broken install into a :class:`BackendNotAvailableError` that
says what to ``pip install``. (Listing what is installed, without importing,
is ``runanywhere.core.capabilities.engine_versions``.)
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from ..core.capabilities import ENGINE_MODULES
from ..core.errors import BackendNotAvailableError


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
