"""pytest plugin (entry point ``pytest11``): the ``clause`` marker."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "clause(id, ...): ties a test to numbered clauses of the SessionIndex document"
    )
