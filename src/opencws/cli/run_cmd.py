"""`opencws run`: the whole product on this machine, the backend and the agent reporting to it.

1. The backend (`opencws backend serve`, embedded store) starts as a child process on `--listen`, with its data,
   its API keys and its log (`backend.log`) in `--data-dir`.
2. The agent's ingest key is created in that key store the first time and kept in `DATA_DIR/agent.key` (mode
   0600); the next run uses it again (and replaces it if it was revoked).
3. The agent runs in this process with the options of `opencws agent run` (the default policy unless told
   otherwise), reporting over HTTP to the backend (and to the `--output`s given), its spool in
   `DATA_DIR/agent-spool`.
4. Once both are up, the UI's address and how to sign in are printed.
5. Ctrl-C or SIGTERM: the agent drains and closes its outputs (its last batches reach the backend), then the
   backend is stopped. If either exits by itself, it is said and the other is stopped (exit code 1).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from opencws.cli import agent_cmd

HELP = "run the whole product: the backend (embedded store, web UI) and the agent reporting to it"
DEFAULT_DATA_DIR = Path("/var/lib/opencws")
DEFAULT_LISTEN = "127.0.0.1:8080"
KEY_FILE = "agent.key"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.epilog = agent_cmd.config_help()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, metavar="DIR",
                        help=f"the backend's data (events, keys, users, logs) and the agent's spool "
                             f"(default {DEFAULT_DATA_DIR})")
    parser.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                        help=f"the backend's address (default {DEFAULT_LISTEN}; port 0 picks a free one)")
    agent_cmd.add_run_arguments(parser, output_help="where CWS events go besides the backend, repeatable: "
                                                    f"{agent_cmd.OUTPUT_SPECS}")


def ingest_key(data_dir: Path) -> str:
    """The agent's ingest key: the one kept in `data_dir/agent.key` while the key store accepts it, else a new
    one (written there, mode 0600)."""
    from opencws.backend.keys import KeyStore

    path = data_dir / KEY_FILE
    keys = KeyStore(str(data_dir))
    try:
        with contextlib.suppress(FileNotFoundError):
            text = path.read_text().strip()
            if keys.check(text) is not None:
                return text
        _, text = keys.create("opencws run: this machine's agent", ("ingest",))
    finally:
        keys.close()
    tmp = path.with_name(f".{KEY_FILE}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)
    return text


def command_name() -> str:
    """How to call `opencws` from another terminal: its name if the shell finds this one, else its path (the
    checkout's `.venv/bin/opencws` after `./dev run`)."""
    beside = Path(sys.executable).parent / "opencws"
    if not beside.exists() or shutil.which("opencws") == str(beside):
        return "opencws"
    return str(beside)


def banner(url: str, data_dir: Path, outputs: list[str]) -> str:
    d, opencws = str(data_dir), command_name()
    return f"""
OpenCWS is running.
  web UI and API  {url}/
  agent           the default policy unless --policy, CWS events to {', '.join(outputs)}
  data            {d} (backend log: {d}/backend.log, the agent's key: {d}/{KEY_FILE})
Sign in to the web UI: create a user first (in another terminal):
  {opencws} backend users add NAME --role admin --data-dir {d}
Search from a shell: a read key, then the API:
  KEY=$({opencws} backend keys create --scope read --data-dir {d} | tail -n 1)
  curl -H "Authorization: Bearer $KEY" '{url}/api/v1/events?q=open.file.path=="/etc/shadow"&limit=10'
Ctrl-C stops the agent, then the backend.
"""


def run(args: argparse.Namespace) -> int:
    from opencws.agent.config import ConfigError
    from opencws.cli.backend_child import BackendChild, BackendChildError

    try:
        config = agent_cmd.agent_config(args)
    except ConfigError as exc:
        print(f"opencws run: {exc}", file=sys.stderr)
        return 2
    data_dir: Path = args.data_dir.expanduser().absolute()
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = ingest_key(data_dir)
    except OSError as exc:
        print(f"opencws run: data directory {data_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 1

    def interrupted(*_: Any) -> None:
        raise KeyboardInterrupt  # before the agent takes the signals over: the backend is stopped below

    signal.signal(signal.SIGTERM, interrupted)
    backend = BackendChild(data_dir, args.listen, data_dir / "backend.log")
    try:
        try:
            url = backend.start()
        except BackendChildError as exc:
            print(f"opencws run: {exc}", file=sys.stderr)
            return 1
        config.outputs = [url, *(args.output or [])]
        config.api_key = key
        config.http.spool_dir = data_dir / "agent-spool"
        code, backend_code = _run_agent(args, config, backend, data_dir)
    except KeyboardInterrupt:
        print("opencws run: interrupted while starting; the backend is stopped", file=sys.stderr)
        backend.stop()
        return 130
    finally:
        stopped = backend.stop()
    if backend_code is not None:  # it went away by itself
        print(f"opencws run: the backend exited (code {backend_code}); the agent was stopped. Its last log "
              f"lines ({data_dir}/backend.log):\n{backend.tail()}", file=sys.stderr)
        return 1
    if code != 0:
        print(f"opencws run: the agent stopped with code {code}; the backend was stopped", file=sys.stderr)
        return code
    if stopped not in (0, None, -signal.SIGTERM):
        print(f"opencws run: the backend stopped with code {stopped}:\n{backend.tail()}", file=sys.stderr)
        return 1
    print("opencws run: the agent and the backend are stopped", file=sys.stderr)
    return 0


def _run_agent(args: argparse.Namespace, config: Any, backend: Any, data_dir: Path) -> tuple[int, int | None]:
    """Run the agent until it is stopped or the backend exits; (the agent's code, the backend's code if it exited
    by itself)."""
    died: list[int] = []
    agents: list[Any] = []
    lock = threading.Lock()

    def watch() -> None:
        code = backend.wait()
        with lock:
            died.append(code)
            for agent in agents:
                agent.request_stop()

    def on_started(agent: Any) -> None:
        with lock:
            agents.append(agent)
            if died:
                agent.request_stop()
        print(banner(backend.url, data_dir, config.outputs), file=sys.stderr, flush=True)

    threading.Thread(target=watch, name="backend watch", daemon=True).start()
    code = agent_cmd.run_agent(args, config, on_started=on_started)
    with lock:
        return code, (died[0] if died else None)
