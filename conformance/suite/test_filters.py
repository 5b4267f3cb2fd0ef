"""Metadata filters in a session query (PROTOCOL.md): the operators, ``$and`` / ``$or``
nesting, numeric comparison of numbers, missing fields, ``$near`` and malformed filters.

Expected answers are written out by hand; a generated test also checks many more filters
against the independent evaluator in :mod:`conformance.model`.
"""

import random
from typing import Any

import pytest
from hypothesis import given

from conformance.calls import call
from conformance.hypothesis_profiles import suite_settings
from conformance.model import haversine_m, matches
from conformance.strategies import FIELDS, filters
from conformance.suite.helpers import add, ids, open_session
from conformance.vectors import basis, blend

# Every document has the same vector, so a filtered query returns exactly the documents the
# filter keeps (as long as top_k is large enough) whatever the ranking does.
SHOP: dict[str, dict[str, str] | None] = {
    "a": {"colour": "red", "size": "5", "tag": "x"},
    "b": {"colour": "blue", "size": "10"},
    "c": {"colour": "red", "size": "9.5"},
    "d": {"colour": "green"},
    "e": {"size": "-3", "colour": "Red"},
    "f": None,
    "g": {"size": "100", "colour": "amber"},
}


def _leaf(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "condition": {op: value}}


def _session_with(target, client, name, metadata):
    session = open_session(client, name)
    vectors = {k: basis(0) for k in metadata}
    add(target, session, vectors, metadata={k: v for k, v in metadata.items() if v is not None})
    return session


def _select(target, session, flt, n=None) -> list[str]:
    options = target.query_options(
        embedding=basis(0), top_k=n or max(session.doc_count, 1), alpha=1.0, filter=flt
    )
    return sorted(ids(call(session.query("", options)).docs))


@pytest.fixture
def shop(target, client, index_name):
    return _session_with(target, client, index_name, SHOP)


CASES = [
    # (field, op, value, expected ids)
    ("colour", "$eq", "red", "ac"),
    ("colour", "$ne", "red", "bdeg"),  # f has no metadata: no match even for $ne
    ("colour", "$in", ["blue", "green"], "bd"),
    ("colour", "$nin", ["red", "Red"], "bdg"),
    ("colour", "$gt", "green", "ac"),  # code point order: "red" > "green" > "blue", "Red"
    ("colour", "$lte", "blue", "egb"),
    ("size", "$eq", "5", "a"),
    ("size", "$ne", "5", "bceg"),  # d lacks size: no match even for $ne
    ("size", "$nin", ["5", "10"], "ceg"),
    # Numeric strings compare as numbers: as strings "10" < "9.5" and "100" < "5".
    ("size", "$gt", "9", "bcg"),
    ("size", "$gte", "9.5", "bcg"),
    ("size", "$lt", "10", "ace"),
    ("size", "$lte", "-3", "e"),
    ("size", "$gt", 6, "bcg"),  # a number as the bound
    ("size", "$lt", 9.75, "ace"),
    ("tag", "$ne", "y", "a"),  # only a has the field
    ("nowhere", "$ne", "x", ""),
    ("nowhere", "$nin", ["x"], ""),
]


@pytest.mark.clause("P-FILTER-SEMANTICS")
@pytest.mark.parametrize(("field", "op", "value", "expected"), CASES)
def test_filter_operator(target, shop, field, op, value, expected):
    """Each operator on a string field and on a field of numeric strings keeps exactly the
    documents it should; documents without the field (or without metadata) never match, not
    even ``$ne`` / ``$nin``.

    Troubleshooting: range operators compare numeric strings as text ("10" < "9.5"), ``$ne``
    matches documents that lack the field, or ``$in`` / ``$nin`` take a single value.
    """
    assert _select(target, shop, _leaf(field, op, value)) == sorted(expected)


@pytest.mark.clause("P-FILTER-SEMANTICS")
def test_and_or_nesting(target, shop):
    """``$and`` and ``$or`` combine leaves and nest inside each other.

    Troubleshooting: only the first element of a list is used, or nested combinators are
    treated as leaves.
    """
    red = _leaf("colour", "$eq", "red")
    big = _leaf("size", "$gt", "6")
    green = _leaf("colour", "$eq", "green")
    assert _select(target, shop, {"$and": [red, big]}) == ["c"]
    assert _select(target, shop, {"$or": [red, green]}) == ["a", "c", "d"]
    assert _select(target, shop, {"$or": [{"$and": [red, big]}, green]}) == ["c", "d"]
    nested = {"$and": [{"$or": [red, green, _leaf("size", "$lt", "0")]}, {"$or": [big, green]}]}
    assert _select(target, shop, nested) == ["c", "d"]
    assert _select(target, shop, {"$and": [red]}) == ["a", "c"]


@pytest.mark.clause("P-FILTER-SEMANTICS")
def test_filter_applies_before_top_k(target, client, index_name):
    """A filter picks the candidates and ``top_k`` counts among them: the best matching
    documents are returned although non-matching documents score higher.

    Troubleshooting: the SDK takes the top k first and filters afterwards, returning fewer
    results than it should (or none).
    """
    session = open_session(client, index_name)
    reds = {f"red-{i}": basis(0) for i in range(4)}
    blues = {f"blue-{i}": blend((0.3, basis(0)), (1.0, basis(i + 1))) for i in range(3)}
    colours = {**{k: {"colour": "red"} for k in reds}, **{k: {"colour": "blue"} for k in blues}}
    add(target, session, {**reds, **blues}, metadata=colours)
    options = target.query_options(
        embedding=basis(0), top_k=2, alpha=1.0, filter=_leaf("colour", "$eq", "blue")
    )
    got = ids(call(session.query("", options)).docs)
    assert len(got) == 2 and set(got) <= set(blues), f"got {got}"


def _generated_metadata(count: int = 30) -> dict[str, dict[str, str] | None]:
    """A fixed, varied sample over the strategies' field vocabulary (seeded, so every run
    checks the same documents), plus a document without metadata and one with an empty dict."""
    rng = random.Random(20_240_601)
    docs: dict[str, dict[str, str] | None] = {"no-metadata": None, "empty": {}}
    for i in range(count):
        docs[f"m{i}"] = {f: rng.choice(v) for f, v in FIELDS.items() if rng.random() < 0.7}
    return docs


@pytest.mark.clause("P-FILTER-SEMANTICS")
def test_generated_filters_match_model(target, client, index_name, pytestconfig):
    """Generated filters (every operator but ``$near``; ``$and`` / ``$or`` nested two deep)
    over varied metadata keep what the independent evaluator in :mod:`conformance.model`
    keeps (Hypothesis profile ``ci`` by default: derandomised).

    Troubleshooting: the message shows the smallest failing filter; read it against
    PROTOCOL.md's rules (numbers compare numerically, missing fields never match).
    """
    stored = _generated_metadata()
    session = _session_with(target, client, index_name, stored)

    @suite_settings(pytestconfig)
    @given(filters())
    def check(flt: dict[str, Any]) -> None:
        want = sorted(k for k, md in stored.items() if matches(flt, md))
        assert _select(target, session, flt) == want, f"filter {flt}"

    check()


# --- $near ----------------------------------------------------------------------------------
PARIS = (48.8566, 2.3522)
PLACES = {
    "louvre": "48.8606,2.3376",  # ~1.2 km from PARIS
    "versailles": "48.8049,2.1204",  # ~17 km
    "london": "51.5074,-0.1278",  # ~344 km
    "nowhere": None,  # no location field
    "garbled": "not a place",
}
NORTH = (60.0, 10.0)
# At 60 degrees north a degree of longitude is half a degree of latitude: a planar
# "degrees x 111 km" distance would put "east" twice as far as the haversine does.
NORTH_PLACES = {
    "east": "60.0,11.0",  # haversine ~55.6 km, planar ~111 km
    "north": "60.6,10.0",  # ~66.7 km
    "far-north": "61.0,10.0",  # ~111 km
}


def _near(lat: float, lng: float, radius: float) -> dict[str, Any]:
    return _leaf("loc", "$near", f"{lat},{lng},{radius}")


@pytest.mark.clause("P-FILTER-NEAR")
def test_near_uses_haversine_and_skips_unlocated(target, client, index_name):
    """``$near "lat,lng,radiusMeters"`` keeps the documents whose ``"lat,lng"`` lies within the
    radius by great-circle (haversine) distance, and skips documents without a usable
    location. Radii are chosen far from every distance, so the sphere's exact radius does not
    matter; the northern case tells haversine from a flat degrees-times-111-km distance.

    Troubleshooting: latitude and longitude are swapped, the radius is read in kilometres, the
    distance is planar in degrees, or a document without a location raises or matches.
    """
    metadata = {k: ({"loc": v} if v else {"other": "x"}) for k, v in PLACES.items()}
    metadata.update({k: {"loc": v} for k, v in NORTH_PLACES.items()})
    session = _session_with(target, client, index_name, metadata)

    def expected(centre: tuple[float, float], radius: float) -> list[str]:
        out = []
        for k, md in metadata.items():
            loc = md.get("loc") if md else None
            try:
                lat, lng = (float(x) for x in loc.split(","))  # type: ignore[union-attr]
            except (AttributeError, ValueError):
                continue
            distance = haversine_m(lat, lng, *centre)
            assert abs(distance - radius) > 1000, f"{k} is too close to the boundary"
            if distance <= radius:
                out.append(k)
        return sorted(out)

    cases = [(PARIS, 5_000), (PARIS, 30_000), (PARIS, 400_000), (NORTH, 80_000),
             (NORTH, 60_000), (NORTH, 150_000)]
    for centre, radius in cases:
        want = expected(centre, radius)
        assert _select(target, session, _near(*centre, radius)) == want, f"{centre}, {radius} m"
    assert expected(NORTH, 80_000) == ["east", "north"]  # the case a planar distance fails


# --- malformed filters ----------------------------------------------------------------------
MALFORMED = {
    "unknown operator": _leaf("colour", "$regex", "r.*"),
    "no condition": {"field": "colour"},
    "no field": {"condition": {"$eq": "red"}},
    "empty condition": {"field": "colour", "condition": {}},
    "condition not a dict": {"field": "colour", "condition": "red"},
    "$in not a list": _leaf("colour", "$in", "red"),
    "list as value": _leaf("colour", "$eq", ["red"]),
    "None as value": _leaf("colour", "$eq", None),
    "dict as value": _leaf("colour", "$eq", {"a": 1}),
    "$and not a list": {"$and": _leaf("colour", "$eq", "red")},
    "$near with two numbers": _leaf("loc", "$near", "48.8,2.3"),
    "$near with words": _leaf("loc", "$near", "north,east,far"),
    "$near not a string": _leaf("loc", "$near", 5000),
}


@pytest.mark.clause("P-FILTER-MALFORMED")
@pytest.mark.parametrize("problem", list(MALFORMED))
def test_malformed_filter_rejected(target, shop, problem):
    """A malformed filter raises ``ValueError`` or ``TypeError`` with a message, instead of
    matching nothing or everything.

    Troubleshooting: the SDK drops what it does not understand, so a typo in a filter silently
    returns wrong results.
    """
    with pytest.raises((ValueError, TypeError)) as raised:
        _select(target, shop, MALFORMED[problem])
    assert str(raised.value).strip(), "the error does not say what is wrong"


@pytest.mark.clause("P-FILTER-MALFORMED")
def test_condition_with_two_operators_rejected(target, shop):
    """A condition holds one operator (``{op: value}``); one with two is malformed and raises
    rather than silently using one of them.

    Troubleshooting: the SDK evaluates only the first (or last) operator of a condition.
    """
    two = {"field": "size", "condition": {"$gt": "1", "$lt": "50"}}
    with pytest.raises((ValueError, TypeError)):
        _select(target, shop, two)
