#!/usr/bin/env bash
# Builds Kyverno (github.com/kyverno/kyverno) from its Go module, for `npm run bench:peers` only
# (CI does not build it). Cached outside the repo, keyed by version, like the e2e control plane:
# a second run only checks the cache and takes a second.
#
#   bench/peers/build-kyverno.sh              build what is missing, print the version directory
#   STS_GUARD_BENCH_CACHE=/path build-kyverno.sh   cache elsewhere (default ~/.cache/sts-guard/bench)
#
# The directory it prints holds `kyverno` (the admission controller's binary, ./cmd/kyverno),
# `crds/` (config/crds from the same module, which the controller needs in the API server),
# `install-latest-testing.yaml` (the module's rendered install manifest: the admission controller's
# flags, environment and ConfigMaps are read from it) and `build.time` (/usr/bin/time -v of the build).
#
# Why from a writable copy of the module: kyverno's go.mod carries a `replace` (to a published
# fork) that only applies when kyverno is the main module, so `go build ./cmd/kyverno` must run
# inside the module's own tree; the module cache is read-only, hence the copy.
set -euo pipefail

KYVERNO_VERSION=${KYVERNO_VERSION:-v1.19.1}
module=github.com/kyverno/kyverno
cache=${STS_GUARD_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sts-guard/bench}
out="$cache/kyverno-$KYVERNO_VERSION"

say() { printf '[kyverno %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

if [ -x "$out/kyverno" ] && [ -d "$out/crds" ] && [ -f "$out/install-latest-testing.yaml" ]; then
  say "kyverno $KYVERNO_VERSION: cached"
  echo "$out"
  exit 0
fi
command -v go >/dev/null 2>&1 || die "go is not on PATH: Kyverno is built from its Go module (its go.mod asks for Go 1.26.6 or newer)."

started=$SECONDS
mkdir -p "$cache/src"
say "downloading $module@$KYVERNO_VERSION from $(go env GOPROXY)"
info=$(GOFLAGS=-mod=mod timeout 300 go mod download -json "$module@$KYVERNO_VERSION") ||
  die "cannot fetch $module@$KYVERNO_VERSION from the Go module proxy: $(echo "$info" | tail -n 3)"
zip=$(echo "$info" | sed -nE 's/^\s*"Zip": "(.*)",?$/\1/p')
[ -f "$zip" ] || die "the proxy gave no module zip for $module@$KYVERNO_VERSION"

src="$cache/src/kyverno-$KYVERNO_VERSION"
rm -rf "$src" "$src.unzip" && mkdir -p "$src.unzip"
unzip -q "$zip" -d "$src.unzip"
mv "$src.unzip/$module@$KYVERNO_VERSION" "$src" && rm -rf "$src.unzip"
chmod -R u+w "$src"
say "module unpacked into $src ($((SECONDS - started)) s)"

downloads=$SECONDS
say "downloading its dependencies (go mod download)"
(cd "$src" && GOFLAGS=-mod=mod go mod download) || die "could not download kyverno's dependencies"
say "dependencies downloaded in $((SECONDS - downloads)) s"

mkdir -p "$out.tmp"
building=$SECONDS
say "building ./cmd/kyverno (about 7 minutes and 2.4 GB of memory on 2 cores, more when they are shared)"
# -s -w: no symbol table or DWARF, as for the control plane: nothing here debugs Kyverno.
# /usr/bin/time -v, when present, records peak RSS next to the binary (build.time).
timer=()
[ -x /usr/bin/time ] && timer=(/usr/bin/time -v -o "$out.tmp/build.time")
(cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod "${timer[@]}" go build -trimpath -ldflags '-s -w' \
  -o "$out.tmp/kyverno" ./cmd/kyverno) || die "go build of kyverno $KYVERNO_VERSION failed (see above)"
cp -r "$src/config/crds" "$out.tmp/crds"
cp "$src/config/install-latest-testing.yaml" "$out.tmp/"
rm -rf "$out" && mv "$out.tmp" "$out"
size=$(stat -c %s "$out/kyverno")
rss=$( [ -f "$out/build.time" ] && sed -nE 's/.*Maximum resident set size \(kbytes\): ([0-9]+)/\1/p' "$out/build.time" || echo "?")
say "built kyverno $KYVERNO_VERSION: go build $((SECONDS - building)) s, peak RSS ${rss} kB, binary $((size / 1048576)) MB; $((SECONDS - started)) s in all"
echo "$out"
