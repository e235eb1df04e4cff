#!/usr/bin/env bash
# The examples (issue 14). One per executor, each asserting its own results
# and that the limit held. Then examples/email_backlog against a real SMTP
# server nobody here wrote:
# Debian's python3-aiosmtpd, with a handler (.ci/smtp_counter.py) that counts
# every message and the most sessions at once. Checks that every email
# arrived, none twice, and the server never saw more sessions than the limit.
# Installs what it needs. Usage: bash .ci/examples.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
t() { local s=$SECONDS; echo "--- $*"; "$@"; echo "[time] $((SECONDS - s))s: $*"; }

# Debian's package is for Debian's python, not whatever python3 is first on PATH.
PY=/usr/bin/python3
if ! "$PY" -c 'import aiosmtpd' 2>/dev/null; then
  t apt-get update -qq
  t env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-aiosmtpd
fi

work=$(mktemp -d)
server=
cleanup() { if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT

smtp_run() { # COUNT LIMIT PER_DOMAIN(- for none) [example flags...]
  local count=$1 limit=$2 per_domain=$3; shift 3
  local domain_flags=()
  if [ "$per_domain" != - ]; then domain_flags=(--per-domain "$per_domain"); fi
  local port
  port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  SMTP_COUNTER_OUT="$work/stats.json" PYTHONPATH=.ci \
    "$PY" -m aiosmtpd -n -l "127.0.0.1:$port" -c smtp_counter.Counter 2>"$work/aiosmtpd.log" &
  server=$!
  for _ in $(seq 100); do
    "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2).close()" 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$work/aiosmtpd.log"; echo "FAIL: aiosmtpd did not start"; exit 1; }
    sleep 0.1
  done
  timeout 300 cargo run -q --release --example email_backlog -- \
    --smtp "127.0.0.1:$port" --count "$count" --limit "$limit" "${domain_flags[@]}" "$@" | tee "$work/out.txt"
  kill "$server"; wait "$server" 2>/dev/null || true; server=
  "$PY" .ci/smtp_counter.py check "$work/stats.json" "$count" "$limit" \
    ${domain_flags:+"$per_domain"}
  local failed=$(( (count + 99) / 100 ))
  grep -q "^sent $((count - failed)) emails, $failed failed" "$work/out.txt" ||
    { echo "FAIL: the example's summary does not say $((count - failed)) sent, $failed failed"; exit 1; }
}

for example in executor_tokio executor_smol executor_async_std executor_futures executor_block_on; do
  t timeout 120 cargo run -q --example "$example"
done
t timeout 120 cargo run -q --no-default-features --example executor_block_on

t cargo build -q --release --example email_backlog
t smtp_run 400 8 -
t smtp_run 400 8 - --adaptive
# 5 domains, at most 2 sessions each and 8 in total: aiosmtpd checks both.
t smtp_run 400 8 2 --domains 5
t smtp_run 400 8 2 --domains 5 --adaptive
# The adaptive limit against the in-process sink's busy domains (421s).
t timeout 120 cargo run -q --release --example email_backlog -- \
  --adaptive --limit 32 --domains 4 --sink-capacity 3 --count 2000
# Each of 8 busy domains finds its own limit (the sink takes 3 per domain).
t timeout 120 cargo run -q --release --example email_backlog -- \
  --per-domain 8 --adaptive --limit 64 --domains 8 --sink-capacity 3 --count 3000
# End to end, the adaptive limit converges near what the server takes: one
# domain that refuses a 13th session, 20 ms per message (so the limit is the
# server's, not this machine's CPU); the median limit over the second half
# must be in [0.8 C, 1.3 C].
t timeout 120 cargo run -q --release --example email_backlog -- \
  --adaptive --limit 64 --domains 1 --sink-capacity 12 --sink-latency 20 --count 3000 \
  --trace "$work/trace.csv"
t "$PY" benches/results/email_chart.py --check "$work/trace.csv" 12
echo "examples: 12 passed, 0 failed"
