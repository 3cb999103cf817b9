"""What a policy's `filters` and `agent_version` are evaluated against: the platform the rules run on.

A rule (or macro) with `filters` is loaded only when every filter, a SECL expression over the platform's facts,
holds: `os == "linux"`, `kernel.version.major == 5 && kernel.version.minor < 16`, `os.is_debian`. A rule with
`agent_version` (a version constraint such as `>= 7.71` or `>=7.65 <7.70`) is loaded only when the Datadog
agent version whose policy format and language this engine implements satisfies it. A rule left out is
skipped with the reason, as Datadog's agent leaves out the rules not meant for it.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opencws.secl.errors import SeclError
from opencws.secl.fields import BOOL, INT, STRING, Registry

DATADOG_AGENT_VERSION = "7.73.0"
"""The Datadog agent version whose policies this engine loads as that agent would: the rule format (`filters`,
`actions`, `silent`, variables with `ttl`/`size`/`inherited`) and the SECL fields of its event types that
OpenCWS's probe produces. Rules for newer agents are skipped (`agent_version`)."""


@dataclass(frozen=True)
class Platform:
    """The facts rule filters read (Datadog's rule-filter model)."""

    os: str = "linux"
    kernel_major: int = 0
    kernel_minor: int = 0
    kernel_patch: int = 0
    kernel_abi: int = 0
    kernel_flavor: str = ""
    os_id: str = ""  # /etc/os-release ID: debian, ubuntu, rhel, amzn, sles, cos...
    os_version_id: str = ""
    envs: tuple[str, ...] = field(default_factory=tuple)  # the agent's environment, `NAME=value`
    agent_version: str = DATADOG_AGENT_VERSION

    @classmethod
    def current(cls, agent_version: str = DATADOG_AGENT_VERSION) -> Platform:
        """This machine: `uname -r` (`6.1.0-27-amd64` → 6, 1, 0, abi 27, flavor amd64) and /etc/os-release."""
        release = platform.release()
        m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?(?:-(\d+))?(?:-([\w.+]+))?", release)
        nums = [int(g) if g else 0 for g in (m.groups()[:4] if m else (0, 0, 0, 0))]
        flavor = (m.group(5) or "") if m else ""
        osr = _os_release()
        return cls(
            os=platform.system().lower() or "linux", kernel_major=nums[0], kernel_minor=nums[1],
            kernel_patch=nums[2], kernel_abi=nums[3], kernel_flavor=flavor, os_id=osr.get("ID", ""),
            os_version_id=osr.get("VERSION_ID", ""), envs=tuple(f"{k}={v}" for k, v in os.environ.items()),
            agent_version=agent_version,
        )  # fmt: skip


def _os_release(path: str = "/etc/os-release") -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k.strip()] = v.strip().strip('"')
    return out


def _is(*ids: str) -> str:
    return f"o.os_id in {ids!r}"


def _filter_registry() -> Registry:
    r = Registry()
    add = r.add
    add("os", STRING, (), "o.os", None)
    add("os.id", STRING, (), "o.os_id", None)
    add("os.version_id", STRING, (), "o.os_version_id", None)
    add("kernel.version.major", INT, (), "o.kernel_major", None)
    add("kernel.version.minor", INT, (), "o.kernel_minor", None)
    add("kernel.version.patch", INT, (), "o.kernel_patch", None)
    add("kernel.version.abi", INT, (), "o.kernel_abi", None)
    add("kernel.version.flavor", STRING, (), "o.kernel_flavor", None)
    add("envs", STRING, (), "o.envs", None, multi=True)
    add("origin", STRING, (), "'ebpf'", None)  # where events come from: this agent has its eBPF probe only
    for name, test in (("os.is_debian", _is("debian")), ("os.is_ubuntu", _is("ubuntu")),
                       ("os.is_rhel", _is("rhel", "centos", "rocky", "almalinux")),
                       ("os.is_amazon_linux", _is("amzn")), ("os.is_sles", _is("sles", "opensuse-leap")),
                       ("os.is_cos", _is("cos")), ("os.is_oracle", _is("ol"))):  # fmt: skip
        add(name, BOOL, (), test, None)
    return r


FILTER_REGISTRY = _filter_registry()


def filter_holds(expr: str, plat: Platform) -> bool:
    """Whether a rule filter holds on `plat`; raise SeclError when it is not a valid filter."""
    from opencws.secl.compiler import compile_search

    rule = compile_search(expr, registry=FILTER_REGISTRY)
    return bool(rule.fn(plat))


_CONSTRAINT = re.compile(r"\s*(>=|<=|==|!=|=|>|<|~|\^)?\s*v?(\d+(?:\.\d+){0,2})(?:[-+][\w.]*)?\s*")


def _version(text: str) -> tuple[int, int, int]:
    parts = [int(x) for x in text.split(".")]
    return (*parts, 0, 0, 0)[:3]  # type: ignore[return-value]


def version_satisfies(version: str, constraint: str) -> bool:
    """Whether `version` (`7.73.0`) satisfies a constraint as Datadog writes them (Masterminds/semver syntax):
    comparisons joined by spaces or commas (all must hold), alternatives joined by `||`. `~7.70` is
    `>= 7.70, < 7.71`; `^7.70` is `>= 7.70, < 8`. Raise ValueError on anything else."""
    v = _version(re.sub(r"[-+].*$", "", version.strip().lstrip("v")))
    for alternative in constraint.split("||"):
        text = alternative.replace(",", " ")
        ok, pos, seen = True, 0, False
        while pos < len(text):
            if not text[pos:].strip():
                break
            m = _CONSTRAINT.match(text, pos)
            if m is None or m.end() == pos:
                raise ValueError(f"invalid version constraint {constraint!r}")
            op, ver = m.group(1) or "=", m.group(2)
            c = _version(ver)
            n = ver.count(".") + 1
            if op in ("=", "=="):
                ok &= v[:n] == c[:n]
            elif op == "!=":
                ok &= v[:n] != c[:n]
            elif op == ">=":
                ok &= v >= c
            elif op == ">":
                ok &= v > c
            elif op == "<=":
                ok &= v <= c
            elif op == "<":
                ok &= v < c
            elif op == "~":
                upper = (c[0], c[1] + 1, 0) if n >= 2 else (c[0] + 1, 0, 0)
                ok &= c <= v < upper
            else:  # ^
                ok &= c <= v < (c[0] + 1, 0, 0)
            pos, seen = m.end(), True
        if not seen:
            raise ValueError(f"invalid version constraint {constraint!r}")
        if ok:
            return True
    return False


def check_filters(filters: Any, plat: Platform) -> str | None:
    """None when every filter holds, else the first that does not (its text). Raise SeclError for a filter
    that is not a valid expression over the platform's facts, ValueError for a malformed list."""
    if filters is None:
        return None
    if isinstance(filters, str):
        filters = [filters]
    if not isinstance(filters, list) or not all(isinstance(f, str) for f in filters):
        raise ValueError("`filters` must be a list of SECL expressions")
    for f in filters:
        try:
            if not filter_holds(f, plat):
                return f
        except SeclError as e:
            e.message = f"in filter {f!r}: {e.message}"
            raise
    return None
