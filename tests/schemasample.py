"""Write the real-world schema sample (tests/data/schemas/) from a checkout of JSONSchemaBench's data.

Run once by hand, never by the tests:
``python -m tests.schemasample /path/to/jsonschemabench/data --commit <source commit>``.
Per split it lists the eligible schemas (at most ``MAX_BYTES`` on disk, a JSON object that its
declared draft's meta-schema accepts), draws the seeded sample (``schemacorpus.draw``), writes one
JSON-lines file per split and the manifest that lets tests re-draw and compare.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

from jsonschema.exceptions import SchemaError

from .schemacorpus import DATA, MANIFEST, draw, validator_class

SEED = 17
MAX_BYTES = 100_000
SOURCES = {"github_easy": ("Github_easy", 200), "github_medium": ("Github_medium", 100)}
"""Our split name -> (the source directory, how many schemas the sample keeps)."""


def exclusion(raw: bytes) -> str | None:
    """Why a source file cannot be in the sample, or None when it is eligible."""
    if len(raw) > MAX_BYTES:
        return f"larger than {MAX_BYTES} bytes ({len(raw)})"
    schema = json.loads(raw)
    if not isinstance(schema, dict):
        return "not a JSON object"
    cls = validator_class(schema)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            cls.check_schema(schema)
    except SchemaError as error:
        where = "/".join(str(part) for part in error.absolute_path)
        return f"its meta-schema ({cls.__name__}) rejects it: {error.validator!r} fails at /{where}"
    return None


def build_split(source: Path, name: str, size: int) -> dict[str, Any]:
    """Write ``<split>.jsonl`` and return the split's manifest entry."""
    directory, _ = SOURCES[name]
    eligible: list[str] = []
    excluded: dict[str, str] = {}
    files = {file.stem: file for file in sorted((source / directory).glob("*.json"))}
    for stem, file in files.items():
        reason = exclusion(file.read_bytes())
        if reason is None:
            eligible.append(stem)
        else:
            excluded[stem] = reason
    chosen = draw(eligible, SEED, size)
    lines = [json.dumps({"id": stem, "schema": json.loads(files[stem].read_bytes())}, ensure_ascii=False,
                        separators=(",", ":")) for stem in chosen]
    text = "\n".join(lines) + "\n"
    (DATA / f"{name}.jsonl").write_text(text, encoding="utf-8")
    return {"source_directory": directory, "source_files": len(files), "size": len(chosen), "ids": chosen,
            "sha256": hashlib.sha256(text.encode()).hexdigest(), "eligible": eligible, "excluded": excluded}


def main() -> None:
    parser = argparse.ArgumentParser(description="write the seeded JSONSchemaBench sample")
    parser.add_argument("source", type=Path, help="the data/ directory of a JSONSchemaBench checkout")
    parser.add_argument("--commit", required=True, help="the source checkout's commit, recorded in the manifest")
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    splits = {name: build_split(args.source, name, size) for name, (_, size) in SOURCES.items()}
    manifest = {
        "source": "JSONSchemaBench (Geng et al., arXiv:2501.10868), data/ of https://github.com/guidance-ai/jsonschemabench",
        "source_commit": args.commit,
        "licence": "MIT (as declared by the data set card of https://huggingface.co/datasets/epfl-dlab/JSONSchemaBench)",
        "seed": SEED, "max_bytes": MAX_BYTES,
        "draw": "eligible ids ranked by sha256('<seed>:<id>'), first <size> kept (tests/schemacorpus.py draw)",
        "eligible_when": f"at most {MAX_BYTES} bytes, a JSON object, accepted by the meta-schema of its declared "
                         "$schema (jsonschema validator_for, 2020-12 when none is declared)",
        "splits": splits}
    MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")
    for name, split in splits.items():
        print(f"{name}: {split['size']} of {len(split['eligible'])} eligible ({len(split['excluded'])} excluded)")


if __name__ == "__main__":
    main()
