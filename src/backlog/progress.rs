//! [`Progress`]: how far a backlog stream has got.

use core::fmt;

#[cfg(all(doc, feature = "alloc"))]
use super::RunAll;
#[cfg(doc)]
use super::RunAllFixed;

/// How far a backlog stream has got: returned by [`RunAll::progress`] and
/// [`RunAllFixed::progress`].
///
/// Its `Display` is a one-line summary such as
/// `done 120, in flight 16, waiting 864`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Progress {
    /// Outputs yielded so far.
    pub done: u64,
    /// Items running now, each holding a permit.
    pub in_flight: usize,
    /// Items finished but not yet yielded: outputs waiting for an earlier
    /// item (in order), or not yet picked up.
    pub buffered: usize,
    /// Items not started, still in the source, if the source knows exactly
    /// (its `size_hint` is exact, as for ranges and `Vec`s); `None` for an
    /// endless or unknown source.
    pub waiting: Option<usize>,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "done {}, in flight {}", self.done, self.in_flight)?;
        if self.buffered > 0 {
            write!(f, ", buffered {}", self.buffered)?;
        }
        match self.waiting {
            Some(n) => write!(f, ", waiting {n}"),
            None => write!(f, ", waiting ?"),
        }
    }
}
