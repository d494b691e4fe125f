//! A plugin's log budget: how many lines all its calls together may write
//! per second. A token bucket that holds at most one second's worth, shared
//! by every version of a plugin name (a hot swap or a canary neither resets
//! nor doubles it). Lines over the budget are dropped and counted, and the
//! count is reported at most once a second. A leaf: it knows nothing of
//! calls or stores.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often dropped lines are reported in a log line of the host's own.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// One plugin name's budget.
#[derive(Debug)]
pub(crate) struct LogBudget {
    bucket: Mutex<Bucket>,
    dropped: AtomicU64,
}

#[derive(Debug)]
struct Bucket {
    /// Lines that may be written now.
    tokens: f64,
    refilled: Instant,
    /// Lines dropped since the last report.
    unreported: u64,
    reported: Option<Instant>,
}

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within the budget: write it.
    Write,
    /// Over it: drop it, and if `report` is set, say that so many lines
    /// were dropped since the last report.
    Drop { report: Option<u64> },
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget {
            bucket: Mutex::new(Bucket { tokens: f64::MAX, refilled: Instant::now(), unreported: 0, reported: None }),
            dropped: AtomicU64::new(0),
        }
    }
}

impl LogBudget {
    /// Takes one line from a budget of `per_second` lines a second.
    pub(crate) fn take(&self, per_second: u32) -> Verdict {
        self.take_at(per_second, Instant::now())
    }

    fn take_at(&self, per_second: u32, now: Instant) -> Verdict {
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let rate = f64::from(per_second);
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        // The first take finds `f64::MAX` and starts with a full second's worth.
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Verdict::Write;
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
        bucket.unreported += 1;
        let due = bucket.reported.is_none_or(|at| now.saturating_duration_since(at) >= REPORT_EVERY);
        if !due {
            return Verdict::Drop { report: None };
        }
        bucket.reported = Some(now);
        Verdict::Drop { report: Some(std::mem::take(&mut bucket.unreported)) }
    }

    /// Lines dropped since the plugin name was first loaded.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_of_lines_then_the_rate_and_reports_at_most_once_a_second() {
        let budget = LogBudget::default();
        let start = Instant::now();
        for _ in 0..10 {
            assert_eq!(budget.take_at(10, start), Verdict::Write);
        }
        assert_eq!(budget.take_at(10, start), Verdict::Drop { report: Some(1) }, "the first drop is reported");
        assert_eq!(budget.take_at(10, start), Verdict::Drop { report: None });
        assert_eq!(budget.take_at(10, start + Duration::from_millis(50)), Verdict::Drop { report: None });
        // 100 ms later one line's worth has come back.
        assert_eq!(budget.take_at(10, start + Duration::from_millis(150)), Verdict::Write);
        // Long idle refills it, but never past a second's worth.
        let later = start + Duration::from_millis(2000);
        for _ in 0..10 {
            assert_eq!(budget.take_at(10, later), Verdict::Write);
        }
        assert_eq!(budget.take_at(10, later), Verdict::Drop { report: Some(3) }, "two unreported, and this one");
        assert_eq!(budget.dropped(), 4);
    }

    #[test]
    fn a_budget_of_zero_writes_nothing() {
        let budget = LogBudget::default();
        assert!(matches!(budget.take(0), Verdict::Drop { .. }));
        assert!(matches!(budget.take(0), Verdict::Drop { .. }));
        assert_eq!(budget.dropped(), 2);
    }
}
