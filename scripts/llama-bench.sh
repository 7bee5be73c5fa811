#!/usr/bin/env bash
# Reference speed for `pith bench engine`: builds a small llama-bench-style program
# (scripts/llama-bench-ref.cpp) against the llama.cpp static libraries that llama-cpp-sys-2
# built for pith (same sources, same CPU flags), and runs it on the default model.
# The vendored llama.cpp ships without tools/llama-bench, hence the stand-in.
# Usage: scripts/llama-bench.sh [THREADS]   (run `cargo build --release` first)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
threads="${1:-$(nproc)}"
src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/llama-cpp-sys-2-0.1.161/llama.cpp | head -1)"
libs="$(dirname "$(ls -d "$here"/target/release/build/llama-cpp-sys-2-*/out/lib/libllama.a | head -1)")"
model="${PITH_MODEL:-${XDG_CACHE_HOME:-$HOME/.cache}/pith/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}"
out="${PITH_LLAMA_BENCH_DIR:-/tmp/pith-llama-bench}"
mkdir -p "$out"
if [ ! -x "$out/ref-bench" ] || [ "$here/scripts/llama-bench-ref.cpp" -nt "$out/ref-bench" ]; then
  nice -n 19 g++ -O2 -std=c++17 -I"$src/include" -I"$src/ggml/include" \
    "$here/scripts/llama-bench-ref.cpp" -o "$out/ref-bench" \
    -L"$libs" -lllama -lggml -lggml-cpu -lggml-base -fopenmp -lpthread -ldl -lm
fi
"$out/ref-bench" "$model" "$threads"
