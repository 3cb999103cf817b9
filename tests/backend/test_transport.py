"""Transport: HTTPS with --tls-cert/--tls-key; a non-loopback address without TLS refused at start; answers sent
at once (no Nagle delay)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import httpx
import pytest
from backend_process import Backend, self_signed_cert

from opencws.backend.server import bind, parse_listen
from opencws.backend.settings import Settings, SettingsError


def test_https_with_the_given_certificate(tmp_path) -> None:
    cert, key = self_signed_cert(tmp_path)
    b = Backend(tmp_path / "data", ["--tls-cert", str(cert), "--tls-key", str(key)], cafile=str(cert))
    b.data_dir.mkdir()
    b.start()
    try:
        assert b.url.startswith("https://127.0.0.1:")
        reader = b.key("read")
        r = httpx.get(
            f"{b.url}/api/v1/events", headers={"Authorization": f"Bearer {reader}"}, verify=str(cert)
        )
        assert r.status_code == 200
        plain = b.url.replace("https://", "http://")
        try:
            httpx.get(f"{plain}/healthz", timeout=5)
            raise AssertionError("plain HTTP answered on the TLS port")
        except httpx.TransportError:
            pass
    finally:
        b.stop()


def test_listening_beyond_loopback_without_tls_is_refused(tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "opencws.cli.main", "backend", "serve", "--listen", "0.0.0.0:0", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert "refusing to listen on 0.0.0.0 without TLS" in out.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:65535", ("127.0.0.1", 65535)), ("[::1]:8080", ("::1", 8080)), (":8080", ("127.0.0.1", 8080))],
)
def test_a_listen_address_is_host_and_port_up_to_the_highest_port(text, expected) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1:65536", "127.0.0.1", "127.0.0.1:-1", "127.0.0.1:http"])
def test_a_listen_address_beyond_the_ports_or_without_one_is_refused(text) -> None:
    with pytest.raises(SettingsError, match="expected HOST:PORT"):
        parse_listen(text)


def test_answers_do_not_name_the_server_software(backend: Backend) -> None:
    """No `Server: uvicorn` header: what runs the backend is not advertised to whoever can reach it."""
    r = httpx.get(f"{backend.url}/healthz")
    assert r.status_code == 200 and "server" not in r.headers


def test_the_connections_of_the_listening_socket_send_answers_at_once() -> None:
    """asyncio turns Nagle's algorithm off (TCP_NODELAY) only on the connections of a socket made for TCP by
    name; with it on, an answer's body waited for the client's delayed ACK of its headers: 40 ms a request."""
    sock = bind(Settings(listen="127.0.0.1:0"))
    assert sock.proto == socket.IPPROTO_TCP
    seen: list[int] = []

    async def main() -> None:
        def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(connected, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            while not seen:
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert seen == [1]
