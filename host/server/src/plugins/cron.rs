//! A plugin's cron schedules, parsed and checked when the plugin is
//! mounted: each fires `schedule.PLUGIN.NAME` events (see
//! `events::schedule`), with seconds (`sec min hour day month weekday`).

use std::str::FromStr as _;

use chrono::{DateTime, Utc};

/// A parsed schedule of one plugin.
pub struct Schedule {
    /// The plugin it belongs to.
    pub plugin: String,
    /// Unique within the plugin.
    pub name: String,
    /// The cron expression as written.
    pub expression: String,
    cron: cron::Schedule,
}

impl Schedule {
    /// Parses and checks a schedule; the error says what is wrong.
    pub fn new(plugin: &str, name: &str, expression: &str) -> Result<Schedule, String> {
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
    pub fn topic(&self) -> String {
        format!("schedule.{}.{}", self.plugin, self.name)
    }

    /// The latest tick in `(after, now]`, if any.
    pub(crate) fn due(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.after(&after).take_while(|tick| *tick <= now).last()
    }

    /// The first tick after `after`.
    pub(crate) fn next_after(&self, after: &DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.after(after).next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

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
