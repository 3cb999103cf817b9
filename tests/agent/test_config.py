"""Agent settings: defaults, a YAML file read with precise errors, command-line options over the file."""

from __future__ import annotations

import argparse
import socket
import textwrap
from pathlib import Path

import pytest

from opencws.agent.config import (
    AgentConfig,
    ConfigError,
    HTTPOutputConfig,
    RateLimit,
    RateLimitConfig,
    load_config,
    merge_cli,
    parse_host_port,
    with_environment,
)
from opencws.agent.ratelimit import RuleRateLimiter
from opencws.resolvers.scrub import ArgScrubber
from opencws.secl.policies import DEFAULT_POLICY


def write(tmp_path: Path, text: str, name: str = "agent.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return info.value


def test_defaults_are_what_a_first_run_needs():
    cfg = AgentConfig()
    assert cfg.policies == [DEFAULT_POLICY] and DEFAULT_POLICY.exists()
    assert cfg.outputs == ["stdout"] and cfg.metrics is None and cfg.self_events == "stderr"
    assert cfg.host == socket.gethostname()
    assert {"password", "token", "secret", "api_key"} <= set(cfg.scrub_args)
    assert cfg.rate_limit == RateLimitConfig(RateLimit(1000.0, 10_000), {})
    assert (cfg.max_args, cfg.max_arg_bytes, cfg.max_envs, cfg.process_cache_size) == (128, 4096, 256, 24576)


def test_an_empty_file_gives_the_defaults(tmp_path):
    assert load_config(write(tmp_path, "")) == AgentConfig()
    assert load_config(write(tmp_path, "# nothing but a comment\n")) == AgentConfig()


def test_every_setting_is_read_from_the_file(tmp_path):
    (tmp_path / "policies").mkdir()
    (tmp_path / "logs").mkdir()
    cfg = load_config(write(tmp_path, """
        policies: [policies, /etc]
        outputs: [stdout, "file:logs/e.json?max_bytes=10M&keep=3"]
        metrics: "[::1]:9464"
        rate_limit:
          default: {rate: 50, burst: 200}
          rules:
            noisy: {rate: 0.5, burst: 2}
            partly: {burst: 7}
        scrub_args: [password, license_key]
        max_args: 10
        max_arg_bytes: 1000
        max_envs: 0
        process_cache_size: 1024
        host: web-1
        self_events: null
    """))
    assert cfg.policies == [tmp_path / "policies", Path("/etc")]
    assert cfg.outputs == ["stdout", f"file:{tmp_path}/logs/e.json?max_bytes=10M&keep=3"]
    assert cfg.metrics_address == ("::1", 9464)
    assert cfg.rate_limit.default == RateLimit(50.0, 200)
    assert cfg.rate_limit.rules == {"noisy": RateLimit(0.5, 2), "partly": RateLimit(50.0, 7)}
    assert cfg.scrub_args == ["password", "license_key"]
    assert (cfg.max_args, cfg.max_arg_bytes, cfg.max_envs, cfg.process_cache_size) == (10, 1000, 0, 1024)
    assert cfg.host == "web-1" and cfg.self_events is None


def test_settings_plug_into_the_limiter_and_the_scrubber(tmp_path):
    cfg = load_config(write(tmp_path, "rate_limit: {rules: {r: {rate: 1, burst: 1}}}\nscrub_args: [pin]\n"))
    limiter = RuleRateLimiter(*cfg.rate_limit.default, cfg.rate_limit.rules, clock=lambda: 0.0)
    assert limiter.allow("r") and not limiter.allow("r")
    assert ArgScrubber(cfg.scrub_args).scrub(["--pin=1234"]) == ["--pin=********"]


def test_a_single_policy_or_output_may_be_a_plain_string(tmp_path):
    cfg = load_config(write(tmp_path, f"policies: {DEFAULT_POLICY}\noutputs: stderr\n"))
    assert cfg.policies == [DEFAULT_POLICY] and cfg.outputs == ["stderr"]


@pytest.mark.parametrize(("text", "line", "key", "message"), [
    ("max_args: 10\npolicy: [x]\n", 2, "policy", "unknown key: expected one of policies, outputs"),
    ("max_args: 1\nmax_args: 2\n", 2, "max_args", "given twice (first on line 1)"),
    ("- stdout\n", 1, None, "expected a mapping, got a list"),
    ("max_args: ten\n", 1, "max_args", "expected an integer >= 0, got a string 'ten'"),
    ("max_args: -1\n", 1, "max_args", "expected an integer >= 0, got an integer '-1'"),
    ("max_args: true\n", 1, "max_args", "expected an integer >= 0, got true/false 'true'"),
    ("max_envs: 2.5\n", 1, "max_envs", "expected an integer >= 0, got a number '2.5'"),
    ("process_cache_size: 0\n", 1, "process_cache_size", "expected an integer >= 1"),
    ("max_arg_bytes: [1]\n", 1, "max_arg_bytes", "expected an integer >= 0, got a list"),
    ("rate_limit:\n  default: {rate: fast}\n", 2, "rate_limit.default.rate", "expected a number >= 0, got a string"),
    ("rate_limit:\n  default: {rate: .nan}\n", 2, "rate_limit.default.rate", "expected a number >= 0"),
    ("rate_limit:\n  rules:\n    r1: {burst: 0}\n", 3, "rate_limit.rules.r1.burst", "expected an integer >= 1"),
    ("rate_limit:\n  rules:\n    r1: {rate: 1, burts: 2}\n", 3, "rate_limit.rules.r1.burts",
     "unknown key: expected one of rate, burst"),
    ("rate_limit:\n  per_rule: {}\n", 2, "rate_limit.per_rule", "unknown key: expected one of default, rules"),
    ("rate_limit: 100\n", 1, "rate_limit", "expected a mapping, got an integer '100'"),
    ("outputs:\n  - stdout\n  - syslog\n", 3, "outputs[1]", "output 'syslog': unknown output"),
    ("outputs: [stdout, stdout]\n", 1, "outputs[1]", "output 'stdout' given twice"),
    ("outputs: []\n", 1, "outputs", "expected at least one output"),
    ("outputs: ['file:/x?keep=many']\n", 1, "outputs[0]", "option keep='many': expected an integer"),
    ("policies: [/no/such/policy]\n", 1, "policies[0]", "no such policy file or directory: /no/such/policy"),
    ("policies: []\n", 1, "policies", "expected at least one policy"),
    ("policies: [3]\n", 1, "policies[0]", "expected a non-empty string, got an integer '3'"),
    ("metrics: 9464\n", 1, "metrics", "expected a non-empty string"),
    ("metrics: localhost\n", 1, "metrics", "expected HOST:PORT such as 127.0.0.1:9464, got 'localhost'"),
    ("metrics: 'localhost:99999'\n", 1, "metrics", "port must be 1-65535"),
    ("scrub_args: password\n", 1, "scrub_args", "expected a list of strings, got a string"),
    ("scrub_args: [password, '--']\n", 1, "scrub_args[1]", "secret name has no word in it"),
    ("host: ''\n", 1, "host", "expected a non-empty string"),
    ("self_events: 'tcp:1'\n", 1, "self_events", "unknown output"),
    ("self_events: 'http://127.0.0.1:8080'\n", 1, "self_events", "self-events go to stdout, stderr or a file"),
    ("outputs: ['https://u:p@backend']\n", 1, "outputs[0]", "no credentials in the URL"),
    ("api_key: ''\n", 1, "api_key", "expected a non-empty string"),
    ("http: {batch_max_events: 0}\n", 1, "http.batch_max_events", "expected an integer >= 1"),
    ("http: {spool_max_bytes: lots}\n", 1, "http.spool_max_bytes", "expected a size such as 100M"),
    ("http: {batch_max_wait: 0}\n", 1, "http.batch_max_wait", "expected a number of seconds > 0"),
    ("http: {ca_file: /no/ca.pem}\n", 1, "http.ca_file", "no such file: /no/ca.pem"),
    ("http: {spool: /x}\n", 1, "http.spool", "unknown key: expected one of batch_max_events"),
    ("http:\n  compression: brotli\n", 2, "http.compression", "expected zstd or gzip, got a string 'brotli'"),
    ("http: {compression: GZIP}\n", 1, "http.compression", "expected zstd or gzip, got a string 'GZIP'"),
    ("http: {compression: [gzip]}\n", 1, "http.compression", "expected zstd or gzip, got a list"),
    ("host: !!python/object:os.system x\n", 1, "host", "could not determine a constructor"),
    ("outputs: [stdout\nmax_args: 1\n", 2, None, "not valid YAML"),
    ("a: 1\n---\nb: 2\n", 2, None, "not valid YAML: expected a single document in the stream but found another document"),
    ("3: x\n", 1, None, "expected a string key, got an integer '3'"),
    ("? [a, b]\n: x\n", 1, "key", "expected a string key, got a list"),
    ("http:\n  ? {a: 1}\n  : x\n", 2, "http", "expected a string key, got a mapping"),
])
def test_each_mistake_names_the_line_the_key_and_what_was_expected(tmp_path, text, line, key, message):
    e = error(tmp_path, text)
    assert (e.line, e.key) == (line, key)
    assert message in e.message
    where = f"{tmp_path / 'agent.yaml'}:{line}: "
    assert str(e).startswith(where + (f"{key}: " if key else ""))


def test_an_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read: No such file or directory") as info:
        load_config(tmp_path / "missing.yaml")
    assert info.value.line is None
    (tmp_path / "latin1.yaml").write_bytes(b"host: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 9\)"):
        load_config(tmp_path / "latin1.yaml")


# ---------------------------------------------------------------------- command line over the file


def cli(**given) -> argparse.Namespace:
    values = {"config": None, "policy": [], "output": [], "metrics": None}
    values.update(given)
    return argparse.Namespace(**values)


def test_command_line_options_override_the_file_and_absent_ones_keep_it(tmp_path):
    cfg = load_config(write(tmp_path, "outputs: [stderr]\nmetrics: 127.0.0.1:1\nmax_args: 7\n"))
    merged = merge_cli(cfg, cli(output=["stdout", f"file:{tmp_path}/e.json"], policy=[str(DEFAULT_POLICY)]))
    assert merged.outputs == ["stdout", f"file:{tmp_path}/e.json"]
    assert merged.policies == [DEFAULT_POLICY]
    assert merged.metrics == "127.0.0.1:1" and merged.max_args == 7  # not on the command line: the file's
    assert cfg.outputs == ["stderr"]  # the file's config is left as it was
    assert merge_cli(cfg, cli(metrics="0.0.0.0:9464")).metrics_address == ("0.0.0.0", 9464)


def test_a_namespace_without_some_options_is_fine():
    assert merge_cli(AgentConfig(), argparse.Namespace()) == AgentConfig()
    assert merge_cli(AgentConfig(), argparse.Namespace(host="h", self_events="stdout")).host == "h"


@pytest.mark.parametrize(("given", "key", "message"), [
    ({"output": ["syslog"]}, "--output", "output 'syslog': unknown output"),
    ({"output": ["stdout", "stdout"]}, "--output", "an output is given twice"),
    ({"metrics": "9464"}, "--metrics", "expected HOST:PORT"),
    ({"policy": ["/no/such.policy"]}, "--policy", "no such policy file or directory: /no/such.policy"),
    ({"host": ""}, "--host", "expected a non-empty host name"),
    ({"self_events": "nowhere"}, "--self-events", "unknown output"),
    ({"self_events": "http://127.0.0.1:1"}, "--self-events", "self-events go to stdout, stderr or a file"),
    ({"output": ["http://"]}, "--output", "no host"),
])
def test_bad_command_line_values_are_config_errors(given, key, message):
    with pytest.raises(ConfigError) as info:
        merge_cli(AgentConfig(), cli(**given))
    assert info.value.key == key and message in info.value.message
    assert str(info.value).startswith(f"command line: {key}: ")


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:9464", ("127.0.0.1", 9464)), ("localhost:1", ("localhost", 1)), ("[::]:80", ("::", 80)),
])
def test_host_port_parses(text, expected):
    assert parse_host_port(text) == expected


@pytest.mark.parametrize("text", [":9464", "host:", "host:port", "host:0", "9464"])
def test_bad_host_port_is_refused(text):
    with pytest.raises(ValueError):
        parse_host_port(text)


def test_the_ring_buffer_size_is_a_power_of_two_of_mebibytes(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("ring_buffer_mb: 128\n")
    assert load_config(good).ring_buffer_mb == 128
    bad = tmp_path / "bad.yaml"
    bad.write_text("ring_buffer_mb: 100\n")
    with pytest.raises(ConfigError, match="power of two"):
        load_config(bad)


def test_the_http_section_and_the_api_key_are_read_from_the_file(tmp_path):
    (tmp_path / "ca.pem").write_text("x")
    cfg = load_config(write(tmp_path, """
        outputs: [https://backend.example:8443]
        api_key: ocws_abc_def
        http:
          batch_max_events: 500
          batch_max_bytes: 2M
          batch_max_wait: 0.5
          timeout: 10
          spool_dir: spool
          spool_max_bytes: 64M
          ca_file: ca.pem
          compression: gzip
    """))
    assert cfg.outputs == ["https://backend.example:8443"] and cfg.api_key == "ocws_abc_def"
    assert cfg.http == HTTPOutputConfig(500, 2 << 20, 0.5, 10.0, tmp_path / "spool", 64 << 20, tmp_path / "ca.pem",
                                        "gzip")
    assert cfg.http.reporter_options(cfg.outputs[0], 1)["compression"] == "gzip"
    assert HTTPOutputConfig().compression == "zstd"  # the default
    assert "ocws_abc_def" not in repr(cfg)  # a secret kept out of logs and tracebacks


def test_several_http_outputs_spool_in_a_directory_each_and_one_in_the_spool_dir_itself():
    http = HTTPOutputConfig(spool_dir=Path("/s"))
    assert http.reporter_options("https://a.example:8443", 1)["spool_dir"] == Path("/s")
    assert http.reporter_options("https://a.example:8443", 2)["spool_dir"] == Path("/s/a.example_8443")
    assert http.reporter_options("http://[::1]:80/x", 2)["spool_dir"] == Path("/s/1_80_x")


def test_the_api_key_comes_from_the_environment_first_then_the_file():
    cfg = AgentConfig(outputs=["http://127.0.0.1:8080"], api_key="from-file")
    assert with_environment(cfg, {}).api_key == "from-file"
    assert with_environment(cfg, {"OPENCWS_API_KEY": "from-env"}).api_key == "from-env"


def test_an_http_output_without_a_key_is_a_precise_error():
    with pytest.raises(ConfigError) as info:
        with_environment(AgentConfig(outputs=["stdout", "https://b:8443"]), {})
    assert info.value.key == "api_key"
    assert "output https://b:8443 needs the backend's API key: set api_key in the configuration file or the " \
           "OPENCWS_API_KEY environment variable" in str(info.value)
    assert with_environment(AgentConfig(), {}).api_key is None  # no http output: no key needed
