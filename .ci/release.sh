#!/usr/bin/env bash
# Release hygiene (issue 14): every feature combination builds, each
# publishable package holds only what a user needs and passes
# `cargo publish --dry-run`, and the declared minimum versions of the direct
# dependencies build and pass the tests, and the library builds with the
# declared MSRV. Installs what it needs.
# Usage: bash .ci/release.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
step() { echo; echo "=== $* ==="; local s=$SECONDS; "$@"; echo "[time] $((SECONDS - s))s: $*"; }

# --- every feature combination ---------------------------------------------
mkdir -p target
command -v cargo-hack >/dev/null || step cargo install --locked cargo-hack
# `default` is `std`, so skipping it loses no combination.
step cargo hack check --feature-powerset --skip default --lib
# A core without compare-and-swap needs `critical-section` in every set, and
# has no `Arc`, so no `alloc` (the crate says so with a compile error).
step rustup target add thumbv6m-none-eabi
step cargo hack check --feature-powerset --skip default,std,alloc --features critical-section \
    --lib --target thumbv6m-none-eabi

# --- what would be published -------------------------------------------------
# The workspace's publishable packages (`publish = false` ones are left out).
packages=$(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
meta = json.load(sys.stdin)
print(" ".join(p["name"] for p in meta["packages"] if p["publish"] != []))')
echo "publishable: $packages"
for package in $packages; do
  cargo package --list --allow-dirty -p "$package" > "target/package-$package.txt"
  echo "$package: $(wc -l < "target/package-$package.txt") files"
  # CI scripts, firmware images, benchmark results and build output are for
  # this repository only.
  if grep -E '^(\.ci|\.github|firmware|target|benches/results)/' "target/package-$package.txt"; then
    echo "FAIL: $package would publish the files above"; exit 1
  fi
  grep -qx 'README.md' "target/package-$package.txt" || { echo "FAIL: $package has no README.md"; exit 1; }
done
# All of them, in dependency order (a path dependency on an unpublished
# workspace package is checked against the one just packaged).
step cargo publish --workspace --dry-run --allow-dirty

# --- the MSRV ------------------------------------------------------------------
# The library builds with the `rust-version` Cargo.toml declares (all
# features, none, and a core without compare-and-swap). Tests, examples and
# benchmarks are not built with it: their dev-dependencies may need newer.
msrv=$(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
print(next(p["rust_version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "permits"))')
step rustup toolchain install "$msrv" --profile minimal
step rustup target add --toolchain "$msrv" thumbv6m-none-eabi
(
  export CARGO_TARGET_DIR=target/msrv
  step cargo "+$msrv" check --locked -p permits --lib --all-features
  step cargo "+$msrv" check --locked -p permits --lib --no-default-features
  step cargo "+$msrv" check --locked -p permits --lib --no-default-features \
      --features critical-section,defmt --target thumbv6m-none-eabi
)

# --- lowest declared versions ------------------------------------------------
# Direct dependencies at the lowest version Cargo.toml allows (their own
# dependencies as new as allowed), in a separate target dir; Cargo.lock is
# put back afterwards so later steps build what the lockfile says.
if ! rustup toolchain list | grep -q '^nightly'; then
  step rustup toolchain install nightly --profile minimal
fi
cp Cargo.lock target/Cargo.lock.saved
trap 'cp target/Cargo.lock.saved Cargo.lock' EXIT
step cargo +nightly update -Z direct-minimal-versions
export CARGO_TARGET_DIR=target/minimal-versions
step cargo check --locked -p permits --lib --all-features
step cargo test --locked -p permits --lib --tests
# permits-redis's declared minimums too (its tests need a redis-server;
# .ci/redis.sh runs them on the lockfile's versions).
step cargo check --locked -p permits-redis --all-targets --all-features
unset CARGO_TARGET_DIR
cp target/Cargo.lock.saved Cargo.lock
trap - EXIT

echo; echo "release: all green"
