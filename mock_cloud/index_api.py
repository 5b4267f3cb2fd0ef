"""The routes under ``/index`` (PROTOCOL.md, "Endpoints under I").

Literal routes (``/push``, ``/init``, ``/telemetry``) are declared before the ``{name}`` ones
and job routes end in ``/status`` or ``/confirm``, so none is shadowed by an index name.
"""

import logging
import threading
import time
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    BackgroundTasks,
    Depends,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
)
from fastapi.concurrency import run_in_threadpool

from mock_cloud.auth import Cloud, Project, TokenProject
from mock_cloud.bodies import (
    declared_length,
    json_body,
    parse_json,
    read_body,
    stream_body,
    strict_json,
    validate,
)
from mock_cloud.cloud import MockCloud
from mock_cloud.signing import encode_blob_id
from mock_cloud.store import IndexRecord, JobRecord, NotFound, check_documents
from protocol.documents import StoredDocument, encode_documents
from protocol.models import (
    AddDocsRequest,
    DeleteDocsRequest,
    DocumentRecord,
    ErrorReply,
    IndexInfo,
    InitReply,
    InitRequest,
    JobReply,
    JobStatus,
    PushDocument,
    PushRequest,
    TelemetryEvent,
    UrlReply,
)
from protocol.names import validate_index_name
from protocol.push import PushReader
from protocol.upload import decode_upload

log = logging.getLogger("mock_cloud")
router = APIRouter(prefix="/index", tags=["index"], responses={
    400: {"model": ErrorReply}, 401: {"model": ErrorReply}, 403: {"model": ErrorReply},
    404: {"model": ErrorReply}, 413: {"model": ErrorReply}})

# Job replies carry extra counts (docCount, added, ...) that JobReply would filter out.
_JOB: dict[int | str, dict[str, Any]] = {200: {"model": JobReply}}
# How long GET /url waits for a build under way before answering anyway (see ensure()).
URL_WAIT_S = 15.0
IndexName = Annotated[str, Path(description="index name")]
JobId = Annotated[str, Path(alias="jobId")]


def _answered(tasks: BackgroundTasks) -> threading.Event:
    """Set once the answer to this request has been sent (see :meth:`MockCloud.changed`)."""
    event = threading.Event()
    tasks.add_task(event.set)
    return event


Answered = Annotated[threading.Event, Depends(_answered)]


def index_info(record: IndexRecord) -> IndexInfo:
    return IndexInfo(id=f"idx_{record.iid}", name=record.name, version=str(record.version),
                     model_id=record.model_id, model_version="1", dimension=record.dimension,
                     document_count=record.doc_count, status="ready",
                     created_at=record.created_at, updated_at=record.updated_at)


def _name(name: str) -> str:
    validate_index_name(name, field="name")
    return name


def _job_reply(job: JobRecord, **extra: Any) -> dict[str, Any]:
    return {"jobId": job.id, "status": job.status, "indexName": job.index_name, **extra}


def _completed_job(cloud: MockCloud, project: str, record: IndexRecord, kind: str,
                   answered: threading.Event, stored: Any = None,
                   **extra: Any) -> dict[str, Any]:
    job = cloud.store.create_job(project, record.name, kind, "completed",
                                 model_id=record.model_id, doc_count=record.doc_count,
                                 dimension=record.dimension)
    cloud.changed(project, record.name, stored, after=answered)
    return _job_reply(job, docCount=record.doc_count, **extra)


# --- literal routes -------------------------------------------------------------------------
@router.get("/", response_model=list[IndexInfo], response_model_exclude_none=True)
def list_indexes(project: Project, cloud: Cloud) -> list[IndexInfo]:
    return [index_info(r) for r in cloud.store.list_indexes(project)]


router.add_api_route("", list_indexes, methods=["GET"], response_model=list[IndexInfo],
                     response_model_exclude_none=True, include_in_schema=False)


@router.post("/push", response_model=None, responses=_JOB, openapi_extra=json_body(PushRequest))
async def push_index(request: Request, project: Project, cloud: Cloud,
                     answered: Answered) -> dict[str, Any]:
    """Create or replace an index with every document and its embedding, in one transaction."""
    started = time.monotonic()
    limit = cloud.settings.max_body_bytes
    reader = PushReader(declared_length(request, limit), cloud.row_helper)
    try:
        # Decoded as it arrives, and never kept whole (see PushReader).
        size = await stream_body(request, limit, reader.feed)
    except BaseException:
        reader.close()
        raise
    read = time.monotonic()

    def apply() -> dict[str, Any]:
        try:
            push = reader.finish()
        finally:
            reader.close()
        decoded = time.monotonic()
        record = cloud.store.replace_index(project, push.index_name, push.model_id, push.docs,
                                           push.embeddings, checked=True)
        log.debug("push %r: %d docs, %d bytes: read and parse %.2fs, decode %.2fs, "
                  "store %.2fs; rows parsed by %s, %d bytes of their text kept",
                  push.index_name, len(push.docs), size, read - started, decoded - read,
                  time.monotonic() - decoded, reader.helped, reader.kept_text_bytes)
        return _completed_job(cloud, project, record, "push", answered,
                              (record, push.docs, push.embeddings))

    return await run_in_threadpool(apply)


@router.post("/init", response_model=InitReply, openapi_extra=json_body(InitRequest))
def init_upload(body: Annotated[InitRequest, Depends(strict_json(InitRequest))],
                request: Request, project: Project, cloud: Cloud) -> InitReply:
    """Start a ``create_index`` job: the client PUTs the upload blob to ``presignedUrl``."""
    if body.docCount < 1:
        raise ValueError("docCount: an index needs at least one document")
    job = cloud.store.create_job(project, body.indexName, "create", "pending_upload",
                                 model_id=body.modelId, doc_count=body.docCount,
                                 dimension=body.dimension)
    path = f"/_uploads/{job.id}"
    url = str(request.base_url).rstrip("/") + cloud.signer.presign(path, cloud.settings.url_ttl_s)
    return InitReply(jobId=job.id, presignedUrl=url)


def _one_or_many(extra: dict[str, Any]) -> dict[str, Any]:
    content = extra["requestBody"]["content"]["application/json"]
    event = content["schema"]
    content["schema"] = {"anyOf": [event, {"type": "array", "items": event}]}
    return extra


@router.post("/telemetry", openapi_extra=_one_or_many(json_body(TelemetryEvent)))
async def telemetry(request: Request, project: TokenProject, cloud: Cloud) -> dict[str, Any]:
    """One event object or an array of them; recorded, never acted on."""
    data = parse_json(await read_body(request, cloud.settings.max_body_bytes))
    events = data if isinstance(data, list) else [data]
    if not all(isinstance(e, dict) for e in events):
        raise ValueError("body: expected an event object or an array of event objects")
    cloud.telemetry.record(project, events)
    return {"received": len(events)}


# --- jobs -----------------------------------------------------------------------------------
@router.get("/{jobId}/status", response_model=JobStatus, response_model_exclude_none=True)
def job_status(job_id: JobId, project: Project, cloud: Cloud) -> JobStatus:
    job = cloud.store.get_job(project, job_id)
    if job is None:
        raise NotFound(f"job {job_id!r} not found")
    return JobStatus(id=job.id, status=job.status, progress=job.progress,
                     created_at=job.created_at, updated_at=job.updated_at,
                     completed_at=job.completed_at, error_message=job.error)


@router.post("/{jobId}/confirm", response_model=None, responses=_JOB)
def confirm_upload(job_id: JobId, project: Project, cloud: Cloud,
                   answered: Answered) -> dict[str, Any]:
    """Build the index from the uploaded blob. Jobs finish before this returns."""
    job = cloud.store.get_job(project, job_id)
    if job is None:
        raise NotFound(f"job {job_id!r} not found")
    if job.status in ("completed", "failed"):
        return _job_reply(job)
    upload = cloud.upload_path(job.id)
    if not upload.exists():
        raise HTTPException(409, "jobId: nothing was uploaded to this job's presignedUrl yet")
    blob = decode_upload(upload.read_bytes())
    model_id = job.params.get("model_id")
    try:
        if blob.dimension == 0:
            raise ValueError(f"modelId {model_id!r}: the upload carries no vectors and the mock "
                             "cloud never computes embeddings (only 'custom' indexes work here)")
        record = cloud.store.replace_index(project, job.index_name, model_id, blob.docs,
                                           blob.embeddings)
    except ValueError as exc:
        failed = cloud.store.update_job(project, job.id, "failed", error=str(exc))
        return _job_reply(failed)
    finally:
        upload.unlink(missing_ok=True)
    done = cloud.store.update_job(project, job.id, "completed")
    cloud.changed(project, record.name, after=answered)
    return _job_reply(done, docCount=record.doc_count)


# --- one index ------------------------------------------------------------------------------
@router.get("/{name}/url", response_model=UrlReply)
def download_urls(name: IndexName, request: Request, project: Project,
                  cloud: Cloud) -> UrlReply:
    """Presigned URLs of the current version's artifact and documents file (built once)."""
    stamp = cloud.downloads.ensure(project, _name(name), wait_s=URL_WAIT_S)
    blob = encode_blob_id(project, name, str(stamp))
    base = str(request.base_url).rstrip("/")
    ttl = cloud.settings.url_ttl_s
    return UrlReply(indexUrl=base + cloud.signer.presign(f"/_blobs/index/{blob}", ttl),
                    dataUrl=base + cloud.signer.presign(f"/_blobs/data/{blob}", ttl))


@router.get("/{name}/docs", response_model=list[DocumentRecord])
def get_docs(name: IndexName, project: Project, cloud: Cloud,
             doc_ids: Annotated[str | None, Query(alias="docIds",
                                                  description="comma-separated ids")] = None,
             ) -> Response:
    ids = None if doc_ids is None else [i for i in doc_ids.split(",") if i]
    docs = cloud.store.get_docs(project, _name(name), ids)
    return Response(encode_documents(docs), media_type="application/json")


@router.post("/{name}/docs", response_model=None, responses=_JOB,
             openapi_extra=json_body(AddDocsRequest))
async def add_docs(name: IndexName, request: Request, project: Project,
                   cloud: Cloud, answered: Answered) -> dict[str, Any]:
    """Add or upsert documents; each needs an embedding of the index's dimension."""
    _name(name)
    data = parse_json(await read_body(request, cloud.settings.max_body_bytes))

    def apply() -> dict[str, Any]:
        docs, vectors, upsert = _parse_add_docs(data)
        record, added, updated = cloud.store.add_docs(project, name, docs, vectors, upsert)
        return _completed_job(cloud, project, record, "add_docs", answered, added=added,
                              updated=updated)

    return await run_in_threadpool(apply)


def _parse_add_docs(data: Any) -> tuple[list[StoredDocument], list[list[float] | None], bool]:
    if not isinstance(data, dict):
        raise ValueError("body: expected a JSON object")
    rows = data.get("docs")
    if not isinstance(rows, list):
        raise ValueError("docs: required, an array of documents")
    upsert = data.get("upsert", True)
    if not isinstance(upsert, bool):
        raise ValueError("upsert: expected a boolean")
    docs: list[StoredDocument] = []
    vectors: list[list[float] | None] = []
    for i, row in enumerate(rows):
        embedded = isinstance(row, dict) and row.get("embedding") is not None
        doc = validate(PushDocument if embedded else DocumentRecord, row, f"docs[{i}]")
        docs.append(StoredDocument(doc.id, doc.text, doc.metadata, doc.payload))
        vectors.append(doc.embedding if embedded else None)
    check_documents(docs)
    return docs, vectors, upsert


@router.delete("/{name}/docs", response_model=None, responses=_JOB,
               openapi_extra=json_body(DeleteDocsRequest))
def delete_docs(name: IndexName,
                body: Annotated[DeleteDocsRequest, Depends(strict_json(DeleteDocsRequest))],
                project: Project, cloud: Cloud, answered: Answered) -> dict[str, Any]:
    record, removed = cloud.store.delete_docs(project, _name(name), body.docIds)
    return _completed_job(cloud, project, record, "delete_docs", answered, deleted=removed)


@router.get("/{name}", response_model=IndexInfo, response_model_exclude_none=True)
def get_index(name: IndexName, project: Project, cloud: Cloud) -> IndexInfo:
    record = cloud.store.get_index_info(project, _name(name))
    if record is None:
        raise NotFound(f"index {name!r} not found")
    return index_info(record)


@router.delete("/{name}", response_model=bool)
def delete_index(name: IndexName, project: Project, cloud: Cloud) -> bool:
    if not cloud.store.delete_index(project, _name(name)):
        raise NotFound(f"index {name!r} not found")
    cloud.downloads.forget(project, name)
    return True
