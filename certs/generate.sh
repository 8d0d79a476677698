#!/usr/bin/env bash
# Creates a private CA and sts-guard's serving certificate with openssl, and a kustomization next
# to them that installs sts-guard with both: `kubectl apply -k certs/out`.
#
#   certs/generate.sh [--namespace NS] [--host NAME]... [--image REF] [--out DIR] [--days N] [--new-ca]
#
# Writes to DIR (default certs/out/, git-ignored):
#   ca.crt, ca.key         the CA; kept and reused on the next run, so re-running renews the serving
#                          certificate without changing the caBundle the API server trusts
#   tls.crt, tls.key       the serving certificate for sts-guard.NS.svc (+ each --host)
#   kustomization.yaml     deploy/overlays/self-signed + Secret sts-guard-tls (tls.crt, tls.key,
#                          ca.crt) + ca.crt as caBundle of every webhook + NS as the namespace
#                          (+ REF, your build of the image, instead of the placeholder)
# Keys are written mode 0600 and never leave DIR.
set -euo pipefail

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

die() {
  echo "certs/generate.sh: $*" >&2
  exit 1
}

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd "$script_dir/.." && pwd -P)"
overlay_dir="$repo_root/deploy/overlays/self-signed"

namespace="sts-guard"
out_dir="$repo_root/certs/out"
days=365
ca_days=1825
new_ca=false
image=""
hosts=()

while [[ $# -gt 0 ]]; do
  case "$1" in
    --namespace | -n) namespace="${2:?--namespace needs a value}"; shift 2 ;;
    --host) hosts+=("${2:?--host needs a value}"); shift 2 ;;
    --image) image="${2:?--image needs a value}"; shift 2 ;;
    --out) out_dir="${2:?--out needs a value}"; shift 2 ;;
    --days) days="${2:?--days needs a value}"; shift 2 ;;
    --new-ca) new_ca=true; shift ;;
    -h | --help) usage 0 ;;
    *) echo "certs/generate.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

# A namespace is a DNS label: it becomes part of the certificate's host names.
[[ "$namespace" =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] || die "--namespace '$namespace' is not a valid namespace name"
[[ "$days" =~ ^[1-9][0-9]*$ ]] || die "--days '$days' is not a positive number"
for host in ${hosts[@]+"${hosts[@]}"}; do
  [[ "$host" =~ ^[A-Za-z0-9.*:-]+$ ]] || die "--host '$host' is not a host name or IP address"
done
[[ -z "$image" || "$image" =~ ^[a-z0-9][a-z0-9._/:@-]*$ ]] || die "--image '$image' is not an image reference"
command -v openssl >/dev/null 2>&1 || die "openssl is not installed"
[[ -f "$overlay_dir/kustomization.yaml" ]] || die "cannot find $overlay_dir/kustomization.yaml"

umask 077
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd -P)"
# A second line of defence next to the repository's .gitignore: nothing here is ever committed.
printf '*\n' >"$out_dir/.gitignore"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Host names the API server may use for clientConfig.service (it connects to
# <service>.<namespace>.svc), plus the longer forms for callers inside the cluster.
service="sts-guard"
san="DNS:$service,DNS:$service.$namespace,DNS:$service.$namespace.svc,DNS:$service.$namespace.svc.cluster.local"
for host in ${hosts[@]+"${hosts[@]}"}; do
  if [[ "$host" =~ ^[0-9.]+$ || "$host" == *:* ]]; then san="$san,IP:$host"; else san="$san,DNS:$host"; fi
done

cat >"$work/openssl.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[serving]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $san
EOF

new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

if [[ "$new_ca" == true || ! -s "$out_dir/ca.crt" || ! -s "$out_dir/ca.key" ]]; then
  new_key "$work/ca.key"
  openssl req -x509 -new -key "$work/ca.key" -sha256 -days "$ca_days" \
    -subj "/CN=sts-guard webhook CA" -config "$work/openssl.cnf" -extensions ca \
    -out "$work/ca.crt"
  mv "$work/ca.key" "$out_dir/ca.key"
  mv "$work/ca.crt" "$out_dir/ca.crt"
  echo "created a new CA: $out_dir/ca.crt (valid $ca_days days)"
else
  echo "reusing the CA in $out_dir (pass --new-ca for a new one; the caBundle changes then)"
fi

new_key "$work/tls.key"
openssl req -new -key "$work/tls.key" -subj "/CN=$service.$namespace.svc" -config "$work/openssl.cnf" \
  -out "$work/tls.csr"
openssl x509 -req -in "$work/tls.csr" -CA "$out_dir/ca.crt" -CAkey "$out_dir/ca.key" \
  -set_serial "0x$(openssl rand -hex 16)" -sha256 -days "$days" \
  -extfile "$work/openssl.cnf" -extensions serving -out "$work/tls.crt" 2>"$work/x509.log" ||
  die "openssl could not sign the serving certificate: $(cat "$work/x509.log")"
openssl verify -CAfile "$out_dir/ca.crt" "$work/tls.crt" >/dev/null || die "the new certificate does not verify"
# Key first, then certificate, each by rename: a watcher never reads a half-written file.
mv "$work/tls.key" "$out_dir/tls.key"
mv "$work/tls.crt" "$out_dir/tls.crt"
chmod 600 "$out_dir"/*.key
chmod 644 "$out_dir"/*.crt

# kustomize accepts only a relative path to another kustomization.
relative_path() {
  local to="$2" common="$1" back=""
  while [[ "$to" != "$common" && "$to" != "$common"/* ]]; do
    common="$(dirname "$common")"
    back="../$back"
    [[ "$common" == / ]] && break
  done
  if [[ "$to" == "$common" ]]; then
    printf '%s\n' "${back:-.}"
  elif [[ "$common" == / ]]; then
    printf '%s%s\n' "$back" "${to#/}"
  else
    printf '%s%s\n' "$back" "${to#"$common"/}"
  fi
}
overlay_ref="$(relative_path "$out_dir" "$overlay_dir")"

cat >"$out_dir/kustomization.yaml" <<EOF
# Generated by certs/generate.sh for namespace $namespace. Not for committing: the Secret below is
# built from the private key next to this file. Install with: kubectl apply -k $out_dir
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization

namespace: $namespace

resources:
  - $overlay_ref

secretGenerator:
  - name: sts-guard-tls
    type: kubernetes.io/tls
    files:
      - tls.crt
      - tls.key
      - ca.crt
    options:
      # The Deployment mounts the Secret by this exact name; on renewal the files change in
      # place and the server reloads them, with no rollout.
      disableNameSuffixHash: true

replacements:
  # The Secret's ca.crt is already base64, exactly what clientConfig.caBundle holds.
  - source:
      kind: Secret
      name: sts-guard-tls
      fieldPath: data.[ca.crt]
    targets:
      - select:
          group: admissionregistration.k8s.io
          kind: MutatingWebhookConfiguration
        fieldPaths:
          - webhooks.*.clientConfig.caBundle
        options:
          create: true
      - select:
          group: admissionregistration.k8s.io
          kind: ValidatingWebhookConfiguration
        fieldPaths:
          - webhooks.*.clientConfig.caBundle
        options:
          create: true
  # sts-guard's own namespace stays excluded from its webhooks under whatever name it has.
  - source:
      kind: Namespace
      fieldPath: metadata.name
    targets:
      - select:
          group: admissionregistration.k8s.io
        fieldPaths:
          - webhooks.*.namespaceSelector.matchExpressions.[key=kubernetes.io/metadata.name].values.1
EOF

if [[ -n "$image" ]]; then
  # name[:tag] or name@digest; a colon after the last slash starts the tag (not a registry port).
  if [[ "$image" == *@* ]]; then
    image_fields="    newName: ${image%%@*}"$'\n'"    digest: ${image#*@}"
  elif [[ "${image##*/}" == *:* ]]; then
    image_fields="    newName: ${image%:*}"$'\n'"    newTag: \"${image##*:}\""
  else
    image_fields="    newName: $image"
  fi
  printf '\nimages:\n  - name: ghcr.io/example/sts-guard\n%s\n' "$image_fields" >>"$out_dir/kustomization.yaml"
fi

echo "serving certificate: $out_dir/tls.crt (valid $days days) for ${san//DNS:/}"
echo "install:             kubectl apply -k $out_dir"
