//! A riscv32imc program with a `static` semaphore: builds and links with the
//! `critical-section` feature (this core has no atomic instructions at all).
//! Not run (qemu-system-riscv32 is a 200 MB install); the Cortex-M firmware
//! tests run the same code paths.
#![no_std]
#![no_main]

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Waker};

use permits::Semaphore;
// Links the critical-section implementation.
use riscv as _;

static SEM: Semaphore = Semaphore::new(2);

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        riscv::asm::wfi();
    }
}

#[unsafe(no_mangle)]
extern "C" fn _start() -> ! {
    let held = SEM.try_acquire_many(2).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    let mut waiting = pin!(SEM.acquire());
    assert!(waiting.as_mut().poll(&mut cx).is_pending());
    assert_eq!(SEM.waiters(), 1);
    drop(held);
    let permit = match waiting.as_mut().poll(&mut cx) {
        core::task::Poll::Ready(p) => p.unwrap(),
        core::task::Poll::Pending => panic!(),
    };
    assert_eq!(SEM.available_permits(), 1);
    drop(permit);
    loop {
        riscv::asm::wfi();
    }
}
