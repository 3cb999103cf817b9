"""`/api/v1/users`: the web UI's users, managed over HTTP by an admin (the CLI does the same offline)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from opencws.backend.auth.users import ROLES, User, UsersError, UserStore
from opencws.backend.dependencies import AdminKey

router = APIRouter(prefix="/api/v1/users", tags=["users"])


class NewUser(BaseModel):
    name: str = Field(..., max_length=64)
    role: str = Field("read", description=f"one of {', '.join(ROLES)}")
    password: str = Field(..., max_length=1024)


def _info(u: User) -> dict[str, Any]:
    return {"name": u.name, "role": u.role, "created": u.created}


def _users(request: Request) -> UserStore:
    return request.app.state.users


@router.get("", summary="List users")
def list_users(_: AdminKey, request: Request) -> Any:
    return {"users": [_info(u) for u in _users(request).list()]}


@router.post("", status_code=201, summary="Add a user", responses={400: {}})
def add_user(body: NewUser, who: AdminKey, request: Request) -> Any:
    try:
        user = _users(request).add(body.name, body.role, body.password)
    except UsersError as e:
        raise HTTPException(400, str(e)) from None
    request.app.state.audit(who, "user.add", user.name, {"role": user.role})
    return _info(user)


@router.delete("/{name}", summary="Remove a user (their sessions end at once)", responses={404: {}})
def remove_user(name: str, who: AdminKey, request: Request) -> Any:
    try:
        user = _users(request).remove(name)
    except UsersError as e:
        raise HTTPException(404, str(e)) from None
    request.app.state.audit(who, "user.remove", user.name, {"role": user.role})
    return _info(user)
