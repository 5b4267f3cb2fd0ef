"""A plain-Python model of a custom-vector session and its cloud copy, written from the document
and PROTOCOL.md alone (nothing here comes from ``reference/``).

It is what the state-machine test compares an SDK with: a dict of id -> (text, metadata,
vector) that ``add`` upserts into, ``push`` copies to the cloud and ``resume`` copies back.
Queries are pure semantic (``alpha=1.0``): every document that passes the filter is scored with
its cosine similarity to the query, clamped at 0.

The filter evaluator follows PROTOCOL.md's rules: a leaf ``{"field", "condition": {op: value}}``,
``$and`` / ``$or`` lists, range operators comparing numerically when both sides are numbers,
documents lacking the field (or without metadata) never matching, not even ``$ne`` / ``$nin``.
Where the protocol is silent the choice is written next to the code; the generated filters in
:mod:`conformance.strategies` stay clear of those cases.
"""

import copy
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from conformance.vectors import checksum

EARTH_RADIUS_M = 6_371_000.0
# "Numbers" as humans write them in metadata: optional minus, digits, optional fraction.
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True)
class ModelDoc:
    id: str
    text: str
    metadata: dict[str, Any] | None
    vector: tuple[float, ...]


@dataclass(frozen=True)
class ModelHit:
    id: str
    score: float


# --- filters --------------------------------------------------------------------------------
def as_number(value: object) -> float | None:
    """A filter or metadata value as a number, or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return float(value)
    return None


def _equal(stored: object, wanted: object) -> bool:
    if isinstance(stored, str) and isinstance(wanted, str):
        return stored == wanted
    # Not written down: a number against a numeric string. Compared as numbers here; the
    # generated filters never ask.
    a, b = as_number(stored), as_number(wanted)
    return a is not None and b is not None and a == b


def _ordered(stored: object, op: str, bound: object) -> bool:
    a, b = as_number(stored), as_number(bound)
    if a is not None and b is not None:
        left: Any
        right: Any
        left, right = a, b
    elif a is None and b is None and isinstance(stored, str) and isinstance(bound, str):
        left, right = stored, bound  # two words: code point order
    else:
        # Not written down: a number against a word. No match here; never generated.
        return False
    if op == "$gt":
        return bool(left > right)
    if op == "$gte":
        return bool(left >= right)
    if op == "$lt":
        return bool(left < right)
    return bool(left <= right)


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres on a sphere of radius 6,371 km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


def _location(text: object) -> tuple[float, float] | None:
    if not isinstance(text, str):
        return None
    parts = text.split(",")
    if len(parts) != 2:
        return None
    try:
        lat, lng = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    return (lat, lng) if math.isfinite(lat) and math.isfinite(lng) else None


def _near(stored: object, value: object) -> bool:
    if not isinstance(value, str):
        raise TypeError("$near: expected 'lat,lng,radiusMeters'")
    lat, lng, radius = (float(p) for p in value.split(","))
    here = _location(stored)
    return here is not None and haversine_m(here[0], here[1], lat, lng) <= radius


def matches(flt: Mapping[str, Any], metadata: Mapping[str, Any] | None) -> bool:
    """Whether a document with ``metadata`` passes ``flt``."""
    if "$and" in flt:
        return all(matches(part, metadata) for part in flt["$and"])
    if "$or" in flt:
        return any(matches(part, metadata) for part in flt["$or"])
    ((op, value),) = flt["condition"].items()
    if metadata is None or flt["field"] not in metadata:
        return False
    stored = metadata[flt["field"]]
    if op == "$eq":
        return _equal(stored, value)
    if op == "$ne":
        return not _equal(stored, value)
    if op == "$in":
        return any(_equal(stored, v) for v in value)
    if op == "$nin":
        return not any(_equal(stored, v) for v in value)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return _ordered(stored, op, value)
    if op == "$near":
        return _near(stored, value)
    raise ValueError(f"unknown operator {op!r}")


# --- similarity -----------------------------------------------------------------------------
def clamped_cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    if norm == 0:
        return 0.0
    return min(1.0, max(0.0, dot / norm))


# --- the session and its cloud copy ---------------------------------------------------------
class SessionModel:
    """One session (``docs``) and the cloud index of its name (``cloud``, None until pushed)."""

    def __init__(self) -> None:
        self.docs: dict[str, ModelDoc] = {}
        self.cloud: dict[str, ModelDoc] | None = None

    def __len__(self) -> int:
        return len(self.docs)

    def add(self, docs: Iterable[ModelDoc], *, upsert: bool = True) -> tuple[int, int]:
        """Insert new ids; replace existing ones only with ``upsert``. Returns (added, updated)."""
        added = updated = 0
        for doc in docs:
            if doc.id in self.docs:
                if not upsert:
                    continue
                updated += 1
            else:
                added += 1
            self.docs[doc.id] = doc
        return added, updated

    def delete(self, ids: Iterable[str]) -> int:
        """Remove ids; unknown ones are ignored. Returns how many were removed."""
        return sum(1 for doc_id in ids if self.docs.pop(doc_id, None) is not None)

    def get(self, ids: Iterable[str] | None = None) -> list[ModelDoc]:
        if ids is None:
            return list(self.docs.values())
        return [self.docs[i] for i in ids if i in self.docs]

    def scores(
        self, vector: Sequence[float], flt: Mapping[str, Any] | None = None
    ) -> dict[str, float]:
        """Every candidate's score: the documents passing ``flt``, with clamped cosine."""
        return {
            d.id: clamped_cosine(d.vector, vector)
            for d in self.docs.values()
            if flt is None or matches(flt, d.metadata)
        }

    def query(
        self, vector: Sequence[float], top_k: int = 5, flt: Mapping[str, Any] | None = None
    ) -> list[ModelHit]:
        """The ``top_k`` best candidates; equal scores in no promised order."""
        ranked = sorted(self.scores(vector, flt).items(), key=lambda kv: -kv[1])
        return [ModelHit(i, s) for i, s in ranked[:top_k]]

    def push(self) -> None:
        if not self.docs:
            raise ValueError("push of an empty session")
        self.cloud = copy.deepcopy(self.docs)

    def resume(self) -> None:
        self.docs = copy.deepcopy(self.cloud) if self.cloud is not None else {}

    def cloud_checksums(self) -> dict[str, str] | None:
        if self.cloud is None:
            return None
        return {i: checksum(d.vector) for i, d in self.cloud.items()}


# --- comparing an SDK's answer with the model's -------------------------------------------------
SCORE_TOLERANCE = 1e-4


def query_problems(
    scores: Mapping[str, float],
    top_k: int,
    hits: Sequence[tuple[str, float]],
    tolerance: float = SCORE_TOLERANCE,
) -> list[str]:
    """What is wrong with an SDK's ``hits`` (id, score), best first, for a query whose
    candidates the model scored as ``scores``; empty when the answer is acceptable.

    Ties are sets: when several candidates share the k-th best score (within ``tolerance``),
    any of them may fill the last places. So the check is that the answer has
    ``min(top_k, candidates)`` distinct candidates, with the model's scores, in non-increasing
    order, holding every candidate that scores clearly above the k-th best and none that
    scores clearly below it.
    """
    problems: list[str] = []
    got = [doc_id for doc_id, _ in hits]
    expected_len = min(top_k, len(scores))
    if len(got) != expected_len:
        problems.append(f"expected {expected_len} results, got {len(got)}: {got}")
    if len(set(got)) != len(got):
        problems.append(f"an id appears twice: {got}")
    strangers = [i for i in got if i not in scores]
    if strangers:
        problems.append(f"results {strangers} are not candidates (deleted, or fail the filter)")
    for doc_id, score in hits:
        if doc_id in scores and abs(score - scores[doc_id]) > tolerance:
            problems.append(f"{doc_id!r} scored {score:.6f}, expected {scores[doc_id]:.6f}")
    reported = [s for _, s in hits]
    if any(b > a + tolerance for a, b in pairwise(reported)):
        problems.append(f"scores are not in descending order: {reported}")
    if expected_len and expected_len < len(scores):
        kth = sorted(scores.values(), reverse=True)[expected_len - 1]
        must = sorted(i for i, s in scores.items() if s > kth + tolerance)
        missing = [i for i in must if i not in got]
        if missing:
            problems.append(
                f"missing {missing}, which score above the k-th best ({kth:.6f}): "
                + ", ".join(f"{i}={scores[i]:.6f}" for i in missing)
            )
        low = [i for i in got if i in scores and scores[i] < kth - tolerance]
        if low:
            problems.append(
                f"{low} score below the k-th best ({kth:.6f}): "
                + ", ".join(f"{i}={scores[i]:.6f}" for i in low)
            )
    return problems
