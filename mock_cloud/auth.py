"""``POST /auth/token`` and the check every ``/index`` call goes through."""

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from mock_cloud.bodies import json_body, strict_json
from mock_cloud.cloud import MockCloud
from mock_cloud.signing import InvalidSignature
from protocol.models import ErrorReply, TokenReply, TokenRequest

TOKEN_PATH = "/auth/token"
router = APIRouter(tags=["auth"])
_bearer = HTTPBearer(auto_error=False, description="a token from POST /auth/token")
_project_header = APIKeyHeader(name="X-Project-Id", auto_error=False, scheme_name="ProjectId",
                               description="the project the token was issued to")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def get_cloud(request: Request) -> MockCloud:
    cloud: MockCloud = request.app.state.cloud
    return cloud


Cloud = Annotated[MockCloud, Depends(get_cloud)]


@router.post(TOKEN_PATH, response_model=TokenReply, openapi_extra=json_body(TokenRequest),
             responses={401: {"model": ErrorReply}, 400: {"model": ErrorReply}})
async def issue_token(body: Annotated[TokenRequest, Depends(strict_json(TokenRequest))],
                      request: Request, cloud: Cloud) -> TokenReply:
    request.state.project = body.projectId
    key = cloud.store.project_key(body.projectId)
    if key is None or not hmac.compare_digest(key.encode(), body.projectKey.encode()):
        raise HTTPException(401, "invalid projectId or projectKey")
    ttl = cloud.settings.token_ttl_s
    # Rounded down so a client never believes a token lives longer than it does.
    return TokenReply(token=cloud.signer.issue_token(body.projectId, key, ttl),
                      expiresIn=int(ttl))


def _verify(request: Request, cloud: MockCloud,
            credentials: HTTPAuthorizationCredentials | None, claimed: str | None) -> str:
    if claimed:
        request.state.project = claimed
    if credentials is None:
        raise HTTPException(401, "Authorization: a Bearer token is required", _CHALLENGE)
    try:
        project = cloud.signer.verify_token(credentials.credentials, cloud.store.project_key)
    except InvalidSignature as exc:
        raise HTTPException(401, f"Authorization: {exc}", _CHALLENGE) from None
    request.state.project = project
    if claimed and claimed != project:
        raise HTTPException(403, "X-Project-Id: does not match the token's project")
    return project


async def current_project(
    request: Request,
    cloud: Cloud,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    claimed: Annotated[str | None, Security(_project_header)],
) -> str:
    """The caller's project: the token's, which X-Project-Id must repeat (401/403 if not)."""
    project = _verify(request, cloud, credentials, claimed)
    if not claimed:
        raise HTTPException(401, "X-Project-Id: header is required")
    return project


async def token_project(
    request: Request,
    cloud: Cloud,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    claimed: Annotated[str | None, Security(_project_header)],
) -> str:
    """Like :func:`current_project`, but X-Project-Id may be absent: the published SDK posts
    telemetry with the token alone."""
    return _verify(request, cloud, credentials, claimed)


Project = Annotated[str, Depends(current_project)]
TokenProject = Annotated[str, Depends(token_project)]
