"""Errors a caller can catch by kind.

Every bad argument is a ``ValueError`` (``InvalidArgumentError``), so ``except ValueError`` works
as the SessionIndex document promises for a model mismatch; cloud failures are ``RuntimeError``.
"""


class InvalidArgumentError(ValueError):
    """An argument the SDK cannot accept; the message names it."""


class ModelMismatchError(InvalidArgumentError):
    """``session(model_id=...)`` differs from the model the stored index was built with."""

    def __init__(self, index_name: str, stored: str, requested: str) -> None:
        super().__init__(
            f"index {index_name!r} was built with model {stored!r}; session() asked for "
            f"{requested!r}. Omit model_id to adopt the stored model."
        )
        self.index_name, self.stored, self.requested = index_name, stored, requested


class CloudError(RuntimeError):
    """The cloud answered with an error or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationError(CloudError):
    """The cloud rejected the project credentials."""


class IndexNotFoundError(CloudError, LookupError):
    """No index of that name exists in the project."""
