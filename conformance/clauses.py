"""The clause registry (``clauses.toml``): one entry per testable sentence of the document."""

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from conformance.targets.capabilities import ALL_CAPABILITIES

STRENGTHS = ("MUST", "SHOULD")
REGISTRY_FILE = "clauses.toml"
_KNOWN_KEYS = {"id", "section", "quote", "strength", "requires", "source", "note", "factor"}


class RegistryError(ValueError):
    """The clause registry is malformed; the message names the entry and the problem."""


@dataclass(frozen=True)
class Clause:
    id: str
    section: str
    quote: str
    strength: str
    requires: frozenset[str] = frozenset()
    source: str = "session-index"
    note: str | None = None
    factor: float | None = None

    @property
    def is_must(self) -> bool:
        return self.strength == "MUST"


def _clause(entry: Mapping[str, Any], where: str) -> Clause:
    unknown = set(entry) - _KNOWN_KEYS
    if unknown:
        raise RegistryError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("id", "section", "quote", "strength"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise RegistryError(f"{where}: {key!r} must be a non-empty string")
    where = f"{where} ({entry['id']})"
    if entry["strength"] not in STRENGTHS:
        raise RegistryError(
            f"{where}: strength must be one of {STRENGTHS}, got {entry['strength']!r}"
        )
    requires = entry.get("requires", [])
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise RegistryError(f"{where}: 'requires' must be a list of capability names")
    unknown_caps = sorted(set(requires) - ALL_CAPABILITIES)
    if unknown_caps:
        raise RegistryError(
            f"{where}: unknown capabilities {unknown_caps}; known: {sorted(ALL_CAPABILITIES)}"
        )
    factor = entry.get("factor")
    if factor is not None and (not isinstance(factor, int | float) or factor <= 0):
        raise RegistryError(f"{where}: 'factor' must be a positive number")
    return Clause(
        id=entry["id"],
        section=entry["section"],
        quote=entry["quote"],
        strength=entry["strength"],
        requires=frozenset(requires),
        source=entry.get("source", "session-index"),
        note=entry.get("note"),
        factor=None if factor is None else float(factor),
    )


def parse_registry(entries: Iterable[Mapping[str, Any]]) -> dict[str, Clause]:
    """Clauses by id, in registry order; raises :class:`RegistryError` on any problem."""
    clauses: dict[str, Clause] = {}
    for i, entry in enumerate(entries):
        clause = _clause(entry, f"[[clause]] #{i + 1}")
        if clause.id in clauses:
            raise RegistryError(f"[[clause]] #{i + 1}: duplicate id {clause.id!r}")
        clauses[clause.id] = clause
    return clauses


def load_registry(text: str | None = None) -> dict[str, Clause]:
    """Parse ``text`` (TOML), or the registry shipped in this package when ``text`` is None."""
    if text is None:
        text = resources.files("conformance").joinpath(REGISTRY_FILE).read_text("utf-8")
    data = tomllib.loads(text)
    entries = data.get("clause", [])
    if not isinstance(entries, list):
        raise RegistryError("expected [[clause]] tables")
    return parse_registry(entries)


CLAUSES: dict[str, Clause] = load_registry()
