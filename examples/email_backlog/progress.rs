//! Progress output: an `indicatif` bar when stderr is a terminal, a plain
//! line every second otherwise (CI logs, `2> file`).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use std::fmt;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use permits::Progress;

/// What a report shows.
pub struct Counts {
    pub sent: u64,
    pub failed: u64,
    pub progress: Progress,
    /// The limit in force now (it moves under `--adaptive`).
    pub limit: String,
}

pub enum Reporter {
    Bar(ProgressBar),
    Lines { start: Instant, last: Instant },
}

impl Reporter {
    /// `total`: the backlog's length, `None` when endless.
    pub fn new(total: Option<u64>) -> Self {
        if !std::io::stderr().is_terminal() {
            let now = Instant::now();
            return Self::Lines {
                start: now,
                last: now,
            };
        }
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let template = if total.is_some() {
            "{elapsed_precise} [{wide_bar}] {pos}/{len} {rate} {msg}"
        } else {
            "{elapsed_precise} {spinner} {pos} {rate} {msg}"
        };
        let style = ProgressStyle::with_template(template)
            .expect("valid template")
            .with_key("rate", |state: &ProgressState, w: &mut dyn fmt::Write| {
                let _ = write!(w, "{:>6.0}/s", state.per_sec());
            });
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(100));
        Self::Bar(bar)
    }

    /// Called after every result; draws at most every 100 ms / prints every
    /// second.
    pub fn update(&mut self, counts: &Counts) {
        let msg = || {
            format!(
                "sent {}, failed {}, in flight {}, limit {}",
                counts.sent, counts.failed, counts.progress.in_flight, counts.limit
            )
        };
        match self {
            Self::Bar(bar) => {
                bar.set_position(counts.sent + counts.failed);
                bar.set_message(msg());
            }
            Self::Lines { start, last } => {
                if last.elapsed() >= Duration::from_secs(1) {
                    *last = Instant::now();
                    let done = counts.sent + counts.failed;
                    let rate = done as f64 / start.elapsed().as_secs_f64();
                    eprintln!("{}, {rate:.0}/s ({})", msg(), counts.progress);
                }
            }
        }
    }

    /// A line on stderr that does not tear the bar.
    pub fn note(&self, line: &str) {
        match self {
            Self::Bar(bar) => bar.suspend(|| eprintln!("{line}")),
            Self::Lines { .. } => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
