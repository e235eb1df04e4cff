//! `defmt::Format` for the types firmware logs (feature `defmt`), so
//! `defmt::info!("{}", progress)` works without going through `Debug`.
//! The error enums derive it where they are defined.
//!
//! The output matches `Display` / `Debug`: `Progress` as its one-line summary,
//! `Semaphore` as its counts (including `limit` and `debt`, so the
//! limit takes the queue lock) and the permits as theirs.

use defmt::{write, Format, Formatter};

use crate::{Permit, Progress, Semaphore};

impl Format for Progress {
    fn format(&self, f: Formatter<'_>) {
        write!(
            f,
            "done {=u64}, in flight {=usize}",
            self.done, self.in_flight
        );
        if self.buffered > 0 {
            write!(f, ", buffered {=usize}", self.buffered);
        }
        match self.waiting {
            Some(n) => write!(f, ", waiting {=usize}", n),
            None => write!(f, ", waiting ?"),
        }
    }
}

impl Format for Semaphore {
    fn format(&self, f: Formatter<'_>) {
        write!(
            f,
            "Semaphore {{ available_permits: {=usize}, limit: {=usize}, debt: {=usize}, closed: {=bool}, .. }}",
            self.available_permits(),
            self.limit(),
            self.debt(),
            self.is_closed()
        );
    }
}

impl Format for Permit<'_> {
    fn format(&self, f: Formatter<'_>) {
        write!(f, "Permit {{ permits: {=usize}, .. }}", self.num_permits());
    }
}

#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
impl Format for crate::OwnedPermit {
    fn format(&self, f: Formatter<'_>) {
        write!(
            f,
            "OwnedPermit {{ permits: {=usize}, .. }}",
            self.num_permits()
        );
    }
}
