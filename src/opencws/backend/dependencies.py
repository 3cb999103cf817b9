"""What routes get from the application: the store, the settings, the keys, and the caller's key checked
for a scope (`require("read")`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from opencws.backend.keys import Key, KeyStore
from opencws.backend.metrics import Metrics
from opencws.backend.ratelimit import RateLimiter
from opencws.backend.settings import Settings
from opencws.backend.store import Store

_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer ocws_...`")


def get_store(request: Request) -> Store:
    store = getattr(request.app.state, "store", None)
    if store is None:
        raise HTTPException(503, "the store is not open")
    return store


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_keys(request: Request) -> KeyStore:
    return request.app.state.keys


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def require(*scopes: str) -> Callable[..., Key]:
    """A dependency: the caller's live key, holding one of `scopes`; 401, 403 or 429 otherwise."""

    def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        keys: Annotated[KeyStore, Depends(get_keys)],
    ) -> Key:
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None:
            raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>'", challenge)
        key = keys.check(credentials.credentials)
        if key is None:
            raise HTTPException(401, "invalid or revoked API key", challenge)
        if not any(s in key.scopes for s in scopes):
            raise HTTPException(
                403,
                f"this key's scopes ({', '.join(key.scopes)}) do not allow this: it needs {' or '.join(scopes)}",
            )
        limiter: RateLimiter = request.app.state.limiter
        wait = limiter.acquire(key.id)
        if wait > 0:
            raise HTTPException(
                429, f"rate limit of key {key.id} exceeded", {"Retry-After": str(max(1, round(wait)))}
            )
        return key

    return check


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
IngestKey = Annotated[Key, Depends(require("ingest"))]
ReadKey = Annotated[Key, Depends(require("read"))]
AdminKey = Annotated[Key, Depends(require("admin"))]
OperatorKey = Annotated[Key, Depends(require("read", "admin"))]
