"""Targets: the implementations the suite can check, and how a name on the command line
becomes one."""

from conformance.targets.capabilities import (
    ALL_CAPABILITIES,
    BUILTIN_MODELS,
    CLIENT_QUERY,
    CUSTOM_EMBEDDINGS,
    KEYWORD_SEARCH,
    LOAD_INDEX,
    METADATA_FILTER,
)
from conformance.targets.loading import (
    BUILTIN_TARGETS,
    ENTRY_POINT_GROUP,
    ENV_VAR,
    TargetError,
    default_spec,
    load_target,
)
from conformance.targets.protocol import (
    Target,
    target_versions,
    threaded_cloud_ok,
    unavailable_reason,
)
from conformance.targets.sdk import SdkTarget
from conformance.targets.unavailable import UnavailableTarget

__all__ = [
    "ALL_CAPABILITIES",
    "BUILTIN_MODELS",
    "BUILTIN_TARGETS",
    "CLIENT_QUERY",
    "CUSTOM_EMBEDDINGS",
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "KEYWORD_SEARCH",
    "LOAD_INDEX",
    "METADATA_FILTER",
    "SdkTarget",
    "Target",
    "TargetError",
    "UnavailableTarget",
    "default_spec",
    "load_target",
    "target_versions",
    "threaded_cloud_ok",
    "unavailable_reason",
]
