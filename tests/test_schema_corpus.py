"""The schema test data itself: the seeded JSONSchemaBench sample and the keyword cases load, are the draw the
manifest records, are valid JSON Schemas under their declared drafts, and their examples are labelled right.

Whether an engine accepts them is for the structured-output tests; this only vouches for the data.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from . import schemacases, schemacorpus
from .schemacases import CASES, KeywordCase

T = TypeVar("T")
SIZES = {"github_easy": 200, "github_medium": 100}


def in_deep_stack(work: Callable[[], T]) -> T:
    """``work()`` on a thread with a 512 MB stack and a high recursion limit: jsonschema checks a schema
    recursively, and the 200-level nesting case exceeds Python's default limit of 1000 frames."""
    result: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)

    old_stack, old_limit = threading.stack_size(512 * 1024 * 1024), sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    finally:
        threading.stack_size(old_stack)
        sys.setrecursionlimit(old_limit)
    if errors:
        raise errors[0]
    return result[0]


@pytest.mark.parametrize("split", schemacorpus.SPLITS)
def test_each_split_loads_the_seeded_sample_the_manifest_records(split: str):
    cases = schemacorpus.load(split)
    entry = schemacorpus.manifest()["splits"][split]
    assert [case.id for case in cases] == entry["ids"]
    assert len(cases) == entry["size"] == SIZES[split]
    assert len({case.id for case in cases}) == len(cases)
    assert all(case.split == split and isinstance(case.schema, dict) for case in cases)
    # Re-drawing from the eligible ids with the recorded seed gives the stored sample, in the stored order.
    assert schemacorpus.draw(entry["eligible"], schemacorpus.manifest()["seed"], entry["size"]) == entry["ids"]
    assert not set(entry["eligible"]) & set(entry["excluded"])
    assert len(entry["eligible"]) + len(entry["excluded"]) == entry["source_files"]


@pytest.mark.parametrize("split", schemacorpus.SPLITS)
def test_stored_files_are_unchanged_since_the_draw(split: str):
    recorded = schemacorpus.manifest()["splits"][split]["sha256"]
    assert hashlib.sha256(schemacorpus.path(split).read_bytes()).hexdigest() == recorded


def test_the_draw_is_seeded_and_ignores_input_order():
    ids = [f"o{i}" for i in range(50)]
    first = schemacorpus.draw(ids, 17, 10)
    assert first == schemacorpus.draw(reversed(ids), 17, 10)
    assert len(first) == 10 and set(first) <= set(ids)
    assert schemacorpus.draw(ids, 18, 10) != first


def test_the_sample_stays_small():
    manifest = schemacorpus.manifest()
    total = sum(schemacorpus.path(split).stat().st_size for split in schemacorpus.SPLITS)
    assert total < 3_000_000
    for case in schemacorpus.load_all():
        assert len(json.dumps(case.schema).encode()) <= manifest["max_bytes"], case.id


@pytest.mark.parametrize("split", schemacorpus.SPLITS)
def test_every_sampled_schema_is_valid_under_its_declared_draft(split: str):
    for case in schemacorpus.load(split):
        schemacorpus.validator_class(case.schema).check_schema(case.schema)


def test_an_unknown_split_is_named_in_the_error():
    with pytest.raises(KeyError, match="github_hard"):
        schemacorpus.load("github_hard")


def test_keyword_case_ids_are_unique_and_each_expectation_is_accept_or_a_named_refusal():
    assert len({case.id for case in CASES}) == len(CASES)
    for case in CASES:
        assert case.expect == "accept" or re.fullmatch(r"refuse:\S+", case.expect), case.id
    assert schemacases.case("remote_ref").refused_keyword == "$ref"
    assert schemacases.case("items_empty").refused_keyword is None


def test_keyword_cases_cover_every_problem_issue_17_names():
    ids = {case.id for case in CASES}
    named = {"pattern_unanchored", "pattern_escape_digit", "pattern_escape_colon", "pattern_escape_word",
             "description_only_subschema", "items_empty", "true_false_subschemas", "ref_to_id", "ref_to_anchor",
             "definition_names_with_dots", "max_length_32767", "minimum_maximum", "exclusive_minimum_draft4_boolean",
             "exclusive_minimum_2020_numeric", "multiple_of_integer", "unique_items", "one_of_exclusive",
             "pattern_properties", "all_of_non_object", "tuple_items_additional_items_draft7",
             "dependencies_property_draft7", "max_items_huge", "nesting_200_levels", "enum_20000_strings",
             "remote_ref"} | {f"format_{name}" for name in ("date", "time", "date_time", "email", "uri", "uuid",
                                                              "ipv4", "ipv6")}
    assert named <= ids, sorted(named - ids)
    assert len(schemacases.case("enum_20000_strings").schema["enum"]) == 20_000
    assert schemacases.case("max_length_32767").schema["maxLength"] == 32767


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_keyword_case_schema_is_valid_under_its_declared_draft(case: KeywordCase):
    cls = schemacorpus.validator_class(case.schema)
    in_deep_stack(lambda: cls.check_schema(case.schema))


def _checks_format(cls: Any, schema: Any) -> bool:
    """Whether this jsonschema installation can check the schema's ``format`` (some checkers need extra packages)."""
    name = schema.get("format") if isinstance(schema, dict) else None
    return name is None or name in cls.FORMAT_CHECKER.checkers


@pytest.mark.parametrize("case", [c for c in CASES if c.valid or c.invalid], ids=lambda case: case.id)
def test_keyword_case_examples_are_valid_and_invalid_as_labelled(case: KeywordCase):
    cls = schemacorpus.validator_class(case.schema)
    validator = cls(case.schema, format_checker=cls.FORMAT_CHECKER)
    for instance in case.valid:
        errors = in_deep_stack(lambda instance=instance: [e.message for e in validator.iter_errors(instance)])
        assert not errors, (case.id, errors[:1])
    if not _checks_format(cls, case.schema):
        pytest.skip(f"jsonschema here has no checker for format {case.schema['format']!r} (it needs an extra package)")
    for instance in case.invalid:
        assert not in_deep_stack(lambda instance=instance: validator.is_valid(instance)), case.id
