"""The caller as routes see it, whichever way it proved who it is (an API key or a browser session)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Principal(Protocol):
    """What `dependencies.require` returns: `keys.Key` already has these, and so has `SessionPrincipal`."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def scopes(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class SessionPrincipal:
    """A browser session: signed in as a user (id `user:NAME`) or with an API key (id `key:ID`)."""

    id: str
    name: str
    scopes: tuple[str, ...]
    session: str  # the session's id (not its cookie secret)
    csrf: str


def label(actor: object) -> str:
    """How the audit log names an actor: a principal, or a plain string (the CLI, a background job)."""
    if isinstance(actor, str):
        return actor
    pid, name = getattr(actor, "id", None), getattr(actor, "name", None)
    if pid is None:
        return str(actor)
    if isinstance(actor, SessionPrincipal):
        return name if pid.startswith("user:") else f"{pid} ({name})" if name else pid
    return f"key:{pid} ({name})" if name else f"key:{pid}"
