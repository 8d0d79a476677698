#!/usr/bin/env bash
# Builds the real control plane the e2e suite runs against, from the Go module proxy:
# kube-apiserver, kube-controller-manager and kubectl (k8s.io/kubernetes), etcd
# (go.etcd.io/etcd/server/v3) and kustomize (sigs.k8s.io/kustomize/kustomize/v5). Binaries are
# cached outside the repo, keyed by version, like envtest's: a second run only checks the cache
# and takes seconds.
#
#   test/e2e/control-plane/build.sh            build what is missing, print the bin directory
#   STS_GUARD_E2E_CACHE=/path build.sh          cache elsewhere (default ~/.cache/sts-guard/e2e)
#
# Versions are pinned here; bump them together with test/e2e/README.md.
set -euo pipefail

KUBERNETES_VERSION=${KUBERNETES_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KUSTOMIZE_VERSION=${KUSTOMIZE_VERSION:-v5.8.1}

cache=${STS_GUARD_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sts-guard/e2e}
here=$(cd "$(dirname "$0")" && pwd)
# Small, stripped binaries: no debug info or paths are needed to run a test control plane, and
# the link step is the slowest and most memory-hungry part on 2 cores.
build_flags=(-trimpath -ldflags "-s -w")

say() { printf '[control-plane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v go >/dev/null 2>&1 || die "go is not on PATH: the control plane is built from Go modules (Go 1.26 or newer)."

# A build that cannot reach the proxy would otherwise hang or fail deep inside `go build` with a
# message about one module among hundreds; ask once, up front, with a short timeout.
check_proxy() {
  local module=$1 version=$2
  local out
  if ! out=$(GOFLAGS=-mod=mod timeout 60 go list -m -json "$module@$version" 2>&1); then
    die "cannot fetch $module@$version from the Go module proxy ($(go env GOPROXY)).
  $(echo "$out" | tail -n 3)
  The e2e control plane is built from Go modules; check that the proxy is reachable (GOPROXY,
  network) or point STS_GUARD_E2E_CACHE at a cache that already holds the binaries."
  fi
}

# Each component lands in $cache/<name>-<version>/<name>; present and runnable means done.
cached() { [ -x "$cache/$1-$2/$1" ]; }

build_module() { # name version dir package... (EXTRA_LDFLAGS: more -ldflags for this one)
  local name=$1 version=$2 dir=$3; shift 3
  local out="$cache/$name-$version"
  local started=$SECONDS
  local flags=("${build_flags[@]}")
  [ -z "${EXTRA_LDFLAGS:-}" ] || flags=(-trimpath -ldflags "-s -w $EXTRA_LDFLAGS")
  mkdir -p "$out.tmp"
  say "building $name $version (this takes minutes on a cold cache)"
  (cd "$dir" && GOFLAGS=-mod=mod go build "${flags[@]}" -o "$out.tmp/$name" "$@") \
    || die "go build of $name $version failed (see above)"
  rm -rf "$out" && mv "$out.tmp" "$out"
  say "built $name $version in $((SECONDS - started)) s: $out/$name"
}

# A throwaway module that requires $1@$2 (plus extra lines) so `go build` can build its commands.
wrapper_module() { # dir module version
  local dir=$1
  rm -rf "$dir" && mkdir -p "$dir"
  printf 'module sts-guard.test/control-plane\n\ngo 1.26\n' >"$dir/go.mod"
}

build_kubernetes() {
  if cached kube-apiserver "$KUBERNETES_VERSION" && cached kube-controller-manager "$KUBERNETES_VERSION" &&
    cached kubectl "$KUBERNETES_VERSION"; then
    say "kube-apiserver, kube-controller-manager and kubectl $KUBERNETES_VERSION: cached"
    return
  fi
  check_proxy k8s.io/kubernetes "$KUBERNETES_VERSION"
  local dir="$cache/src/kubernetes-$KUBERNETES_VERSION"
  wrapper_module "$dir"
  # k8s.io/kubernetes points its staging modules (k8s.io/api, k8s.io/apimachinery, ...) at
  # ./staging/src/..., which a module consumer cannot see; pin each to its published v0.x twin.
  local staging=v0.${KUBERNETES_VERSION#v1.}
  local gomod
  gomod=$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -nE 's/^\s*"GoMod": "(.*)",?$/\1/p')
  [ -f "$gomod" ] || die "could not read k8s.io/kubernetes@$KUBERNETES_VERSION's go.mod"
  {
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    sed -nE 's#^\s*(k8s\.io/[a-z0-9-]+) => \./staging/.*#replace \1 => \1 '"$staging"'#p' "$gomod"
  } >>"$dir/go.mod"
  say "wrapper module pins $(grep -c '^replace' "$dir/go.mod") staging modules to $staging"
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  say "resolving k8s.io/kubernetes $KUBERNETES_VERSION's dependencies"
  (cd "$dir" && GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true)
  (cd "$dir" && GOFLAGS=-mod=mod go mod download) || die "could not download k8s.io/kubernetes's dependencies"
  cached kube-apiserver "$KUBERNETES_VERSION" ||
    build_module kube-apiserver "$KUBERNETES_VERSION" "$dir" k8s.io/kubernetes/cmd/kube-apiserver
  cached kube-controller-manager "$KUBERNETES_VERSION" ||
    build_module kube-controller-manager "$KUBERNETES_VERSION" "$dir" k8s.io/kubernetes/cmd/kube-controller-manager
  # The stories' kubectl, the API server's own minor version (within the supported skew); it
  # reuses most of the packages compiled above. Stamped with its version as Kubernetes' release
  # build does (hack/lib/version.sh), so `kubectl version` and its User-Agent name 1.37.
  local minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  local stamp="" v
  for v in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    stamp+=" -X $v.gitVersion=$KUBERNETES_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
  done
  cached kubectl "$KUBERNETES_VERSION" ||
    EXTRA_LDFLAGS=$stamp build_module kubectl "$KUBERNETES_VERSION" "$dir" k8s.io/kubernetes/cmd/kubectl
}

build_etcd() {
  if cached etcd "$ETCD_VERSION"; then say "etcd $ETCD_VERSION: cached"; return; fi
  check_proxy go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  local dir="$cache/src/etcd-$ETCD_VERSION"
  wrapper_module "$dir"
  # etcd's own main (go.etcd.io/etcd/v3) is a one-liner around etcdmain; the server module is what
  # the proxy serves with a stable path, so wrap it the same way.
  printf '\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >>"$dir/go.mod"
  cat >"$dir/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$dir" && GOFLAGS=-mod=mod go mod tidy) || die "could not resolve etcd $ETCD_VERSION's dependencies"
  build_module etcd "$ETCD_VERSION" "$dir" .
}

build_kustomize() {
  if cached kustomize "$KUSTOMIZE_VERSION"; then say "kustomize $KUSTOMIZE_VERSION: cached"; return; fi
  check_proxy sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
  local dir="$cache/src/kustomize-$KUSTOMIZE_VERSION"
  wrapper_module "$dir"
  printf '\nrequire sigs.k8s.io/kustomize/kustomize/v5 %s\n' "$KUSTOMIZE_VERSION" >>"$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "sigs.k8s.io/kustomize/kustomize/v5"\n' >"$dir/tools.go"
  (cd "$dir" && GOFLAGS=-mod=mod go mod tidy) || die "could not resolve kustomize $KUSTOMIZE_VERSION's dependencies"
  build_module kustomize "$KUSTOMIZE_VERSION" "$dir" sigs.k8s.io/kustomize/kustomize/v5
}

# Kyverno's chainsaw runs the declarative e2e scenarios (test/e2e/chainsaw/) against the same API
# server; built here so it is cached by version like the rest. v0.2.12 hands testing.MainStart a
# testDeps of its own, without the ModulePath method newer Go added to that internal interface, so
# it builds only with the Go it declares (go 1.23): the go command fetches that toolchain from the
# module proxy (golang.org/toolchain) once, into the module cache.
CHAINSAW_VERSION=${CHAINSAW_VERSION:-v0.2.12}
CHAINSAW_GO=${CHAINSAW_GO:-go1.23.12}
build_chainsaw() {
  if cached chainsaw "$CHAINSAW_VERSION"; then say "chainsaw $CHAINSAW_VERSION: cached"; return; fi
  check_proxy github.com/kyverno/chainsaw "$CHAINSAW_VERSION"
  local dir="$cache/src/chainsaw-$CHAINSAW_VERSION"
  wrapper_module "$dir"
  sed -i 's/^go .*/go 1.23.0/' "$dir/go.mod"
  printf '\nrequire github.com/kyverno/chainsaw %s\n' "$CHAINSAW_VERSION" >>"$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/kyverno/chainsaw"\n' >"$dir/tools.go"
  local -x GOTOOLCHAIN=$CHAINSAW_GO
  say "resolving chainsaw $CHAINSAW_VERSION's dependencies with $CHAINSAW_GO"
  (cd "$dir" && GOFLAGS=-mod=mod go mod tidy) || die "could not resolve chainsaw $CHAINSAW_VERSION's dependencies"
  build_module chainsaw "$CHAINSAW_VERSION" "$dir" github.com/kyverno/chainsaw
}

started=$SECONDS
mkdir -p "$cache"
build_kustomize
build_etcd
build_kubernetes
build_chainsaw
# One directory of links, so callers put a single path first on PATH.
bin="$cache/bin-$KUBERNETES_VERSION-$ETCD_VERSION-$KUSTOMIZE_VERSION"
mkdir -p "$bin"
ln -sf "$cache/kube-apiserver-$KUBERNETES_VERSION/kube-apiserver" "$bin/kube-apiserver"
ln -sf "$cache/kube-controller-manager-$KUBERNETES_VERSION/kube-controller-manager" "$bin/kube-controller-manager"
ln -sf "$cache/kubectl-$KUBERNETES_VERSION/kubectl" "$bin/kubectl"
ln -sf "$cache/etcd-$ETCD_VERSION/etcd" "$bin/etcd"
ln -sf "$cache/kustomize-$KUSTOMIZE_VERSION/kustomize" "$bin/kustomize"
ln -sf "$cache/chainsaw-$CHAINSAW_VERSION/chainsaw" "$bin/chainsaw"
say "control plane ready in $((SECONDS - started)) s: $bin"
echo "$bin"
