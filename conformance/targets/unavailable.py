""":class:`UnavailableTarget`: stands in for a target that cannot run on this machine."""

from dataclasses import dataclass
from typing import Any


@dataclass
class UnavailableTarget:
    """Every test is skipped with ``unavailable_reason``, so the report still lists the clauses
    instead of the run failing on an import error."""

    name: str
    unavailable_reason: str
    capabilities: frozenset[str] = frozenset()

    def _unavailable(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(self.unavailable_reason)

    client = document = query_options = get_documents_options = _unavailable
