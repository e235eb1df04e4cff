#!/usr/bin/env bash
# CI steps of the backlog streams (issue 7): a smoke run of the bench (it
# fails if run_all's peak heap exceeds buffer_unordered's), the example, and
# the allocation-free tests without `alloc`.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { echo; echo "=== $* ==="; local s=$SECONDS; "$@"; echo "[time] $((SECONDS - s))s: $*"; }

step env PERMITS_BENCH_QUICK=1 timeout 600 cargo bench --bench backlog
step timeout 300 cargo run --release --example email_backlog -- --count 300 --limit 8
step timeout 300 cargo test --no-default-features --test backlog
