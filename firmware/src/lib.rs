//! Support code shared by the firmware test images in `tests/`.
//!
//! - panic → semihosting exit 1 (panic-semihosting), HardFault → exit 1, so a
//!   failed assertion or a fault fails `cargo test`; a hang is caught by the
//!   `timeout` in the qemu runner;
//! - a critical-section implementation (the same as cortex-m's
//!   `critical-section-single-core`: mask interrupts, restore PRIMASK) that
//!   also counts the sections entered, so a test can show which path the
//!   semaphore takes on this core;
//! - a hand-written executor: one wake flag per task, and real wakers that set
//!   it. No executor crate.
#![no_std]

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::*};
use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use cortex_m::peripheral::{scb::VectActive, SCB};
use cortex_m_semihosting::{debug, hprintln};
use panic_semihosting as _;

pub use cortex_m_semihosting::hprintln as println;

/// The core this image was built for, for the test output.
pub const CORE: &str = if cfg!(not(target_has_atomic = "ptr")) {
    "thumbv6m-none-eabi (Cortex-M0, no CAS)"
} else if cfg!(target_abi = "eabihf") {
    "thumbv7em-none-eabihf (Cortex-M4F)"
} else {
    "thumbv7m-none-eabi (Cortex-M3)"
};

/// Which lock backend `permits` was built with in this image.
pub const BACKEND: &str = if cfg!(feature = "critical-section") {
    "critical-section"
} else {
    "spin"
};

#[cortex_m_rt::exception]
unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
    hprintln!("HardFault at pc={:#010x}", frame.pc());
    exit(false)
}

/// Ends the qemu run: exit code 0 if `ok`, else 1.
pub fn exit(ok: bool) -> ! {
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

/// Prints the banner every test image starts with, including the memory cost
/// of the semaphore types on this core.
pub fn banner(test: &str) {
    hprintln!("== {} on {}, permits lock: {}", test, CORE, BACKEND);
    hprintln!(
        "size_of: Semaphore = {} B, Acquire = {} B, Permit = {} B, Run<Ready<()>> = {} B",
        core::mem::size_of::<permits::Semaphore>(),
        core::mem::size_of::<permits::Acquire<'static>>(),
        core::mem::size_of::<permits::Permit<'static>>(),
        core::mem::size_of::<permits::Run<'static, core::future::Ready<()>>>(),
    );
}

/// Counts passed checks; a failed check panics, which ends the run with exit 1.
#[derive(Debug, Default)]
pub struct Checks {
    name: &'static str,
    passed: u32,
}

impl Checks {
    pub const fn new(name: &'static str) -> Self {
        Self { name, passed: 0 }
    }

    /// Records one passed check.
    pub fn ok(&mut self, what: &str) {
        self.passed += 1;
        hprintln!("ok: {}", what);
    }

    /// Prints the summary line and exits 0.
    pub fn finish(self) -> ! {
        hprintln!("{}: {} passed, 0 failed", self.name, self.passed);
        exit(true)
    }
}

// ---------------------------------------------------------------------------
// Critical sections

static SECTIONS: AtomicU32 = AtomicU32::new(0);

/// How many critical sections have been entered so far.
pub fn sections() -> u32 {
    SECTIONS.load(Relaxed)
}

struct CountingSection;
critical_section::set_impl!(CountingSection);

// SAFETY: single core; `acquire` masks every configurable interrupt before it
// returns and `release` restores the mask that was in place, so sections nest.
unsafe impl critical_section::Impl for CountingSection {
    unsafe fn acquire() -> bool {
        let was_enabled = cortex_m::register::primask::read().is_active();
        cortex_m::interrupt::disable();
        // Only load/store (thumbv6m has no read-modify-write atomics); safe
        // from races because interrupts are masked.
        SECTIONS.store(SECTIONS.load(Relaxed).wrapping_add(1), Relaxed);
        was_enabled
    }

    unsafe fn release(was_enabled: bool) {
        if was_enabled {
            // SAFETY: interrupts were enabled when the matching `acquire` ran.
            unsafe { cortex_m::interrupt::enable() }
        }
    }
}

// ---------------------------------------------------------------------------
// Wakers and the hand-written executor

/// Most tasks (wake flags) a test can use.
pub const MAX_TASKS: usize = 8;

static FLAGS: [AtomicBool; MAX_TASKS] = [const { AtomicBool::new(false) }; MAX_TASKS];
static WAKES: AtomicU32 = AtomicU32::new(0);
static WAKES_IN_HANDLER: AtomicU32 = AtomicU32::new(0);

/// Adds one to a counter that may also be bumped from an interrupt handler
/// (load + store with interrupts masked; no CAS on thumbv6m). Not through
/// `critical_section` so it does not show up in [`sections`].
fn bump(counter: &AtomicU32) {
    cortex_m::interrupt::free(|_| counter.store(counter.load(Relaxed) + 1, Relaxed));
}

fn flag_of(data: *const ()) -> &'static AtomicBool {
    // SAFETY: every waker made here carries a pointer to an element of the
    // `static FLAGS`, which lives forever.
    unsafe { &*(data as *const AtomicBool) }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(
    |data| RawWaker::new(data, &VTABLE),
    wake_flag,
    wake_flag,
    |_| {},
);

fn wake_flag(data: *const ()) {
    flag_of(data).store(true, Release);
    bump(&WAKES);
    if SCB::vect_active() != VectActive::ThreadMode {
        bump(&WAKES_IN_HANDLER);
    }
}

/// A waker that sets wake flag `i`.
pub fn waker(i: usize) -> Waker {
    let raw = RawWaker::new(&FLAGS[i] as *const AtomicBool as *const (), &VTABLE);
    // SAFETY: the vtable functions only read the `'static` flag the pointer
    // refers to; cloning copies the pointer, dropping does nothing.
    unsafe { Waker::from_raw(raw) }
}

/// Whether wake flag `i` was set since the last call; clears it.
pub fn take_woken(i: usize) -> bool {
    // Read and clear with interrupts masked: no swap on thumbv6m.
    cortex_m::interrupt::free(|_| {
        let set = FLAGS[i].load(Acquire);
        FLAGS[i].store(false, Relaxed);
        set
    })
}

/// Sets wake flag `i` by hand (a task's first poll needs no wake-up).
pub fn set_woken(i: usize) {
    FLAGS[i].store(true, Release);
}

/// (all wakes, wakes that ran in an exception handler) so far.
pub fn wakes() -> (u32, u32) {
    (WAKES.load(Relaxed), WAKES_IN_HANDLER.load(Relaxed))
}

/// Polls `fut` once with the waker for flag `i`.
pub fn poll_with<F: Future + ?Sized>(fut: Pin<&mut F>, i: usize) -> Poll<F::Output> {
    let w = waker(i);
    fut.poll(&mut Context::from_waker(&w))
}

/// What the executor does when every unfinished task is waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Nothing but the tasks themselves can wake a task: a lost wake-up is a
    /// bug, so panic.
    Panic,
    /// Sleep (`wfi`) until an interrupt handler wakes a task.
    Sleep,
}

/// Runs `tasks` to completion, polling a task only after its waker fired.
/// Returns how many polls it took.
pub fn run_all(tasks: &mut [Pin<&mut dyn Future<Output = ()>>], idle: Idle) -> u32 {
    assert!(tasks.len() <= MAX_TASKS);
    let mut done = [false; MAX_TASKS];
    let mut left = tasks.len();
    let mut polls = 0;
    for i in 0..tasks.len() {
        set_woken(i);
    }
    while left > 0 {
        let mut progressed = false;
        for (i, task) in tasks.iter_mut().enumerate() {
            if done[i] || !take_woken(i) {
                continue;
            }
            progressed = true;
            polls += 1;
            if poll_with(task.as_mut(), i).is_ready() {
                done[i] = true;
                left -= 1;
            }
        }
        if !progressed {
            match idle {
                Idle::Panic => panic!("{} tasks pending and none was woken", left),
                Idle::Sleep => sleep_unless_woken(tasks.len()),
            }
        }
    }
    polls
}

/// Runs one future to completion on wake flag 0.
pub fn block_on<F: Future>(fut: F, idle: Idle) -> F::Output {
    let mut fut = core::pin::pin!(fut);
    loop {
        if let Poll::Ready(out) = poll_with(fut.as_mut(), 0) {
            return out;
        }
        while !take_woken(0) {
            match idle {
                Idle::Panic => panic!("block_on: pending and never woken"),
                Idle::Sleep => sleep_unless_woken(1),
            }
        }
    }
}

/// `wfi` unless one of the first `n` flags is already set. Interrupts stay
/// masked between the check and `wfi` (which still wakes on a pending
/// interrupt), so a wake-up from a handler cannot slip in between and be lost.
fn sleep_unless_woken(n: usize) {
    cortex_m::interrupt::free(|_| {
        if !FLAGS[..n].iter().any(|f| f.load(Acquire)) {
            cortex_m::asm::wfi();
        }
    });
}

/// Returns `Pending` once after waking its own task, like a cooperative yield.
#[derive(Debug, Default)]
pub struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Yields to the executor `n` times.
pub async fn yield_times(n: u32) {
    for _ in 0..n {
        YieldNow::default().await;
    }
}

/// Records how many tasks are inside the limited section, the most there ever
/// were, and the order they entered in. A `static`, usable from any task.
pub struct Tracker(cortex_m::interrupt::Mutex<core::cell::RefCell<TrackerState>>);

#[derive(Debug)]
struct TrackerState {
    in_flight: u32,
    max: u32,
    order: [u8; MAX_TASKS],
    entered: usize,
}

impl Tracker {
    pub const fn new() -> Self {
        Self(cortex_m::interrupt::Mutex::new(core::cell::RefCell::new(
            TrackerState {
                in_flight: 0,
                max: 0,
                order: [0; MAX_TASKS],
                entered: 0,
            },
        )))
    }

    fn with<R>(&self, f: impl FnOnce(&mut TrackerState) -> R) -> R {
        cortex_m::interrupt::free(|cs| f(&mut self.0.borrow(cs).borrow_mut()))
    }

    /// Task `id` entered; returns how many are inside now.
    pub fn enter(&self, id: u8) -> u32 {
        self.with(|s| {
            s.in_flight += 1;
            s.max = s.max.max(s.in_flight);
            s.order[s.entered] = id;
            s.entered += 1;
            s.in_flight
        })
    }

    /// A task left.
    pub fn leave(&self) {
        self.with(|s| s.in_flight -= 1)
    }

    /// (in flight now, maximum in flight)
    pub fn counts(&self) -> (u32, u32) {
        self.with(|s| (s.in_flight, s.max))
    }

    /// The task ids in the order they entered.
    pub fn order(&self) -> ([u8; MAX_TASKS], usize) {
        self.with(|s| (s.order, s.entered))
    }
}

impl Default for Tracker {
    fn default() -> Self {
        Self::new()
    }
}
