"""Values compared with path fields, refused where Datadog refuses them: a string that is not absolute, a pattern
that starts with neither `/` nor `*`, the bare pattern `*` (it matches every path), and any value not in clean
form (a trailing `/`, a `.` or `..` component), the message showing the clean form."""

from __future__ import annotations


def clean_path(path: str) -> str:
    """The clean form of a path, as Go's `path.Clean`: no `//`, no `.` component, `..` resolved lexically, no
    trailing `/` (but `/` itself)."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(seg)
    out = "/".join(parts)
    return "/" + out if rooted else out or "."


def path_value_error(field: str, kind: str, value: str) -> str | None:
    """Why `value` (a "string" or a "pattern") cannot be compared with the path field `field`, or None."""
    if value == "" or kind not in ("string", "pattern"):
        return None
    if kind == "string" and not value.startswith("/"):
        return (
            f"invalid path '{value}' for '{field}': a path must be absolute (start with '/'); "
            f'use a pattern (~"...") to match a part of it'
        )
    if kind == "pattern" and value.strip("*") == "":
        return (
            f"invalid path pattern '{value}' for '{field}': it matches every path (as in Datadog, a bare '*' is "
            "refused on a path field; remove the condition)"
        )
    if kind == "pattern" and not value.startswith(("/", "*")):
        return f"invalid path pattern '{value}' for '{field}': it must start with '/' or '*'"
    clean = clean_path(value)
    if clean != value:
        what = "path pattern" if kind == "pattern" else "path"
        return f"invalid {what} '{value}' for '{field}': not in clean form (write '{clean}')"
    return None
