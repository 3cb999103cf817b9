"""JSON text of strings that came from the kernel, losslessly, whatever bytes they hold.

A file name, a command name, an argument or an xattr name is any sequence of bytes (but `/` and NUL for a name):
not necessarily UTF-8. The probe decodes such bytes with Python's `surrogateescape` (PEP 383, as `os.fsdecode`
does): each byte that is not part of valid UTF-8 becomes the lone surrogate U+DC80 + byte. In JSON these are
written as `\\udcXX` escapes (so the document stays ASCII-safe and valid JSON text), read back as the same
surrogates, and `os.fsencode` gives the original bytes again. Valid UTF-8 (control characters and newlines
included, escaped as JSON requires) is written as usual. orjson, the fast path, refuses lone surrogates: only
documents that hold one take the slower standard-library path.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import orjson


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes of obj (dicts, lists, strings, numbers, orjson fragments made by this function)."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        # (orjson: "str is not valid UTF-8: surrogates not allowed"): each such string goes through a placeholder
        # (NUL never occurs in a kernel string) and is written by the standard library
        nonce = secrets.token_hex(8)
        swapped: dict[bytes, bytes] = {}
        out = orjson.dumps(_swap(obj, nonce, swapped))
        for placeholder, text in swapped.items():
            out = out.replace(placeholder, text)
        return out


def loads(data: bytes | str) -> Any:
    """Parse JSON text; `\\udcXX` escapes come back as the lone surrogates they stand for."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            return json.loads(data)
        except ValueError:
            pass
        raise


def _swap(obj: Any, nonce: str, swapped: dict[bytes, bytes]) -> Any:
    if isinstance(obj, str):
        try:
            obj.encode()
            return obj
        except UnicodeEncodeError:
            placeholder = f"\0{nonce}:{len(swapped)}\0"
            swapped[orjson.dumps(placeholder)] = json.dumps(obj, ensure_ascii=True).encode()
            return placeholder
    if isinstance(obj, dict):
        return {_swap(k, nonce, swapped): _swap(v, nonce, swapped) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_swap(v, nonce, swapped) for v in obj]
    return obj
