"""`opencws agent run`: the agent. Kernel events that match a rule become CWS events on the outputs.

Runs until SIGINT or SIGTERM (what is queued is processed first); SIGHUP reloads the policies (a policy with
an error keeps the running rules, and a self-event says why). Settings come from a YAML file (`--config`)
and the options below, which override it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HELP = "run the agent: eBPF probe, resolvers, SECL rules, CWS events to the outputs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="agent_command", metavar="SUBCOMMAND")
    run = sub.add_parser("run", help="run the agent until SIGINT/SIGTERM (SIGHUP reloads the policies)",
                         description=__doc__, epilog=config_help(),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(run)
    run.set_defaults(agent_run=run_agent)


def config_help() -> str:
    """The configuration file's keys, from the config module's own documentation (one place to keep)."""
    from opencws.agent import config

    doc = config.__doc__ or ""
    start, end = doc.find("```yaml"), doc.rfind("```")
    body = doc[start + len("```yaml"):end].strip("\n") if start >= 0 and end > start else ""
    return "configuration file (--config), every key optional:\n" + body


OUTPUT_SPECS = ("'file:PATH' (JSON lines, rotated by size: file:PATH?max_bytes=N&keep=K), 'stdout', or a backend, "
                "'http(s)://HOST:PORT' (its API key: api_key in the config or OPENCWS_API_KEY)")


def add_run_arguments(run: argparse.ArgumentParser, output_help: str | None = None) -> None:
    run.add_argument("--config", type=Path, metavar="FILE",
                     help="YAML configuration file (the options below override it)")
    run.add_argument("--policy", type=Path, action="append", metavar="PATH",
                     help="policy file or directory, repeatable (default: the default policy)")
    run.add_argument("--output", action="append", metavar="SPEC",
                     help=output_help or f"where CWS events go, repeatable (default stdout): {OUTPUT_SPECS}")
    run.add_argument("--metrics", metavar="HOST:PORT",
                     help="serve Prometheus metrics on this address (default: off)")
    run.add_argument("--self-events", metavar="SPEC",
                     help="where the agent's own events go (rule set loaded, events lost, rate limit hit); "
                          "default: standard error")
    run.add_argument("--duration", type=float, default=0.0, metavar="S",
                     help="stop after S seconds (default: run until interrupted)")


def run(args: argparse.Namespace) -> int:
    fn = getattr(args, "agent_run", None)
    if fn is None:
        print("usage: opencws agent run [options] (opencws agent run --help)", file=sys.stderr)
        return 2
    return int(fn(args))


def agent_config(args: argparse.Namespace) -> Any:
    """The configuration file, the options over it, then the environment (the API key). `ConfigError`."""
    from opencws.agent.config import AgentConfig, load_config, merge_cli, with_environment

    config = load_config(args.config) if args.config else AgentConfig()
    return with_environment(merge_cli(config, args))


def run_agent(args: argparse.Namespace, config: Any = None, *, on_started: Any = None) -> int:
    """Run the agent of `args` (or of `config`, already built) until stopped. `on_started(agent)`: called once
    it reads events (`opencws run` watches the backend from there)."""
    from opencws.agent.config import ConfigError
    from opencws.agent.reporters import ReporterError
    from opencws.probe import ProbeError

    if config is None:
        try:
            config = agent_config(args)
        except ConfigError as exc:
            print(f"opencws agent: {exc}", file=sys.stderr)
            return 2
    from opencws.agent.runner import Agent

    try:
        agent = Agent(config)
    except (ValueError, OSError) as exc:
        print(f"opencws agent: {exc}", file=sys.stderr)
        return 2
    except ReporterError as exc:
        print(f"opencws agent: {exc}", file=sys.stderr)
        return 1
    agent.install_signal_handlers()
    try:
        agent.start()
    except ProbeError as exc:
        print(f"opencws agent: {exc}", file=sys.stderr)
        agent.close()
        return 1
    if on_started is not None:
        on_started(agent)
    return agent.run(args.duration or None)
