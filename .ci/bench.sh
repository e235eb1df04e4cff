#!/usr/bin/env bash
# Benchmarks in CI: build them all, then one quick smoke pass of
# benches/peers/ (well under a minute; it fails if `permits` breaks a
# limit or loses a permit). CI does not judge timings.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --no-run
PERMITS_BENCH_QUICK=1 timeout 300 cargo bench --bench peers
python3 benches/results/chart.py target/bench/peers-quick.json target/bench/peers-quick.svg > /dev/null
# KeyedSemaphore against a plain Semaphore and the hand-rolled map (about
# 3 s; it fails if a key is left in the map or a permit is lost).
PERMITS_BENCH_QUICK=1 timeout 120 cargo bench --bench keyed
