"""`opencws agent run` as a real process, its self-events read from standard error as they come."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import orjson

OPENCWS = [sys.executable, "-m", "opencws.cli.main"]


class AgentProcess:
    def __init__(self, *args: str, env: dict[str, str] | None = None, **popen: Any):
        self.proc = subprocess.Popen([*OPENCWS, "agent", "run", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, **popen)
        self.self_events: list[dict] = []
        self._buf = b""

    def wait_for(self, kind: str, timeout: float = 30.0) -> dict:
        """The next self-event of that kind on standard error."""
        deadline = time.monotonic() + timeout
        os.set_blocking(self.proc.stderr.fileno(), False)
        while time.monotonic() < deadline:
            chunk = self.proc.stderr.read()
            if chunk:
                self._buf += chunk
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                try:
                    doc = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                self.self_events.append(doc)
                if doc.get("agent_event") == kind:
                    return doc
            if self.proc.poll() is not None and not chunk:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {kind!r} self-event; seen {self.self_events}, rest {self._buf[-2000:]!r}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)
