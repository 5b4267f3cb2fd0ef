"""The fixtures a suite test uses (loaded by :mod:`conformance.plugin`).

``target``, ``cloud`` (session scope); ``project``, ``make_client``, ``client``, ``bad_client``,
``index_name``, ``record_measurement`` (per test). Each test gets a fresh project, so tests never
see each other's data.
"""

import os
import secrets
import warnings
from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from conformance.calls import close_resource
from conformance.cloud import Cloud, Project, local_cloud
from conformance.results import MEASUREMENT
from conformance.targets import Target, threaded_cloud_ok, unavailable_reason


class MakeClient(Protocol):
    def __call__(self, project: Project | None = None, *, key: str | None = None) -> Any: ...


class RecordMeasurement(Protocol):
    def __call__(self, name: str, value: float, unit: str = "", **details: Any) -> None: ...


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    """The SDK under test (``--target``); skips the test when the target cannot run here."""
    from conformance.plugin import suite_state

    loaded = suite_state(request.config).target()
    reason = unavailable_reason(loaded)
    if reason:
        pytest.skip(reason)
    return loaded


@pytest.fixture(scope="session")
def cloud(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cloud]:
    """The mock cloud: started once per run on a free 127.0.0.1 port, or ``--cloud-url``."""
    url = request.config.getoption("sessionspec_cloud_url")
    if url:
        from conformance.plugin import CONTROL_KEY_ENV

        key = request.config.getoption("sessionspec_control_key") or os.environ.get(CONTROL_KEY_ENV)
        remote = Cloud(url, key)
        try:
            yield remote
        finally:
            remote.close()
        return
    from conformance.plugin import suite_state

    mode = request.config.getoption("sessionspec_cloud_mode")
    in_thread = mode == "thread" or (
        mode == "auto" and threaded_cloud_ok(suite_state(request.config).target())
    )
    with local_cloud(tmp_path_factory.mktemp("mock-cloud"), in_thread=in_thread) as started:
        yield started


@pytest.fixture
def project(cloud: Cloud) -> Project:
    """A new project (random id and key) created through the control API for this test."""
    return cloud.add_project()


@pytest.fixture
def index_name() -> str:
    """A fresh index name for this test."""
    return "idx-" + secrets.token_hex(4)


def _close_all(clients: list[Any]) -> None:
    for client in reversed(clients):
        try:
            close_resource(client)
        except Exception as exc:
            # A client that fails to close is worth a warning, not a verdict on the clause the
            # test was about.
            warnings.warn(f"closing {client!r} failed: {exc!r}", stacklevel=1)


@pytest.fixture
def make_client(target: Target, cloud: Cloud, project: Project) -> Iterator[MakeClient]:
    """``make_client(project=None, *, key=None)``: a new client of the target for ``project``
    (default: this test's project) with its key, or ``key`` instead. Closed after the test."""
    made: list[Any] = []
    default = project

    def make(project: Project | None = None, *, key: str | None = None) -> Any:
        chosen = project or default
        client = target.client(
            project_id=chosen.id,
            project_key=chosen.key if key is None else key,
            auth_url=cloud.auth_url,
            index_url=cloud.index_url,
        )
        made.append(client)
        return client

    yield make
    _close_all(made)


@pytest.fixture
def client(make_client: MakeClient) -> Any:
    """A client of the target for this test's project."""
    return make_client()


@pytest.fixture
def bad_client(make_client: MakeClient, project: Project) -> Any:
    """A client for this test's project with a wrong key (building it must not fail)."""
    return make_client(key=project.key + "-wrong-" + secrets.token_hex(3))



@pytest.fixture
def record_measurement(request: pytest.FixtureRequest) -> RecordMeasurement:
    """``record_measurement(name, value, unit="", **details)``: attach a number to this test's
    result. report.json lists it under the test's ``measurements`` (and a passing test's
    message shows it); JUnit XML carries it as a ``measurement`` property."""

    def record(name: str, value: float, unit: str = "", **details: Any) -> None:
        entry = {"name": name, "value": value, "unit": unit, **details}
        request.node.user_properties.append((MEASUREMENT, entry))

    return record
