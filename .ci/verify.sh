#!/usr/bin/env bash
# Verification of the concurrent protocol (issue 5): loom models, the
# model-based random test at scale, and Miri (Stacked Borrows and Tree
# Borrows, strict provenance, per feature set). Installs what it needs.
# Run from anywhere: `bash .ci/verify.sh`. About 5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
step() { echo; echo "=== $* ==="; local s=$SECONDS; "$@"; echo "[time] $((SECONDS - s))s: $*"; }

# --- loom ----------------------------------------------------------------
# Release with debug assertions, as tokio runs its models. A separate target
# dir, so the changed RUSTFLAGS do not invalidate the normal build. Each
# model's preemption bound is in tests/loom.rs (LOOM_MAX_PREEMPTIONS
# overrides them all).
step env RUSTFLAGS="--cfg loom -C debug-assertions" CARGO_TARGET_DIR=target/loom \
    timeout 900 cargo test --release --test loom
# KeyedSemaphore's eviction protocol (about 3 s after the build above).
step env RUSTFLAGS="--cfg loom -C debug-assertions" CARGO_TARGET_DIR=target/loom \
    timeout 300 cargo test --release --test loom_keyed

# --- model-based random test ---------------------------------------------
# `cargo test` already ran 10,000 sequences (with debug assertions); here
# 100,000 more seeds, optimised (seconds instead of minutes; the release
# dependencies are the ones the benchmarks build anyway).
step env PERMITS_MODEL_SEQUENCES=100000 PERMITS_MODEL_BASE=0x10000000 \
    timeout 600 cargo test --release --test model

# --- Miri ------------------------------------------------------------------
if ! rustup toolchain list | grep -q '^nightly'; then
    step rustup toolchain install nightly --profile minimal
fi
step rustup component add --toolchain nightly miri rust-src
step cargo +nightly miri setup
# Plain Stacked Borrows, as a user would run it: unit and integration
# tests. Tests that need real OS threads or I/O are scaled down under
# cfg(miri) in the test files themselves. Not the doc tests: they are
# examples of the API the tests cover, and took four minutes here.
step timeout 1200 cargo +nightly miri test --lib --tests
# Strict provenance with Tree Borrows, then on the other feature sets (the
# spin and critical-section lock backends): the unit tests and the
# integration tests of the layer with the unsafe code (the list, the waiter,
# hand-off, the backlog engine's pinned slots). The layers above it (keyed,
# adaptive, the model and stress runs) are safe code and ran under Miri
# above; running them four times would cost minutes and check nothing new.
# The queue's tests, for every lock backend; the backlog engine's limits
# under Tree Borrows too (its full suite ran under Stacked Borrows above:
# under Tree Borrows it takes 2.5 minutes more than CI's budget allows).
queue_tests=()
for t in bad_input cancel close faults fifo gate limits permit regressions run \
         unwinding auto_traits; do
    queue_tests+=(--test "$t")
done
step env MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-tree-borrows" \
    timeout 900 cargo +nightly miri test --lib "${queue_tests[@]}" --test backlog_limits
step env MIRIFLAGS="-Zmiri-strict-provenance" \
    timeout 900 cargo +nightly miri test --lib "${queue_tests[@]}" --no-default-features
step env MIRIFLAGS="-Zmiri-strict-provenance" \
    timeout 900 cargo +nightly miri test --lib "${queue_tests[@]}" --all-features

echo; echo "verify: all green"
