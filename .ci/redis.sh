#!/usr/bin/env bash
# CI steps of permits-redis (issue 16): installs redis-server if missing,
# then fmt/clippy/doc of the package, its tests against private servers
# (REQUIRE_REDIS=1: a missing server fails instead of skipping), the
# email_fleet example (4 processes on 8 permits) and a bench smoke pass,
# all in the dev profile. About 30 s warm; the cold build of redis-rs and
# the runtimes adds a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
step() { echo; echo "=== $* ==="; local s=$SECONDS; "$@"; echo "[time] $((SECONDS - s))s: $*"; }

if ! command -v redis-server >/dev/null; then
  step apt-get update -qq
  step env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server
fi
redis-server --version
export REQUIRE_REDIS=1

step cargo clippy -p permits-redis --all-targets --all-features -- -D warnings
step env RUSTDOCFLAGS="-D warnings" cargo doc -p permits-redis --no-deps --all-features
# Each runtime alone builds too (and the tests run with both enabled).
step cargo check -p permits-redis --no-default-features --features smol-comp
step timeout 600 cargo test -p permits-redis
# Debug builds, sharing the test build's artifacts (no release build in CI):
# the example fails if the sink saw more than 8 sessions at once; the bench
# smoke pass fails if an item fails. CI judges no timings.
step timeout 300 cargo run -p permits-redis --example email_fleet -- --count 400
step env PERMITS_BENCH_QUICK=1 timeout 300 cargo test -p permits-redis --bench throughput
