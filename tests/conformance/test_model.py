"""The suite's model of the document and its strategies: hand-checked examples, so that a
state-machine failure points at the SDK rather than at the model."""

import math

import pytest
from hypothesis import given, settings

from conformance.hypothesis_profiles import CI, DEV, profile_name, suite_settings
from conformance.model import (
    ModelDoc,
    SessionModel,
    clamped_cosine,
    haversine_m,
    matches,
    query_problems,
)
from conformance.strategies import (
    DIM,
    FIELDS,
    NUMBERS,
    custom_vectors,
    filters,
    float32,
    metadata,
)
from conformance.vectors import checksum


def leaf(field, op, value):
    return {"field": field, "condition": {op: value}}


@pytest.mark.parametrize(
    ("flt", "md", "expected"),
    [
        (leaf("c", "$eq", "red"), {"c": "red"}, True),
        (leaf("c", "$eq", "red"), {"c": "Red"}, False),
        (leaf("c", "$ne", "red"), {"c": "blue"}, True),
        (leaf("c", "$ne", "red"), {"d": "blue"}, False),  # missing field: not even $ne
        (leaf("c", "$ne", "red"), None, False),
        (leaf("c", "$nin", ["red"]), {}, False),
        (leaf("c", "$in", ["red", "blue"]), {"c": "blue"}, True),
        (leaf("n", "$gt", "9"), {"n": "10"}, True),  # numbers, not text ("10" < "9")
        (leaf("n", "$gt", 9), {"n": "10"}, True),
        (leaf("n", "$lte", "-3"), {"n": "-3"}, True),
        (leaf("n", "$lt", 9.75), {"n": "9.5"}, True),
        (leaf("c", "$gt", "green"), {"c": "red"}, True),  # words: code point order
        (leaf("c", "$gt", "green"), {"c": "Red"}, False),
        (leaf("n", "$gt", "5"), {"n": "abc"}, False),  # number against word: no match
        ({"$and": [leaf("c", "$eq", "red"), leaf("n", "$gt", "6")]}, {"c": "red", "n": "7"}, True),
        ({"$and": [leaf("c", "$eq", "red"), leaf("n", "$gt", "6")]}, {"c": "red", "n": "5"}, False),
        ({"$or": [leaf("c", "$eq", "x"), {"$and": [leaf("n", "$eq", "1")]}]}, {"n": "1"}, True),
        (leaf("loc", "$near", "48.8566,2.3522,2000"), {"loc": "48.8606,2.3376"}, True),
        (leaf("loc", "$near", "48.8566,2.3522,1000"), {"loc": "48.8606,2.3376"}, False),
        (leaf("loc", "$near", "48.8566,2.3522,1000"), {"loc": "garbled"}, False),
    ],
)
def test_filter_evaluator(flt, md, expected):
    assert matches(flt, md) is expected


def test_haversine_known_distance():
    # Paris to London, about 344 km on a 6,371 km sphere.
    assert haversine_m(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343_556, abs=50)


def test_clamped_cosine():
    assert clamped_cosine([3, 4], [6, 8]) == pytest.approx(1.0)
    assert clamped_cosine([1, 0], [-1, 0]) == 0.0
    assert clamped_cosine([1, 0], [1, 1]) == pytest.approx(math.sqrt(0.5))
    assert clamped_cosine([0, 0], [1, 1]) == 0.0


def test_session_model_counts_push_and_resume():
    model = SessionModel()
    a, b = ModelDoc("a", "A", None, (1.0, 0.0)), ModelDoc("b", "B", {"k": "v"}, (0.0, 1.0))
    assert model.add([a, b]) == (2, 0)
    assert model.add([ModelDoc("a", "A2", None, (0.5, 0.5))], upsert=False) == (0, 0)
    assert model.docs["a"].text == "A"
    assert model.add([ModelDoc("a", "A2", None, (0.5, 0.5)), ModelDoc("c", "C", None, (1, 1))]) == (
        1,
        1,
    )
    assert model.delete(["a", "zzz", "a"]) == 1
    with pytest.raises(ValueError):
        SessionModel().push()
    model.push()
    assert model.cloud_checksums() == {"b": checksum([0.0, 1.0]), "c": checksum([1.0, 1.0])}
    model.delete(["b"])
    model.resume()
    assert sorted(model.docs) == ["b", "c"]
    assert [h.id for h in model.query([0.0, 1.0], top_k=1)] == ["b"]
    assert [h.id for h in model.query([0.0, 1.0], flt=leaf("k", "$eq", "v"))] == ["b"]


def test_query_problems_treats_ties_as_sets():
    scores = {"a": 0.9, "b": 0.5, "c": 0.5, "d": 0.1}
    assert query_problems(scores, 2, [("a", 0.9), ("c", 0.5)]) == []
    assert query_problems(scores, 2, [("a", 0.9), ("b", 0.50004)]) == []
    assert query_problems(scores, 10, [("a", 0.9), ("b", 0.5), ("c", 0.5), ("d", 0.1)]) == []
    assert query_problems(scores, 2, [("b", 0.5), ("c", 0.5)])  # a is missing
    assert query_problems(scores, 2, [("a", 0.9), ("d", 0.1)])  # d below the k-th score
    assert query_problems(scores, 2, [("a", 0.9)])  # too few
    assert query_problems(scores, 2, [("a", 0.9), ("x", 0.5)])  # not a candidate
    assert query_problems(scores, 2, [("a", 0.8), ("b", 0.5)])  # wrong score
    assert query_problems(scores, 2, [("b", 0.5), ("a", 0.9)])  # not in order
    assert query_problems({}, 5, []) == []


@settings(max_examples=50, deadline=None)
@given(custom_vectors(DIM), custom_vectors(DIM, unit=True))
def test_vectors_are_float32_and_not_zero(raw, unit):
    for vector in (raw, unit):
        assert len(vector) == DIM
        assert all(math.isfinite(x) and float32(x) == x for x in vector)
        assert any(x != 0 for x in vector)
    assert math.sqrt(sum(x * x for x in unit)) == pytest.approx(1.0, abs=1e-6)


@settings(max_examples=50, deadline=None)
@given(metadata(), filters())
def test_generated_data_stays_in_the_vocabulary(md, flt):
    if md is not None:
        assert all(md[f] in FIELDS[f] for f in md)
    matches(flt, md)  # every generated filter is well formed for the evaluator

    def ops(node):
        if "$and" in node or "$or" in node:
            parts = node.get("$and", node.get("$or"))
            assert 1 <= len(parts) <= 3
            return [op for part in parts for op in ops(part)]
        ((op, value),) = node["condition"].items()
        if node["field"] == "tag":
            assert op in ("$eq", "$ne", "$in", "$nin")  # mixed field: no range operators
        if op in ("$gt", "$gte", "$lt", "$lte") and node["field"] == "size":
            assert str(value) in NUMBERS or f"{value:g}" in NUMBERS
        return [op]

    assert "$near" not in ops(flt)


def test_profile_choice_from_environment(monkeypatch):
    monkeypatch.setenv("SESSIONSPEC_HYPOTHESIS_PROFILE", DEV)
    assert profile_name(None) == DEV
    assert suite_settings(None).max_examples == settings.get_profile(DEV).max_examples
    monkeypatch.delenv("SESSIONSPEC_HYPOTHESIS_PROFILE")
    assert profile_name(None) == CI  # the default
    ci = suite_settings(None)
    assert ci.derandomize and ci.deadline is None and ci.database is None
