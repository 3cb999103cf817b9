"""Errors raised by the probe."""

from __future__ import annotations


class ProbeError(RuntimeError):
    """The probe cannot be built, loaded or attached; the message says what to do."""


class DecodeError(ValueError):
    """A ring buffer record does not match its layout (truncated, inconsistent sizes, unknown kind)."""
