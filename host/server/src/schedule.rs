//! Cron schedules of event handlers: at every tick the host appends an
//! event on `schedule.PLUGIN.NAME`, which the plugin's subscription then
//! delivers like any other. The tick is recorded with its event in one
//! transaction, so after a restart the ticks missed while down are
//! delivered once (the latest of them), not once per missed tick.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use corral_storage::log::NewRecord;
use corral_storage::stream;
use tokio::sync::watch;

use crate::events::pause;

/// A parsed schedule of one plugin.
pub(crate) struct Schedule {
    pub(crate) plugin: String,
    pub(crate) name: String,
    pub(crate) expression: String,
    cron: cron::Schedule,
}

impl Schedule {
    /// Parses and checks a schedule; the error says what is wrong.
    pub(crate) fn new(plugin: &str, name: &str, expression: &str) -> Result<Schedule, String> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(format!("schedule name {name:?} must be letters, digits, '-' or '_'"));
        }
        let cron = cron::Schedule::from_str(expression).map_err(|e| {
            format!(
                "schedule {name:?}: invalid cron expression {expression:?} ({e}); use `sec min hour day month weekday`"
            )
        })?;
        Ok(Schedule { plugin: plugin.into(), name: name.into(), expression: expression.into(), cron })
    }

    /// The topic its events are published on.
    pub(crate) fn topic(&self) -> String {
        format!("schedule.{}.{}", self.plugin, self.name)
    }

    /// The latest tick in `(after, now]`, if any.
    fn due(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.after(&after).take_while(|tick| *tick <= now).last()
    }
}

/// Fires one schedule until `stop`.
pub(crate) async fn run(schedule: Arc<Schedule>, stream: Arc<stream::Embedded>, mut stop: watch::Receiver<bool>) {
    let storage = stream.storage().clone();
    loop {
        let now = Utc::now();
        let last = match storage.last_tick(&schedule.plugin, &schedule.name) {
            Ok(last) => last.and_then(|ms| Utc.timestamp_millis_opt(ms as i64).single()),
            Err(error) => {
                tracing::error!(plugin = %schedule.plugin, schedule = %schedule.name, "reading the last tick failed: {error}");
                if pause(&mut stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        // A schedule that never fired starts from now: no backlog on first start.
        let after = last.unwrap_or(now);
        if let Some(tick) = schedule.due(after, now) {
            fire(&schedule, &stream, tick).await;
            continue;
        }
        let Some(next) = schedule.cron.after(&after.max(now)).next() else {
            tracing::info!(plugin = %schedule.plugin, schedule = %schedule.name, "the schedule has no further ticks");
            return;
        };
        let wait = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        if pause(&mut stop, wait).await {
            return;
        }
        if last.is_none() {
            // First tick ever: mark the starting point so a restart before
            // it does not count the time before the first start as missed.
            fire(&schedule, &stream, next).await;
        }
    }
}

async fn fire(schedule: &Schedule, stream: &stream::Embedded, tick: DateTime<Utc>) {
    let tick_ms = tick.timestamp_millis().max(0) as u64;
    let payload = serde_json::json!({"schedule": schedule.name, "tick": tick.to_rfc3339(), "tick_ms": tick_ms});
    let record = NewRecord {
        topic: schedule.topic(),
        tenant: String::new(),
        correlation_id: format!("schedule-{}-{}-{tick_ms}", schedule.plugin, schedule.name),
        traceparent: None,
        source: "scheduler".into(),
        payload: payload.to_string().into_bytes(),
    };
    let storage = stream.storage().clone();
    let (plugin, name) = (schedule.plugin.clone(), schedule.name.clone());
    let fired = tokio::task::spawn_blocking(move || storage.fire_tick(&plugin, &name, tick_ms, &record)).await;
    match fired {
        Ok(Ok(sequence)) => stream.announce(sequence),
        Ok(Err(error)) => {
            tracing::error!(plugin = %schedule.plugin, schedule = %schedule.name, "firing failed: {error}")
        }
        Err(join) => tracing::error!(plugin = %schedule.plugin, schedule = %schedule.name, "firing failed: {join}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_is_the_latest_missed_tick_only() {
        let schedule = Schedule::new("p", "tick", "*/10 * * * * *").unwrap();
        let at = |s: i64| Utc.timestamp_opt(1_700_000_000 + s, 0).single().unwrap();
        // 1_700_000_000 is a multiple of 10 seconds.
        assert_eq!(schedule.due(at(0), at(5)), None);
        assert_eq!(schedule.due(at(0), at(10)), Some(at(10)));
        assert_eq!(schedule.due(at(0), at(65)), Some(at(60)), "one delivery for six missed ticks");
        assert!(Schedule::new("p", "bad name", "* * * * * *").is_err());
        let error = Schedule::new("p", "t", "every minute").err().unwrap();
        assert!(error.contains("invalid cron expression"), "{error}");
        assert_eq!(schedule.topic(), "schedule.p.tick");
    }
}
