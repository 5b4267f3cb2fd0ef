"""Names of the optional abilities a target can declare.

A clause that ``requires`` one of these is skipped, with the name as the reason, for a target that
does not declare it. Plain string constants (not an enum) so a third-party target can declare
``frozenset({"custom-embeddings", ...})`` without importing anything from this project.
"""

BUILTIN_MODELS = "builtin-models"
"""The documented models (``moss-minilm``, ``moss-mediumlm``) run against the mock cloud."""

CUSTOM_EMBEDDINGS = "custom-embeddings"
"""``model_id="custom"``: the caller supplies every document and query vector."""

METADATA_FILTER = "metadata-filter"
"""``QueryOptions.filter`` with the documented filter syntax."""

KEYWORD_SEARCH = "keyword-search"
"""``alpha`` below 1.0 blends in a keyword score."""

LOAD_INDEX = "load-index"
"""``client.load_index(name)`` loads a cloud index for local queries."""

CLIENT_QUERY = "client-query"
"""``client.query(name, text, options)`` queries a loaded index."""

ALL_CAPABILITIES: frozenset[str] = frozenset(
    {BUILTIN_MODELS, CUSTOM_EMBEDDINGS, METADATA_FILTER, KEYWORD_SEARCH, LOAD_INDEX, CLIENT_QUERY}
)
