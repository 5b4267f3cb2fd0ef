"""Errors raised while loading an embedding model."""


class ModelUnavailableError(RuntimeError):
    """A known model whose files are not installed on this machine.

    The message names the command that installs them, so the caller can fix it
    without reading the source.
    """
