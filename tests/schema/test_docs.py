"""The Markdown reference is generated in the documentation format, with the current definitions."""

from __future__ import annotations

import json
import re

from opencws.cli.main import main
from opencws.schema.docs import schema_docs
from opencws.schema.generate import event_schema


def test_the_legacy_docs_are_byte_identical_to_the_reference_page(spec_dir):
    reference = (spec_dir / "000_09973210740abe87.txt").read_text()
    assert schema_docs(event_schema(legacy=True)) == reference


def _sections(markdown: str) -> dict[str, dict]:
    """Definition name → its JSON block, Field rows and References of the generated docs."""
    out = {}
    for chunk in markdown.split("\n## `")[1:]:
        name = chunk.split("`", 1)[0]
        block = chunk.split('collapsible="true" >}}\n', 1)[1].split("\n\n{{< /code-block >}}", 1)[0]
        fields = re.findall(r"^\| `(\w+)` \| (.+?) \|$", chunk, re.M)
        refs = re.findall(r"^\| \[(\w+)\]\(#\w+\) \|$", chunk, re.M)
        out[name] = {"json": json.loads(block), "fields": fields, "refs": refs}
    return out


def _reference_sections(text: str) -> dict[str, dict]:
    """The same, read from the rendered reference page (shared/spec/003_*.txt)."""
    lines = text.splitlines()
    starts = [
        i
        for i in range(len(lines) - 2)
        if re.fullmatch(r"[A-Z]\w+", lines[i]) and lines[i + 1] == "" and lines[i + 2] == "{"
    ]
    out = {}
    for n, i in enumerate(starts):
        stop = starts[n + 1] if n + 1 < len(starts) else len(lines)
        end = lines.index("}", i + 2)
        section = lines[end + 1 : stop]
        fields, refs, target = [], [], None
        for row in section:
            if row in ("Field Description", "References"):
                target = fields if row == "Field Description" else refs
            elif row and target is fields:
                key, _, desc = row.partition(" ")
                # The rendered page typesets quotes in tables (curly quotes); the JSON blocks keep them straight.
                fields.append((key, desc.replace("\u2018", "'").replace("\u2019", "'")))
            elif row and target is refs:
                refs.append(row)
        out[lines[i]] = {
            "json": json.loads("\n".join(lines[i + 2 : end + 1])),
            "fields": fields,
            "refs": refs,
        }
    out.pop("BACKEND_EVENT_JSON_SCHEMA", None)
    return out


def test_the_current_docs_match_the_reference_page_definition_by_definition(spec_dir):
    reference = _reference_sections((spec_dir / "003_c1d1640e9a13ebe3.txt").read_text())
    generated = _sections(schema_docs(event_schema()))
    assert set(generated) == set(reference)
    for name, section in generated.items():
        assert section == reference[name], name


def test_schema_docs_prints_front_matter_and_every_definition(capsys):
    assert main(["schema", "docs"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("---\ntitle: CWS Event Documentation\n")
    for name in event_schema()["definitions"]:
        assert f"\n## `{name}`\n" in out
    assert '{{< code-block lang="json" collapsible="true" filename="BACKEND_EVENT_SCHEMA" >}}' in out
    assert "| `bpf` | $ref | Please see [BPFEvent](#bpfevent) |" in out
