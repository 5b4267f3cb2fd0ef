"""HTTP to the cloud, as PROTOCOL.md describes it: a token from the auth URL, then bearer calls
under the index URL, and unauthenticated presigned downloads."""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from protocol import ArtifactReader, IndexArtifact, StoredDocument, decode_documents
from protocol.models import IndexInfo as WireIndexInfo
from protocol.models import JobReply, TokenReply, UrlReply
from protocol.push import PushBody, encode_push
from reference.errors import AuthenticationError, CloudError, IndexNotFoundError

# Large pushes and downloads (hundreds of MB) must not time out while they stream.
_TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=600.0, pool=10.0)
_REFRESH_MARGIN_S = 30.0


@dataclass
class DownloadedIndex:
    info: WireIndexInfo
    artifact: IndexArtifact
    documents: list[StoredDocument]


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return str(body)[:200]


class CloudTransport:
    def __init__(self, project_id: str, project_key: str, auth_url: str, index_url: str) -> None:
        self.project_id = project_id
        self._project_key = project_key
        self.auth_url = auth_url
        self.index_url = index_url.rstrip("/")
        self._http = httpx.Client(timeout=_TIMEOUT)
        self._token: str | None = None
        self._token_expiry = 0.0

    def close(self) -> None:
        self._http.close()

    # --- auth -----------------------------------------------------------------------------
    def authenticate(self) -> None:
        """Fetch a fresh token; rejected credentials raise :class:`AuthenticationError`."""
        try:
            response = self._http.post(
                self.auth_url, json={"projectId": self.project_id, "projectKey": self._project_key}
            )
        except httpx.HTTPError as exc:
            raise CloudError(f"cannot reach the auth URL {self.auth_url}: {exc}") from exc
        if response.status_code in (401, 403):
            raise AuthenticationError(
                f"project {self.project_id!r}: credentials rejected ({_error_text(response)})",
                response.status_code,
            )
        if response.is_error:
            raise CloudError(
                f"auth failed with HTTP {response.status_code}: {_error_text(response)}",
                response.status_code,
            )
        reply = TokenReply.model_validate_json(response.content)
        self._token = reply.token
        self._token_expiry = time.monotonic() + reply.expiresIn

    def _headers(self) -> dict[str, str]:
        if self._token is None or time.monotonic() > self._token_expiry - _REFRESH_MARGIN_S:
            self.authenticate()
        return {"Authorization": f"Bearer {self._token}", "X-Project-Id": self.project_id}

    def _call(
        self, method: str, path: str, *, body: bytes | None = None, **kwargs: Any
    ) -> httpx.Response:
        url = f"{self.index_url}/{path}"
        for attempt in (1, 2):
            headers = self._headers()
            if body is not None:
                headers["Content-Type"] = "application/json"
                headers["Content-Length"] = str(len(body))
                kwargs["content"] = _Chunks(body)
            try:
                response = self._http.request(method, url, headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                raise CloudError(f"{method} {url}: {exc}") from exc
            if response.status_code == 401 and attempt == 1:
                self._token = None  # expired early or revoked: one fresh token, then give up
                continue
            break
        if response.status_code in (401, 403):
            raise AuthenticationError(
                f"{method} {url}: {_error_text(response)}", response.status_code
            )
        if response.status_code == 404:
            raise IndexNotFoundError(f"{method} {url}: not found", 404)
        if response.is_error:
            raise CloudError(
                f"{method} {url}: HTTP {response.status_code}: {_error_text(response)}",
                response.status_code,
            )
        return response

    # --- indexes --------------------------------------------------------------------------
    def index_info(self, name: str) -> WireIndexInfo | None:
        try:
            response = self._call("GET", _quote(name))
        except IndexNotFoundError:
            return None
        return WireIndexInfo.model_validate_json(response.content)

    def list_indexes(self) -> list[WireIndexInfo]:
        rows = orjson.loads(self._call("GET", "").content)
        return [WireIndexInfo.model_validate(r) for r in rows]

    def delete_index(self, name: str) -> bool:
        return bool(orjson.loads(self._call("DELETE", _quote(name)).content))

    def get_docs(self, name: str, doc_ids: list[str] | None = None) -> list[StoredDocument]:
        params = {"docIds": ",".join(doc_ids)} if doc_ids is not None else None
        return decode_documents(self._call("GET", f"{_quote(name)}/docs", params=params).content)

    def download(self, name: str, info: WireIndexInfo | None = None) -> DownloadedIndex:
        """Fetch the artifact and documents file of ``name`` (``info`` saves one round trip)."""
        info = info or self.index_info(name)
        if info is None:
            raise IndexNotFoundError(f"index {name!r} does not exist", 404)
        urls = UrlReply.model_validate_json(self._call("GET", f"{_quote(name)}/url").content)
        artifact = self._fetch_artifact(urls.indexUrl)
        documents = decode_documents(self._fetch(urls.dataUrl))
        if [d.id for d in documents] != artifact.doc_ids:
            raise CloudError(f"index {name!r}: documents file does not match the artifact")
        return DownloadedIndex(info, artifact, documents)

    def _fetch(self, url: str) -> bytes:
        try:
            response = self._http.get(url)
        except httpx.HTTPError as exc:
            raise CloudError(f"GET {url}: {exc}") from exc
        if response.is_error:
            raise CloudError(f"GET {url}: HTTP {response.status_code}", response.status_code)
        return response.content

    def _fetch_artifact(self, url: str) -> IndexArtifact:
        """The index artifact, decoded while it downloads: parsing overlaps the transfer."""
        reader = ArtifactReader()
        try:
            with self._http.stream("GET", url) as response:
                if response.is_error:
                    raise CloudError(
                        f"GET {url}: HTTP {response.status_code}", response.status_code
                    )
                for piece in response.iter_bytes():
                    reader.feed(piece)
        except httpx.HTTPError as exc:
            raise CloudError(f"GET {url}: {exc}") from exc
        return reader.finish()

    def push(self, body: PushBody) -> JobReply:
        response = self._call("POST", "push", body=encode_push(body))
        return JobReply.model_validate_json(response.content)


class _Chunks:
    """A request body handed to httpx in 1 MiB pieces, re-iterable for a retry.

    Given one large ``bytes``, httpcore's socket writer slices off what each ``send`` took and
    copies the rest, which is quadratic: a 430 MB push spent ~28 s there. Small pieces make
    every copy small."""

    _SIZE = 1 << 20

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __iter__(self) -> Iterator[bytes]:
        view = memoryview(self._data)
        for start in range(0, len(view), self._SIZE):
            yield bytes(view[start : start + self._SIZE])


def _quote(name: str) -> str:
    return quote(name, safe="")
