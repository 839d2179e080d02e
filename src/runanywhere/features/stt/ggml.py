"""whisper.cpp's model for a catalog entry that ships CTranslate2 Whisper files: derived once, kept in the store.

No registry ships a ggml Whisper model, so a ``whisper.cpp`` catalog entry lists the CTranslate2 package's
``model.bin`` and ``tokenizer.json``; on first load :func:`~runanywhere.models.whisper_ggml.convert_whisper_to_ggml`
writes ``derived/ggml-model.bin`` next to them (about a second), and later loads reuse it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ...backends.whispercpp import is_ggml
from ...core.cancel import CancelToken
from ...core.engines import WEIGHTS, find_engine
from ...models.manager import LocalModel, ModelLibrary

DERIVED_NAME = "ggml-model.bin"


def needs_ggml(local: LocalModel) -> bool:
    """True for a whisper.cpp catalog model whose weights are not a ggml file yet."""
    if local.entry is None or find_engine(local.entry.engine) is not find_engine("whisper.cpp"):
        return False
    return local.has_role(WEIGHTS) and not is_ggml(local.file(WEIGHTS))


def with_ggml_weights(models: ModelLibrary, local: LocalModel, cancel: CancelToken | None) -> LocalModel:
    """``local`` with its ``weights`` role on the ggml file derived from its CTranslate2 files."""
    directory = local.file(WEIGHTS).parent

    def convert(path: Path) -> None:
        from ...models.whisper_ggml import convert_whisper_to_ggml

        convert_whisper_to_ggml(directory, path, cancel=cancel)

    ggml = models.derive(local, DERIVED_NAME, convert, cancel=cancel)
    return replace(local, roles={**local.roles, WEIGHTS: ggml})
