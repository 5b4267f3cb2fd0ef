"""Metadata filters: each operator, each malformed shape, and properties of the whole.

The strategies at the top (``metadatas``, ``filters``) are shared with
``test_filters_moss.py``, which runs the same filters through the published SDK.
"""

from __future__ import annotations

import copy
import math
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference.filters import (
    MetadataColumns,
    compile_filter,
    filter_key,
    filter_mask,
    filter_value_text,
    metadata_text,
)

# --- shared strategies --------------------------------------------------------------------------
FIELDS = ["a", "b", "loc"]
# Texts chosen around the rules' edges: plain decimals, decimals the SDK does not count as
# numbers ("01", "1e3", " 1", "NaN"), strings that sort between them, and locations.
TEXTS = [
    "",
    "x",
    "abc",
    "B",
    "é",
    "0",
    "1",
    "1.0",
    "2",
    "2.5",
    "-3",
    "10",
    "01",
    "1e3",
    " 1",
    "NaN",
]
LOCATIONS = ["0,0", "0.5,0.5", "1,1", "45.5,-73.6", " 45.5 , -73.6 ", "bad", "1,2,3"]
SCALARS = [*TEXTS, 0, 1, 2, -3, 10, 0.5, 1.0, 2.5, 1e-7, -0.0]
NEAR = ["0,0,100000", "0,0,0", "1,1,80000", "45.5,-73.6,10", "0.5,0.5,200000"]
OPS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]

metadata_values = st.sampled_from(TEXTS + LOCATIONS)
metadatas = st.none() | st.dictionaries(st.sampled_from(FIELDS), metadata_values, max_size=3)
scalars = st.sampled_from(SCALARS)
field_names = st.sampled_from([*FIELDS, "missing"])


def _leaf(name: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": name, "condition": {op: value}}


leaves = st.one_of(
    st.builds(_leaf, field_names, st.sampled_from(OPS), scalars),
    st.builds(
        _leaf,
        field_names,
        st.sampled_from(["$in", "$nin"]),
        st.lists(scalars, min_size=1, max_size=3),
    ),
    st.builds(_leaf, st.just("loc"), st.just("$near"), st.sampled_from(NEAR)),
)
filters = st.recursive(
    leaves,
    lambda inner: st.builds(
        lambda key, parts: {key: parts},
        st.sampled_from(["$and", "$or"]),
        st.lists(inner, min_size=1, max_size=3),
    ),
    max_leaves=6,
)


# --- a plain model of the rules, written independently of reference.filters ----------------------
def _model_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    x = float(value)
    if x.is_integer() and abs(x) < 2.0**63:
        return str(int(x))
    return format(Decimal(repr(x)), "f")


def _model_number(text: str) -> float | None:
    body = text[1:] if text.startswith("-") else text
    whole, _, frac = body.partition(".")
    ok = (
        whole.isascii()
        and whole.isdigit()
        and (whole == "0" or not whole.startswith("0"))
        and ("." not in body or (frac.isascii() and frac.isdigit()))
    )
    return float(text) if ok else None


def _model_location(text: str) -> tuple[float, float] | None:
    parts = text.split(",")
    try:
        lat, lng = (float(p.strip()) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        return None
    return None if lat is None else (lat, lng)


def model_match(f: dict[str, Any], metadata: dict[str, str] | None) -> bool:
    if "$and" in f:
        return all(model_match(g, metadata) for g in f["$and"])
    if "$or" in f:
        return any(model_match(g, metadata) for g in f["$or"])
    if metadata is None or f["field"] not in metadata:
        return False
    text = metadata[f["field"]]
    ((op, value),) = f["condition"].items()
    if op in ("$in", "$nin"):
        hit = text in {_model_text(v) for v in value}
        return hit if op == "$in" else not hit
    if op == "$near":
        lat, lng, radius = (float(p) for p in value.split(","))
        loc = _model_location(text)
        if loc is None:
            return False
        p1, p2 = math.radians(loc[0]), math.radians(lat)
        h = (
            math.sin((p2 - p1) / 2) ** 2
            + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lng - loc[1]) / 2) ** 2
        )
        return 2 * 6_371_000 * math.asin(math.sqrt(min(1.0, h))) <= radius
    wanted = _model_text(value)
    if op == "$eq":
        return text == wanted
    if op == "$ne":
        return text != wanted
    a, b = _model_number(text), _model_number(wanted)
    if (a is None) != (b is None):
        return False
    left, right = (a, b) if a is not None else (text, wanted)
    return {"$gt": left > right, "$gte": left >= right, "$lt": left < right, "$lte": left <= right}[
        op
    ]


# --- fixed documents for the unit tests ---------------------------------------------------------
DOCS: dict[str, dict[str, Any] | None] = {
    "one": {"v": "1"},
    "one_f": {"v": "1.0"},
    "two": {"v": "2"},
    "two_half": {"v": "2.5"},
    "ten": {"v": "10"},
    "neg": {"v": "-3"},
    "lead0": {"v": "01"},
    "exp": {"v": "1e3"},
    "a": {"v": "a"},
    "b": {"v": "b"},
    "blank": {"v": ""},
    "other": {"w": "1"},
    "none": None,
    "empty": {},
    "int_meta": {"v": 3},
    "float_meta": {"v": 2.0},
    "bool_meta": {"v": True},
}


def ids_for(f: dict[str, Any]) -> set[str]:
    keep = compile_filter(f)
    return {doc_id for doc_id, m in DOCS.items() if keep(m)}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # $eq / $ne compare texts; a number is written in its shortest form first.
        ({"$eq": 1}, {"one"}),
        ({"$eq": 1.0}, {"one"}),
        ({"$eq": "1.0"}, {"one_f"}),
        ({"$eq": 2.0}, {"two"}),
        ({"$eq": "2.0"}, {"float_meta"}),
        ({"$eq": 3}, {"int_meta"}),
        ({"$eq": "true"}, {"bool_meta"}),
        ({"$eq": ""}, {"blank"}),
        (
            {"$ne": "1"},
            set(DOCS) - {"one", "other", "none", "empty"},
        ),
        # Range operators: numbers when both sides are plain decimals...
        ({"$gt": 2}, {"two_half", "ten", "int_meta"}),
        ({"$gt": "2"}, {"two_half", "ten", "int_meta"}),
        ({"$gte": 2}, {"two", "two_half", "ten", "int_meta", "float_meta"}),
        ({"$lt": 1}, {"neg"}),
        ({"$lte": 1}, {"one", "one_f", "neg"}),
        ({"$lt": 0.5}, {"neg"}),
        # ...strings when neither is, and no match when only one is.
        ({"$gt": "a"}, {"b", "bool_meta"}),
        ({"$lt": "a"}, {"lead0", "exp", "blank"}),
        ({"$gte": ""}, {"lead0", "exp", "a", "b", "blank", "bool_meta"}),
        ({"$in": [1, "a"]}, {"one", "a"}),
        ({"$in": ["1.0", 2.5]}, {"one_f", "two_half"}),
        ({"$nin": ["1", "a"]}, set(DOCS) - {"one", "a", "other", "none", "empty"}),
    ],
)
def test_operator(condition: dict[str, Any], expected: set[str]) -> None:
    assert ids_for({"field": "v", "condition": condition}) == expected


def test_documents_without_the_field_never_match() -> None:
    for op, value in [("$ne", "zzz"), ("$nin", ["zzz"]), ("$lt", "zzzz"), ("$gt", -1e300)]:
        matched = ids_for({"field": "v", "condition": {op: value}})
        assert not matched & {"other", "none", "empty"}, op


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("x", "x"),
        (1, "1"),
        (1.0, "1"),
        (-0.0, "0"),
        (2.5, "2.5"),
        (1e-7, "0.0000001"),
        (1e21, "1000000000000000000000"),
        (2**53 + 1, "9007199254740992"),  # through float, as the SDK does
        (2**60, "1152921504606846976"),
        (2.0**70, "1180591620717411300000"),
        (float("nan"), "NaN"),
        (float("-inf"), "-inf"),
    ],
)
def test_filter_value_text(value: Any, text: str) -> None:
    assert filter_value_text(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1.0", "1.0"),
        (3, "3"),
        (1.0, "1.0"),
        (-0.0, "-0.0"),
        (1e15, "1000000000000000.0"),
        (1e16, "10000000000000000"),
        (1e-5, "0.00001"),
        (True, "true"),
        (False, "false"),
        (None, None),
        ([1], None),
    ],
)
def test_metadata_text(value: Any, text: str | None) -> None:
    assert metadata_text(value) == text


def test_near_uses_a_6371_km_sphere_and_includes_the_boundary() -> None:
    # A point due north of (0, 0) at 1,000 km on that sphere, nudged 0.1 m either side.
    def at(metres: float) -> dict[str, str]:
        return {"loc": f"{math.degrees(metres / 6_371_000.0)!r},0"}

    near = compile_filter({"field": "loc", "condition": {"$near": "0,0,1000000"}})
    assert near(at(999_999.9))
    assert not near(at(1_000_000.1))
    same = compile_filter({"field": "loc", "condition": {"$near": " 1 , 2 , 0 "}})
    assert same({"loc": "1, 2"})
    assert same({"loc": "+1,2.0"})


@pytest.mark.parametrize("text", ["bad", "1", "1,2,3", "1;2", "nan,2", "inf,0", "1_0,2", "١,2"])
def test_near_skips_documents_without_a_location(text: str) -> None:
    near = compile_filter({"field": "loc", "condition": {"$near": "0,0,1e9"}})
    assert not near({"loc": text})
    assert not near.mask([{"loc": text}]).any()


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        ("x", TypeError, "filter: a filter must be a dict, got str"),
        ([], TypeError, "filter: a filter must be a dict"),
        ({}, ValueError, "filter: missing 'field'"),
        ({"field": "v"}, ValueError, "filter: missing 'condition'"),
        ({"condition": {"$eq": 1}}, ValueError, "filter: missing 'field'"),
        ({"field": 1, "condition": {"$eq": 1}}, TypeError, "filter.field: must be a str"),
        ({"field": "v", "condition": "x"}, TypeError, "filter.condition: must be a dict"),
        ({"field": "v", "condition": {}}, ValueError, "filter.condition: expected exactly one"),
        (
            {"field": "v", "condition": {"$eq": 1, "$ne": 2}},
            ValueError,
            "filter.condition: expected exactly one operator, got '$eq', '$ne'",
        ),
        (
            {"field": "v", "condition": {"$regex": "x"}},
            ValueError,
            "filter.condition: unknown operator '$regex'",
        ),
        (
            {"field": "v", "condition": {"$eq": 1}, "extra": 1},
            ValueError,
            "filter: unexpected key 'extra'",
        ),
        ({"field": "v", "condition": {"$eq": True}}, TypeError, "filter.condition.$eq: value"),
        ({"field": "v", "condition": {"$eq": None}}, TypeError, "got None"),
        ({"field": "v", "condition": {"$gt": [1]}}, TypeError, "filter.condition.$gt: value"),
        ({"field": "v", "condition": {"$eq": 10**400}}, TypeError, "too large"),
        ({"field": "v", "condition": {"$in": "x"}}, TypeError, "filter.condition.$in: value must"),
        ({"field": "v", "condition": {"$in": ("x",)}}, TypeError, "must be a list, got tuple"),
        ({"field": "v", "condition": {"$nin": []}}, ValueError, "$nin: list must not be empty"),
        ({"field": "v", "condition": {"$in": [1, {}]}}, TypeError, "filter.condition.$in[1]"),
        ({"field": "v", "condition": {"$near": 5}}, TypeError, "filter.condition.$near: value"),
        ({"field": "v", "condition": {"$near": "1,2"}}, ValueError, "invalid value '1,2'"),
        ({"field": "v", "condition": {"$near": "a,b,c"}}, ValueError, "invalid value"),
        ({"field": "v", "condition": {"$near": "1,2,3,4"}}, ValueError, "invalid value"),
        ({"field": "v", "condition": {"$near": "1,2,nan"}}, ValueError, "invalid value"),
        ({"field": "v", "condition": {"$near": "1,2,1e400"}}, ValueError, "invalid value"),
        ({"field": "v", "condition": {"$near": "1,2,1_0"}}, ValueError, "invalid value"),
        ({"field": "v", "condition": {"$near": "1,2,-5"}}, ValueError, "invalid radius '-5'"),
        ({"$and": []}, ValueError, "filter.$and: list must not be empty"),
        ({"$or": {"field": "v"}}, TypeError, "filter.$or: must be a list"),
        (
            {"$and": [{"field": "v", "condition": {"$eq": 1}}], "$or": []},
            ValueError,
            "'$or' beside",
        ),
        ({"$and": [], "field": "v"}, ValueError, "unexpected key 'field' beside '$and'"),
        ({"$not": {"field": "v"}}, ValueError, "filter: missing 'field'"),
        (
            {"$and": [{"field": "v", "condition": {"$eq": 1}}, {"$or": [5]}]},
            TypeError,
            "filter.$and[1].$or[0]: a filter must be a dict, got int",
        ),
        (
            {
                "$or": [
                    {"field": "v", "condition": {"$eq": 1}},
                    {"field": "v", "condition": {"$regex": 1}},
                ]
            },
            ValueError,
            "filter.$or[1].condition: unknown operator '$regex'",
        ),
    ],
)
def test_malformed_filter_names_the_problem_and_its_path(
    bad: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        compile_filter(bad)
    assert message in str(raised.value)
    assert str(raised.value).startswith("filter")


def test_empty_field_name_is_a_field_like_any_other() -> None:
    assert compile_filter({"field": "", "condition": {"$eq": "x"}})({"": "x"})


def test_mask_of_no_documents_is_empty() -> None:
    assert filter_mask({"field": "v", "condition": {"$eq": 1}}, []).shape == (0,)


# --- properties ---------------------------------------------------------------------------------
docs_lists = st.lists(metadatas, max_size=30)


@settings(max_examples=300)
@given(f=filters, docs=docs_lists)
def test_predicate_and_mask_agree_with_the_model(f: dict[str, Any], docs: list[Any]) -> None:
    compiled = compile_filter(f)
    expected = [model_match(f, m) for m in docs]
    assert [compiled(m) for m in docs] == expected
    assert filter_mask(f, docs).tolist() == expected


@given(f=filters, docs=docs_lists)
def test_kept_columns_give_the_same_mask_as_fresh_ones(f: dict[str, Any], docs: list[Any]) -> None:
    columns = MetadataColumns(docs)
    first = filter_mask(f, columns)
    assert filter_mask(f, columns).tolist() == first.tolist() == filter_mask(f, docs).tolist()


@given(name=field_names, values=st.lists(scalars, min_size=1, max_size=4), docs=docs_lists)
def test_nin_is_the_complement_of_in_among_documents_with_the_field(
    name: str, values: list[Any], docs: list[Any]
) -> None:
    has = np.array([m is not None and name in m for m in docs], dtype=bool)
    inside = filter_mask(_leaf(name, "$in", values), docs)
    outside = filter_mask(_leaf(name, "$nin", values), docs)
    assert not (inside & outside).any()
    assert ((inside | outside) == has).all()


@given(name=field_names, value=scalars, docs=docs_lists)
def test_ne_is_the_complement_of_eq_among_documents_with_the_field(
    name: str, value: Any, docs: list[Any]
) -> None:
    has = np.array([m is not None and name in m for m in docs], dtype=bool)
    eq = filter_mask(_leaf(name, "$eq", value), docs)
    ne = filter_mask(_leaf(name, "$ne", value), docs)
    assert ((eq ^ ne) == has).all()


@given(name=field_names, value=scalars, docs=docs_lists)
def test_gt_and_lte_split_the_comparable_documents(name: str, value: Any, docs: list[Any]) -> None:
    wanted_is_number = _model_number(_model_text(value)) is not None
    comparable = np.array(
        [
            m is not None and name in m and (_model_number(m[name]) is not None) == wanted_is_number
            for m in docs
        ],
        dtype=bool,
    )
    gt = filter_mask(_leaf(name, "$gt", value), docs)
    lte = filter_mask(_leaf(name, "$lte", value), docs)
    assert not (gt & lte).any()
    assert ((gt | lte) == comparable).all()


@given(parts=st.lists(filters, min_size=1, max_size=4), docs=docs_lists)
def test_and_or_are_intersection_and_union(parts: list[Any], docs: list[Any]) -> None:
    masks = np.array([filter_mask(p, docs) for p in parts]).reshape(len(parts), len(docs))
    assert (filter_mask({"$and": parts}, docs) == masks.all(axis=0)).all()
    assert (filter_mask({"$or": parts}, docs) == masks.any(axis=0)).all()


@given(f=filters)
def test_a_valid_filter_compiles_to_the_same_thing_twice(f: dict[str, Any]) -> None:
    docs = [{"a": t, "b": t, "loc": t} for t in TEXTS + LOCATIONS]
    assert filter_mask(f, docs).tolist() == filter_mask(compile_filter(f), docs).tolist()


# --- filter keys ----------------------------------------------------------------------------------
@given(f=filters, g=filters)
def test_filters_with_one_key_have_one_mask(f: dict[str, Any], g: dict[str, Any]) -> None:
    # What lets a corpus reuse a mask: equal keys never hide different filters.
    assert filter_key(f) is not None and filter_key(f) == filter_key(copy.deepcopy(f))
    if filter_key(f) == filter_key(g):
        docs = [{"a": t, "b": t, "loc": t} for t in TEXTS + LOCATIONS]
        assert filter_mask(f, docs).tolist() == filter_mask(g, docs).tolist()


@pytest.mark.parametrize(("one", "other"), [
    (0.0, -0.0),  # equal floats, different texts
    (1, True),
    (1, 1.0),
    ("1", 1),
    ([1], (1,)),
])
def test_filter_keys_tell_apart_values_python_calls_equal(one: Any, other: Any) -> None:
    assert filter_key(_leaf("a", "$eq", one)) != filter_key(_leaf("a", "$eq", other))


@pytest.mark.parametrize("odd", [Decimal("1"), (1,), {1: "a"}, object()])
def test_a_filter_holding_anything_but_json_values_has_no_key(odd: Any) -> None:
    assert filter_key(_leaf("a", "$eq", odd)) is None
    assert filter_key({"$and": [_leaf("a", "$eq", "x"), {"field": "b", "condition": odd}]}) is None
