"""A request's browser session, checked: the cookie's session is live, its user or key still is (a removed
user or a revoked key ends it at once; a changed role applies at once), and a change (any method but GET,
HEAD, OPTIONS) carries the session's CSRF token in `X-CSRF-Token`."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, Response

from opencws.backend.auth.principal import SessionPrincipal
from opencws.backend.auth.sessions import Session, SessionStore
from opencws.backend.auth.users import UserStore
from opencws.backend.keys import KeyStore

COOKIE = "opencws_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def principal_of(session: Session, users: UserStore, keys: KeyStore) -> SessionPrincipal | None:
    """Who the session acts for now, or None when its user is gone or its key revoked."""
    if session.user is not None:
        user = users.get(session.user)
        if user is None:
            return None
        return SessionPrincipal(f"user:{user.name}", user.name, user.scopes, session.id, session.csrf)
    key = next((k for k in keys.list() if k.id == session.key_id and k.revoked is None), None)
    if key is None:
        return None
    return SessionPrincipal(f"key:{key.id}", key.name, key.scopes, session.id, session.csrf)


def session_principal(request: Request, keys: KeyStore) -> SessionPrincipal:
    """The signed-in caller of `request` (401 without a live session, 403 for a change without CSRF token)."""
    state = request.app.state
    sessions: SessionStore = state.sessions
    secret = request.cookies.get(COOKIE)
    if not secret:
        raise HTTPException(
            401, "not signed in: sign in, or send an API key ('Authorization: Bearer <key>')",
            {"WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    session = sessions.get(secret)
    principal = principal_of(session, state.users, keys) if session else None
    if principal is None:
        if session is not None:
            sessions.delete(session.id)
        raise HTTPException(
            401, "your session has expired or ended: sign in again", {"WWW-Authenticate": "Bearer"}
        )
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), principal.csrf.encode()):
            raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header: reload the page")
    return principal


def set_cookie(request: Request, response: Response, secret: str, lifetime: float) -> None:
    """HttpOnly (scripts never read it), Secure when served over TLS, SameSite=Strict: the UI's page is a
    static shell and all data comes from same-site fetches, so a link from elsewhere loses nothing while
    no other site can make the browser send the cookie."""
    response.set_cookie(
        COOKIE, secret, max_age=int(lifetime), path="/", httponly=True,
        secure=request.url.scheme == "https", samesite="strict",
    )  # fmt: skip


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, secure=request.url.scheme == "https", samesite="strict"
    )
