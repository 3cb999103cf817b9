#!/usr/bin/env python3
"""Mutation testing: plant one small bug at a time in a package and see whether its tests catch it.

    .venv/bin/python scripts/mutation.py secl                    # a sample of 40 mutants, the package's tests
    .venv/bin/python scripts/mutation.py probe --sample 60 --seed 2
    .venv/bin/python scripts/mutation.py model schema --sample 0 # every mutant (slow)
    .venv/bin/python scripts/mutation.py secl --list             # the mutants, nothing run
    .venv/bin/python scripts/mutation.py resolvers --only src/opencws/resolvers/time.py:119:57 --tests tests/resolvers
                                                                 # one mutant again (a survivor, after its new test)

Each mutant is one token of a source file changed (a comparison, a boolean operator, an arithmetic or bit
operator, an integer, True/False) in Python files and in the package's C files (the BPF probe and the ring
decoder are mutated too, and rebuilt). The tests run in a copy of the checkout (the developer's tree is never
touched) with the package's tests and those of its direct users, stopping at the first failure.

A mutant is killed when the tests fail or time out, survives when they pass, and is stillborn when it does
not build (C) or compile (Python): stillborn mutants are left out of the kill rate. Survivors are printed with
their place: each is a bug the suite would let through (or an equivalent change: read it before writing a
test). Not part of CI: run it on a package before resolving an issue that changed it, and record the kill rate
in docs/mutation.md.

Why not mutmut or cosmic-ray: neither mutates C, and both run the tests in the developer's tree or in-process
(mutmut's trampolines and this project's generated code, root-only kernel tests and BPF rebuilds mix badly).
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import tokenize
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src" / "opencws"

TESTS = {
    "secl": ["tests/secl", "tests/agent/test_plan.py", "tests/agent/test_discarders.py",
             "tests/cli/test_rules_cli.py", "tests/cli/test_rules_test_cmd.py"],
    "model": ["tests/model", "tests/schema", "tests/secl/test_compiler.py", "tests/secl/test_default_policy.py"],
    "schema": ["tests/schema", "tests/cli/test_validate_cmd.py", "tests/cli/test_rules_cli.py"],
    "probe": ["tests/probe", "tests/agent/test_kernel_filters.py", "tests/cli/test_probe_cmd.py"],
    "agent": ["tests/agent", "tests/cli/test_run_cmd.py"],
    "resolvers": ["tests/resolvers", "tests/agent", "tests/cli/test_run_cmd.py"],
    "backend": ["tests/backend", "tests/cli/test_backend_cmd.py", "tests/cli/test_detection_cmd.py"],
    "bench": ["tests/bench"],
    "cli": ["tests/cli"],
    "tracing": ["tests/tracing", "tests/agent/test_dd_context.py", "tests/probe/test_dd_registration.py"],
}
"""The tests run against a package's mutants: its own and those of its direct users (`--tests` overrides)."""

PY_SWAPS = {
    "==": "!=", "!=": "==", "<": "<=", "<=": "<", ">": ">=", ">=": ">", "+": "-", "-": "+", "&": "|",
    "|": "&", "^": "&", "<<": ">>", ">>": "<<", "//": "*", "%": "//", "+=": "-=", "-=": "+=", "|=": "&=",
    "&=": "|=", "and": "or", "or": "and", "True": "False", "False": "True", "is": "is not", "in": "not in",
    "break": "continue", "continue": "break",
}
C_SWAPS = {
    "==": "!=", "!=": "==", "<": "<=", "<=": "<", ">": ">=", ">=": ">", "&&": "||", "||": "&&", "+": "-",
    "-": "+", "&": "|", "|": "&", "<<": ">>", ">>": "<<", "+=": "-=", "-=": "+=", "|=": "&=", "&=": "|=",
}
_C_TOKEN = re.compile(
    r'(?P<skip>//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|^[ \t]*#[^\n]*(?:\\\n[^\n]*)*)'
    r"|(?P<num>\b(?:0[xX][0-9a-fA-F]+|\d+)[uUlL]*\b)"
    r"|(?P<op>->|\+\+|--|&&|\|\||<<=|>>=|<<|>>|[=!<>+\-&|]=|[<>+\-&|])",
    re.S | re.M,
)


@dataclass
class Mutant:
    file: str  # relative to the checkout
    line: int
    column: int  # 1-based
    start: int  # character offsets in the file
    end: int
    before: str
    after: str
    status: str = ""  # killed, survived, timeout, stillborn
    seconds: float = 0.0

    def label(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.before!r} -> {self.after!r}"


def _offsets(text: str) -> list[int]:
    starts, pos = [0], 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        starts.append(pos)
    return starts


def _annotation_spans(tree: ast.AST) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where type annotations and decorators are (`slots=True` and annotations change nothing tests see)."""
    spans = []
    for node in ast.walk(tree):
        notes = list(getattr(node, "decorator_list", []))
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            notes.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
            notes.append(node.returns)
        for n in notes:
            spans.append(((n.lineno, n.col_offset), (n.end_lineno or n.lineno, n.end_col_offset or 0)))
    return spans


def python_mutants(path: Path) -> list[Mutant]:
    text = path.read_text()
    tree = ast.parse(text)
    skip = _annotation_spans(tree)
    starts = _offsets(text)
    rel = str(path.relative_to(REPO))
    out = []
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    for i, tok in enumerate(tokens):
        if any(a <= tok.start < b for a, b in skip):
            continue
        after = None
        if tok.type == tokenize.OP or (tok.type == tokenize.NAME and tok.string in PY_SWAPS):
            after = PY_SWAPS.get(tok.string)
            prev = tokens[i - 1].string if i else ""
            if tok.string in ("-", "+") and prev in ("(", ",", "=", "[", "return", ":"):
                after = None  # a sign (`-1`): mutated through its number
            if tok.string in ("in", "is") and prev == "not":  # (`not in`, `is not` stay as they are)
                after = None
            if tok.string == "|" and prev in ("[", ","):
                after = None
        elif tok.type == tokenize.NUMBER and re.fullmatch(r"0[xX][0-9a-fA-F_]+|\d[\d_]*", tok.string):
            value = int(tok.string.replace("_", ""), 0)
            after = str(value + 1) if value != 1 else "0"
        if after is None:
            continue
        start = starts[tok.start[0] - 1] + tok.start[1]
        end = starts[tok.end[0] - 1] + tok.end[1]
        out.append(Mutant(rel, tok.start[0], tok.start[1] + 1, start, end, tok.string, after))
    return [m for m in out if _compiles(text, m)]


def _compiles(text: str, m: Mutant) -> bool:
    try:
        compile(text[:m.start] + m.after + text[m.end:], m.file, "exec")
    except SyntaxError:
        return False
    return True


def c_mutants(path: Path) -> list[Mutant]:
    text = path.read_text()
    rel = str(path.relative_to(REPO))
    out = []
    for match in _C_TOKEN.finditer(text):
        if match.group("skip"):
            continue
        s = match.group()
        if match.group("num"):
            digits = re.match(r"0[xX][0-9a-fA-F]+|\d+", s).group()  # type: ignore[union-attr]
            value = int(digits, 16 if digits[:2] in ("0x", "0X") else 8 if len(digits) > 1 and digits[0] == "0" else 10)
            after = (hex(value + 1) if digits[:2] in ("0x", "0X") else str(value + 1) if value != 1 else "0") \
                + s[len(digits):]
        else:
            after = C_SWAPS.get(s)
            if after is None:
                continue
        line_start = text.rfind("\n", 0, match.start()) + 1
        out.append(Mutant(rel, text.count("\n", 0, match.start()) + 1, match.start() - line_start + 1,
                          match.start(), match.end(), s, after))
    return out


def package_mutants(package: str) -> list[Mutant]:
    root = SRC / package
    if not root.is_dir():
        raise SystemExit(f"no package src/opencws/{package}")
    out: list[Mutant] = []
    for path in sorted(root.rglob("*.py")):
        out += python_mutants(path)
    for path in sorted(root.rglob("*.c")):
        out += c_mutants(path)
    return out


def draw(mutants: list[Mutant], n: int, seed: int) -> list[Mutant]:
    """n mutants at random; half of them from the C files when the package has both kinds (its C files hold
    most of its tokens, its Python most of its logic)."""
    rng = random.Random(seed)
    c = [m for m in mutants if m.file.endswith(".c")]
    py = [m for m in mutants if not m.file.endswith(".c")]
    n_c = min(len(c), n // 2) if py else n
    n_py = min(len(py), n - n_c)
    return sorted(rng.sample(py, n_py) + rng.sample(c, min(len(c), n - n_py)), key=lambda m: (m.file, m.start))


def chosen(mutants: list[Mutant], places: list[str]) -> list[Mutant]:
    """The mutants at FILE:LINE (all of that line's) or FILE:LINE:COLUMN; FILE relative to the checkout."""
    out = []
    for place in places:
        parts = place.split(":")
        if len(parts) not in (2, 3) or not all(x.isdigit() for x in parts[1:]):
            raise SystemExit(f"--only {place!r}: FILE:LINE or FILE:LINE:COLUMN")
        found = [m for m in mutants if m.file == parts[0] and m.line == int(parts[1])
                 and (len(parts) == 2 or m.column == int(parts[2]))]
        out += [m for m in found if m not in out]
    return out


def make_copy(dest: Path) -> None:
    """The checkout's files (tracked and untracked, not ignored) and its build outputs, without the venv."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    built = [p for p in (REPO / "src").rglob("*") if p.suffix in (".so", ".o", ".h") and p.is_file()]
    for rel in [f for f in files if f] + [str(p.relative_to(REPO)) for p in built]:
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def build(copy: Path, m: Mutant) -> bool:
    """Rebuild what a C mutant changed; False when it does not build (a stillborn mutant)."""
    if m.file.endswith("probe.bpf.c"):
        cmd = ["make", "-s", "-C", str(copy / Path(m.file).parent)]
    elif m.file.endswith(".c"):  # a CPython extension, built as setup.py does (without its build machinery)
        source = copy / m.file
        target = source.with_name(source.stem + sysconfig.get_config_var("EXT_SUFFIX"))
        cmd = ["gcc", "-shared", "-fPIC", "-O2", "-Wall", f"-I{sysconfig.get_paths()['include']}", str(source),
               "-o", str(target)]
    else:
        return True
    return subprocess.run(cmd, cwd=copy, capture_output=True).returncode == 0


def run_tests(copy: Path, tests: list[str], timeout: float) -> tuple[str, float]:
    env = {**os.environ, "PYTHONPATH": str(copy / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", *tests]
    start = time.monotonic()
    try:
        rc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - start
    seconds = time.monotonic() - start
    if rc == 0:
        return "survived", seconds
    if rc == 1:
        return "killed", seconds
    return f"error (pytest exit {rc})", seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("packages", nargs="+", help="packages of src/opencws (secl, model, schema, probe, ...)")
    p.add_argument("--sample", type=int, default=40, help="mutants drawn per package (0: all)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tests", nargs="*", help="test paths (default: the package's, see TESTS)")
    p.add_argument("--timeout", type=float, default=0, help="seconds per mutant (default: 5 x the clean run)")
    p.add_argument("--only", nargs="+", metavar="FILE:LINE[:COLUMN]",
                   help="these mutants only, as --list and the survivors' list name them (no sample drawn): "
                        "to show that a new test kills a survivor")
    p.add_argument("--list", action="store_true", help="list the mutants drawn, run nothing")
    p.add_argument("--json", type=Path, help="write every mutant and its outcome here")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the copy is removed on the way out
    if str(REPO / "src") not in sys.path:
        sys.path.insert(0, str(REPO / "src"))
    results: dict[str, list[Mutant]] = {}
    for package in args.packages:
        mutants = package_mutants(package)
        total = len(mutants)
        if args.only:
            mutants = chosen(mutants, args.only)
        elif args.sample and args.sample < total:
            mutants = draw(mutants, args.sample, args.seed)
        print(f"{package}: {len(mutants)} of {total} mutants", flush=True)
        if args.list:
            for m in mutants:
                print("  " + m.label())
            continue
        tests = args.tests or TESTS.get(package, [f"tests/{package}"])
        results[package] = _run_package(mutants, tests, args.timeout)
    if args.list:
        return 0
    print()
    for package, ms in results.items():
        _report(package, ms)
    if args.json:
        args.json.write_text(json.dumps({k: [asdict(m) for m in v] for k, v in results.items()}, indent=1))
    return 0


def _run_package(mutants: list[Mutant], tests: list[str], timeout: float) -> list[Mutant]:
    with tempfile.TemporaryDirectory(prefix="opencws-mutation-") as tmp:
        copy = Path(tmp)
        make_copy(copy)
        status, clean = run_tests(copy, tests, timeout=3600)
        if status != "survived":
            raise SystemExit(f"the tests fail without any mutant ({status}): fix them first ({' '.join(tests)})")
        limit = timeout or max(60.0, 5 * clean)
        print(f"  tests: {' '.join(tests)} ({clean:.0f} s clean, {limit:.0f} s limit)", flush=True)
        for m in mutants:
            path = copy / m.file
            original = path.read_text()
            try:
                path.write_text(original[:m.start] + m.after + original[m.end:])
                if build(copy, m):
                    m.status, m.seconds = run_tests(copy, tests, limit)
                else:
                    m.status = "stillborn"
            finally:
                path.write_text(original)
                if m.file.endswith(".c"):
                    build(copy, m)
            print(f"  {m.status:9} {m.seconds:5.0f} s  {m.label()}", flush=True)
    return mutants


def _report(package: str, ms: list[Mutant]) -> None:
    counted = [m for m in ms if m.status != "stillborn"]
    killed = [m for m in counted if m.status in ("killed", "timeout")]
    rate = 100 * len(killed) / len(counted) if counted else 0.0
    print(f"{package}: {len(killed)}/{len(counted)} killed ({rate:.0f}%), "
          f"{sum(m.status == 'stillborn' for m in ms)} stillborn")
    for kind in ("py", "c"):
        part = [m for m in counted if m.file.endswith("." + kind)]
        if part:
            k = sum(m.status in ("killed", "timeout") for m in part)
            print(f"  .{kind}: {k}/{len(part)}")
    for m in counted:
        if m not in killed:
            print(f"  {m.status}: {m.label()}")


if __name__ == "__main__":
    sys.exit(main())
