"""The built-in ``moss`` target: the published SDK (optional extra), run as a black box."""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from conformance.targets.capabilities import ALL_CAPABILITIES, BUILTIN_MODELS
from conformance.targets.sdk import SdkTarget, distribution_version
from conformance.targets.unavailable import UnavailableTarget

NOT_INSTALLED = "moss is not installed (pip install 'sessionspec[moss]')"
_VARIABLES = ("MOSS_AUTH_URL", "MOSS_INDEX_URL", "HOME")


class _MossEnvironment:
    """Points the published SDK at the suite's cloud and keeps it out of the real home folder.

    The SDK takes its cloud URLs from ``MOSS_AUTH_URL`` / ``MOSS_INDEX_URL`` and writes a device
    id under ``$HOME/.moss`` even when given a ``cache_path``; it reads all three when a call
    runs, not only when the client is built (observed in 1.21.0). So they are set for the
    process while the target is in use, and put back by ``close()``. One cloud at a time.
    """

    def __init__(self) -> None:
        self._saved: dict[str, str | None] | None = None
        self._root: Path | None = None

    def client(self, *, project_id: str, project_key: str, auth_url: str, index_url: str) -> Any:
        import moss

        root = self._enter()
        os.environ["MOSS_AUTH_URL"] = auth_url
        os.environ["MOSS_INDEX_URL"] = index_url
        # A cache per client: a resumed session must fetch the cloud copy, not reuse a sibling's.
        cache = tempfile.mkdtemp(prefix="cache-", dir=root)
        return moss.MossClient(project_id, project_key, cache_path=cache)

    def _enter(self) -> Path:
        if self._root is None:
            self._saved = {name: os.environ.get(name) for name in _VARIABLES}
            self._root = Path(tempfile.mkdtemp(prefix="sessionspec-moss-"))
            (self._root / "home").mkdir()
            os.environ["HOME"] = str(self._root / "home")
        return self._root

    def close(self) -> None:
        if self._saved is not None:
            for name, value in self._saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            self._saved = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None


def moss_target() -> SdkTarget | UnavailableTarget:
    try:
        import moss
    except ModuleNotFoundError as exc:
        if exc.name != "moss":
            raise
        return UnavailableTarget(name="moss", unavailable_reason=NOT_INSTALLED)
    environment = _MossEnvironment()
    return SdkTarget(
        name="moss",
        # Its built-in models need a model grant only the real cloud issues.
        capabilities=ALL_CAPABILITIES - {BUILTIN_MODELS},
        make_client=environment.client,
        document_type=moss.DocumentInfo,
        query_options_type=moss.QueryOptions,
        get_documents_options_type=moss.GetDocumentsOptions,
        mutation_options_type=moss.MutationOptions,
        version_info={
            "moss": distribution_version("moss"),
            "inferedge-moss-core": distribution_version("inferedge-moss-core"),
        },
        on_close=environment.close,
    )
