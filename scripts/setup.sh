#!/usr/bin/env bash
# Idempotent set-up: Debian packages, the virtualenv with the Python dependencies, the BPF objects.
# Fast when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc and python3-dev build the C extension (the ring reader's hot loop) with the interpreter's own flags.
# clickhouse-server/-client: the scale-out store's tests start two of them on loopback (shards of a Distributed table).
# chromium: the web UI's tests drive it headless with Playwright (Playwright's own browser download fails here).
DEBIAN_PACKAGES=(clang llvm gcc libbpf-dev libbpf1 bpftool busybox-static runc python3-venv python3-dev
                 clickhouse-server clickhouse-client chromium)

missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then echo "setup: need root to install Debian packages" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Debian's python3 is built with PGO and LTO: about 25% faster here than a plain source build (pyenv).
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON; elif [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi
if [ -x .venv/bin/python ] && [ "$(readlink -f .venv/bin/python)" != "$(readlink -f "$(command -v "$PY")")" ]; then
  echo "setup: .venv was made with another interpreter; recreating it with $PY" >&2
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PY" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.opencws-installed
# reinstalled when the project's metadata or a C extension changed (or an extension is missing)
stale=
for ext_src in $(grep -o "src/opencws/[A-Za-z0-9_/]*\.c" setup.py); do  # every extension setup.py builds
  ext_built=$(ls "${ext_src%.c}".*.so 2>/dev/null | head -n1 || true)
  if [ -z "$ext_built" ] || [ "$ext_src" -nt "$ext_built" ]; then stale=1; fi
done
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ] || [ -n "$stale" ]; then
  echo "setup: installing Python dependencies" >&2
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi

if [ -f src/opencws/probe/bpf/Makefile ]; then
  make -s -C src/opencws/probe/bpf
fi
