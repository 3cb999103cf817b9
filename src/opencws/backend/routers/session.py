"""`/api/v1/session`: signing in (a user's password, or a `read`/`admin` API key), who is signed in, and
signing out. A sign-in answers the session's CSRF token, which the UI sends back on every change."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from opencws.backend.auth.guard import clear_cookie, principal_of, session_principal, set_cookie
from opencws.backend.auth.principal import SessionPrincipal
from opencws.backend.auth.sessions import SessionStore
from opencws.backend.auth.throttle import SignInThrottle
from opencws.backend.auth.users import UserStore
from opencws.backend.dependencies import KeysDep, SettingsDep

router = APIRouter(prefix="/api/v1/session", tags=["session"])


class SignIn(BaseModel):
    user: str = Field("", max_length=64)
    password: str = Field("", max_length=1024)
    key: str = Field("", max_length=200, description="instead of user and password: a read or admin API key")


def _same_origin(request: Request) -> None:
    """Sign-in and sign-out come from the UI's own page (no other site may sign a browser in or out). The
    host is compared, not the scheme: behind a TLS-terminating proxy the backend itself sees plain HTTP."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise HTTPException(403, f"cross-origin request from {origin} refused")


def _answer(p: SessionPrincipal) -> dict[str, Any]:
    role = "admin" if "admin" in p.scopes else "read"
    return {"id": p.id, "name": p.name or p.id, "role": role, "scopes": list(p.scopes), "csrf": p.csrf}


def _session(request: Request, keys: KeysDep) -> SessionPrincipal:
    return session_principal(request, keys)


@router.post("", summary="Sign in", responses={401: {}, 429: {}})
def sign_in(body: SignIn, request: Request, response: Response, keys: KeysDep, settings: SettingsDep) -> Any:
    _same_origin(request)
    state = request.app.state
    throttle: SignInThrottle = state.signin_throttle
    users: UserStore = state.users
    sessions: SessionStore = state.sessions
    address = request.client.host if request.client else "unknown"
    if body.key:
        parts = body.key.split("_")
        who = f"key:{parts[1]}" if len(parts) >= 3 else "key:?"
    elif body.user:
        who = body.user
    else:
        raise HTTPException(422, "give 'user' and 'password', or 'key'")
    blocked = throttle.wait(who, address)
    if blocked is not None:
        kind, seconds = blocked
        subject = f"for {who!r}" if kind == "user" else f"from {address}"
        raise HTTPException(
            429, f"too many failed sign-ins {subject}: try again in {max(1, round(seconds))} s",
            {"Retry-After": str(max(1, round(seconds)))},
        )  # fmt: skip
    if body.key:
        key = keys.check(body.key)
        ok = key is not None and any(s in key.scopes for s in ("read", "admin"))
        session, secret = sessions.create(address, key_id=key.id) if ok and key else (None, "")
    else:
        user = users.verify(body.user, body.password)
        session, secret = sessions.create(address, user=user.name) if user else (None, "")
    principal = principal_of(session, users, keys) if session else None
    if principal is None:
        throttle.failed(who, address)
        state.audit(who, "signin.failed", who, {"address": address})
        raise HTTPException(
            401, "wrong API key, or a key without the read or admin scope" if body.key
            else "wrong user name or password",
        )  # fmt: skip
    throttle.succeeded(who)
    state.audit(principal, "signin", principal.id, {"address": address})
    set_cookie(request, response, secret, settings.session_lifetime_seconds)
    return _answer(principal)


@router.get("", summary="Who is signed in", responses={401: {}})
def whoami(p: Annotated[SessionPrincipal, Depends(_session)]) -> Any:
    return _answer(p)


@router.delete("", summary="Sign out", status_code=204, responses={401: {}, 403: {}})
def sign_out(request: Request, response: Response, keys: KeysDep) -> Response:
    _same_origin(request)
    p = session_principal(request, keys)
    sessions: SessionStore = request.app.state.sessions
    sessions.delete(p.session)
    out = Response(status_code=204)
    clear_cookie(request, out)
    return out
