"""``create_app``: the mock cloud as a FastAPI application."""

from fastapi import FastAPI

from mock_cloud import auth, blobs, control, errors, index_api
from mock_cloud.cloud import MockCloud
from mock_cloud.middleware import CloudMiddleware
from mock_cloud.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    """Every endpoint of PROTOCOL.md (``/auth/token``, ``/index/...``), the presigned
    download and upload routes, and, when ``settings.control_key`` is set, ``/_mock/...``.

    The app owns an open store: call ``app.state.cloud.close()`` when done with it.
    """
    cloud = MockCloud(settings)
    app = FastAPI(title="sessionspec mock cloud", version="1",
                  description="The cloud protocol of PROTOCOL.md, for tests.",
                  redirect_slashes=False)
    app.state.cloud = cloud
    app.include_router(auth.router)
    app.include_router(index_api.router)
    app.include_router(blobs.router)
    if settings.control_key:
        app.include_router(control.router)
    errors.install(app)
    app.add_middleware(CloudMiddleware, cloud=cloud)
    return app
