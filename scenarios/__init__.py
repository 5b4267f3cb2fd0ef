"""The SessionIndex document's workflows as small runnable programs.

Each runs against a cloud given by ``--auth-url`` / ``--index-url`` or the ``MOSS_AUTH_URL`` /
``MOSS_INDEX_URL`` environment variables (e.g. a ``sessionspec serve`` on this machine) and
prints what happened. Run one with ``python -m scenarios.<name> --help``.
"""
