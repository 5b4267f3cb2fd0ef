"""The wire contract shared by clients and the mock cloud.

Pydantic models of every request and reply (:mod:`protocol.models`), the binary and JSON
file formats (:mod:`protocol.artifact`, :mod:`protocol.documents`, :mod:`protocol.upload`),
the index-name rule (:mod:`protocol.names`) and the vector checks (:mod:`protocol.vectors`).
No HTTP, no storage, no models.
"""

from protocol.artifact import ArtifactReader, IndexArtifact, decode_artifact, encode_artifact
from protocol.documents import StoredDocument, decode_documents, encode_documents
from protocol.names import MAX_NAME_BYTES, validate_index_name
from protocol.upload import UploadBlob, decode_upload, encode_upload
from protocol.vectors import as_matrix

__all__ = [
    "MAX_NAME_BYTES",
    "ArtifactReader",
    "IndexArtifact",
    "StoredDocument",
    "UploadBlob",
    "as_matrix",
    "decode_artifact",
    "decode_documents",
    "decode_upload",
    "encode_artifact",
    "encode_documents",
    "encode_upload",
    "validate_index_name",
]
