"""The audit log's entries as they are kept (the API's view of them is in test_auth_api.py)."""

from __future__ import annotations

from opencws.backend.auth.audit import MAX_DETAIL, AuditLog


def test_a_detail_of_the_size_limit_is_kept_whole_and_a_larger_one_truncated(tmp_path):
    log = AuditLog(str(tmp_path))
    try:
        at_limit = "x" * (MAX_DETAIL - 2)  # with its quotes, MAX_DETAIL bytes of JSON
        whole = log("alice", "user.add", "bob", at_limit)
        over = log("alice", "user.add", "bob", at_limit + "y")
        assert whole.detail == at_limit
        assert over.detail == {"truncated": '"' + at_limit + "y"}  # its JSON's first MAX_DETAIL bytes
        assert [e.detail for e in log.entries()] == [over.detail, at_limit]  # as stored (newest first)
    finally:
        log.close()
