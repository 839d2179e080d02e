"""The tensor types of a GGUF file, read from its header (what decides how a batched model loads)."""

from __future__ import annotations

from pathlib import Path

from runanywhere.backends.gguf_types import tensor_types
from runanywhere.models.manager import ModelLibrary

from .conftest import QWEN
from .tinymodels import write_shaped_llm

F32, Q4_0, Q5_0, Q8_0, Q4_K, Q6_K = 0, 2, 6, 8, 12, 14


def test_the_types_of_a_packaged_k_quant_model(packaged_models: ModelLibrary) -> None:
    assert tensor_types(packaged_models.pull(QWEN).main_file) == {F32, Q5_0, Q8_0, Q4_K, Q6_K}


def test_the_types_of_a_written_model(tmp_path: Path) -> None:
    path = write_shaped_llm(tmp_path / "q4_0.gguf", shape="qwen2.5-0.5b", qtype="q4_0")
    assert Q4_0 in tensor_types(path) <= {F32, Q4_0, Q8_0}


def test_a_file_that_is_not_a_whole_gguf_header_has_no_types(tmp_path: Path) -> None:
    whole = write_shaped_llm(tmp_path / "whole.gguf", shape="qwen2.5-0.5b", qtype="q4_0").read_bytes()
    for name, data in [("empty", b""), ("text", b"hello world\n" * 100), ("cut", whole[:5000]),
                       ("huge-count", whole[:8] + (1 << 62).to_bytes(8, "little") + whole[16:5000])]:
        (tmp_path / name).write_bytes(data)
        assert tensor_types(tmp_path / name) == frozenset(), name
    assert tensor_types(tmp_path / "missing.gguf") == frozenset()
