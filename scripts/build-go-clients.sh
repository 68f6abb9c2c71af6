#!/usr/bin/env bash
# Builds the real Go programs the e2e tests drive (Dex, a client-go controller, k9s) from the
# Go module proxy. Each lives in test/harness/go/<name>/ as a small wrapper module (go.mod,
# go.sum, sometimes a main.go) and a build.conf naming what to build:
#   PACKAGE=<import path of the main package>   (default: the wrapper module itself)
#   BINARY=<file name>                          VERSION_OF=<module whose version keys the cache>
#   CGO=0|1                                     GOTOOLCHAIN=<optional, e.g. go1.27.3>
# The binary lands in ${GATEHOUSE_CACHE:-~/.cache/gatehouse}/<name>-<version>/<BINARY> (the
# version of VERSION_OF; a wrapper with its own .go files adds a hash of them), so a second run
# takes no time. Builds are niced, one at a time across worktrees (a lock in the cache), and
# print their progress.
#
#   scripts/build-go-clients.sh [name...]   build (default: every wrapper)
#   scripts/build-go-clients.sh --optional  the same, but only a warning when there is no Go
#   scripts/build-go-clients.sh --path name print where the binary is (built or not)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${GATEHOUSE_CACHE:-$HOME/.cache/gatehouse}"
WRAPPERS="$ROOT/test/harness/go"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"

log() { printf '[go-clients] %s\n' "$*" >&2; }

conf() { # conf <name> <key> [default]
  local v
  v=$(sed -n "s/^$2=//p" "$WRAPPERS/$1/build.conf" | tail -n1)
  printf '%s' "${v:-${3:-}}"
}

binary_path() {
  local name=$1 dir="$WRAPPERS/$1" mod version key
  [ -f "$dir/build.conf" ] || {
    log "no wrapper $dir/build.conf"
    exit 2
  }
  mod=$(conf "$name" VERSION_OF)
  version=$(awk -v m="$mod" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$dir/go.mod")
  [ -n "$version" ] || {
    log "$dir/go.mod requires no $mod"
    exit 2
  }
  key="$name-$version"
  if compgen -G "$dir/*.go" >/dev/null; then
    key="$key-$(cat "$dir"/go.mod "$dir"/go.sum "$dir"/*.go "$dir/build.conf" | sha256sum | cut -c1-10)"
  fi
  printf '%s/%s/%s\n' "$CACHE" "$key" "$(conf "$name" BINARY "$name")"
}

build_one() {
  local name=$1 dir="$WRAPPERS/$1" out pkg total started n=0 line
  out=$(binary_path "$name")
  if [ -x "$out" ]; then return; fi
  if [ ! -x "$GO" ]; then
    log "no Go toolchain (looked for go on PATH and $GO): cannot build $name"
    exit 1
  fi
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.go-build.lock"
  if ! flock -n 9; then
    log "another Go build holds $CACHE/.go-build.lock; waiting for it"
    flock 9
  fi
  if [ -x "$out" ]; then return; fi # built while we waited
  pkg=$(conf "$name" PACKAGE .)
  export CGO_ENABLED
  CGO_ENABLED=$(conf "$name" CGO 0)
  local toolchain
  toolchain=$(conf "$name" GOTOOLCHAIN)
  if [ -n "$toolchain" ]; then export GOTOOLCHAIN=$toolchain; fi
  log "$name: downloading modules through $("$GO" env GOPROXY)"
  (cd "$dir" && "$GO" mod download) 2>&1 | sed "s/^/[go $name] /" >&2
  total=$(cd "$dir" && "$GO" list -deps "$pkg" | wc -l)
  log "$name: building $pkg ($total packages with the standard library; niced) into $out"
  started=$(date +%s)
  mkdir -p "$(dirname "$out")"
  rm -f "$out.tmp"
  # go build -v names each package as it compiles it (cached ones are skipped)
  (cd "$dir" && nice -n 10 "$GO" build -v -trimpath -ldflags '-s -w' -o "$out.tmp" "$pkg" 2>&1) |
    while IFS= read -r line; do
      case "$line" in
        *' '* | *:*) printf '[go %s] %s\n' "$name" "$line" >&2 ;; # an error or a download
        *)
          n=$((n + 1))
          if [ $((n % 20)) = 0 ]; then
            printf '[go %s] %d/%d compiled, %ds: %s\n' "$name" "$n" "$total" "$(($(date +%s) - started))" "$line" >&2
          fi
          ;;
      esac
    done || true
  if [ ! -x "$out.tmp" ]; then
    log "$name: go build failed (output above)"
    exit 1
  fi
  mv "$out.tmp" "$out"
  log "$name: built in $(($(date +%s) - started))s: $out"
}

main() {
  if [ "${1:-}" = "--path" ]; then
    binary_path "$2"
    exit 0
  fi
  if [ "${1:-}" = "--optional" ]; then
    shift
    if [ ! -x "$GO" ]; then
      log "warning: no Go toolchain: Dex, the client-go controller and k9s are not built (their tests will fail)"
      exit 0
    fi
  fi
  names=("$@")
  if [ "${#names[@]}" = 0 ]; then
    for d in "$WRAPPERS"/*/build.conf; do names+=("$(basename "$(dirname "$d")")"); done
  fi
  for name in "${names[@]}"; do build_one "$name"; done
}

# parsed whole before it runs: editing this file during a long build cannot derail it
main "$@"
exit $?
