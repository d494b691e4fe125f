//! A canary on trial: a new version of a route plugin gets a share of the
//! requests for a window; if its error rate (5xx caused by the plugin)
//! exceeds the limit it is rolled back, otherwise promoted. On a single
//! host the registry judges it; in a cluster (a canary with a trial id)
//! every node only counts, and the rollout's driver judges all counts
//! together.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::plugins::mounted::Mounted;
use crate::plugins::sidecar::CanaryPolicy;

/// Requests needed before an error rate can roll a canary back early.
const MIN_REQUESTS: u64 = 5;

/// A version on trial.
pub struct Canary {
    /// The version on trial.
    pub mounted: Arc<Mounted>,
    /// How it is tried.
    pub policy: CanaryPolicy,
    /// The cluster rollout this canary belongs to; `None`: judged here.
    trial: Option<String>,
    started: Instant,
    requests: AtomicU64,
    errors: AtomicU64,
}

/// What to do with a canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The window ended clean: it serves every request.
    Promote,
    /// Its error rate went over the limit: the stable version comes back.
    RollBack,
}

impl Canary {
    /// Starts the trial of `mounted` now.
    pub fn new(mounted: Arc<Mounted>, policy: CanaryPolicy) -> Canary {
        Canary {
            mounted,
            policy,
            trial: None,
            started: Instant::now(),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// A canary of the cluster rollout `trial`, getting `percent` of the
    /// requests until the rollout decides; never judged here.
    pub fn on_trial(mounted: Arc<Mounted>, percent: u8, trial: String) -> Canary {
        let policy = CanaryPolicy { percent, window: std::time::Duration::MAX, max_error_rate: 1.0 };
        Canary { trial: Some(trial), ..Canary::new(mounted, policy) }
    }

    /// The cluster rollout it belongs to, if the cluster judges it.
    pub fn trial(&self) -> Option<&str> {
        self.trial.as_deref()
    }

    /// Whether this request goes to the canary.
    pub fn pick(&self) -> bool {
        rand::random_range(0..100u8) < self.policy.percent
    }

    /// Records one canary request's outcome.
    pub fn record(&self, failed: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests and errors so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.requests.load(Ordering::Relaxed), self.errors.load(Ordering::Relaxed))
    }

    /// Rolls back as soon as the error rate is over the limit (with enough
    /// requests to mean something); promotes when the window ends clean.
    pub fn verdict(&self) -> Option<Verdict> {
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
