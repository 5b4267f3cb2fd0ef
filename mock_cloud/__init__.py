"""The mock cloud: the protocol of PROTOCOL.md served by FastAPI over a SQLite store.

- :mod:`mock_cloud.settings` - ``Settings`` (data dir, projects, keys, limits, TTLs).
- :mod:`mock_cloud.store` - the SQLite store (no HTTP); :mod:`mock_cloud.downloads` - the
  per-version artifact / documents files; :mod:`mock_cloud.cloud` - one cloud's state.
- :mod:`mock_cloud.app` - ``create_app(settings)``: routes in :mod:`mock_cloud.auth`,
  :mod:`mock_cloud.index_api`, :mod:`mock_cloud.blobs` and :mod:`mock_cloud.control`.
- :mod:`mock_cloud.server` - ``running_server`` (a thread) and ``ServerProcess`` (a child
  process, needed by the published SDK); :mod:`mock_cloud.serve` - ``sessionspec serve``.

It never computes an embedding and imports no model.
"""
