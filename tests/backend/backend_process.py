"""The backend as a real process on 127.0.0.1 (a free port it picks itself), for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from opencws.backend.keys import KeyStore


def free_port() -> int:
    """A port free on 127.0.0.1 now (for a server that must come back on the same address)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_LISTENING = re.compile(r"listening on (https?)://([0-9.]+):(\d+)")


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM), made with openssl."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass
class Backend:
    data_dir: Path
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    url: str = ""
    log: list[str] = field(default_factory=list)
    cafile: str | None = None  # the CA bundle (a self-signed certificate) for HTTPS

    @property
    def verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=self.cafile) if self.cafile else True

    def start(self, timeout: float = 60) -> Backend:
        cmd = [sys.executable, "-m", "opencws.cli.main", "backend", "serve", "--listen", "127.0.0.1:0",
               "--data-dir", str(self.data_dir), *self.args]  # fmt: skip
        self.log = []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        found = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stderr is not None
            for line in self.proc.stderr:
                self.log.append(line)
                m = _LISTENING.search(line)
                if m and not found.is_set():
                    self.url = f"{m.group(1)}://{m.group(2)}:{m.group(3)}"
                    found.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the backend exited ({self.proc.returncode}):\n{''.join(self.log)}")
            if found.is_set():
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=2, verify=self.verify).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the backend did not start in {timeout} s:\n{''.join(self.log)}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def key(self, scopes: str = "ingest", name: str = "") -> str:
        keys = KeyStore(str(self.data_dir))
        try:
            return keys.create(name, tuple(scopes.split(",")))[1]
        finally:
            keys.close()

    def client(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, verify=self.verify)

    def events(self, read_key: str, **params: str) -> list[dict]:
        """Every stored event the search `params` (q, host...) find, all pages."""
        found: list[dict] = []
        cursor = None
        with self.client(read_key) as c:
            while True:
                r = c.get("/api/v1/events", params={**params, "limit": 1000, **({"cursor": cursor} if cursor else {})})
                assert r.status_code == 200, r.text
                body = r.json()
                found.extend(body["events"])
                cursor = body["next"]
                if cursor is None:
                    return found
