"""The files a sherpa-onnx Moonshine model is handed: its graphs, a derived ``tokens.txt`` and a voice detector.

Moonshine ships ``tokenizer.bin``; sherpa-onnx reads ``tokens.txt``, which is
derived from it once and kept in the store with the model (a derived file).
A model directory given by path has no roles: Moonshine's own file names give
them. The detector that cuts long audio into utterances is the model's ``vad``
file, or else the catalog's default voice-activity model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ...backends.sherpa_stt import write_tokens_txt
from ...core.cancel import CancelToken
from ...core.engines import WEIGHTS
from ...models.catalog import ModelCategory
from ...models.manager import LocalModel, ModelLibrary

_MOONSHINE_NAMES = {"encoder": "encoder_model.ort", "decoder": "decoder_model_merged.ort",
                    "tokenizer": "tokenizer.bin"}


def sherpa_model_files(models: ModelLibrary, local: LocalModel, cancel: CancelToken | None) -> LocalModel:
    """``local`` with every role a sherpa-onnx Moonshine model needs (``tokens`` and ``vad`` added)."""
    roles = dict(local.roles)
    if local.path.is_dir():
        for role, name in _MOONSHINE_NAMES.items():
            if role not in roles and (local.path / name).is_file():
                roles[role] = local.path / name
    if "tokens" not in roles and "tokenizer" in roles:
        tokenizer = roles["tokenizer"]

        def derive(path: Path) -> None:
            write_tokens_txt(tokenizer, path)

        roles["tokens"] = models.derive(local, "tokens.txt", derive, cancel=cancel)
    if "vad" not in roles and "encoder" in roles:
        roles["vad"] = models.resolve(models.catalog.default(ModelCategory.AUDIO).id, cancel=cancel).file(WEIGHTS)
    return replace(local, roles=roles)
