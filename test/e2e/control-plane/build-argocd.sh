#!/usr/bin/env bash
# Builds Argo CD for the Argo CD e2e stories (test/e2e/argocd/), from its Go module, the way
# build.sh builds the control plane: pinned version, cached outside the repo by version, a warm
# cache answers in a second.
#
#   test/e2e/control-plane/build-argocd.sh     build what is missing, print the Argo CD directory
#   ARGOCD_MAIN=full build-argocd.sh           build Argo CD's own ./cmd (every component and the
#                                              CLI) instead of the narrow main; only to compare
#
# The printed directory holds:
#   argocd                    one binary; ARGOCD_BINARY_NAME picks the component, as upstream
#   bin/git-verify-wrapper.sh the repo-server runs it for every revision (from PATH, executable)
#   crds/                     Application, ApplicationSet and AppProject CRDs from the same module
#   cert-manager-crds/        cert-manager's Certificate and Issuer CRDs (github.com/cert-manager/
#                             cert-manager, deploy/crds), so the bundle's sts-guard Application,
#                             which ships cert-manager objects, can be synced (no cert-manager runs)
#
# Argo CD v3.6.2's go.mod says `go 1.27.0`: this build alone runs with GOTOOLCHAIN=go1.27.3, which
# the go command fetches through the proxy; the rest of the project stays on the machine's Go.
set -euo pipefail

ARGOCD_VERSION=${ARGOCD_VERSION:-v3.6.2}
ARGOCD_TOOLCHAIN=${ARGOCD_TOOLCHAIN:-go1.27.3}
ARGOCD_MAIN=${ARGOCD_MAIN:-narrow}
CERT_MANAGER_VERSION=${CERT_MANAGER_VERSION:-v1.21.2}

cache=${STS_GUARD_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sts-guard/e2e}
module=github.com/argoproj/argo-cd/v3
engine=github.com/argoproj/argo-cd/gitops-engine/v3

say() { printf '[argocd %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

case "$ARGOCD_MAIN" in
narrow) out="$cache/argocd-$ARGOCD_VERSION" ;;
full) out="$cache/argocd-full-$ARGOCD_VERSION" ;;
*) die "ARGOCD_MAIN must be narrow or full, not '$ARGOCD_MAIN'" ;;
esac

command -v go >/dev/null 2>&1 || die "go is not on PATH: Argo CD is built from its Go module."
proxy=$(go env GOPROXY)
# `go mod download -json` reports a failure in the JSON's "Error" field.
failure() { sed -nE 's/^\s*"Error": "(.*)",?$/\1/p' <<<"$1" | head -n 3; }

cert_manager_crds() { # directory to fill
  local json dir
  if ! json=$(GOFLAGS=-mod=mod timeout 300 go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" 2>&1); then
    die "cannot fetch github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION from the Go module proxy ($proxy):
  $(failure "$json")"
  fi
  dir=$(sed -nE 's/^\s*"Dir": "(.*)",?$/\1/p' <<<"$json")
  mkdir -p "$1"
  cp "$dir/deploy/crds/cert-manager.io_certificates.yaml" "$dir/deploy/crds/cert-manager.io_issuers.yaml" "$1/"
}

if [ -x "$out/argocd" ] && [ -x "$out/bin/git-verify-wrapper.sh" ] && [ -f "$out/crds/application-crd.yaml" ]; then
  if [ ! -f "$out/cert-manager-crds/cert-manager.io_certificates.yaml" ]; then
    say "adding cert-manager $CERT_MANAGER_VERSION's CRDs"
    cert_manager_crds "$out/cert-manager-crds"
  fi
  say "Argo CD $ARGOCD_VERSION ($ARGOCD_MAIN main): cached"
  echo "$out"
  exit 0
fi
export GOTOOLCHAIN=$ARGOCD_TOOLCHAIN
# A missing toolchain or proxy would otherwise fail deep inside `go build`; ask once, up front.
if ! toolchain=$(timeout 300 go version 2>&1); then
  die "cannot get the Go toolchain $ARGOCD_TOOLCHAIN (GOTOOLCHAIN) through the Go module proxy ($proxy):
  $(echo "$toolchain" | tail -n 3)
  Argo CD $ARGOCD_VERSION needs Go 1.27; check that the proxy is reachable, or point
  STS_GUARD_E2E_CACHE at a cache that already holds the binary."
fi
say "toolchain: $(tail -n 1 <<<"$toolchain")"

started=$SECONDS
download() { # module: prints the module's extracted directory
  local json
  if ! json=$(GOFLAGS=-mod=mod timeout 300 go mod download -json "$1@$ARGOCD_VERSION" 2>&1); then
    die "cannot fetch $1@$ARGOCD_VERSION from the Go module proxy ($proxy):
  $(failure "$json")"
  fi
  sed -nE 's/^\s*"Dir": "(.*)",?$/\1/p' <<<"$json"
}
say "downloading $module and $engine $ARGOCD_VERSION"
argocd_dir=$(download "$module")
engine_dir=$(download "$engine")
[ -d "$argocd_dir" ] && [ -d "$engine_dir" ] || die "the Go module proxy gave no source for $module or $engine"

# go.mod replaces gitops-engine with ./gitops-engine, which the module zip leaves out: put the two
# modules in one writable tree and build there, so that replace block applies.
src="$cache/src/argocd-$ARGOCD_VERSION"
rm -rf "$src" && mkdir -p "$(dirname "$src")"
cp -r "$argocd_dir" "$src"
cp -r "$engine_dir" "$src/gitops-engine"
chmod -R u+w "$src"

# The narrow main: upstream's cmd/main.go dispatch, with only the components the stories run.
# Without the API server, the CLI, Dex, notifications, the commit and CMP servers, far fewer
# packages are compiled and linked.
if [ "$ARGOCD_MAIN" = narrow ]; then
  mkdir -p "$src/cmd/sts-guard-e2e"
  cat >"$src/cmd/sts-guard-e2e/main.go" <<'GO'
// The Argo CD components sts-guard's e2e stories run, picked by ARGOCD_BINARY_NAME as in
// upstream's cmd/main.go: the application controller, the repo-server and the ApplicationSet
// controller (plus git's askpass helper, which the repo-server hands to git).
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	appcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	applicationset "github.com/argoproj/argo-cd/v3/cmd/argocd-applicationset-controller/commands"
	gitaskpass "github.com/argoproj/argo-cd/v3/cmd/argocd-git-ask-pass/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
	"github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/util/log"
)

func init() {
	klog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig()))
}

func main() {
	// Upstream's main calls util/grpc.DisableSRVLookups() here, undoing what gRPC's grpclb balancer
	// switches on when it is linked (through the API server's and the CLI's dependencies). This
	// build does not link grpclb, so SRV look-ups are already off, and that guard would panic.
	name := filepath.Base(os.Args[0])
	if val := os.Getenv("ARGOCD_BINARY_NAME"); val != "" {
		name = val
	}
	var command *cobra.Command
	switch name {
	case common.CommandApplicationController:
		command = appcontroller.NewCommand()
	case common.CommandRepoServer:
		command = reposerver.NewCommand()
	case common.CommandApplicationSetController:
		command = applicationset.NewCommand()
	case common.CommandGitAskPass:
		command = gitaskpass.NewCommand()
	default:
		fmt.Fprintf(os.Stderr, "this Argo CD build runs only %s, %s, %s and %s (ARGOCD_BINARY_NAME), not %q\n",
			common.CommandApplicationController, common.CommandRepoServer,
			common.CommandApplicationSetController, common.CommandGitAskPass, name)
		os.Exit(2)
	}
	if err := command.Execute(); err != nil {
		os.Exit(1)
	}
}
GO
  package=./cmd/sts-guard-e2e
else
  package=./cmd
fi

say "resolving Argo CD $ARGOCD_VERSION's dependencies (about 700 modules on a cold cache)"
(cd "$src" && GOFLAGS=-mod=mod go mod download) || die "could not download Argo CD $ARGOCD_VERSION's dependencies from the Go module proxy ($proxy)"
say "downloaded in $((SECONDS - started)) s"

pkg=github.com/argoproj/argo-cd/v3/common
kubectl_version=$(sed -nE 's#^\s*k8s\.io/kubectl => k8s\.io/kubectl (v[0-9.]+)$#\1#p' "$src/go.mod")
ldflags="-s -w -X $pkg.version=${ARGOCD_VERSION#v} -X $pkg.kubectlVersion=$kubectl_version"
ldflags+=" -X '$pkg.extraBuildInfo=$module@$ARGOCD_VERSION from the Go module proxy, built by sts-guard e2e'"
build_started=$SECONDS
say "building Argo CD $ARGOCD_VERSION ($ARGOCD_MAIN main, $package); minutes on a cold cache"
rm -rf "$out.tmp" && mkdir -p "$out.tmp/bin" "$out.tmp/crds"
(cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$out.tmp/argocd" "$package") ||
  die "go build of Argo CD $ARGOCD_VERSION failed (see above)"
# Module zips drop the execute bit; without it GenerateManifest fails with a bare "permission denied".
install -m 0755 "$src/hack/git-verify-wrapper.sh" "$out.tmp/bin/git-verify-wrapper.sh"
cp "$src"/manifests/crds/application-crd.yaml "$src"/manifests/crds/applicationset-crd.yaml \
  "$src"/manifests/crds/appproject-crd.yaml "$out.tmp/crds/"
cert_manager_crds "$out.tmp/cert-manager-crds"
rm -rf "$out" && mv "$out.tmp" "$out"
say "built Argo CD $ARGOCD_VERSION in $((SECONDS - build_started)) s ($((SECONDS - started)) s with the download): $out/argocd"
echo "$out"
