"""`opencws backend keys ...` and the usage errors of `opencws backend serve` (the server itself is tested
end to end in tests/backend)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencws.backend.keys import KeyStore
from opencws.cli.main import main


def test_keys_create_prints_the_key_alone_on_its_last_line(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "backend",
                "keys",
                "create",
                "--data-dir",
                str(tmp_path),
                "--scope",
                "read,admin",
                "--name",
                "ops",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    key = out[-1]
    assert key.startswith("ocws_") and " " not in key
    keys = KeyStore(str(tmp_path))
    found = keys.check(key)
    assert found is not None and found.scopes == ("read", "admin") and found.name == "ops"
    assert key.split("_", 2)[2].encode() not in Path(keys.path).read_bytes()  # only a hash is kept
    keys.close()


def test_keys_list_and_revoke(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["backend", "keys", "create", "--data-dir", str(tmp_path)])
    key = capsys.readouterr().out.splitlines()[-1]
    kid = key.split("_")[1]
    assert main(["backend", "keys", "list", "--data-dir", str(tmp_path)]) == 0
    line = capsys.readouterr().out
    assert kid in line and "ingest" in line and "active" in line
    assert main(["backend", "keys", "revoke", kid, "--data-dir", str(tmp_path)]) == 0
    assert main(["backend", "keys", "revoke", kid, "--data-dir", str(tmp_path)]) == 1
    assert "already revoked" in capsys.readouterr().err
    assert main(["backend", "keys", "revoke", "nope", "--data-dir", str(tmp_path)]) == 1
    assert "no key nope" in capsys.readouterr().err


def test_keys_create_refuses_an_unknown_scope(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backend", "keys", "create", "--scope", "ingest,root", "--data-dir", str(tmp_path)]) == 1
    assert "invalid scope(s) root" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "nowhere"], "invalid --listen 'nowhere'"),
        (["--store", "mysql://h/db"], "unsupported store URL scheme 'mysql'"),
        (["--store", "clickhouse://h/db?x=1"], "unknown store URL parameter(s): x"),
        (["--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
        (["--retention-days", "-1"], "retention_days must be an integer >= 0"),
    ],
)
def test_serve_usage_errors_exit_2_with_the_reason(
    tmp_path, capsys: pytest.CaptureFixture[str], args, message
) -> None:
    listen = [] if "--listen" in args else ["--listen", "127.0.0.1:0"]
    assert main(["backend", "serve", "--data-dir", str(tmp_path), *listen, *args]) == 2
    assert message in capsys.readouterr().err
