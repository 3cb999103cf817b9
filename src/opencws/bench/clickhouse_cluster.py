"""Local ClickHouse servers (Debian's `clickhouse-server`) on loopback, the shards of one cluster, for the
tests and `opencws bench backend`. Each server has its own temporary directory and free ports; all share
one `remote_servers` definition, so a `Distributed` table on any of them spans them all. No Keeper: tables
are created on each shard by the store (see docs/backend.md for a replicated deployment)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from opencws.bench.timing import process_cpu_seconds

CLUSTER = "opencws"
SERVER_BINARY = "clickhouse-server"
_USERS = "/etc/clickhouse-server/users.xml"


def missing() -> str | None:
    """Why no local ClickHouse server can run here, or None."""
    if shutil.which(SERVER_BINARY) is None:
        return f"{SERVER_BINARY} is not installed (scripts/setup.sh installs Debian's)"
    if not os.path.exists(_USERS):
        return f"{_USERS} is missing (Debian's clickhouse-server package installs it)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(root: str, tcp: int, http: int, shards: list[int]) -> str:
    replicas = "".join(
        f"<shard><replica><host>127.0.0.1</host><port>{p}</port></replica></shard>" for p in shards
    )
    return f"""<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{root}/server.log</log><errorlog>{root}/server.err.log</errorlog>
    <size>10M</size><count>1</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{tcp}</tcp_port>
  <http_port>{http}</http_port>
  <path>{root}/data/</path>
  <tmp_path>{root}/tmp/</tmp_path>
  <user_files_path>{root}/user_files/</user_files_path>
  <format_schema_path>{root}/format_schemas/</format_schema_path>
  <users_config>{_USERS}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <timezone>UTC</timezone>
  <remote_servers><{CLUSTER}>{replicas}</{CLUSTER}></remote_servers>
</yandex>
"""


@dataclass
class LocalCluster:
    shards: int = 2
    root: str = ""
    ports: list[int] = field(default_factory=list)  # native protocol, one per shard
    http_ports: list[int] = field(default_factory=list)  # HTTP interface, one per shard
    procs: list[subprocess.Popen] = field(default_factory=list)

    def start(self, timeout: float = 60) -> LocalCluster:
        reason = missing()
        if reason:
            raise RuntimeError(reason)
        self.root = tempfile.mkdtemp(prefix="opencws-clickhouse-")
        self.ports = [_free_port() for _ in range(self.shards)]
        self.http_ports = [_free_port() for _ in range(self.shards)]
        try:
            for i, port in enumerate(self.ports):
                d = os.path.join(self.root, f"shard{i + 1}")
                os.makedirs(d)
                with open(os.path.join(d, "config.xml"), "w") as f:
                    f.write(_config(d, port, self.http_ports[i], self.ports))
                self.procs.append(self._spawn(i))
            for i in range(self.shards):
                self._wait(i, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, i: int) -> subprocess.Popen:
        d = os.path.join(self.root, f"shard{i + 1}")
        with open(os.path.join(d, "stdout.log"), "a") as out:
            return subprocess.Popen(
                [SERVER_BINARY, f"--config-file={os.path.join(d, 'config.xml')}"],
                stdout=out, stderr=subprocess.STDOUT, cwd=d,
            )  # fmt: skip

    def kill(self, i: int) -> None:
        """Shard `i` (from 0) dies at once (SIGKILL: a crash, whatever it was doing)."""
        proc = self.procs[i]
        if proc.poll() is None:
            proc.kill()
        proc.wait()

    def restart(self, i: int, timeout: float = 60) -> None:
        """Shard `i` (stopped or killed) starts again on its ports, with its data."""
        self.kill(i)
        self.procs[i] = self._spawn(i)
        self._wait(i, timeout)

    def _wait(self, i: int, timeout: float) -> None:
        from clickhouse_driver import Client

        port, proc = self.ports[i], self.procs[i]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"clickhouse-server on port {port} exited ({proc.returncode}); see {self.root}"
                )
            try:
                # The ports first: the driver logs a traceback for every refused connection.
                for p in (port, self.http_ports[i]):
                    socket.create_connection(("127.0.0.1", p), timeout=1).close()
                Client("127.0.0.1", port=port, connect_timeout=1).execute("SELECT 1")
                return
            except Exception:
                time.sleep(0.2)
        raise RuntimeError(f"clickhouse-server on port {port} did not answer in {timeout} s; see {self.root}")

    def url(self, database: str, cluster: bool = True, http: bool = True) -> str:
        """The store URL of the first shard (`cluster`: the whole cluster through it; `http`: inserts over its
        HTTP interface, else over the native protocol)."""
        query = ([f"cluster={CLUSTER}"] if cluster else []) + ([f"http_port={self.http_ports[0]}"] if http else [])
        return f"clickhouse://127.0.0.1:{self.ports[0]}/{database}" + ("?" + "&".join(query) if query else "")

    def cpu_seconds(self) -> float:
        """CPU time (user and system) the servers have used so far."""
        total = 0.0
        for proc in self.procs:
            with contextlib.suppress(OSError):  # (a server gone)
                total += process_cpu_seconds(proc.pid)
        return total

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = ""
