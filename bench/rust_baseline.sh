#!/usr/bin/env bash
# The Rust Rivet CLI (crates.io `rivet-cli`) as the benchmark's standing baseline: built once per version
# with cargo and cached under $RIVET_BENCH_CACHE (default /var/cache/rivet-bench), outside the test path
# (`make bench` only; never `make test` or CI). Prints the binary's path on stdout; the build log is
# $CACHE/cargo-$VERSION.log. A concurrent run waits for the first one's build (flock) instead of building twice.
#
#   bash bench/rust_baseline.sh            # 0.8.0
#   RIVET_RUST_VERSION=0.9.0 bash bench/rust_baseline.sh
set -euo pipefail

VERSION="${RIVET_RUST_VERSION:-0.8.0}"
CACHE="${RIVET_BENCH_CACHE:-/var/cache/rivet-bench}"
ROOT="$CACHE/rivet-cli-$VERSION"
BIN="$ROOT/bin/rivet"

if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi
if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then
  # shellcheck disable=SC1091
  source "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "rust_baseline: cargo not found (install a Rust toolchain, e.g. rustup), cannot build rivet-cli $VERSION" >&2
  exit 1
fi
mkdir -p "$CACHE"
exec 9>"$CACHE/.rivet-cli-$VERSION.lock"
flock 9
if [[ ! -x "$BIN" ]]; then
  # Also wait for a build someone started by hand with the same --root (no lock of ours).
  while pgrep -f -- "cargo install rivet-cli --version $VERSION .*--root $ROOT" >/dev/null 2>&1; do
    echo "rust_baseline: waiting for the running cargo install of rivet-cli $VERSION" >&2
    sleep 10
  done
fi
if [[ ! -x "$BIN" ]]; then
  echo "rust_baseline: building rivet-cli $VERSION (once; log: $CACHE/cargo-$VERSION.log)" >&2
  if ! cargo install rivet-cli --version "$VERSION" --locked --root "$ROOT" >"$CACHE/cargo-$VERSION.log" 2>&1; then
    echo "rust_baseline: cargo install failed, see $CACHE/cargo-$VERSION.log" >&2
    tail -20 "$CACHE/cargo-$VERSION.log" >&2
    exit 1
  fi
fi
echo "$BIN"
