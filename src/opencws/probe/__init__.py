"""The kernel capture layer: eBPF programs, their loader, the ring buffer reader and typed kernel events.

Import `Probe` from here; `opencws.probe.events` holds the event dataclasses. Nothing here imports the
rule engine: the policy pushes event types, approvers and discarders through the Probe API.
"""

from __future__ import annotations

from opencws.probe.errors import DecodeError, ProbeError
from opencws.probe.eventtypes import EventType

__all__ = ["DecodeError", "EventType", "Probe", "ProbeError"]


def __getattr__(name: str):
    if name == "Probe":
        from opencws.probe.probe import Probe

        return Probe
    raise AttributeError(name)
