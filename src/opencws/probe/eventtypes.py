"""Event types: numbers shared with the BPF programs (probe.h `enum event_type`) and their names."""

from __future__ import annotations

from enum import IntEnum


class EventType(IntEnum):
    EXEC = 1
    FORK = 2
    EXIT = 3
    OPEN = 4
    CHMOD = 5
    CHOWN = 6
    LINK = 7
    RENAME = 8
    UNLINK = 9
    RMDIR = 10
    MKDIR = 11
    UTIMES = 12
    SETXATTR = 13
    REMOVEXATTR = 14
    MOUNT = 15
    UMOUNT = 16
    SELINUX = 17
    BPF = 18
    SETUID = 19
    SETGID = 20
    CAPSET = 21
    # OpenCWS's additions to Datadog's event types
    MKNOD = 22
    SYMLINK = 23
    SETGROUPS = 24

    @property
    def event_name(self) -> str:
        """The CWS `evt.name` of this type (`open`, `exec`, ...)."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int | EventType) -> EventType:
        if isinstance(value, EventType):
            return value
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[value.upper()]
        except KeyError:
            raise ValueError(f"unknown event type {value!r}; known: {', '.join(t.event_name for t in cls)}") from None


EV_MAX = 25
ALWAYS_ON = frozenset({EventType.EXEC, EventType.FORK, EventType.EXIT})
"""The process tree needs these, whatever the rules."""

# counters layout: index = type * NR_COUNTERS + counter
COUNTER_NAMES = ("seen", "filtered", "sent", "lost")
