"""Dependencies point one way along the data flow: a lower layer never imports a higher one."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "opencws"

ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "tracing": set(),  # imported by applications: nothing of the agent
    "schema": {"model"},
    "secl": {"model", "schema"},
    "probe": {"model"},
    "resolvers": {"model", "probe"},
    "agent": {"model", "schema", "secl", "probe", "resolvers"},
    "backend": {"model", "schema", "secl"},
    "bench": {"model", "schema", "secl", "probe", "resolvers", "agent", "backend", "cli", "tracing"},  # cli: argument types
    "cli": {"model", "schema", "secl", "probe", "resolvers", "agent", "backend", "bench"},
}
"""The packages each package may import (besides itself and the top-level `opencws` module)."""


def imported_packages(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for n in names:
            parts = n.split(".")
            if parts[0] == "opencws" and len(parts) > 1:
                out.add(parts[1])
    return out


def test_every_package_imports_only_the_layers_below_it():
    wrong = []
    for package in sorted(p for p in SRC.iterdir() if p.is_dir() and any(p.glob("*.py"))):
        if package.name.startswith("__"):
            continue
        assert package.name in ALLOWED, f"new package {package.name}: add it to ALLOWED"
        for module in package.rglob("*.py"):
            for used in imported_packages(module) - ALLOWED[package.name] - {package.name}:
                if (SRC / used).is_dir():
                    wrong.append(f"{module.relative_to(SRC)} imports opencws.{used}")
    assert wrong == []


def test_the_layer_check_sees_a_wrong_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("from opencws.agent import runner\nimport opencws.probe.probe\n")
    assert imported_packages(bad) == {"agent", "probe"}
