"""What routes get from the application: the store, the settings, the keys, and the caller (an API key or
a browser session) checked for a scope (`require("read")`).

They are coroutines: FastAPI runs a plain function dependency in its thread pool, and those hops (one per
dependency) were most of the event loop's time on a small request. What may wait still goes to the pool: a
session's check (it may write), and an API key's when its store is busy (`nowait.read`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from opencws.backend import nowait
from opencws.backend.auth.guard import session_principal
from opencws.backend.auth.principal import Principal
from opencws.backend.keys import Key, KeyStore
from opencws.backend.metrics import Metrics
from opencws.backend.ratelimit import RateLimiter
from opencws.backend.settings import Settings
from opencws.backend.store import Store

_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer ocws_...`")


async def get_store(request: Request) -> Store:
    store = getattr(request.app.state, "store", None)
    if store is None:
        raise HTTPException(503, "the store is not open")
    return store


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_keys(request: Request) -> KeyStore:
    return request.app.state.keys


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def require(*scopes: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, holding one of `scopes`; 401, 403 or 429 otherwise. The caller is the live
    API key of `Authorization: Bearer`, or else the browser session of the cookie (`auth.guard`: a change
    needs its CSRF token). Both have `.id`, `.name`, `.scopes`; a key is returned as its `Key`."""

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        keys: Annotated[KeyStore, Depends(get_keys)],
    ) -> Principal:
        who: Principal
        if credentials is None:  # a session may be written (touched, ended): off the event loop
            who = await run_in_threadpool(session_principal, request, keys)
            whose = f"your role's rights ({', '.join(who.scopes)})"
        else:
            key = await nowait.read(keys.check, credentials.credentials)
            if key is None:
                raise HTTPException(401, "invalid or revoked API key", {"WWW-Authenticate": "Bearer"})
            who, whose = key, f"this key's scopes ({', '.join(key.scopes)})"
        if not any(s in who.scopes for s in scopes):
            raise HTTPException(403, f"{whose} do not allow this: it needs {' or '.join(scopes)}")
        limiter: RateLimiter = request.app.state.limiter
        wait = limiter.acquire(who.id)
        if wait > 0:
            raise HTTPException(
                429,
                f"rate limit of {'key ' if credentials else ''}{who.id} exceeded",
                {"Retry-After": str(max(1, round(wait)))},
            )
        return who

    return check


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
IngestKey = Annotated[Key, Depends(require("ingest"))]  # sessions never hold `ingest`: always a Key
ReadKey = Annotated[Principal, Depends(require("read"))]
AdminKey = Annotated[Principal, Depends(require("admin"))]
OperatorKey = Annotated[Principal, Depends(require("read", "admin"))]
