#!/usr/bin/env bash
# Firmware CI for `permits` (issue 4): no_std builds for Cortex-M and RISC-V,
# and the firmware test images in firmware/ run under qemu-system-arm on
# Cortex-M0 (microbit), Cortex-M3 (lm3s6965evb) and Cortex-M4F (mps2-an386).
# Installs what it needs. Usage: bash .ci/firmware.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
t() { local s=$SECONDS; echo "--- $*"; "$@"; echo "[time] $((SECONDS - s))s: $*"; }

t rustup target add thumbv6m-none-eabi thumbv7m-none-eabi thumbv7em-none-eabihf \
  riscv32imac-unknown-none-elf riscv32imc-unknown-none-elf
if ! command -v qemu-system-arm >/dev/null || ! command -v arm-none-eabi-objdump >/dev/null; then
  t apt-get update -qq
  t env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    qemu-system-arm binutils-arm-none-eabi
fi
qemu-system-arm --version | head -n1

# 1. The library, no std, no alloc: cores with CAS use the spin lock, cores
#    without CAS need the critical-section feature.
for target in thumbv7m-none-eabi thumbv7em-none-eabihf riscv32imac-unknown-none-elf; do
  t cargo build -q --lib --no-default-features --target "$target"
done
for target in thumbv6m-none-eabi riscv32imc-unknown-none-elf; do
  t cargo build -q --lib --no-default-features --features critical-section --target "$target"
done

# 2. Firmware tests in qemu. .cargo/config.toml (runners) is found from the
#    current directory, hence the cd. Each [[test]] is one image; qemu's exit
#    code is the verdict (panic/HardFault -> 1, hang -> 124 from `timeout`).
# No --locked: firmware/Cargo.lock also pins the library's own dependencies,
# so a dependency change in ../Cargo.toml must not break this step.
cd firmware
run() { t cargo test --no-fail-fast --target "$@"; }
run thumbv6m-none-eabi --features critical-section
run thumbv7m-none-eabi
run thumbv7m-none-eabi --features critical-section
run thumbv7em-none-eabihf
run thumbv7em-none-eabihf --features critical-section

# The embassy example (run, acquire, run_stream_fixed over a Channel), and
# with the `defmt` feature: permits' `defmt::Format` impls built and linked
# (the example logs errors, a permit, `Progress` and the semaphore through them).
t cargo run -q --example embassy --target thumbv7m-none-eabi
t cargo run -q --example embassy --target thumbv6m-none-eabi --features critical-section,defmt

# 3. The Cortex-M0 images use no exclusive loads/stores (the core has none):
#    the counter and the queue go through critical sections instead.
elves() {
  cargo test -q --no-run --target "$@" --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*"' | cut -d'"' -f4
}
v6m=$(elves thumbv6m-none-eabi --features critical-section)
v7m=$(elves thumbv7m-none-eabi --features critical-section)
# embassy, block_on, semantics, interrupt, backlog, timeout
[ "$(echo "$v6m" | wc -w)" -ge 6 ] || { echo "FAIL: thumbv6m images not found"; exit 1; }
exclusive() { arm-none-eabi-objdump -d "$1" | grep -cE $'\t(ldrex|strex)[a-z]*\t' || true; }
for elf in $v6m; do
  n=$(exclusive "$elf")
  echo "thumbv6m $(basename "$elf"): $n ldrex/strex"
  [ "$n" -eq 0 ] || { echo "FAIL: ldrex/strex in a Cortex-M0 image"; exit 1; }
done
# The same grep finds them in a Cortex-M3 image, so it can find them at all.
n=$(exclusive "$(echo "$v7m" | grep semantics)")
echo "thumbv7m semantics: $n ldrex/strex (lock-free counter)"
[ "$n" -gt 0 ] || { echo "FAIL: the ldrex/strex check finds nothing on thumbv7m either"; exit 1; }
# And the counter's functions call the critical-section implementation.
callers=$(arm-none-eabi-objdump -dC "$(echo "$v6m" | grep semantics)" |
  awk '/^[0-9a-f]+ <.*>:$/ {fn = $2} /bl.*critical_section::Impl>::acquire>$/ && fn ~ /permits::/ {print fn}' |
  sort -u)
echo "thumbv6m: permits functions entering a critical section:"; echo "$callers"
echo "$callers" | grep -q 'permits::state::State' || { echo "FAIL: counter not on the critical-section path"; exit 1; }
cd ..

# 4. A riscv32imc (no atomics at all) program with a static semaphore links.
cd firmware/riscv-check
t cargo build -q --target riscv32imc-unknown-none-elf
cd ../..
echo "firmware: all green"
