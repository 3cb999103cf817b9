"""Markdown reference of the CWS event schema, in the documentation site's format.

Front matter, the top-level schema in a `{{< code-block >}}` with a Parameter table, then one section per
definition: its JSON block, a Field table (properties that have a description) and a References table
(properties with a direct `$ref`).
"""

from __future__ import annotations

import json
from typing import Any

FRONT_MATTER = """---
title: CWS Event Documentation
kind: documentation
description: JSON schema documentation of the CWS backend event
disable_edit: true
---

# CWS Event Documentation

The CWS event sent to the backend by the security agent respects the following schema:
"""


def _code_block(obj: dict[str, Any], filename: str | None = None) -> str:
    attrs = ' lang="json" collapsible="true"' + (f' filename="{filename}"' if filename else "")
    return (
        f"\n\n{{{{<code-block{attrs} >}}}}\n{json.dumps(obj, indent=4)}\n\n{{{{< /code-block >}}}}\n".replace(
            "{{<code-block", "{{< code-block"
        )
    )


def _ref_name(prop: dict[str, Any]) -> str | None:
    ref = prop.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def _anchor(name: str) -> str:
    return f"[{name}](#{name.lower()})"


def _top_level(schema: dict[str, Any]) -> str:
    top = {k: v for k, v in schema.items() if k not in ("$schema", "definitions")}
    rows = ["| Parameter | Type | Description |", "| --------- | ---- | ----------- |"]
    for name, prop in top["properties"].items():
        ref = _ref_name(prop)
        if ref:
            rows.append(f"| `{name}` | $ref | Please see {_anchor(ref)} |")
        else:
            rows.append(f"| `{name}` | {prop.get('type', '')} | {prop.get('description', '')} |")
    return _code_block(top, "BACKEND_EVENT_SCHEMA") + "\n" + "\n".join(rows) + "\n"


def _definition(name: str, definition: dict[str, Any]) -> str:
    props = definition.get("properties", {})
    fields = ["| Field | Description |", "| ----- | ----------- |"]
    fields += [f"| `{p}` | {v['description']} |" for p, v in props.items() if v.get("description")]
    refs = []
    for v in props.values():
        ref = _ref_name(v)
        if ref and ref not in refs:
            refs.append(ref)
    out = f"\n## `{name}`\n" + _code_block(definition) + "\n" + "\n".join(fields) + "\n\n"
    if refs:
        out += "\n".join(["| References |", "| ---------- |", *(f"| {_anchor(r)} |" for r in refs)])
        out += "\n"
    return out


def schema_docs(schema: dict[str, Any]) -> str:
    """Render a CWS event schema as the Markdown reference page."""
    parts = [FRONT_MATTER, _top_level(schema)]
    parts += [_definition(name, d) for name, d in schema["definitions"].items()]
    return "".join(parts) + "\n\n"
