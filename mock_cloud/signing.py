"""HMAC-signed bearer tokens and presigned URLs.

Both are stateless, signed with the data dir's secret: they survive a restart of the server
and need no table. A token also signs a fingerprint of the project's key, so changing a key
revokes every token issued under the old one.
"""

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class InvalidSignature(ValueError):
    """A token or URL that is malformed, tampered with or expired."""


@dataclass(frozen=True)
class Signer:
    secret: bytes

    def sign(self, *parts: str) -> str:
        message = "\x1f".join(parts).encode()
        return _b64(hmac.new(self.secret, message, hashlib.sha256).digest())

    def check(self, signature: str, *parts: str) -> bool:
        return hmac.compare_digest(signature.encode(), self.sign(*parts).encode())

    # --- bearer tokens ------------------------------------------------------------------
    def issue_token(self, project: str, key: str, ttl_s: float) -> str:
        expires_ms = int((time.time() + ttl_s) * 1000)
        body = f"{_b64(project.encode())}.{expires_ms}.{secrets.token_hex(8)}"
        return f"{body}.{self.sign('token', body, _fingerprint(key))}"

    def verify_token(self, token: str, key_of: Callable[[str], str | None]) -> str:
        """The project a token was issued to; raises ``InvalidSignature`` saying why not."""
        try:
            encoded, expires, nonce, signature = token.split(".")
            project = _unb64(encoded).decode()
            expires_ms = int(expires)
        except ValueError:
            raise InvalidSignature("malformed token") from None
        key = key_of(project)
        body = f"{encoded}.{expires}.{nonce}"
        if key is None or not self.check(signature, "token", body, _fingerprint(key)):
            raise InvalidSignature("invalid token")
        if time.time() * 1000 >= expires_ms:
            raise InvalidSignature("token expired")
        return project

    # --- presigned URLs -----------------------------------------------------------------
    def presign(self, path: str, ttl_s: float) -> str:
        """``path`` with ``?exp=&sig=`` appended; valid for ``ttl_s`` seconds."""
        expires_ms = int((time.time() + ttl_s) * 1000)
        query = urlencode({"exp": expires_ms, "sig": self.sign("url", path, str(expires_ms))})
        return f"{path}?{query}"

    def verify_url(self, path: str, exp: str | None, sig: str | None) -> None:
        if not exp or not sig or not self.check(sig, "url", path, exp):
            raise InvalidSignature("invalid signature")
        try:
            expires_ms = int(exp)
        except ValueError:
            raise InvalidSignature("invalid signature") from None
        if time.time() * 1000 >= expires_ms:
            raise InvalidSignature("URL expired")


def _fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def encode_blob_id(*parts: str) -> str:
    """An opaque path segment for a tuple of strings (names may hold any character but '/')."""
    return _b64("\x1f".join(parts).encode())


def decode_blob_id(blob_id: str) -> list[str]:
    try:
        return _unb64(blob_id).decode().split("\x1f")
    except (ValueError, UnicodeDecodeError):
        raise InvalidSignature("malformed blob id") from None
