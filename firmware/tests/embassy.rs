//! Scenario 1: five embassy-executor tasks share a `static` semaphore of two
//! permits through `SEM.run(..)`, yielding inside; the main task waits for all
//! of them on a second semaphore (`acquire_many(5)` on one that starts empty).
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use permits::Semaphore;
use permits_firmware::{banner, println, Checks, Tracker};

const LIMIT: usize = 2;
const TASKS: u8 = 5;
static SEM: Semaphore = Semaphore::new(LIMIT);
static DONE: Semaphore = Semaphore::new(0);
static TRACK: Tracker = Tracker::new();

#[embassy_executor::task(pool_size = 5)]
async fn worker(id: u8) {
    let out = SEM
        .run(async {
            let now = TRACK.enter(id);
            println!("task {} running (in flight {})", id, now);
            for _ in 0..=id % 3 {
                embassy_futures::yield_now().await;
            }
            TRACK.leave();
            println!("task {} done", id);
            id
        })
        .await;
    assert_eq!(out, Ok(id));
    DONE.add_permits(1);
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    banner("embassy");
    let mut checks = Checks::new("embassy");
    for id in 0..TASKS {
        spawner.spawn(worker(id).unwrap());
    }
    // Waits in the queue until every worker has added its permit.
    DONE.acquire_many(usize::from(TASKS))
        .await
        .unwrap()
        .forget();
    checks.ok("main woken after all 5 workers finished");

    let (now, max) = TRACK.counts();
    println!("max in flight = {}", max);
    assert_eq!(max, LIMIT as u32, "max in flight must equal the limit");
    checks.ok("max in flight == limit (2)");
    assert_eq!(now, 0);
    assert_eq!(TRACK.order().1, usize::from(TASKS));
    assert_eq!(SEM.available_permits(), LIMIT);
    assert_eq!(
        (SEM.waiters(), DONE.waiters(), DONE.available_permits()),
        (0, 0, 0)
    );
    checks.ok("all permits back, no waiters");
    checks.finish()
}
