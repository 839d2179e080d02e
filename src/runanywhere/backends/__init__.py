"""Inference engines: the only package that imports one.

Engines are optional extras. :func:`require_engine` imports one on first use and
turns a missing or broken install into a :class:`BackendNotAvailableError` that
says what to ``pip install``, from the engine table (:mod:`runanywhere.core.engines`).
Each capability's engine protocol is in :mod:`.base`; :mod:`.registry` builds
the engine a catalog entry names.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from ..core.engines import engine_of_module
from ..core.errors import BackendNotAvailableError


def require_engine(module: str, extra: str | None = None) -> ModuleType:
    """Import an engine module, or raise an error naming the pip extra that provides it.

    ``extra`` defaults to the engine table's; give it for a module the table does not list.
    """
    try:
        return importlib.import_module(module)
    except (ImportError, OSError, RuntimeError) as exc:
        # OSError/RuntimeError: engines raise these when their native library fails to load.
        root = module.partition(".")[0]
        known = engine_of_module(module)
        name = known[1].distribution if known else root
        extra = extra or (known[0].extra if known else None)
        hint = f"pip install 'runanywhere[{extra}]'" if extra else f"pip install {name}"
        if importlib.util.find_spec(root) is None:
            message = f"{name} is not installed: {hint}"
        else:
            message = f"{name} is installed but failed to load ({exc}); reinstall it: {hint}"
        raise BackendNotAvailableError(message, details={"module": module, "extra": extra}) from exc
