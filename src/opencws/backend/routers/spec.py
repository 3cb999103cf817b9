"""`GET /openapi.json`: the API's OpenAPI description, for any valid key (every call but /healthz needs one).

`python -m opencws.backend.routers.spec > docs/openapi.json` writes the published copy (a test keeps it
current)."""

from __future__ import annotations

import sys
import tempfile
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request, Response

from opencws.backend.dependencies import require
from opencws.backend.keys import SCOPES, Key

router = APIRouter(tags=["operations"])


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, _: Annotated[Key, Depends(require(*SCOPES))]) -> Response:
    return Response(document(request.app), media_type="application/json")


def document(app: FastAPI) -> bytes:
    """The description as published: indented, keys sorted, one newline at the end."""
    spec: dict[str, Any] = app.openapi()
    return orjson.dumps(spec, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def published() -> bytes:
    """The description of the application as `opencws backend serve` builds it."""
    from opencws.backend.main import create_app
    from opencws.backend.settings import Settings

    with tempfile.TemporaryDirectory(prefix="opencws-openapi-") as data_dir:
        app = create_app(Settings(data_dir=data_dir))
        try:
            return document(app)
        finally:
            app.state.keys.close()
            app.state.batches.close()


if __name__ == "__main__":
    sys.stdout.buffer.write(published())
