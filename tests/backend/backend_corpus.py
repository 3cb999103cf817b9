"""Varied CWS events (as JSON dicts) for the backend's tests: the shapes a store must read alike to SECL.

Missing parts, names absent or empty, credentials present or not, paths with newlines and LIKE's wildcards, some
events in an APM trace (`dd`).
"""

from __future__ import annotations

import copy
import random
from typing import Any

import orjson

from opencws.model import examples
from opencws.model.codec import format_timestamp, serialize

PATHS = [
    "/etc/shadow",
    "/etc/passwd",
    "/tmp/a_b%c",
    "/tmp/x\ny",
    "/usr/bin/curl",
    "/var/log/syslog",
    "/root/.ssh/id",
]
TRACE_IDS = [2**64 - 1, (2**64 - 1) // 10, 42]
"""Trace ids of the events with a `dd` block: the largest, its first 19 digits, a small one."""
EXES = ["/usr/bin/curl", "/bin/sh", "/usr/bin/bash", "/usr/sbin/sshd", "/tmp/evil\nname", "/usr/bin/wget"]


def _as_dict(event: Any) -> dict[str, Any]:
    return orjson.loads(serialize(event))


def event_mix(n: int, seed: int = 7, base_ns: int = examples.BASE_NS) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    dd_rnd = random.Random(seed + 1)
    templates = [
        _as_dict(examples.open_event()),
        _as_dict(examples.exec_event()),
        _as_dict(examples.exec_event(2)),
    ]
    out = []
    for i in range(n):
        e = copy.deepcopy(rnd.choice(templates))
        e["date"] = format_timestamp(base_ns + i * 1_000_000_000 + rnd.randrange(1000))
        p = e["process"]
        p["pid"] = rnd.randrange(1, 5000)
        p["comm"] = rnd.choice(["curl", "sh", "bash", "wget"])
        exe = rnd.choice(EXES)
        p["executable"]["path"] = exe
        shape = rnd.randrange(6)
        if shape == 0:
            del p["executable"]["name"]
        elif shape == 1:
            del p["credentials"]
            p["uid"] = rnd.choice([0, 1000])
        elif shape == 2:
            p.pop("parent", None)
        elif shape == 3:
            for a in p.get("ancestors", []):
                a.pop("executable", None)
                break
        elif shape == 4:
            e.pop("container", None)
        if "file" in e:
            e["file"]["path"] = rnd.choice(PATHS)
            if rnd.random() < 0.3:
                del e["file"]["name"]
            else:
                e["file"]["name"] = e["file"]["path"].rsplit("/", 1)[-1]
            kind = rnd.randrange(5)
            if kind == 0:
                e["evt"]["name"] = "rename"
                e["file"].pop("flags", None)
                e["file"]["destination"] = {"path": rnd.choice(PATHS), "inode": 9, "uid": 0, "gid": 0}
            elif kind == 1:
                e["evt"]["name"] = "unlink"
                e["file"].pop("flags", None)
        if dd_rnd.random() < 0.3:  # (a random stream of its own: the rest of the mix is as before)
            e["dd"] = {"span_id": dd_rnd.randrange(1, 2**64), "trace_id": dd_rnd.choice(TRACE_IDS)}
        out.append(e)
    return out
