"""`/api/v1/keys`: API keys managed over HTTP (the `admin` scope); the CLI does the same offline."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from opencws.backend.dependencies import AdminKey, KeysDep
from opencws.backend.keys import SCOPES, Key, KeysError

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


class KeyInfo(BaseModel):
    id: str
    name: str
    scopes: list[str]
    created: int
    revoked: int | None


class NewKey(BaseModel):
    name: str = Field("", max_length=200)
    scopes: list[str] = Field(default_factory=lambda: ["ingest"], min_length=1)


class CreatedKey(KeyInfo):
    key: str


def _info(k: Key) -> KeyInfo:
    return KeyInfo(id=k.id, name=k.name, scopes=list(k.scopes), created=k.created, revoked=k.revoked)


@router.get("", response_model=list[KeyInfo], summary="List API keys")
def list_keys(_: AdminKey, keys: KeysDep) -> list[KeyInfo]:
    return [_info(k) for k in keys.list()]


@router.post(
    "", response_model=CreatedKey, status_code=201, summary=f"Create an API key (scopes: {', '.join(SCOPES)})"
)
def create_key(body: NewKey, who: AdminKey, keys: KeysDep, request: Request) -> CreatedKey:
    try:
        k, text = keys.create(body.name, tuple(body.scopes))
    except KeysError as e:
        raise HTTPException(400, str(e)) from None
    request.app.state.audit(who, "key.create", k.id, {"name": k.name, "scopes": list(k.scopes)})
    return CreatedKey(**_info(k).model_dump(), key=text)


@router.delete("/{key_id}", response_model=KeyInfo, summary="Revoke an API key (refused at once)")
def revoke_key(key_id: str, who: AdminKey, keys: KeysDep, request: Request) -> KeyInfo:
    try:
        k = keys.revoke(key_id)
    except KeysError as e:
        raise HTTPException(404, str(e)) from None
    request.app.state.audit(who, "key.revoke", k.id, {"name": k.name})
    return _info(k)
