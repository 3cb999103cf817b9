"""Sign-in, sessions and roles over plain HTTP on real backend processes: the cookie's flags (Secure under
TLS), CSRF refusals, throttled sign-in, API-key sign-in, a removed user's session ending at once, the
audit log."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie

import httpx
import pytest
from backend_process import Backend, self_signed_cert
from ui_harness import PASSWORDS, add_user

ALICE = {"user": "alice", "password": PASSWORDS["alice"]}
RITA = {"user": "rita", "password": PASSWORDS["rita"]}


def cookie_of(r: httpx.Response) -> SimpleCookie:
    jar = SimpleCookie()
    jar.load(r.headers["set-cookie"])
    return jar


@contextmanager
def signed_in(b: Backend, who: dict) -> Iterator[tuple[httpx.Client, str]]:
    with b.client(None) as c:
        r = c.post("/api/v1/session", json=who)
        assert r.status_code == 200, r.text
        yield c, r.json()["csrf"]


@pytest.fixture(scope="module")
def tls_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """HTTPS with a self-signed certificate; sign-in allows 3 failures per user, 8 per address."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = self_signed_cert(d)
    config = d / "backend.yaml"
    config.write_text(
        "signin_failures_per_user: 3\nsignin_failures_per_address: 8\nsignin_failure_window: 600\n"
    )
    data = d / "data"
    data.mkdir()
    b = Backend(
        data, ["--config", str(config), "--tls-cert", str(cert), "--tls-key", str(key)], cafile=str(cert)
    )
    b.start()
    for name, role in (("alice", "admin"), ("rita", "read")):
        add_user(b, name, role)
    yield b
    b.stop()


def test_the_session_cookie_is_httponly_samesite_strict_and_expires(ui_backend: Backend) -> None:
    with ui_backend.client(None) as c:
        r = c.post("/api/v1/session", json=ALICE)
        assert r.status_code == 200
        assert r.json()["name"] == "alice" and r.json()["role"] == "admin" and len(r.json()["csrf"]) >= 32
        morsel = cookie_of(r)["opencws_session"]
        assert morsel["httponly"] and morsel["samesite"] == "strict" and morsel["path"] == "/"
        assert int(morsel["max-age"]) == 12 * 3600
        assert not morsel["secure"]  # plain HTTP on loopback: a Secure cookie would never come back
        assert c.get("/api/v1/session").json()["name"] == "alice"
        assert c.get("/api/v1/events", params={"limit": 1}).status_code == 200


def test_under_tls_the_session_cookie_is_secure(tls_backend: Backend) -> None:
    with tls_backend.client(None) as c:
        r = c.post("/api/v1/session", json=ALICE)
        assert r.status_code == 200
        morsel = cookie_of(r)["opencws_session"]
        assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "strict"


def test_a_change_without_the_sessions_csrf_token_is_refused(ui_backend: Backend) -> None:
    with signed_in(ui_backend, ALICE) as (c, csrf):
        new = {"name": "csrf-victim", "role": "read", "password": "q" * 16}
        for headers in ({}, {"X-CSRF-Token": "forged"}):
            r = c.post("/api/v1/users", json=new, headers=headers)
            assert (
                r.status_code == 403
                and r.json()["detail"] == "missing or wrong X-CSRF-Token header: reload the page"
            )
        assert c.delete("/api/v1/session").status_code == 403  # signing out is a change too
        assert "csrf-victim" not in [u["name"] for u in c.get("/api/v1/users").json()["users"]]
        r = c.post("/api/v1/users", json=new, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201, r.text
        assert c.delete("/api/v1/users/csrf-victim", headers={"X-CSRF-Token": csrf}).status_code == 200


def test_an_api_key_needs_no_csrf_token(ui_backend: Backend) -> None:
    with ui_backend.client(ui_backend.key("admin")) as c:
        r = c.post("/api/v1/users", json={"name": "by-key", "role": "read", "password": "k" * 16})
        assert r.status_code == 201, r.text
        assert c.delete("/api/v1/users/by-key").status_code == 200


def test_a_read_user_may_search_but_not_change(ui_backend: Backend) -> None:
    with signed_in(ui_backend, RITA) as (c, csrf):
        assert c.get("/api/v1/events", params={"limit": 1}).status_code == 200
        r = c.post("/api/v1/users", json={"name": "x", "password": "p" * 16}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 403
        assert r.json()["detail"] == "your role's rights (read) do not allow this: it needs admin"
        assert c.get("/api/v1/audit").status_code == 403
        assert c.get("/api/v1/keys").status_code == 403


def test_sign_in_with_a_read_or_admin_key_but_not_an_ingest_key(ui_backend: Backend) -> None:
    with ui_backend.client(None) as c:
        r = c.post("/api/v1/session", json={"key": ui_backend.key("read", "analyst")})
        assert r.status_code == 200 and r.json()["role"] == "read" and r.json()["name"] == "analyst"
        assert c.get("/api/v1/events", params={"limit": 1}).status_code == 200
    with ui_backend.client(None) as c:
        r = c.post("/api/v1/session", json={"key": ui_backend.key("ingest")})
        assert r.status_code == 401 and "read or admin scope" in r.json()["detail"]


def test_a_revoked_key_ends_the_sessions_it_opened(ui_backend: Backend) -> None:
    key = ui_backend.key("read", "short-lived")
    with ui_backend.client(None) as c:
        assert c.post("/api/v1/session", json={"key": key}).status_code == 200
        with ui_backend.client(ui_backend.key("admin")) as admin:
            assert admin.delete(f"/api/v1/keys/{key.split('_')[1]}").status_code == 200
        r = c.get("/api/v1/events")
        assert r.status_code == 401 and "expired or ended" in r.json()["detail"]


def test_signing_out_ends_the_session(ui_backend: Backend) -> None:
    with signed_in(ui_backend, RITA) as (c, csrf):
        secret = c.cookies["opencws_session"]
        r = c.delete("/api/v1/session", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 204 and 'opencws_session=""' in r.headers["set-cookie"]
        c.cookies.set("opencws_session", secret)  # a copy of the cookie kept by someone: refused all the same
        assert c.get("/api/v1/session").status_code == 401


def test_a_user_removed_from_the_cli_is_signed_out_at_once(ui_backend: Backend) -> None:
    cli = [sys.executable, "-m", "opencws.cli.main", "backend", "users"]
    data = ["--data-dir", str(ui_backend.data_dir)]
    out = subprocess.run([*cli, "add", "carol", "--role", "read", "--password-stdin", *data],
                         input="carol's long password\n", capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0 and out.stdout == "added user carol (role: read)\n", out.stderr
    listed = subprocess.run([*cli, "list", *data], capture_output=True, text=True).stdout
    assert any(line.split()[:2] == ["carol", "read"] for line in listed.splitlines())
    with signed_in(ui_backend, {"user": "carol", "password": "carol's long password"}) as (c, _):
        assert c.get("/api/v1/session").status_code == 200
        out = subprocess.run([*cli, "remove", "carol", *data], capture_output=True, text=True)
        assert out.returncode == 0 and "removed user carol" in out.stdout
        assert c.get("/api/v1/session").status_code == 401
    again = subprocess.run([*cli, "remove", "carol", *data], capture_output=True, text=True)
    assert again.returncode == 1 and again.stderr == "opencws backend users: no user 'carol'\n"


def test_a_password_changed_from_the_cli_ends_the_sessions_and_the_old_password(ui_backend: Backend) -> None:
    cli = [sys.executable, "-m", "opencws.cli.main", "backend", "users"]
    data = ["--data-dir", str(ui_backend.data_dir)]
    old, new = (
        {"user": "fred", "password": "fred's first password"},
        {"user": "fred", "password": "fred's second one"},
    )
    run = subprocess.run(
        [*cli, "add", "fred", "--password-stdin", *data],
        input=old["password"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    with signed_in(ui_backend, old) as (c, _):
        run = subprocess.run(
            [*cli, "passwd", "fred", *data], input=new["password"] + "\n", capture_output=True, text=True
        )
        assert (
            run.returncode == 0 and run.stdout == "changed the password of fred; their sessions are ended\n"
        )
        assert c.get("/api/v1/session").status_code == 401
        assert c.post("/api/v1/session", json=old).status_code == 401
        assert c.post("/api/v1/session", json=new).status_code == 200
    with ui_backend.client(ui_backend.key("admin")) as c:
        (entry,) = c.get("/api/v1/audit", params={"action": "user.password", "target": "fred"}).json()[
            "entries"
        ]
        assert entry["actor"].startswith("cli:")


def test_the_cli_refuses_a_short_password_and_an_unknown_role(ui_backend: Backend) -> None:
    cli = [sys.executable, "-m", "opencws.cli.main", "backend", "users", "add", "dave"]
    data = ["--data-dir", str(ui_backend.data_dir)]
    out = subprocess.run([*cli, "--password-stdin", *data], input="short\n", capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr == "opencws backend users: the password is too short: at least 12 characters\n"
    out = subprocess.run([*cli, "--role", "root", *data], input="x" * 20, capture_output=True, text=True)
    assert out.returncode == 2 and "invalid choice: 'root'" in out.stderr


def test_a_cross_site_sign_in_is_refused(ui_backend: Backend) -> None:
    with ui_backend.client(None) as c:
        r = c.post("/api/v1/session", json=ALICE, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and "set-cookie" not in r.headers


def test_sign_in_is_throttled_per_user_then_per_address(tls_backend: Backend) -> None:
    with tls_backend.client(None) as c:
        for _ in range(3):
            r = c.post("/api/v1/session", json={"user": "alice", "password": "guess"})
            assert r.status_code == 401 and r.json()["detail"] == "wrong user name or password"
        r = c.post("/api/v1/session", json=ALICE)  # the right password, after 3 failures: still refused
        assert r.status_code == 429
        wait = int(r.headers["retry-after"])
        assert 150 <= wait <= 200  # a third of the window: one failure's worth
        assert r.json()["detail"] == f"too many failed sign-ins for 'alice': try again in {wait} s"
        assert c.post("/api/v1/session", json=RITA).status_code == 200  # other users are not locked out
        for name in ("u1", "u2", "u3", "u4", "u5"):  # failures 4..8 from this address
            assert c.post("/api/v1/session", json={"user": name, "password": "guess"}).status_code == 401
        r = c.post("/api/v1/session", json=RITA)
        assert r.status_code == 429 and r.json()["detail"].startswith(
            "too many failed sign-ins from 127.0.0.1:"
        )


def test_the_audit_log_records_changes_and_failed_sign_ins(ui_backend: Backend) -> None:
    with ui_backend.client(None) as c:
        assert c.post("/api/v1/session", json={"user": "nobody", "password": "whatever"}).status_code == 401
    with signed_in(ui_backend, ALICE) as (c, csrf):
        r = c.post("/api/v1/users", json={"name": "eve", "role": "admin", "password": "e" * 16},
                   headers={"X-CSRF-Token": csrf})  # fmt: skip
        assert r.status_code == 201
        entries = c.get("/api/v1/audit", params={"limit": 50}).json()["entries"]
        add = next(e for e in entries if e["action"] == "user.add" and e["target"] == "eve")
        assert add["actor"] == "alice" and add["detail"] == {"role": "admin"} and add["at"].endswith("Z")
        failed = next(e for e in entries if e["action"] == "signin.failed" and e["target"] == "nobody")
        assert failed["detail"] == {"address": "127.0.0.1"}
        assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
        page = c.get("/api/v1/audit", params={"limit": 2, "action": "user."}).json()
        assert len(page["entries"]) == 2 and all(e["action"].startswith("user.") for e in page["entries"])
        rest = c.get("/api/v1/audit", params={"limit": 2, "action": "user.", "cursor": page["next"]}).json()
        assert rest["entries"] and rest["entries"][0]["id"] < page["entries"][-1]["id"]
