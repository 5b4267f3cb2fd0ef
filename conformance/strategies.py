"""Hypothesis strategies for generated session programs: ids, texts, metadata, vectors, filters.

The data is drawn so that every comparison a test makes has one answer under PROTOCOL.md:

- Metadata values are strings. The field ``size`` only ever holds numbers written the plain
  way (``"5"``, ``"-3"``, ``"9.5"``: no leading zeros, no exponent, no ``+``), ``colour`` only
  words, ``tag`` both. So a range operator compares two numbers (``size``) or two words
  (``colour``), never a number with a word, which the protocol leaves open; ``tag`` is only
  tested for (in)equality. ``$eq`` / ``$in`` values are strings as well: how a number compares
  *equal* to a string is not written down either.
- ``missing`` is in the field vocabulary of filters but no document ever has it, so "documents
  lacking the field never match" is exercised on every generated operator.
- Vectors are finite float32 values (every component exactly representable, so a checksum of
  what the test passed equals the checksum of what a conforming SDK stores) and never
  all-zero: a zero vector has no direction, and SDKs reject or score it differently.
"""

import math
import struct
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

DIM = 8

# A small pool so that generated programs re-add, update and delete the same ids often.
ID_POOL = tuple(f"doc-{i}" for i in range(10))

NUMBERS = ("-3", "0", "1", "2.25", "5", "9.5", "10", "42", "100")
WORDS = ("amber", "blue", "green", "red", "Red", "teal")
TAGS = ("alpha", "beta", "7", "12", "x-1")
FIELDS: dict[str, tuple[str, ...]] = {"size": NUMBERS, "colour": WORDS, "tag": TAGS}
MISSING_FIELD = "missing"
ORDERED_FIELDS = ("size", "colour")  # fields whose values all compare the same way
OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin")
RANGE_OPERATORS = ("$gt", "$gte", "$lt", "$lte")


def float32(x: float) -> float:
    """``x`` rounded to the nearest float32, as a Python float."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def doc_ids() -> st.SearchStrategy[str]:
    """Mostly ids from :data:`ID_POOL`, sometimes a fresh printable one."""
    fresh = st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/"),
        min_size=1,
        max_size=12,
    )
    return st.one_of(st.sampled_from(ID_POOL), fresh)


def texts() -> st.SearchStrategy[str]:
    """Document texts: short, any printable characters, sometimes empty."""
    return st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40
    )


def metadata() -> st.SearchStrategy[dict[str, str] | None]:
    """``None``, or a dict over ``size`` / ``colour`` / ``tag`` with any of them left out."""
    fields = st.fixed_dictionaries(
        {}, optional={name: st.sampled_from(values) for name, values in FIELDS.items()}
    )
    return st.one_of(st.none(), fields)


def custom_vectors(dim: int = DIM, *, unit: bool = False) -> st.SearchStrategy[list[float]]:
    """Finite float32 vectors of ``dim`` components, not all zero (the largest component is at
    least 0.01 in magnitude, so norms never underflow).

    With ``unit``, scaled to length 1 (then rounded to float32 again): inner product and cosine
    then order documents the same way, which the protocol only pins down through the score.
    """
    component = st.one_of(
        st.integers(-3, 3).map(float),
        st.floats(-1.0, 1.0, width=32, allow_subnormal=False),
    )
    raw = st.lists(component, min_size=dim, max_size=dim).filter(
        lambda v: max(abs(x) for x in v) >= 0.01
    )
    if not unit:
        return raw
    return raw.map(normalised)


def normalised(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [float32(x / norm) for x in vector]


def _leaf(field: str) -> st.SearchStrategy[dict[str, Any]]:
    values = FIELDS.get(field, WORDS)
    value = st.sampled_from(values)
    listed = st.lists(value, min_size=1, max_size=3, unique=True)
    ops = OPERATORS if field in ORDERED_FIELDS or field == MISSING_FIELD else (
        "$eq", "$ne", "$in", "$nin"
    )

    def build(op: str) -> st.SearchStrategy[dict[str, Any]]:
        if op in ("$in", "$nin"):
            chosen: st.SearchStrategy[Any] = listed
        elif op in RANGE_OPERATORS and field == "size":
            # A bound given as a number or as a numeric string: both compare numerically.
            chosen = st.one_of(value, value.map(_as_number_value))
        else:
            chosen = value
        return chosen.map(lambda v: {"field": field, "condition": {op: v}})

    return st.sampled_from(ops).flatmap(build)


def _as_number_value(text: str) -> int | float:
    number = float(text)
    return int(number) if number.is_integer() else number


def filter_leaves() -> st.SearchStrategy[dict[str, Any]]:
    """One ``{"field", "condition"}`` leaf over the field vocabulary (``$near`` excluded)."""
    return st.sampled_from((*FIELDS, MISSING_FIELD)).flatmap(_leaf)


def filters(max_depth: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    """A leaf, or ``$and`` / ``$or`` of 1-3 filters nested up to ``max_depth`` levels."""
    node = filter_leaves()
    for _ in range(max_depth):
        inner = node
        node = st.one_of(
            filter_leaves(),
            st.builds(
                lambda key, parts: {key: parts},
                st.sampled_from(("$and", "$or")),
                st.lists(inner, min_size=1, max_size=3),
            ),
        )
    return node
