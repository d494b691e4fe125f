//! Canary rollouts: a new version of a route plugin gets a share of the
//! requests for a window; if its error rate (5xx caused by the plugin)
//! exceeds the limit it is rolled back, otherwise promoted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::plugins::Mounted;
use crate::sidecar::CanarySection;

/// Requests needed before an error rate can roll a canary back early.
const MIN_REQUESTS: u64 = 5;

/// How a canary is run, from the sidecar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CanaryPolicy {
    pub(crate) percent: u8,
    pub(crate) window: Duration,
    pub(crate) max_error_rate: f64,
}

impl CanaryPolicy {
    pub(crate) fn parse(section: &CanarySection) -> Result<CanaryPolicy, String> {
        if !(1..=100).contains(&section.percent) {
            return Err(format!("canary.percent must be 1 to 100, got {}", section.percent));
        }
        if !(0.0..=1.0).contains(&section.max_error_rate) {
            return Err(format!("canary.max_error_rate must be 0.0 to 1.0, got {}", section.max_error_rate));
        }
        Ok(CanaryPolicy {
            percent: section.percent,
            window: parse_duration(&section.window)?,
            max_error_rate: section.max_error_rate,
        })
    }
}

/// `"250ms"`, `"60s"`, `"5m"`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 =
        number.parse().map_err(|_| format!("invalid duration {text:?}; use e.g. \"500ms\", \"60s\", \"5m\""))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("invalid duration {text:?}; use e.g. \"500ms\", \"60s\", \"5m\"")),
    }
}

/// A version on trial.
pub(crate) struct Canary {
    pub(crate) mounted: Arc<Mounted>,
    pub(crate) policy: CanaryPolicy,
    started: Instant,
    requests: AtomicU64,
    errors: AtomicU64,
}

/// What to do with a canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Promote,
    RollBack,
}

impl Canary {
    pub(crate) fn new(mounted: Arc<Mounted>, policy: CanaryPolicy) -> Canary {
        Canary { mounted, policy, started: Instant::now(), requests: AtomicU64::new(0), errors: AtomicU64::new(0) }
    }

    /// Whether this request goes to the canary.
    pub(crate) fn pick(&self) -> bool {
        rand::random_range(0..100u8) < self.policy.percent
    }

    /// Records one canary request's outcome.
    pub(crate) fn record(&self, failed: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests and errors so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.requests.load(Ordering::Relaxed), self.errors.load(Ordering::Relaxed))
    }

    /// Rolls back as soon as the error rate is over the limit (with enough
    /// requests to mean something); promotes when the window ends clean.
    pub(crate) fn verdict(&self) -> Option<Verdict> {
        let (requests, errors) = self.counts();
        let rate = if requests == 0 { 0.0 } else { errors as f64 / requests as f64 };
        if requests >= MIN_REQUESTS && rate > self.policy.max_error_rate {
            return Some(Verdict::RollBack);
        }
        if self.started.elapsed() >= self.policy.window {
            return Some(if rate > self.policy.max_error_rate { Verdict::RollBack } else { Verdict::Promote });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_policies() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("soon").is_err());
        let section = CanarySection { percent: 0, window: "1s".into(), max_error_rate: 0.1 };
        assert!(CanaryPolicy::parse(&section).is_err());
    }
}
