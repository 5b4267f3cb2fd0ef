"""Behavior notes: project credentials are validated when the session is opened."""

import pytest

from conformance.cloud import Project
from conformance.suite.helpers import open_session


@pytest.mark.clause("CREDENTIALS-CHECKED-AT-OPEN")
def test_wrong_key_raises_at_session(bad_client, client, index_name):
    """A client built with a wrong project key is accepted, and ``session()`` raises; the same
    call with the right key succeeds.

    Troubleshooting: the SDK defers authentication to the first push or query, swallows the
    token endpoint's 401/403, or validates nothing.
    """
    with pytest.raises(Exception):  # noqa: B017 - the document only says "raises"
        open_session(bad_client, index_name)
    assert open_session(client, index_name).doc_count == 0


@pytest.mark.clause("CREDENTIALS-CHECKED-AT-OPEN")
def test_unknown_project_raises_at_session(make_client, index_name):
    """A project the cloud does not know is rejected when the session is opened.

    Troubleshooting: the SDK treats an authentication failure as "no such index" and starts an
    empty session.
    """
    ghost = make_client(Project("no-such-project-0000", "no-such-key"))
    with pytest.raises(Exception):  # noqa: B017 - the document only says "raises"
        open_session(ghost, index_name)
