"""The FastAPI application: the routers and the web UI, and the store, keys, users, sessions, audit log and
retention opened for its lifetime."""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from opencws import __version__
from opencws.backend import web
from opencws.backend.auth.audit import AuditLog
from opencws.backend.auth.sessions import SessionStore
from opencws.backend.auth.throttle import SignInThrottle
from opencws.backend.auth.users import UserStore
from opencws.backend.detection import Detection
from opencws.backend.idempotency import IdempotencyStore
from opencws.backend.keys import KeyStore
from opencws.backend.metrics import Metrics, RequestCounter
from opencws.backend.ratelimit import RateLimiter
from opencws.backend.routers import (
    audit,
    detection_rules,
    health,
    intake,
    keys,
    search,
    session,
    signals,
    spec,
    users,
)
from opencws.backend.settings import Settings
from opencws.backend.store import Store, StoreError, open_store

log = logging.getLogger("opencws.backend")


def _retention(app: FastAPI, stop: threading.Event) -> None:
    settings: Settings = app.state.settings
    while True:
        store: Store | None = app.state.store
        if store is not None and settings.retention_days > 0:
            limit = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(
                days=settings.retention_days
            )
            try:
                dropped = store.drop_before(limit)
            except StoreError as e:
                log.warning("retention failed: %s", e)
            else:
                if dropped:
                    log.info("retention: dropped the days %s (older than %s)", ", ".join(dropped), limit)
        if stop.wait(settings.retention_interval or 3600):
            return


def create_app(settings: Settings, store: Store | None = None) -> FastAPI:
    """The application; it opens `settings`' store at start-up unless one is given (tests)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = store is None
        app.state.store = open_store(settings.store, settings.data_dir, settings.fsync, settings.journal_limits()) if own else store
        restored = app.state.batches.restore(app.state.store.receipts())
        if restored:
            log.info("idempotency: %d answers journaled before a crash recorded (their retries are answered)", restored)
        stop = threading.Event()
        worker = threading.Thread(target=_retention, args=(app, stop), name="retention", daemon=True)
        worker.start()
        app.state.detection.start()
        try:
            yield
        finally:
            stop.set()
            worker.join(timeout=5)
            if own:
                app.state.store.close()
            app.state.store = None
            app.state.detection.close()
            for part in (app.state.keys, app.state.batches, app.state.users, app.state.sessions, app.state.audit):
                part.close()

    app = FastAPI(
        title="OpenCWS backend",
        version=__version__,
        description="Receives CWS events, stores them, and finds them with SECL.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served by routers/spec.py, behind a key
    )
    app.state.settings = settings
    app.state.store = None
    app.state.keys = KeyStore(settings.data_dir)
    app.state.batches = IdempotencyStore(settings.data_dir, settings.fsync)
    app.state.metrics = Metrics()
    app.state.metrics.watch_journal(lambda: app.state.store)
    app.state.limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
    app.state.detection = Detection(settings, app.state.metrics.registry)  # a bad rule file stops here
    app.state.users = UserStore(settings.data_dir)
    app.state.sessions = SessionStore(
        settings.data_dir, settings.session_idle_seconds, settings.session_lifetime_seconds
    )
    app.state.signin_throttle = SignInThrottle(
        settings.signin_failures_per_user, settings.signin_failures_per_address, settings.signin_failure_window
    )
    # app.state.audit(actor, action, target, detail): actor a principal (or a name); detail any JSON.
    app.state.audit = AuditLog(settings.data_dir)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Pydantic's errors, without echoing the (possibly huge or hostile) input back.
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    app.add_middleware(RequestCounter)

    app.include_router(health.router)
    app.include_router(intake.router)
    app.include_router(search.router)
    app.include_router(keys.router)
    app.include_router(spec.router)
    app.include_router(signals.router)
    app.include_router(detection_rules.router)
    app.include_router(session.router)
    app.include_router(users.router)
    app.include_router(audit.router)
    web.install(app)
    return app
