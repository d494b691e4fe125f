//! A sidecar's `[instances]` section: whether a route or event-handler
//! plugin serves many calls from one warm instance (see the runtime's
//! `Reuse`), and when such an instance is recycled. Off by default: every
//! call gets a fresh instance.

use std::time::Duration;

use corral_runtime::Reuse;
use serde::Deserialize;

/// `[instances]`.
#[derive(Debug, Default, Deserialize, PartialEq, Eq, Clone)]
#[serde(deny_unknown_fields)]
pub struct InstancesSection {
    /// Serve many calls from one instance, one call at a time.
    #[serde(default)]
    pub reuse: bool,
    /// Calls one instance serves before it is dropped [default: 10,000].
    pub max_calls: Option<u32>,
    /// Seconds an instance may wait idle before it is dropped [default: 60].
    pub max_idle_s: Option<u64>,
    /// Memory (MiB) past which an instance is not reused [default: 64].
    pub max_memory_mib: Option<u64>,
}

impl InstancesSection {
    /// The runtime's policy, or why the section is wrong.
    pub fn reuse(&self) -> anyhow::Result<Option<Reuse>> {
        let tuned = self.max_calls.is_some() || self.max_idle_s.is_some() || self.max_memory_mib.is_some();
        if !self.reuse {
            if tuned {
                anyhow::bail!("[instances] sets limits of warm instances without `reuse = true`");
            }
            return Ok(None);
        }
        if self.max_calls == Some(0) || self.max_memory_mib == Some(0) {
            anyhow::bail!("[instances] max_calls and max_memory_mib must be at least 1");
        }
        let defaults = Reuse::default();
        Ok(Some(Reuse {
            max_calls: self.max_calls.unwrap_or(defaults.max_calls),
            max_idle: self.max_idle_s.map(Duration::from_secs).unwrap_or(defaults.max_idle),
            max_memory_bytes: self.max_memory_mib.map(|mib| mib << 20).unwrap_or(defaults.max_memory_bytes),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Option<Reuse>> {
        toml::from_str::<InstancesSection>(text)?.reuse()
    }

    #[test]
    fn reuse_is_off_unless_asked_and_its_limits_need_it() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("reuse = true").unwrap(), Some(Reuse::default()));
        let tuned = parse("reuse = true\nmax_calls = 5\nmax_idle_s = 2\nmax_memory_mib = 8").unwrap().unwrap();
        assert_eq!((tuned.max_calls, tuned.max_idle, tuned.max_memory_bytes), (5, Duration::from_secs(2), 8 << 20));
        assert!(parse("max_calls = 5").unwrap_err().to_string().contains("reuse = true"));
        assert!(parse("reuse = true\nmax_calls = 0").is_err());
        assert!(parse("reuse = true\nmax_call = 5").is_err(), "an unknown key");
    }
}
