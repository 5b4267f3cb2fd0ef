"""The built-in ``reference`` target: this project's reference SDK, every capability."""

from typing import Any

from conformance.targets.capabilities import ALL_CAPABILITIES
from conformance.targets.sdk import SdkTarget, distribution_version


def reference_target() -> SdkTarget:
    import reference

    def make_client(*, project_id: str, project_key: str, auth_url: str, index_url: str) -> Any:
        return reference.Client(project_id, project_key, auth_url=auth_url, index_url=index_url)

    return SdkTarget(
        name="reference",
        capabilities=ALL_CAPABILITIES,
        make_client=make_client,
        document_type=reference.DocumentInfo,
        query_options_type=reference.QueryOptions,
        get_documents_options_type=reference.GetDocumentsOptions,
        mutation_options_type=reference.MutationOptions,
        version_info={"sessionspec": distribution_version("sessionspec")},
        # Pure Python over httpx: it releases the GIL while it waits on the cloud.
        threaded_cloud_ok=True,
    )
