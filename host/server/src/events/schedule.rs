//! Firing event handlers' cron schedules ([`Schedule`]): at every tick the
//! host appends an event on `schedule.PLUGIN.NAME`, which the plugin's
//! subscription then delivers like any other. The tick is recorded with its event in one
//! transaction, so after a restart the ticks missed while down are
//! delivered once (the latest of them), not once per missed tick.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use corral_storage::log::NewRecord;
use tokio::sync::watch;

use crate::events::stream::EventStream;
use crate::plugins::cron::Schedule;
use crate::shutdown::pause;

/// Fires one schedule until `stop`.
pub(crate) async fn run(schedule: Arc<Schedule>, stream: Arc<dyn EventStream>, mut stop: watch::Receiver<bool>) {
    loop {
        let now = Utc::now();
        let last = match stream.last_tick(&schedule.plugin, &schedule.name).await {
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
            fire(&schedule, stream.as_ref(), tick).await;
            continue;
        }
        let Some(next) = schedule.next_after(&after.max(now)) else {
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
            fire(&schedule, stream.as_ref(), next).await;
        }
    }
}

async fn fire(schedule: &Schedule, stream: &dyn EventStream, tick: DateTime<Utc>) {
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
    if let Err(error) = stream.fire_tick(&schedule.plugin, &schedule.name, tick_ms, record).await {
        tracing::error!(plugin = %schedule.plugin, schedule = %schedule.name, "firing failed: {error}");
    }
}
