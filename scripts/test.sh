#!/usr/bin/env bash
# Runs every test of pith: formatting, lints, the unit and end-to-end suites (release build:
# llama.cpp must be optimized), with the real default model and real editor clients.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
if [ -x scripts/test-deps.sh ]; then scripts/test-deps.sh; fi
cargo fmt --all --check
cargo clippy --release --all-targets --locked -- -D warnings
cargo test --release --locked
