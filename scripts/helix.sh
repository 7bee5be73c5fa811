#!/usr/bin/env bash
# Builds a real Helix (`hx`) for the editor tests from the source snapshot in ../shared/vendor/
# (Helix is not packaged for Debian 12) and caches it under ~/.cache/pith-test/helix-VERSION, so
# only the first run pays for the build (several minutes on 2 cores). Prints two lines last: the
# binary's absolute path, then the runtime directory (HELIX_RUNTIME).
set -euo pipefail
cd "$(dirname "$0")/.."
tarball=${PITH_HELIX_TARBALL:-$(ls ../shared/vendor/helix-*.tar.gz 2>/dev/null | head -n 1 || true)}
[ -n "$tarball" ] && [ -f "$tarball" ] || { echo "helix: no source snapshot in ../shared/vendor/" >&2; exit 1; }
name=$(basename "$tarball" .tar.gz)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/pith-test/$name"
hx="$cache/src/target/release/hx"
if [ ! -x "$hx" ]; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.build.XXXXXX")
  tar -xzf "$tarball" -C "$tmp"
  src=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -n 1)
  toolchain=$(rustup show active-toolchain 2>/dev/null | cut -d' ' -f1 || true)
  echo "helix: building $name with ${toolchain:-the default toolchain} (several minutes, once)" >&2
  # A test client needs no thin LTO nor full optimisation: this profile halves the build.
  (cd "$src" && RUSTUP_TOOLCHAIN="${toolchain:-stable}" HELIX_DISABLE_AUTO_GRAMMAR_BUILD=1 \
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=0 \
    cargo build --release --locked -p helix-term >&2)
  rm -rf "$cache/src"
  mv "$src" "$cache/src"
  rm -rf "$tmp"
fi
echo "$hx"
echo "$cache/src/runtime"
