"""The stored sample of real-world JSON schemas (tests/data/schemas/): load a split, draw a seeded sample.

Tests and ``bench/structured.py`` read the sample through ``load``; ``tests/schemasample.py``
writes it with ``draw``, which is also how a test proves the stored sample is the seeded one.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

DATA = Path(__file__).resolve().parent / "data" / "schemas"
MANIFEST = DATA / "manifest.json"
SPLITS = ("github_easy", "github_medium")


@dataclass(frozen=True)
class Case:
    """One real-world schema: its id in the source data set, the schema itself and the split it came from."""

    id: str
    schema: Any
    split: str


def manifest() -> dict[str, Any]:
    """The sample's provenance: source, licence, seed, sizes, eligible and excluded ids per split."""
    data: dict[str, Any] = json.loads(MANIFEST.read_text())
    return data


def path(split: str) -> Path:
    """The JSON-lines file that holds one split (one ``{"id": ..., "schema": ...}`` object a line)."""
    if split not in SPLITS:
        raise KeyError(f"unknown split {split!r}; the sample has {', '.join(SPLITS)}")
    return DATA / f"{split}.jsonl"


def load(split: str) -> list[Case]:
    """Every schema of one split, in the stored (seeded draw) order."""
    with path(split).open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [Case(id=row["id"], schema=row["schema"], split=split) for row in rows]


def load_all() -> list[Case]:
    """Every split, easy first."""
    return [case for split in SPLITS for case in load(split)]


def validator_class(schema: Any) -> type[Validator]:
    """The jsonschema validator of the schema's declared ``$schema`` draft (2020-12 when it names none)."""
    from jsonschema.validators import Draft202012Validator, validator_for

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # an unknown $schema URI: the default, with a warning
        cls: type[Validator] = validator_for(schema, default=Draft202012Validator)
    return cls


def draw(ids: Iterable[str], seed: int, size: int) -> list[str]:
    """A seeded sample of ``size`` ids: the ids ranked by sha256 of ``"<seed>:<id>"`` (stable across Python versions)."""
    ranked = sorted(set(ids), key=lambda item: hashlib.sha256(f"{seed}:{item}".encode()).hexdigest())
    return ranked[:size]
