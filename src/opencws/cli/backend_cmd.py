"""`opencws backend`: run the backend (`serve`), manage its API keys (`keys`) and the web UI's users
(`users`)."""

from __future__ import annotations

import argparse
import sys
import time

HELP = "run the backend (intake, storage, search, web UI) and manage its API keys and users"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="backend_command", metavar="COMMAND", required=True)
    s = sub.add_parser("serve", help="serve the HTTP API", description="serve the HTTP API until interrupted")
    s.add_argument("--listen", help="HOST:PORT (default 127.0.0.1:8080; port 0 picks a free one)")
    s.add_argument("--data-dir", help="the embedded store and the API keys (default ./opencws-data)")
    s.add_argument(
        "--store",
        help="clickhouse://[USER[:PASSWORD]@]HOST:PORT/DB[?cluster=NAME][&http_port=N] instead of the embedded store "
        "(http_port: the server's HTTP interface, for inserts)",
    )
    s.add_argument("--config", help="a YAML file of settings (flags take precedence)")
    s.add_argument("--tls-cert", help="certificate (PEM) for HTTPS")
    s.add_argument("--tls-key", help="private key (PEM) for HTTPS")
    s.add_argument(
        "--insecure", action="store_true", default=None, help="allow a non-loopback address without TLS"
    )
    s.add_argument(
        "--detection-rules", action="append", metavar="DIR",
        help="a directory of detection rule files added to the shipped ones (a same-named file replaces one); repeatable",
    )  # fmt: skip
    s.add_argument("--retention-days", type=int, help="days of events kept (0: forever; default 30)")
    s.add_argument(
        "--fsync", action="store_true", default=None,
        help="flush every insert to the disk before answering (acknowledged events survive a power loss)",
    )  # fmt: skip
    s.add_argument(
        "--journal-flush-interval", type=float, metavar="SECONDS",
        help="journaled events wait at most this long before their insert into the store (default 1)",
    )  # fmt: skip
    s.add_argument(
        "--journal-flush-rows", type=int, metavar="N",
        help="insert the journaled events into the store once this many wait (default 50000)",
    )  # fmt: skip
    s.add_argument(
        "--journal-flush-bytes", type=int, metavar="BYTES",
        help="insert the journaled events into the store once this many bytes wait (default 128 MiB)",
    )  # fmt: skip
    s.add_argument(
        "--journal-max-bytes", type=int, metavar="BYTES",
        help="answer 503 while more than this many journaled bytes wait for the store (default 1 GiB)",
    )  # fmt: skip

    k = sub.add_parser(
        "keys",
        help="create, list and revoke API keys",
        description="manage API keys (works while the server runs)",
    )
    ksub = k.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    c = ksub.add_parser("create", help="create a key and print it (once, alone on the last line)")
    c.add_argument("--scope", default="ingest", help="comma-separated: ingest (default), read, admin")
    c.add_argument("--name", default="", help="a label")
    ksub.add_parser("list", help="list keys (never their secret)")
    r = ksub.add_parser("revoke", help="revoke a key (refused at once)")
    r.add_argument("key", help="the key or its id")
    for p in (k, *ksub.choices.values()):
        p.add_argument("--data-dir", default=argparse.SUPPRESS, help="the server's data directory")

    u = sub.add_parser(
        "users",
        help="add, list and remove the web UI's users",
        description="manage the web UI's users (works while the server runs)",
    )
    usub = u.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    a = usub.add_parser(
        "add", help="add a user; the password is asked twice on a terminal, or read from standard input"
    )
    a.add_argument("name")
    a.add_argument("--role", choices=("read", "admin"), default="read", help="read (default) or admin")
    a.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input's first line"
    )
    pw = usub.add_parser("passwd", help="set a user's password (their sessions end)")
    pw.add_argument("name")
    pw.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input's first line"
    )
    usub.add_parser("list", help="list users and their roles")
    r = usub.add_parser("remove", help="remove a user (their sessions end at once)")
    r.add_argument("name")
    for p in (u, *usub.choices.values()):
        p.add_argument("--data-dir", default=argparse.SUPPRESS, help="the server's data directory")


def run(args: argparse.Namespace) -> int:
    if args.backend_command == "serve":
        return _serve(args)
    if args.backend_command == "users":
        return _users(args)
    return _keys(args)


def _serve(args: argparse.Namespace) -> int:
    from opencws.backend.server import serve
    from opencws.backend.settings import Settings, SettingsError
    from opencws.backend.store import StoreError, StoreURLError

    overrides = {
        "listen": args.listen, "data_dir": args.data_dir, "store": args.store, "tls_cert": args.tls_cert,
        "tls_key": args.tls_key, "insecure": args.insecure, "retention_days": args.retention_days, "fsync": args.fsync,
        "detection_rules": args.detection_rules, "journal_flush_interval": args.journal_flush_interval,
        "journal_flush_rows": args.journal_flush_rows, "journal_flush_bytes": args.journal_flush_bytes,
        "journal_max_bytes": args.journal_max_bytes,
    }  # fmt: skip
    try:
        settings = Settings.load(args.config, overrides)
        serve(settings)
    except (SettingsError, StoreURLError) as e:
        print(f"opencws backend serve: {e}", file=sys.stderr)
        return 2
    except StoreError as e:
        print(f"opencws backend serve: {e}", file=sys.stderr)
        return 1
    return 0


def _keys(args: argparse.Namespace) -> int:
    from opencws.backend.keys import KeysError, KeyStore, parse_scopes

    data_dir = getattr(args, "data_dir", None) or "./opencws-data"
    keys = KeyStore(data_dir)
    try:
        if args.keys_command == "create":
            key, text = keys.create(args.name, parse_scopes(args.scope))
            _audit(
                data_dir, _cli_actor(), "key.create", key.id, {"name": key.name, "scopes": list(key.scopes)}
            )
            print(f"created key {key.id} (scopes: {','.join(key.scopes)}); it is shown only now:")
            print(text)
        elif args.keys_command == "list":
            for k in keys.list():
                state = "revoked " + _when(k.revoked) if k.revoked else "active"
                print(f"{k.id}  {','.join(k.scopes):<18} {state:<30} created {_when(k.created)}  {k.name}")
        else:
            k = keys.revoke(args.key)
            _audit(data_dir, _cli_actor(), "key.revoke", k.id, {"name": k.name})
            print(f"revoked key {k.id}")
    except KeysError as e:
        print(f"opencws backend keys: {e}", file=sys.stderr)
        return 1
    finally:
        keys.close()
    return 0


def _when(ts: int | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts or 0))


def _password(args: argparse.Namespace) -> str:
    import getpass

    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def _cli_actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


def _users(args: argparse.Namespace) -> int:
    from opencws.backend.auth.users import UsersError, UserStore

    data_dir = getattr(args, "data_dir", None) or "./opencws-data"
    users = UserStore(data_dir)
    actor = _cli_actor()
    try:
        if args.users_command == "add":
            user = users.add(args.name, args.role, _password(args))
            _audit(data_dir, actor, "user.add", user.name, {"role": user.role})
            print(f"added user {user.name} (role: {user.role})")
        elif args.users_command == "passwd":
            user = users.set_password(args.name, _password(args))
            _audit(data_dir, actor, "user.password", user.name, {})
            print(f"changed the password of {user.name}; their sessions are ended")
        elif args.users_command == "list":
            for u in users.list():
                print(f"{u.name:<24} {u.role:<6} created {_when(u.created)}")
        else:
            user = users.remove(args.name)
            _audit(data_dir, actor, "user.remove", user.name, {"role": user.role})
            print(f"removed user {user.name}; their sessions are ended")
    except (UsersError, ValueError) as e:
        print(f"opencws backend users: {e}", file=sys.stderr)
        return 1
    finally:
        users.close()
    return 0


def _audit(data_dir: str, actor: str, action: str, target: str, detail: dict) -> None:
    from opencws.backend.auth.audit import AuditLog

    log = AuditLog(data_dir)
    try:
        log(actor, action, target, detail)
    finally:
        log.close()
