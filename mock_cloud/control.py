"""The control API under ``/_mock`` (moto-style): reset, inspect, seed and break the cloud.

Mounted only when ``Settings.control_key`` is set; every call needs ``X-Control-Key``.
"""

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field

from mock_cloud.auth import Cloud
from mock_cloud.bodies import json_body, strict_json
from mock_cloud.faults import Fault
from mock_cloud.index_api import Answered, index_info
from protocol.models import ErrorReply, IndexInfo, TokenRequest

_control_key = APIKeyHeader(name="X-Control-Key", auto_error=False, scheme_name="ControlKey")


def require_control_key(request: Request,
                        given: Annotated[str | None, Security(_control_key)]) -> None:
    expected: str | None = request.app.state.cloud.settings.control_key
    if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(403, "X-Control-Key: missing or wrong")


router = APIRouter(prefix="/_mock", tags=["control"],
                   dependencies=[Depends(require_control_key)],
                   responses={400: {"model": ErrorReply}, 403: {"model": ErrorReply},
                              404: {"model": ErrorReply}})


class VectorOverwrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    embedding: list[float] = Field(min_length=1)


class FaultRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    route: str = Field(min_length=1, description="a route template such as "
                       "/index/{name}/url, or a concrete path")
    method: str | None = Field(None, description="only calls with this method; any if absent")
    count: int = Field(1, ge=1, le=1_000_000)
    status: int | None = Field(503, ge=400, le=599,
                               description="the status to fail with; null only delays")
    delay_s: float = Field(0, ge=0, le=300)


@router.post("/reset")
def reset(cloud: Cloud) -> dict[str, bool]:
    cloud.reset()
    return {"ok": True}


@router.post("/settle")
def settle(cloud: Cloud, timeout_s: Annotated[float, Query(
        ge=0, le=600, description="give up after this long")] = 60) -> dict[str, bool]:
    """Wait until the work done after a change (building download files, checkpointing) is
    finished, so that a benchmark or probe times the client rather than the cloud."""
    return {"idle": cloud.background.wait_idle(timeout_s)}


@router.get("/state")
def state(cloud: Cloud) -> dict[str, Any]:
    return cloud.store.state()


@router.get("/requests")
def requests(cloud: Cloud, since: Annotated[int | None, Query(
        description="only entries with a larger seq")] = None) -> list[dict[str, Any]]:
    return cloud.log.entries(since)


@router.get("/telemetry")
def telemetry(cloud: Cloud) -> list[dict[str, Any]]:
    return cloud.telemetry.list()


@router.post("/projects", openapi_extra=json_body(TokenRequest))
def add_project(body: Annotated[TokenRequest, Depends(strict_json(TokenRequest))],
                cloud: Cloud) -> dict[str, bool]:
    cloud.store.upsert_project(body.projectId, body.projectKey)
    return {"ok": True}


@router.put("/indexes/{project}/{name}/vectors/{doc_id:path}", response_model=IndexInfo,
            response_model_exclude_none=True, openapi_extra=json_body(VectorOverwrite))
def overwrite_vector(project: str, name: str, doc_id: str,
                     body: Annotated[VectorOverwrite, Depends(strict_json(VectorOverwrite))],
                     cloud: Cloud, answered: Answered) -> IndexInfo:
    """Replace one stored vector (and bump ``updated_at``), as if the cloud had changed it."""
    record = cloud.store.overwrite_vector(project, name, doc_id, body.embedding)
    cloud.changed(project, name, after=answered)
    return index_info(record)


@router.post("/faults", openapi_extra=json_body(FaultRequest))
def add_fault(body: Annotated[FaultRequest, Depends(strict_json(FaultRequest))],
              cloud: Cloud) -> dict[str, Any]:
    """The next ``count`` matching calls fail with ``status`` (after ``delay_s``), or with
    ``status: null`` are only delayed."""
    method = body.method.upper() if body.method else None
    cloud.faults.add(Fault(body.route, method, body.count, body.status, body.delay_s))
    return {"ok": True, "pending": cloud.faults.pending()}


@router.delete("/faults")
def clear_faults(cloud: Cloud) -> dict[str, bool]:
    cloud.faults.clear()
    return {"ok": True}
