"""Presigned downloads (``indexUrl``, ``dataUrl``) and uploads (``create_index``'s PUT).

They carry no Authorization header: the HMAC signature over the path and the expiry in the
query string is the credential, as with a cloud bucket's presigned URLs.
"""

import os
from collections.abc import Iterator
from typing import Annotated, Any, BinaryIO, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from mock_cloud.auth import Cloud
from mock_cloud.bodies import binary_body, read_body
from mock_cloud.signing import InvalidSignature, decode_blob_id
from mock_cloud.store import check_documents
from protocol.models import ErrorReply
from protocol.upload import decode_upload

router = APIRouter(tags=["presigned"], responses={
    400: {"model": ErrorReply}, 403: {"model": ErrorReply}, 404: {"model": ErrorReply}})
_MEDIA = {"index": "application/octet-stream", "data": "application/json"}
_CHUNK = 1 << 20
Exp = Annotated[str | None, Query(description="expiry, ms since the epoch")]
Sig = Annotated[str | None, Query(description="HMAC signature")]


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


@router.get("/_blobs/{kind}/{blob_id}", responses={200: {"content": {
    "application/octet-stream": {}, "application/json": {}}}})
def download(kind: Literal["index", "data"], blob_id: str, request: Request, cloud: Cloud,
             exp: Exp = None, sig: Sig = None) -> StreamingResponse:
    cloud.signer.verify_url(request.url.path, exp, sig)
    try:
        project, name, stamp = decode_blob_id(blob_id)
        version = int(stamp)
    except ValueError:
        raise InvalidSignature("malformed blob id") from None
    request.state.project = project
    path = cloud.downloads.file(project, name, version, kind)
    try:
        # Opened here so a newer version evicting this file mid-download cannot cut it short.
        handle = path.open("rb") if path else None
    except FileNotFoundError:
        handle = None
    if handle is None:
        raise HTTPException(404, f"index {name!r}: this version is gone, ask for a new URL")
    size = os.fstat(handle.fileno()).st_size
    return StreamingResponse(_chunks(handle), media_type=_MEDIA[kind],
                             headers={"Content-Length": str(size)})


@router.put("/_uploads/{jobId}", openapi_extra=binary_body("the upload blob of PROTOCOL.md"))
async def upload(job_id: Annotated[str, Path(alias="jobId")], request: Request, cloud: Cloud,
                 exp: Exp = None, sig: Sig = None) -> dict[str, Any]:
    cloud.signer.verify_url(request.url.path, exp, sig)
    job = cloud.store.get_job(None, job_id)
    if job is None:
        raise HTTPException(404, f"job {job_id!r} not found")
    request.state.project = job.project
    if job.status != "pending_upload":
        raise HTTPException(409, f"job {job_id!r} is {job.status}, not awaiting an upload")
    data = await read_body(request, cloud.settings.max_body_bytes)

    def check_and_keep() -> None:
        blob = decode_upload(data)
        check_documents(blob.docs)
        expected = (job.params.get("doc_count"), job.params.get("dimension"))
        if (len(blob.docs), blob.dimension) != expected:
            raise ValueError(f"upload blob: {len(blob.docs)} docs of dimension {blob.dimension},"
                             f" but init announced docCount={expected[0]},"
                             f" dimension={expected[1]}")
        cloud.upload_path(job_id).write_bytes(data)

    await run_in_threadpool(check_and_keep)
    return {"jobId": job_id, "received": len(data)}
