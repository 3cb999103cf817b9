"""Events are read from one document, a JSON array or JSON lines, each problem at its place."""

from __future__ import annotations

import io

from opencws.schema.reader import read_documents


def _read(data: bytes, **kw):
    return [(i.where, i.value, i.error) for i in read_documents(io.BytesIO(data), **kw)]


def test_json_lines_are_read_line_by_line_and_blank_lines_skipped():
    assert _read(b'{"a": 1}\n\n  \n{"b": 2}\n') == [("line 1", {"a": 1}, None), ("line 4", {"b": 2}, None)]


def test_a_truncated_last_line_is_reported_and_the_lines_before_are_kept():
    items = _read(b'{"a": 1}\n{"b": ')
    assert items[0] == ("line 1", {"a": 1}, None)
    assert (
        items[1][0] == "line 2" and "malformed JSON" in items[1][2] and "truncated last line" in items[1][2]
    )


def test_a_json_array_is_read_element_by_element():
    assert _read(b' [ {"a": 1}, 2 ]') == [("index 0", {"a": 1}, None), ("index 1", 2, None)]


def test_a_broken_json_array_keeps_the_elements_before_the_break():
    items = _read(b'[{"a": 1}, {"b": ]')
    assert items[0] == ("index 0", {"a": 1}, None)
    assert items[1][0] == "index 1" and "malformed JSON array" in items[1][2] and "\n" not in items[1][2]


def test_a_pretty_printed_document_is_one_document():
    assert _read(b'{\n  "a": {\n    "b": 1\n  }\n}\n') == [("document", {"a": {"b": 1}}, None)]


def test_an_oversized_line_is_skipped_without_losing_the_next_one():
    data = b'{"a": "' + b"x" * 5000 + b'"}\n{"b": 1}\n'
    items = _read(data, max_event_bytes=1000)
    assert items[0][0] == "line 1" and "larger than 1000 bytes" in items[0][2]
    assert items[1] == ("line 2", {"b": 1}, None)


def test_the_format_can_be_forced():
    assert _read(b'{"a": 1}', fmt="json") == [("document", {"a": 1}, None)]
    assert _read(b"[1]\n[2]\n", fmt="jsonl") == [("line 1", [1], None), ("line 2", [2], None)]


def test_empty_input_has_no_documents():
    assert _read(b"") == [] and _read(b" \n\n") == []


def test_binary_garbage_is_reported_not_raised():
    items = _read(b"\xff\xfe\x00garbage\n")
    assert items == [("line 1", None, items[0][2])] and "malformed JSON" in items[0][2]


def test_a_pretty_printed_document_whose_first_line_is_not_a_lone_brace_is_one_document():
    assert _read(b'{"a": {\n  "b": 1}\n}\n') == [("document", {"a": {"b": 1}}, None)]


def test_json_lines_with_a_malformed_first_line_are_still_read_line_by_line():
    items = _read(b'{"a": \n{"b": 1}\n')
    assert items[0][0] == "line 1" and "malformed JSON" in items[0][2]
    assert items[1] == ("line 2", {"b": 1}, None)


def test_leading_blank_lines_are_skipped_and_still_counted():
    assert _read(b"\n" * 1000 + b'{"a": 1}\n') == [("line 1001", {"a": 1}, None)]


def test_megabytes_of_leading_blanks_are_skipped_without_being_held():
    class CountingStream(io.BytesIO):
        largest = 0

        def read(self, n=-1):
            data = super().read(n)
            self.largest = max(self.largest, len(data))
            return data

    stream = CountingStream(b" \n" * 5_000_000 + b'{"a": 1}')
    assert [(i.where, i.value) for i in read_documents(stream)] == [("line 5000001", {"a": 1})]
    assert stream.largest <= 1 << 16


def test_strings_of_bytes_that_are_not_utf8_are_read_from_lines_and_told_in_arrays():
    # (\udcXX: a byte of a kernel string that is not UTF-8, as opencws.model.jsontext writes it)
    assert _read(b'{"p": "/tmp/\\udcff"}\n') == [("line 1", {"p": "/tmp/\udcff"}, None)]
    assert _read(b'{\n  "p": "/tmp/\\udcff"\n}\n') == [("document", {"p": "/tmp/\udcff"}, None)]
    items = _read(b'[{"a": 1}, {"p": "/tmp/\\udcff"}]')
    assert items[0] == ("index 0", {"a": 1}, None)
    assert items[1][0] == "index 1" and "not UTF-8" in items[1][2]
