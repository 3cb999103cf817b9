"""The backend as a child process of `opencws run`: started, watched, stopped.

The child runs `opencws backend serve` in a session of its own, so that a Ctrl-C at the terminal reaches
`opencws run` alone (which stops the agent first: its last batches need a running backend), and it is told
to stop if `opencws run` itself dies (`PR_SET_PDEATHSIG`): a backend never outlives its supervisor holding
the data directory. Its logs (JSON lines) go to a file; warnings and errors are echoed on standard error.
"""

from __future__ import annotations

import ctypes
import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from typing import TextIO

_LISTENING = re.compile(r"listening on (https?://\S+?:\d+)")
_PR_SET_PDEATHSIG = 1


class BackendChildError(Exception):
    """The backend did not start; the message ends with its last log lines."""


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class BackendChild:
    def __init__(self, data_dir: Path, listen: str, log_path: Path, *, echo: TextIO | None = None,
                 extra_args: list[str] | None = None):
        self.data_dir = data_dir
        self.listen = listen
        self.extra_args = extra_args or []
        self.log_path = log_path
        self.echo = echo if echo is not None else sys.stderr
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self._tail: deque[str] = deque(maxlen=20)
        self._listening = threading.Event()
        self._pump: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, timeout: float = 120.0) -> str:
        """Start and wait until `/healthz` answers; the backend's URL. `BackendChildError` otherwise."""
        cmd = [sys.executable, "-m", "opencws.cli.main", "backend", "serve", "--data-dir", str(self.data_dir),
               "--listen", self.listen, *self.extra_args]
        log = self.log_path.open("a", encoding="utf-8")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        self._pump = threading.Thread(target=self._read_log, args=(log,), name="backend log", daemon=True)
        self._pump.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                self._pump.join(2)
                raise BackendChildError(f"the backend exited with code {code} at start:\n{self.tail()}")
            if self._listening.is_set() and self._healthy():
                return self.url
            time.sleep(0.1)
        self.stop()
        raise BackendChildError(f"the backend did not answer within {timeout:.0f} s:\n{self.tail()}")

    def tail(self) -> str:
        return "".join(self._tail).rstrip("\n") or "(no output)"

    def wait(self) -> int:
        assert self.proc is not None
        return self.proc.wait()

    def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds; the exit code (None if it was never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._pump is not None:
            self._pump.join(5)
        return self.proc.returncode

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _read_log(self, log: TextIO) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        try:
            for line in self.proc.stderr:
                log.write(line)
                log.flush()
                self._tail.append(line)
                if not self._listening.is_set():
                    m = _LISTENING.search(line)
                    if m:
                        self.url = m.group(1)
                        self._listening.set()
                self._echo_if_worth_it(line)
        finally:
            log.close()

    def _echo_if_worth_it(self, line: str) -> None:
        """Warnings and errors on the terminal; the rest (access logs...) in the log file only."""
        try:
            doc = json.loads(line)
            worth = doc.get("level") in ("warning", "error", "critical")
            text = doc.get("msg", line) if worth else ""
        except (json.JSONDecodeError, AttributeError):
            worth, text = True, line  # not a log line: a traceback, say
        if worth:
            try:
                self.echo.write(f"backend: {text.rstrip()}\n")
                self.echo.flush()
            except (OSError, ValueError):
                pass
