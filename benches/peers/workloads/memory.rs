//! Workload 6: memory, sizes and allocations.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::*;

/// Workload 6, memory: sizes and allocations.
#[derive(Clone, Copy)]
pub enum Memory {
    SemSize,
    FutureSize,
    AllocsUncontended,
    AllocsWaiting,
}

impl Workload for Memory {
    fn run<S: Sem>(&self, _cfg: &Config) -> Outcome {
        const N: u64 = 1000;
        let mut cx = Context::from_waker(Waker::noop());
        match self {
            Memory::SemSize => Outcome::Value(size_of::<S>() as f64),
            Memory::FutureSize => Outcome::Value(S::new(1).acquire_future_size() as f64),
            Memory::AllocsUncontended => {
                let sem = S::new(1);
                let before = allocs();
                for _ in 0..N {
                    let g = poll_native(sem.acq(), &mut cx);
                    if g.is_none() {
                        return Outcome::Fail("uncontended acquire pending".into());
                    }
                }
                Outcome::Value((allocs() - before) as f64 / N as f64)
            }
            Memory::AllocsWaiting => {
                if !S::CAN_WAIT {
                    return Outcome::NotApplicable;
                }
                let sem = S::new(1);
                let mut total = 0;
                for _ in 0..N {
                    let held = sem.try_one().expect("a free permit");
                    let before = allocs();
                    let mut fut = pin!(sem.acq());
                    if fut.as_mut().poll(&mut cx).is_ready() {
                        return Outcome::Fail("acquire did not wait".into());
                    }
                    drop(held);
                    let Poll::Ready(g) = fut.as_mut().poll(&mut cx) else {
                        return Outcome::Fail("released permit not handed over".into());
                    };
                    drop(g);
                    total += allocs() - before;
                }
                if !sem.all_back(1) {
                    return Outcome::Fail("permits not back".into());
                }
                Outcome::Value(total as f64 / N as f64)
            }
        }
    }
}
