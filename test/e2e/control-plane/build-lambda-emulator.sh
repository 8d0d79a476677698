#!/usr/bin/env bash
# Builds the AWS Lambda Runtime Interface Emulator (aws-lambda-rie, the Runtime API that AWS ships
# for running functions off AWS) from its Go module, for the Lambda path of the e2e suite
# (`npm run test:e2e:lambda`). Cached outside the repo, keyed by version, beside the control plane
# that build.sh builds: a second run only checks the cache.
#
#   test/e2e/control-plane/build-lambda-emulator.sh     build if missing, print the binary's path
#   STS_GUARD_E2E_CACHE=/path build-lambda-emulator.sh  cache elsewhere (default ~/.cache/sts-guard/e2e)
#
# The module publishes no tags, so the version is a pseudo-version; bump it with test/e2e/README.md.
set -euo pipefail

RIE_MODULE=github.com/aws/aws-lambda-runtime-interface-emulator
RIE_VERSION=${RIE_VERSION:-v0.0.0-20261030222936-bef5c4ba774d}

cache=${STS_GUARD_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sts-guard/e2e}
out="$cache/aws-lambda-rie-$RIE_VERSION"

say() { printf '[lambda-emulator %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

if [ -x "$out/aws-lambda-rie" ]; then
  say "aws-lambda-rie $RIE_VERSION: cached"
  echo "$out/aws-lambda-rie"
  exit 0
fi

command -v go >/dev/null 2>&1 || die "go is not on PATH: the Lambda emulator is built from its Go module (Go 1.26 or newer)."

started=$SECONDS
say "checking $RIE_MODULE@$RIE_VERSION on the Go module proxy"
if ! check=$(GOFLAGS=-mod=mod timeout 60 go list -m -json "$RIE_MODULE@$RIE_VERSION" 2>&1); then
  die "cannot fetch $RIE_MODULE@$RIE_VERSION from the Go module proxy ($(go env GOPROXY)).
  $(echo "$check" | tail -n 3)
  Check that the proxy is reachable (GOPROXY, network) or point STS_GUARD_E2E_CACHE at a cache
  that already holds aws-lambda-rie-$RIE_VERSION/aws-lambda-rie."
fi

# A throwaway module that requires the emulator, so `go build` resolves and verifies its
# dependencies against go.sum like any consumer; the emulator's own go.mod pins them.
dir="$cache/src/aws-lambda-rie-$RIE_VERSION"
rm -rf "$dir" && mkdir -p "$dir"
printf 'module sts-guard.test/lambda-emulator\n\ngo 1.26\n\nrequire %s %s\n' "$RIE_MODULE" "$RIE_VERSION" >"$dir/go.mod"
printf '//go:build tools\n\npackage tools\n\nimport _ "%s/cmd/aws-lambda-rie"\n' "$RIE_MODULE" >"$dir/tools.go"
say "resolving its dependencies"
(cd "$dir" && GOFLAGS=-mod=mod go mod tidy) || die "could not resolve $RIE_MODULE@$RIE_VERSION's dependencies"

say "building aws-lambda-rie $RIE_VERSION"
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
# Static and stripped, as AWS builds its release binary (CGO off: the emulator needs no libc).
(cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" \
  -o "$out.tmp/aws-lambda-rie" "$RIE_MODULE/cmd/aws-lambda-rie") ||
  die "go build of aws-lambda-rie $RIE_VERSION failed (see above)"
rm -rf "$out" && mv "$out.tmp" "$out"
say "built aws-lambda-rie $RIE_VERSION in $((SECONDS - started)) s: $out/aws-lambda-rie"
echo "$out/aws-lambda-rie"
