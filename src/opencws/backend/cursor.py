"""Search cursors: the (date, id) of the last event of a page, opaque to clients (base64url)."""

from __future__ import annotations

import base64
import binascii
import re

_ID = re.compile(r"^[0-9a-f]{1,64}$")


class CursorError(ValueError):
    pass


def encode(position: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(f"{position[0]}:{position[1]}".encode()).decode().rstrip("=")


def decode(text: str) -> tuple[int, str]:
    if len(text) > 200:
        raise CursorError("invalid cursor: too long")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        date_text, event_id = raw.split(":")
        date = int(date_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise CursorError("invalid cursor: use the 'next' value of a previous page") from None
    if not _ID.match(event_id) or not 0 <= date < 2**63:
        raise CursorError("invalid cursor: use the 'next' value of a previous page")
    return date, event_id
