"""Running the backend: the listening socket (loopback by default; TLS or an explicit `--insecure`
elsewhere), uvicorn, and structured (JSON lines) logs on standard error."""

from __future__ import annotations

import ctypes
import gc
import ipaddress
import json
import logging
import socket
import sys
import time

import uvicorn

from opencws.backend.detection import load_rules
from opencws.backend.detection.managed import rule_dirs
from opencws.backend.main import create_app
from opencws.backend.settings import Settings, SettingsError
from opencws.backend.store import open_store, parse_store_url

log = logging.getLogger("opencws.backend")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    for name in ("opencws", "uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.propagate = False
        lg.setLevel(logging.INFO)


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise SettingsError(f"invalid --listen {text!r}: expected HOST:PORT (127.0.0.1:8080)")
    return host.strip("[]") or "127.0.0.1", int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(settings: Settings) -> socket.socket:
    host, port = parse_listen(settings.listen)
    if not is_loopback(host) and settings.tls_cert is None and not settings.insecure:
        raise SettingsError(
            f"refusing to listen on {host} without TLS: give --tls-cert/--tls-key, or --insecure to accept "
            "that keys and events cross the network in clear"
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY on the connections of a socket whose `proto` says TCP, and on
    # no other. Without it each answer's body waited for the client's delayed ACK of its headers (Nagle):
    # 40 ms a request, however small.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise SettingsError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 512 << 20
TRIM_THRESHOLD_BYTES = 1 << 30


def tune_malloc() -> bool:
    """Every intake batch allocates buffers of megabytes (the body, its decompressed text, the compiled pass's
    RowBinary, the journal's records, chdb's insert blocks). glibc serves an allocation above its mmap threshold
    (128 KiB, rising to 32 MiB as it learns) with a fresh mapping, whose pages the kernel zeroes at first touch
    and unmaps at free: page faults and page clearing were a fifth of the intake's CPU time (perf). Served
    from the heap and kept there once freed, the same memory serves batch after batch: about 20% more events
    per CPU-second (`opencws bench backend`) for the same peak RSS (the peak is made of those buffers), which
    then stays (what a burst took is kept for the next one). False where the C library has no `mallopt`."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


def tune_gc() -> None:
    """Intake parses JSON into millions of small containers, which the cyclic collector rescans for nothing
    (parsed events hold no cycles): with CPython's default thresholds (700, 10, 10), parsing a batch runs
    at about half its speed. Long-lived objects of start-up are frozen out of its reach."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def serve(settings: Settings) -> None:
    """Open the store, listen and serve until SIGINT/SIGTERM."""
    configure_logging()
    if settings.store is not None:
        parse_store_url(settings.store)  # a bad URL is a usage error, before anything is bound or opened
    load_rules(rule_dirs(settings.detection_rules, settings.data_dir))  # a bad rule file stops the start with its errors, before binding
    sock = bind(settings)
    host, port = sock.getsockname()[:2]
    scheme = "https" if settings.tls_cert else "http"
    if not is_loopback(host) and settings.tls_cert is None:
        log.warning(
            "listening on %s WITHOUT TLS (--insecure): API keys and events cross the network in clear", host
        )
    # Opened before serving, so that a bad store stops the start with its reason (and no port is served).
    store = open_store(settings.store, settings.data_dir, settings.fsync, settings.journal_limits())
    app = create_app(settings, store)
    tune_gc()
    tune_malloc()
    config = uvicorn.Config(
        app, log_config=None, access_log=True, ssl_certfile=settings.tls_cert, ssl_keyfile=settings.tls_key,
        timeout_graceful_shutdown=10, server_header=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    where = settings.store or f"embedded (chdb) under {settings.data_dir}"
    log.info("listening on %s://%s:%d, store: %s", scheme, host, port, _redact(where))
    try:
        server.run(sockets=[sock])
    finally:
        store.close()


def _redact(url: str) -> str:
    """A store URL without its password."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    cred, host = rest.rsplit("@", 1)
    return f"{scheme}://{cred.split(':', 1)[0]}:***@{host}" if ":" in cred else url
