"""Schemathesis over the app's own OpenAPI document: whatever it sends, never a 5xx.

Calls go in-process through ASGI with a valid token for project ``alpha`` and the control
key, so generated bodies reach the handlers rather than stopping at the auth check.
"""

import atexit
import shutil
import tempfile
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error

from mock_cloud.app import create_app
from tests.mock_cloud.conftest import CONTROL_KEY, PROJECTS, settings_for

# schemathesis reads the schema at import time, so the app (and its data dir) exist from then.
_DATA = Path(tempfile.mkdtemp(prefix="mock-cloud-fuzz-"))
atexit.register(shutil.rmtree, _DATA, ignore_errors=True)
APP = create_app(settings_for(_DATA, max_body_bytes=1 << 20))
TOKEN = APP.state.cloud.signer.issue_token("alpha", PROJECTS["alpha"], 3600)
HEADERS = {"Authorization": f"Bearer {TOKEN}", "X-Project-Id": "alpha",
           "X-Control-Key": CONTROL_KEY}

schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
# Injected faults answer 5xx on purpose; resetting mid-run is fine.
schema = schema.exclude(path="/_mock/faults")


@pytest.fixture(scope="module", autouse=True)
def _close_app() -> None:
    yield
    APP.state.cloud.close()


@schema.parametrize()
@hypothesis.settings(max_examples=15, deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    headers = {**HEADERS, **{k: v for k, v in (case.headers or {}).items()
                             if k.lower() not in ("authorization", "x-project-id",
                                                  "x-control-key")}}
    response = case.call(headers=headers)
    case.validate_response(response, checks=[not_a_server_error], headers=headers)
