"""The agent's settings: defaults, a YAML file, then command-line options over both.

A config file takes the same settings as the command line; every key is optional:

```yaml
policies: [/etc/opencws/policies]        # files or directories; relative to this file
outputs: [stdout, "file:/var/log/opencws/events.json?max_bytes=100M&keep=5"]   # or https://BACKEND:8080
api_key: ocws_...                        # for http(s) outputs; OPENCWS_API_KEY in the environment wins
http:                                    # http(s) outputs (a backend): batches, the spool, TLS
  batch_max_events: 2000                 # a batch is sent at this many events,
  batch_max_bytes: 8M                    # or this many bytes of JSON,
  batch_max_wait: 1.0                    # or when its first event has waited this many seconds
  timeout: 30                            # seconds for the backend to answer a batch
  spool_dir: /var/lib/opencws/spool      # batches not acknowledged yet wait here, across restarts
  spool_max_bytes: 1G                    # past it, new batches are dropped, counted and said
  ca_file: /etc/opencws/backend-ca.pem   # to trust a backend's self-signed certificate
  compression: zstd                      # or gzip (a backend older than zstd: it is also found out alone)
metrics: 127.0.0.1:9464                  # Prometheus endpoint; absent or null: none
rate_limit:
  default: {rate: 1000, burst: 10000}    # per rule: events per second, and the burst above it
  rules:
    my_noisy_rule: {rate: 10, burst: 100}
scrub_args: [password, token, secret]    # replaces the default list of secret names
max_args: 128                            # arguments kept after argv[0]
max_arg_bytes: 4096                      # their total size
max_envs: 256                            # environment variable names kept
process_cache_size: 24576               # processes kept (LRU beyond): about 4 KB each
ring_buffer_mb: 64                       # the kernel's ring buffer (a power of two): room for bursts
host: web-1                              # default: this machine's host name
self_events: stderr                      # the agent's own events (an output spec); null: none
```

A mistake is a `ConfigError` naming the file, the line, the key and what was expected: a typo in a key is
refused, never ignored (a security agent silently running without its intended settings is worse than one
that does not start).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from opencws.agent import batch_coding
from opencws.agent import http_reporter as hr
from opencws.agent.reporters import parse_reporter_spec, parse_size
from opencws.resolvers.scrub import DEFAULT_SECRET_NAMES, ArgScrubber
from opencws.secl.policies import DEFAULT_POLICY


class ConfigError(Exception):
    """`agent.yaml:12: rate_limit.rules.r1.rate: expected a number >= 0, got 'fast'`."""

    def __init__(self, source: str | Path, line: int | None, key: str | None, message: str):
        super().__init__(source, line, key, message)
        self.source = str(source)
        self.line = line
        self.key = key
        self.message = message

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class RateLimit(NamedTuple):
    rate: float
    """Events per second, sustained."""
    burst: int
    """Events let through at once above the rate."""


DEFAULT_RATE_LIMIT = RateLimit(1000.0, 10_000)
"""Per rule: enough for any real burst of activity, not enough for one rule to flood the outputs."""


@dataclass
class RateLimitConfig:
    default: RateLimit = DEFAULT_RATE_LIMIT
    rules: dict[str, RateLimit] = field(default_factory=dict)


DEFAULT_SPOOL_DIR = Path("/var/lib/opencws/spool")
API_KEY_VARIABLE = "OPENCWS_API_KEY"


@dataclass
class HTTPOutputConfig:
    """The settings of http(s) outputs (`opencws.agent.http_reporter`)."""

    batch_max_events: int = hr.DEFAULT_BATCH_MAX_EVENTS
    batch_max_bytes: int = hr.DEFAULT_BATCH_MAX_BYTES
    batch_max_wait: float = hr.DEFAULT_BATCH_MAX_WAIT_S
    timeout: float = hr.DEFAULT_TIMEOUT_S
    spool_dir: Path = DEFAULT_SPOOL_DIR
    """One http output spools here; several spool in a subdirectory each, named after their URL."""
    spool_max_bytes: int = hr.DEFAULT_SPOOL_MAX_BYTES
    ca_file: Path | None = None
    compression: str = batch_coding.ZSTD
    """zstd or gzip: the coding of the bodies (a backend that refuses zstd gets gzip all the same)."""

    def reporter_options(self, url: str, http_outputs: int) -> dict[str, Any]:
        """`HTTPReporter`'s keyword arguments for the output `url`, one of `http_outputs` http outputs."""
        spool = self.spool_dir
        if http_outputs > 1:
            spool = spool / re.sub(r"[^A-Za-z0-9.-]+", "_", url.split("://", 1)[1]).strip("_")
        return {"spool_dir": spool, "spool_max_bytes": self.spool_max_bytes,
                "batch_max_events": self.batch_max_events, "batch_max_bytes": self.batch_max_bytes,
                "batch_max_wait": self.batch_max_wait, "timeout": self.timeout, "ca_file": self.ca_file,
                "compression": self.compression}


@dataclass
class AgentConfig:
    policies: list[Path] = field(default_factory=lambda: [DEFAULT_POLICY])
    outputs: list[str] = field(default_factory=lambda: ["stdout"])
    metrics: str | None = None
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    scrub_args: list[str] = field(default_factory=lambda: list(DEFAULT_SECRET_NAMES))
    max_args: int = 128
    max_arg_bytes: int = 4096
    max_envs: int = 256
    process_cache_size: int = 24576
    """Processes kept (the least recently used are evicted beyond, and read from /proc again if they show up):
    at about 4 KB a process, a full cache takes about 100 MB."""
    ring_buffer_mb: int = 64
    """The probe's ring buffer: at 350-500 bytes a file event record, 64 MiB hold about 160,000 events, over
    3 s at 50,000/s, so that a pause of the reader (a reload, a collection, a CPU taken by other work for
    seconds) loses nothing: at load 5, 32 MiB lost 101 and 68,108 of 500,000 where 64 MiB lost none
    (docs/benchmarks.md, "Agent"). It counts once in the agent's RSS (the reader maps it once)."""
    host: str = field(default_factory=socket.gethostname)
    self_events: str | None = "stderr"
    api_key: str | None = field(default=None, repr=False)
    """The backend's API key (an `ingest` key) for http(s) outputs."""
    http: HTTPOutputConfig = field(default_factory=HTTPOutputConfig)

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        return None if self.metrics is None else parse_host_port(self.metrics)


def parse_host_port(text: str) -> tuple[str, int]:
    """`127.0.0.1:9464`, `[::1]:9464`, `localhost:9464` -> (host, port); `ValueError` otherwise."""
    expected = "expected HOST:PORT such as 127.0.0.1:9464"
    if not isinstance(text, str):
        raise ValueError(f"{expected}, got {text!r}")
    host, colon, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port.isdigit():
        raise ValueError(f"{expected}, got {text!r}")
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port must be 1-65535, got {port}")
    return host, int(port)


# ---------------------------------------------------------------------- reading the file


_KINDS = {
    "tag:yaml.org,2002:str": "a string", "tag:yaml.org,2002:int": "an integer",
    "tag:yaml.org,2002:float": "a number", "tag:yaml.org,2002:bool": "true/false",
    "tag:yaml.org,2002:null": "null",
}


def load_config(path: str | Path) -> AgentConfig:
    """The settings of a YAML file over the defaults. `ConfigError` for anything wrong in it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(path, None, None, f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(path, None, None, f"not UTF-8 text (byte {e.start})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise ConfigError(path, mark.line + 1 if mark else None, None,
                          f"not valid YAML: {' '.join(filter(None, (e.context, e.problem)))}") from None
    except yaml.YAMLError as e:
        raise ConfigError(path, None, None, f"not valid YAML: {e}") from None
    if node is None:
        return AgentConfig()
    return _Reader(path).config(node)


class _Reader:
    """Walks the YAML node tree (not the loaded values) so that every error knows its line."""

    def __init__(self, path: Path):
        self.path = path
        self.base = path.resolve().parent

    def error(self, node: yaml.Node, key: str | None, message: str) -> ConfigError:
        return ConfigError(self.path, node.start_mark.line + 1, key, message)

    def kind(self, node: yaml.Node) -> str:
        if isinstance(node, yaml.MappingNode):
            return "a mapping"
        if isinstance(node, yaml.SequenceNode):
            return "a list"
        return _KINDS.get(node.tag, node.tag)

    def value(self, node: yaml.Node, key: str, expected: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, key, f"expected {expected}, got {self.kind(node)}")
        try:
            return yaml.SafeLoader("").construct_object(node, deep=True)
        except yaml.YAMLError as e:
            raise self.error(node, key, f"expected {expected}: {getattr(e, 'problem', e)}") from None

    def got(self, node: yaml.Node) -> str:
        return f"got {self.kind(node)} {node.value!r}" if isinstance(node, yaml.ScalarNode) else \
            f"got {self.kind(node)}"

    def mapping(self, node: yaml.Node, key: str | None, allowed: tuple[str, ...] | None = None
                ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, key, f"expected a mapping, {self.got(node)}")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for k, v in node.value:
            name = self.value(k, key or "key", "a string key")
            if not isinstance(name, str):
                raise self.error(k, key, f"expected a string key, got {self.kind(k)} {k.value!r}")
            full = f"{key}.{name}" if key else name
            if name in out:
                raise self.error(k, full, f"given twice (first on line {out[name][0].start_mark.line + 1})")
            if allowed is not None and name not in allowed:
                raise self.error(k, full, f"unknown key: expected one of {', '.join(allowed)}")
            out[name] = (k, v)
        return out

    def string(self, node: yaml.Node, key: str) -> str:
        v = self.value(node, key, "a string")
        if not isinstance(v, str) or not v:
            raise self.error(node, key, f"expected a non-empty string, {self.got(node)}")
        return v

    def integer(self, node: yaml.Node, key: str, minimum: int) -> int:
        v = self.value(node, key, f"an integer >= {minimum}")
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise self.error(node, key, f"expected an integer >= {minimum}, {self.got(node)}")
        return v

    def number(self, node: yaml.Node, key: str, minimum: float) -> float:
        v = self.value(node, key, f"a number >= {minimum:g}")
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < minimum:
            raise self.error(node, key, f"expected a number >= {minimum:g}, {self.got(node)}")
        return float(v)

    def strings(self, node: yaml.Node, key: str, *, single_ok: bool = False) -> list[tuple[yaml.Node, str]]:
        if single_ok and isinstance(node, yaml.ScalarNode):
            return [(node, self.string(node, key))]
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, key, f"expected a list of strings, {self.got(node)}")
        return [(item, self.string(item, f"{key}[{i}]")) for i, item in enumerate(node.value)]

    # ------------------------------------------------------------------ the settings

    def config(self, root: yaml.Node) -> AgentConfig:
        fields = tuple(f.name for f in dataclasses.fields(AgentConfig))
        items = self.mapping(root, None, fields)
        cfg = AgentConfig()
        for name, (_, node) in items.items():
            setattr(cfg, name, getattr(self, f"read_{name}")(node, name))
        return cfg

    def read_policies(self, node: yaml.Node, key: str) -> list[Path]:
        out = []
        for i, (item, text) in enumerate(self.strings(node, key, single_ok=True)):
            path = self.base / Path(text).expanduser()
            if not path.exists():
                raise self.error(item, f"{key}[{i}]", f"no such policy file or directory: {path}")
            out.append(path)
        if not out:
            raise self.error(node, key, "expected at least one policy")
        return out

    def read_outputs(self, node: yaml.Node, key: str) -> list[str]:
        out: list[str] = []
        for i, (item, spec) in enumerate(self.strings(node, key, single_ok=True)):
            spec = self.output_spec(item, f"{key}[{i}]", spec)
            if spec in out:
                raise self.error(item, f"{key}[{i}]", f"output {spec!r} given twice")
            out.append(spec)
        if not out:
            raise self.error(node, key, "expected at least one output (stdout, stderr or file:PATH)")
        return out

    def output_spec(self, node: yaml.Node, key: str, spec: str) -> str:
        """The spec checked, a relative file path made relative to the config file."""
        try:
            parsed = parse_reporter_spec(spec)
        except ValueError as e:
            raise self.error(node, key, str(e)) from None
        if parsed.path is not None and not parsed.path.is_absolute():
            _, _, query = spec.partition("?")
            spec = f"file:{self.base / parsed.path}" + (f"?{query}" if query else "")
        return spec

    def read_metrics(self, node: yaml.Node, key: str) -> str | None:
        if node.tag == "tag:yaml.org,2002:null":
            return None
        text = self.string(node, key)
        try:
            parse_host_port(text)
        except ValueError as e:
            raise self.error(node, key, str(e)) from None
        return text

    def read_rate_limit(self, node: yaml.Node, key: str) -> RateLimitConfig:
        items = self.mapping(node, key, ("default", "rules"))
        cfg = RateLimitConfig()
        if "default" in items:
            cfg.default = self.rate(items["default"][1], f"{key}.default", cfg.default)
        if "rules" in items:
            rules = self.mapping(items["rules"][1], f"{key}.rules")
            cfg.rules = {rule: self.rate(v, f"{key}.rules.{rule}", cfg.default) for rule, (_, v) in rules.items()}
        return cfg

    def rate(self, node: yaml.Node, key: str, default: RateLimit) -> RateLimit:
        """`{rate: R, burst: B}`; a key left out keeps `default`'s value."""
        items = self.mapping(node, key, ("rate", "burst"))
        rate = self.number(items["rate"][1], f"{key}.rate", 0) if "rate" in items else default.rate
        burst = self.integer(items["burst"][1], f"{key}.burst", 1) if "burst" in items else default.burst
        return RateLimit(rate, burst)

    def read_scrub_args(self, node: yaml.Node, key: str) -> list[str]:
        names = []
        for i, (item, name) in enumerate(self.strings(node, key)):
            try:
                ArgScrubber([name])
            except ValueError as e:
                raise self.error(item, f"{key}[{i}]", str(e)) from None
            names.append(name)
        return names

    def read_max_args(self, node: yaml.Node, key: str) -> int:
        return self.integer(node, key, 0)

    def read_max_arg_bytes(self, node: yaml.Node, key: str) -> int:
        return self.integer(node, key, 0)

    def read_max_envs(self, node: yaml.Node, key: str) -> int:
        return self.integer(node, key, 0)

    def read_process_cache_size(self, node: yaml.Node, key: str) -> int:
        return self.integer(node, key, 1)

    def read_ring_buffer_mb(self, node: yaml.Node, key: str) -> int:
        v = self.integer(node, key, 1)
        if v & (v - 1):
            raise self.error(node, key, f"expected a power of two (the kernel's ring buffer size), got {v}")
        return v

    def read_host(self, node: yaml.Node, key: str) -> str:
        return self.string(node, key)

    def read_self_events(self, node: yaml.Node, key: str) -> str | None:
        if node.tag == "tag:yaml.org,2002:null":
            return None
        spec = self.output_spec(node, key, self.string(node, key))
        if spec.startswith(("http:", "https:")):
            raise self.error(node, key, "self-events go to stdout, stderr or a file (a backend takes CWS events)")
        return spec

    def read_api_key(self, node: yaml.Node, key: str) -> str:
        return self.string(node, key)

    def read_http(self, node: yaml.Node, key: str) -> HTTPOutputConfig:
        names = tuple(f.name for f in dataclasses.fields(HTTPOutputConfig))
        cfg = HTTPOutputConfig()
        for name, (_, v) in self.mapping(node, key, names).items():
            full = f"{key}.{name}"
            if name == "batch_max_events":
                cfg.batch_max_events = self.integer(v, full, 1)
            elif name in ("batch_max_bytes", "spool_max_bytes"):
                setattr(cfg, name, self.size(v, full, 1 if name == "batch_max_bytes" else 0))
            elif name in ("batch_max_wait", "timeout"):
                seconds = self.number(v, full, 0)
                if seconds <= 0:
                    raise self.error(v, full, f"expected a number of seconds > 0, {self.got(v)}")
                setattr(cfg, name, seconds)
            elif name == "compression":
                coding = self.value(v, full, " or ".join(batch_coding.CODINGS))
                if coding not in batch_coding.CODINGS:
                    raise self.error(v, full, f"expected {' or '.join(batch_coding.CODINGS)}, {self.got(v)}")
                cfg.compression = coding
            else:
                path = self.base / Path(self.string(v, full)).expanduser()
                if name == "ca_file" and not path.is_file():
                    raise self.error(v, full, f"no such file: {path}")
                setattr(cfg, name, path)
        return cfg

    def size(self, node: yaml.Node, key: str, minimum: int) -> int:
        v = self.value(node, key, "a size such as 100M")
        try:
            n = v if isinstance(v, int) and not isinstance(v, bool) else parse_size(str(v))
        except ValueError:
            raise self.error(node, key, f"expected a size such as 100M (bytes, K, M or G), {self.got(node)}") \
                from None
        if n < minimum:
            raise self.error(node, key, f"expected a size >= {minimum}, {self.got(node)}")
        return n


# ---------------------------------------------------------------------- the command line over the file


def merge_cli(config: AgentConfig, args: Any) -> AgentConfig:
    """A copy of `config` with the options given on the command line (an argparse namespace) in place of the
    file's: `policy` (repeated: replaces the list), `output` (repeated: replaces the list), `metrics`, and
    `host`, `self_events` when the CLI has them. An option left out (None or empty) keeps the file's value.
    Values are checked as in a file; a mistake is a `ConfigError` from the `command line`."""
    changes: dict[str, Any] = {}
    source = "command line"
    policies = getattr(args, "policy", None)
    if policies:
        paths = [Path(p).expanduser() for p in policies]
        for p in paths:
            if not p.exists():
                raise ConfigError(source, None, "--policy", f"no such policy file or directory: {p}")
        changes["policies"] = paths
    outputs = getattr(args, "output", None)
    if outputs:
        for spec in outputs:
            _check_output(source, "--output", spec)
        if len(set(outputs)) != len(outputs):
            raise ConfigError(source, None, "--output", "an output is given twice")
        changes["outputs"] = list(outputs)
    metrics = getattr(args, "metrics", None)
    if metrics is not None:
        try:
            parse_host_port(metrics)
        except ValueError as e:
            raise ConfigError(source, None, "--metrics", str(e)) from None
        changes["metrics"] = metrics
    host = getattr(args, "host", None)
    if host is not None:
        if not host:
            raise ConfigError(source, None, "--host", "expected a non-empty host name")
        changes["host"] = host
    self_events = getattr(args, "self_events", None)
    if self_events is not None:
        _check_output(source, "--self-events", self_events)
        if self_events.startswith(("http:", "https:")):
            raise ConfigError(source, None, "--self-events",
                              "self-events go to stdout, stderr or a file (a backend takes CWS events)")
        changes["self_events"] = self_events
    return dataclasses.replace(config, **changes)


def with_environment(config: AgentConfig, environ: Mapping[str, str] = os.environ) -> AgentConfig:
    """`config` with the API key of the environment (OPENCWS_API_KEY wins over the file's `api_key`: a secret
    injected at deployment needs no file edited); a `ConfigError` when an http(s) output has no key."""
    key = environ.get(API_KEY_VARIABLE) or config.api_key
    http = [spec for spec in config.outputs if spec.startswith(("http:", "https:"))]
    if http and not key:
        raise ConfigError("configuration", None, "api_key",
                          f"output {http[0]} needs the backend's API key: set api_key in the configuration file or "
                          f"the {API_KEY_VARIABLE} environment variable (an ingest key: opencws backend keys "
                          "create --scope ingest --data-dir DIR)")
    return dataclasses.replace(config, api_key=key)


def _check_output(source: str, key: str, spec: str) -> None:
    try:
        parse_reporter_spec(spec)
    except ValueError as e:
        raise ConfigError(source, None, key, str(e)) from None
