"""Named constants usable in rules (`O_CREAT`, `CAP_SYS_ADMIN`, `S_ISUID`, `BPF_PROG_LOAD`, `EACCES`, ...).

Values come from `opencws.model.names`, shared with the probe's resolvers. Capabilities are bit *masks* (as
in Datadog: `process.cap_effective & CAP_SYS_ADMIN > 0`); errno names are negative, as Datadog defines them, so that
they compare with return values directly (`open.retval == EACCES`, EACCES being -13).
"""

from __future__ import annotations

from opencws.model import names

EXIT_CAUSES = {"EXITED": 0, "COREDUMPED": 1, "SIGNALED": 2}
"""How a process ended (`exit.cause`), as Datadog numbers them."""
AUDIT_AUID_UNSET = 4294967295
"""`process.auid` of a process no login session set (the kernel's (uid_t)-1)."""


def _build() -> dict[str, int]:
    out: dict[str, int] = {"O_RDONLY": 0}
    out.update(names.OPEN_FLAGS)
    out.update({n: 1 << bit for n, bit in names.CAPABILITIES.items()})
    out.update(names.FILE_MODES)
    out.update(names.UNLINK_FLAGS)
    out.update(names.BPF_COMMANDS)
    out.update(names.BPF_MAP_TYPES)
    out.update(names.BPF_PROGRAM_TYPES)
    out.update(names.BPF_ATTACH_TYPES)
    out.update(names.BPF_HELPERS)
    out.update({n: -v for n, v in names.ERRNO.items()})
    out.update(EXIT_CAUSES)
    out["AUDIT_AUID_UNSET"] = AUDIT_AUID_UNSET
    return out


CONSTANTS: dict[str, int] = _build()
ERRNO_NAMES = frozenset(names.ERRNO)
