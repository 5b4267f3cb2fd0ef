"""Errors raised while loading an embedding model."""


class ModelUnavailableError(RuntimeError):
    """A known model whose files are not installed on this machine.

    The message names the command that installs them, so the caller can fix it
    without reading the source.
    """


class ModelFallbackWarning(UserWarning):
    """A model runs from a less exact file than its preferred one, because the preferred one
    is not installed; the message names the command that installs it."""
