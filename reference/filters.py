"""Metadata filters: validation, the per-document predicate and the bulk mask.

Session query, client query and ``get_docs`` all go through :func:`compile_filter`, so a
filter means the same thing everywhere. The semantics follow what the published SDK
(``moss`` 1.21.0) was observed to do, which is narrower than a "compare by value" reading:

- Every filter value is turned into text first. A number becomes its shortest decimal form
  without exponent, and an integral number below 2**63 in magnitude prints as an integer
  (``1.0`` -> ``"1"``, ``-0.0`` -> ``"0"``, ``1e-7`` -> ``"0.0000001"``).
- ``$eq``, ``$ne``, ``$in`` and ``$nin`` compare that text with the metadata text exactly:
  ``{"$eq": 1}`` matches ``"1"`` but not ``"1.0"``.
- ``$gt``, ``$gte``, ``$lt`` and ``$lte`` compare as numbers when both texts are plain
  decimals (``-?(0|[1-9][0-9]*)(.[0-9]+)?``), as strings (code point order) when neither is,
  and never match when only one side is a number.
- A document without the field, or without metadata, matches nothing, not even ``$ne`` or
  ``$nin``.
- ``$near`` takes ``"lat,lng,radiusMeters"`` and keeps documents whose ``"lat,lng"`` lies
  within the radius on a sphere of radius 6,371,000 m, boundary included; documents whose
  field is not such a pair are skipped.

The reference is stricter than the published SDK about malformed filters: where the SDK
silently ignores part of a filter (a second operator, extra keys, ``$or`` beside ``$and``)
or gives an empty list a meaning, this module raises, naming the path of the problem.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "EARTH_RADIUS_M",
    "OPERATORS",
    "CompiledFilter",
    "MetadataColumns",
    "Predicate",
    "compile_filter",
    "filter_key",
    "filter_mask",
    "filter_value_text",
    "metadata_text",
]

OPERATORS: tuple[str, ...] = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$near")
# The published SDK's $near agrees with a 6,371,000 m sphere to within 0.1 m on 1,000 km
# probes; the IUGG mean radius (6,371,008.8 m) would move its boundary by about 1.4 m there.
EARTH_RADIUS_M = 6_371_000.0

Metadata = Mapping[str, object]
BoolArray = npt.NDArray[np.bool_]

_COMBINATORS = ("$and", "$or")
_RANGE_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?", re.ASCII)
# What Rust's f64 parser accepts (the SDK parses $near with it); Python's float() also takes
# underscores, non-ASCII digits and surrounding space, which must not get through.
_RUST_FLOAT = re.compile(
    r"[+-]?(?:inf|infinity|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?)",
    re.ASCII | re.IGNORECASE,
)
# Unicode White_Space, which is what Rust's str::trim strips (str.strip would also strip
# the ASCII separators \x1c-\x1f).
_RUST_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_TWO_63 = 2.0**63


class Predicate(Protocol):
    """Whether one document's metadata passes a filter."""

    def __call__(self, metadata: Metadata | None, /) -> bool: ...


# ---------------------------------------------------------------------------------------
# Texts and numbers


def _positional(x: float) -> str:
    # Shortest round-trip digits, never an exponent: what Rust's `{}` prints for an f64.
    return np.format_float_positional(x, unique=True, trim="-")


def _special(x: float) -> str | None:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return None


def filter_value_text(value: str | int | float) -> str:
    """The text a filter value is compared as (see the module docstring)."""
    if isinstance(value, str):
        return value
    x = float(value)
    special = _special(x)
    if special is not None:
        return special
    if x.is_integer() and -_TWO_63 < x < _TWO_63:
        return str(int(x))
    return _positional(x)


def metadata_text(value: object) -> str | None:
    """The text a metadata value is compared as, or ``None`` when it counts as missing.

    Strings are used as they are. Other scalars are written the way the published SDK
    stores them when a document arrives as a dict: ``True`` -> ``"true"``, ``3`` -> ``"3"``,
    ``1.0`` -> ``"1.0"``, ``1e16`` -> ``"10000000000000000"``. Anything else counts as
    missing, so it never matches.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        special = _special(value)
        if special is not None:
            return special
        text = repr(value)
        return _positional(value) if "e" in text else text
    return None


def _as_number(text: str) -> float | None:
    return float(text) if _NUMBER.fullmatch(text) else None


def _parse_rust_float(text: str) -> float | None:
    text = text.strip(_RUST_WHITESPACE)
    return float(text) if _RUST_FLOAT.fullmatch(text) else None


def _parse_location(text: str) -> tuple[float, float] | None:
    parts = text.split(",")
    if len(parts) != 2:
        return None
    lat, lng = (_parse_rust_float(part) for part in parts)
    if lat is None or lng is None or not (math.isfinite(lat) and math.isfinite(lng)):
        return None
    return lat, lng


def _haversine_m(
    lat1: float | np.ndarray, lng1: float | np.ndarray, lat2: float, lng2: float
) -> float | np.ndarray:
    phi1, phi2 = np.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lng2) - np.radians(lng1)
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * math.cos(phi2) * np.sin(dlmb / 2) ** 2
    # Coordinates outside the usual ranges are accepted (the SDK does too) and can push
    # rounding past 1.
    a = np.clip(a, 0.0, 1.0)
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))


# ---------------------------------------------------------------------------------------
# Columns: per-field arrays so that a compiled filter can be applied to many documents
# with vector operations rather than one Python call per document.


@dataclass
class _Column:
    codes: npt.NDArray[np.intp]  # index into uniques; len(uniques) where the field is missing
    uniques: list[str]
    index: dict[str, int]
    _numbers: npt.NDArray[np.float64] | None = field(default=None, repr=False)
    _locations: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def numbers(self) -> npt.NDArray[np.float64]:
        """Each unique text as a number, NaN where it is not one."""
        if self._numbers is None:
            values = [_as_number(text) for text in self.uniques]
            self._numbers = np.array(
                [math.nan if v is None else v for v in values], dtype=np.float64
            )
        return self._numbers

    def locations(self) -> tuple[np.ndarray, np.ndarray]:
        """Each unique text as (lat, lng), NaN where it is not a location."""
        if self._locations is None:
            parsed = [_parse_location(text) for text in self.uniques]
            lat = np.array([math.nan if p is None else p[0] for p in parsed], dtype=np.float64)
            lng = np.array([math.nan if p is None else p[1] for p in parsed], dtype=np.float64)
            self._locations = (lat, lng)
        return self._locations


class MetadataColumns:
    """A read-only snapshot of many documents' metadata, in row order.

    Each field's column is built on first use and kept, so a caller that keeps one of these
    while its documents do not change pays the per-document cost once per field; after a
    change, build a new one.
    """

    def __init__(self, metadatas: Sequence[Metadata | None]) -> None:
        self._metadatas = metadatas
        self._columns: dict[str, _Column] = {}

    def __len__(self) -> int:
        return len(self._metadatas)

    def column(self, name: str) -> _Column:
        col = self._columns.get(name)
        if col is None:
            col = self._columns[name] = self._build(name)
        return col

    def _build(self, name: str) -> _Column:
        index: dict[str, int] = {}
        raw: list[int] = []
        missing = -1
        for metadata in self._metadatas:
            value = metadata.get(name) if metadata is not None else None
            text = metadata_text(value) if value is not None else None
            if text is None:
                raw.append(missing)
            else:
                code = index.get(text)
                if code is None:
                    code = index[text] = len(index)
                raw.append(code)
        codes = np.array(raw, dtype=np.intp)
        # Missing rows point one past the last unique so a lookup table of len(uniques) + 1
        # whose last entry is False settles them without a separate mask.
        codes[codes == missing] = len(index)
        return _Column(codes=codes, uniques=list(index), index=index)


# ---------------------------------------------------------------------------------------
# Compiled nodes


class _Node(Protocol):
    def matches(self, metadata: Metadata | None) -> bool: ...
    def mask(self, columns: MetadataColumns) -> BoolArray: ...


@dataclass(frozen=True)
class _Leaf:
    field: str
    op: str
    test: Callable[[str], bool]
    table: Callable[[_Column], BoolArray]  # one entry per unique text, plus False for missing

    def matches(self, metadata: Metadata | None) -> bool:
        if metadata is None:
            return False
        value = metadata.get(self.field)
        if value is None:
            return False
        text = metadata_text(value)
        return text is not None and self.test(text)

    def mask(self, columns: MetadataColumns) -> BoolArray:
        col = columns.column(self.field)
        return self.table(col)[col.codes]


@dataclass(frozen=True)
class _All:
    parts: tuple[_Node, ...]

    def matches(self, metadata: Metadata | None) -> bool:
        return all(part.matches(metadata) for part in self.parts)

    def mask(self, columns: MetadataColumns) -> BoolArray:
        out = self.parts[0].mask(columns)
        for part in self.parts[1:]:
            out &= part.mask(columns)
        return out


@dataclass(frozen=True)
class _Any:
    parts: tuple[_Node, ...]

    def matches(self, metadata: Metadata | None) -> bool:
        return any(part.matches(metadata) for part in self.parts)

    def mask(self, columns: MetadataColumns) -> BoolArray:
        out = self.parts[0].mask(columns)
        for part in self.parts[1:]:
            out |= part.mask(columns)
        return out


def _with_missing(hits: BoolArray) -> BoolArray:
    return np.append(hits, False)


def _lookup_table(col: _Column, texts: Sequence[str], keep_listed: bool) -> BoolArray:
    out = np.zeros(len(col.uniques) + 1, dtype=bool)
    if not keep_listed:
        out[:-1] = True
    for text in texts:
        code = col.index.get(text)
        if code is not None:
            out[code] = keep_listed
    return out


def _equality_leaf(name: str, op: str, texts: tuple[str, ...]) -> _Leaf:
    wanted = frozenset(texts)
    keep_listed = op in ("$eq", "$in")
    return _Leaf(
        name,
        op,
        (lambda t: t in wanted) if keep_listed else (lambda t: t not in wanted),
        lambda col: _lookup_table(col, texts, keep_listed),
    )


def _range_leaf(name: str, op: str, text: str) -> _Leaf:
    compare = _RANGE_OPS[op]
    number = _as_number(text)
    if number is not None:

        def test(t: str) -> bool:
            n = _as_number(t)
            return n is not None and compare(n, number)

        def table(col: _Column) -> BoolArray:
            with np.errstate(invalid="ignore"):
                hits = compare(col.numbers(), number)  # NaN (not a number) compares False
            return _with_missing(np.asarray(hits, dtype=bool))

    else:

        def test(t: str) -> bool:
            return _as_number(t) is None and compare(t, text)

        def table(col: _Column) -> BoolArray:
            numeric = ~np.isnan(col.numbers())
            hits = np.fromiter(
                (compare(u, text) for u in col.uniques), dtype=bool, count=len(col.uniques)
            )
            return _with_missing(hits & ~numeric)

    return _Leaf(name, op, test, table)


def _near_leaf(name: str, lat: float, lng: float, radius: float) -> _Leaf:
    def test(t: str) -> bool:
        loc = _parse_location(t)
        return loc is not None and bool(_haversine_m(loc[0], loc[1], lat, lng) <= radius)

    def table(col: _Column) -> BoolArray:
        lats, lngs = col.locations()
        with np.errstate(invalid="ignore"):
            hits = _haversine_m(lats, lngs, lat, lng) <= radius
        return _with_missing(np.asarray(hits, dtype=bool))

    return _Leaf(name, "$near", test, table)


# ---------------------------------------------------------------------------------------
# Validation and compilation


def _kind(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _scalar_text(value: object, path: str) -> str:
    # bool is an int to Python; the SDK reads True as 1, which is never what a caller means.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"{path}: value must be a str, int or float, got {_kind(value)}")
    try:
        return filter_value_text(value)
    except OverflowError:
        digits = len(str(abs(value)))
        raise TypeError(f"{path}: integer of {digits} digits is too large for a number") from None


def _near_args(value: object, path: str) -> tuple[float, float, float]:
    if not isinstance(value, str):
        raise TypeError(f"{path}: value must be a str 'lat,lng,radiusMeters', got {_kind(value)}")
    parts = value.split(",")
    numbers = [_parse_rust_float(part) for part in parts]
    if len(parts) != 3 or any(n is None or not math.isfinite(n) for n in numbers):
        raise ValueError(
            f"{path}: invalid value {value!r}: expected 'lat,lng,radiusMeters', three finite "
            "numbers, for example '40.7580,-73.9855,5000'"
        )
    lat, lng, radius = (float(n) for n in numbers)  # type: ignore[arg-type]
    if radius < 0:
        raise ValueError(f"{path}: invalid radius {parts[2].strip()!r}: must be 0 or more metres")
    return lat, lng, radius


def _compile_leaf(node: Mapping[object, object], path: str) -> _Leaf:
    for key in ("field", "condition"):
        if key not in node:
            raise ValueError(
                f"{path}: missing {key!r} (a filter is a leaf with 'field' and "
                "'condition', or one '$and'/'$or' list)"
            )
    extra = [key for key in node if key not in ("field", "condition")]
    if extra:
        raise ValueError(f"{path}: unexpected key {extra[0]!r} beside 'field' and 'condition'")
    name = node["field"]
    if not isinstance(name, str):
        raise TypeError(f"{path}.field: must be a str, got {_kind(name)}")
    condition = node["condition"]
    cpath = f"{path}.condition"
    if not isinstance(condition, Mapping):
        raise TypeError(f"{cpath}: must be a dict with one operator, got {_kind(condition)}")
    if len(condition) != 1:
        found = ", ".join(repr(k) for k in condition) or "none"
        raise ValueError(f"{cpath}: expected exactly one operator, got {found}")
    ((op, value),) = condition.items()
    if op not in OPERATORS:
        known = ", ".join(OPERATORS)
        raise ValueError(f"{cpath}: unknown operator {op!r} (expected one of {known})")
    vpath = f"{cpath}.{op}"
    if op in ("$in", "$nin"):
        if not isinstance(value, list):
            raise TypeError(f"{vpath}: value must be a list, got {_kind(value)}")
        if not value:
            raise ValueError(f"{vpath}: list must not be empty")
        texts = tuple(_scalar_text(item, f"{vpath}[{i}]") for i, item in enumerate(value))
        return _equality_leaf(name, op, texts)
    if op == "$near":
        return _near_leaf(name, *_near_args(value, vpath))
    text = _scalar_text(value, vpath)
    if op in ("$eq", "$ne"):
        return _equality_leaf(name, op, (text,))
    return _range_leaf(name, op, text)


def _compile(node: object, path: str) -> _Node:
    if not isinstance(node, Mapping):
        raise TypeError(f"{path}: a filter must be a dict, got {_kind(node)}")
    combinators = [key for key in _COMBINATORS if key in node]
    if not combinators:
        return _compile_leaf(node, path)
    if len(node) != 1:
        other = next(key for key in node if key != combinators[0])
        raise ValueError(f"{path}: unexpected key {other!r} beside {combinators[0]!r}")
    key = combinators[0]
    parts = node[key]
    if not isinstance(parts, list):
        raise TypeError(f"{path}.{key}: must be a list of filters, got {_kind(parts)}")
    if not parts:
        raise ValueError(f"{path}.{key}: list must not be empty")
    compiled = tuple(_compile(part, f"{path}.{key}[{i}]") for i, part in enumerate(parts))
    return _All(compiled) if key == "$and" else _Any(compiled)


class CompiledFilter:
    """A validated filter: call it on one document's metadata, or :meth:`mask` many."""

    __slots__ = ("_root", "source")

    def __init__(self, source: Mapping[str, object]) -> None:
        self.source = source
        self._root = _compile(source, "filter")

    def __call__(self, metadata: Metadata | None, /) -> bool:
        return self._root.matches(metadata)

    def mask(self, metadatas: Sequence[Metadata | None] | MetadataColumns) -> BoolArray:
        """One bool per document, in order."""
        columns = (
            metadatas if isinstance(metadatas, MetadataColumns) else MetadataColumns(metadatas)
        )
        if len(columns) == 0:
            return np.zeros(0, dtype=bool)
        return self._root.mask(columns)

    def __repr__(self) -> str:
        return f"CompiledFilter({self.source!r})"


def filter_key(filter: object) -> Hashable | None:
    """A hashable value that two filters share only if they are the same JSON value, keys in
    the same order; ``None`` if ``filter`` holds anything but dicts with str keys, lists,
    str, int, float, bool and None (such a filter is not worth remembering).

    Floats are told apart by ``repr`` (``0.0`` from ``-0.0``, and a NaN matches itself), and
    every scalar by its type (``True`` from ``1``).
    """
    kind = type(filter)
    if kind is dict:
        items = []
        for key, value in filter.items():  # type: ignore[attr-defined]
            part = filter_key(value)
            if type(key) is not str or part is None:
                return None
            items.append((key, part))
        return (dict, tuple(items))
    if kind is list:
        parts = [filter_key(value) for value in filter]  # type: ignore[attr-defined]
        return None if any(p is None for p in parts) else (list, tuple(parts))
    if kind is float:
        return (float, repr(filter))
    if kind in (str, int, bool) or filter is None:
        return (kind, filter)
    return None


def compile_filter(filter: Mapping[str, object]) -> CompiledFilter:
    """Validate ``filter`` and return its predicate.

    Raises ``TypeError`` for a value of the wrong type and ``ValueError`` for a malformed
    filter; either message starts with the path of the problem, such as
    ``filter.$and[1].condition: unknown operator '$regex'``.
    """
    return CompiledFilter(filter)


def filter_mask(
    filter: Mapping[str, object] | CompiledFilter,
    metadatas: Sequence[Metadata | None] | MetadataColumns,
) -> BoolArray:
    """Which of ``metadatas`` pass ``filter``, as a bool array in the same order.

    Pass a :class:`MetadataColumns` kept between calls to skip the per-document work.
    """
    compiled = filter if isinstance(filter, CompiledFilter) else compile_filter(filter)
    return compiled.mask(metadatas)
