#!/usr/bin/env bash
# Sets up pith on a fresh Debian / Raspberry Pi OS machine: system packages, Rust (if missing),
# a release build installed to ~/.cargo/bin, and the default model in ~/.cache/pith/models (with
# Qwen2.5-Coder-1.5B for chat where the machine has the memory for both).
# Idempotent: re-running it only redoes what is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need_pkgs=()
for pkg in cmake clang libclang-dev pkg-config build-essential git curl python3 python3-pip; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_pkgs+=("$pkg")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "setup: installing ${need_pkgs[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: installing Rust with rustup" >&2
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi

echo "setup: building pith (the first build compiles llama.cpp: several minutes)" >&2
cargo build --release --locked
mkdir -p "$HOME/.cargo/bin"
install -m 755 target/release/pith "$HOME/.cargo/bin/pith"
# The 1.5B answers questions too where the memory allows both models (names the function asked
# for in 85% of the dev questions against 70%, at about twice the time).
"$HOME/.cargo/bin/pith" model install --with-chat
echo "setup: done; pith is $HOME/.cargo/bin/pith" >&2
