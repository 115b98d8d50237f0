//! The retry schedule for transient failures: per host and type, how many
//! attempts failed, when the next one is due (exponential backoff), and the
//! last error. Kept in the private directory so that runs from cron respect
//! it too.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::fsutil::{atomic_write, read_optional};

/// The retry state of one host and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryState {
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not before this time.
    #[serde(with = "humantime_serde")]
    pub next_attempt: SystemTime,
    /// What went wrong last.
    pub last_error: String,
}

/// All retry states, keyed by `host/TYPE`.
#[derive(Debug, Clone, Default)]
pub struct RetrySchedule {
    path: PathBuf,
    states: BTreeMap<String, RetryState>,
    dirty: bool,
}

/// The delay before attempt number `attempts + 1`: `initial * 2^(attempts-1)`, at most `max`.
pub fn backoff(attempts: u32, initial: Duration, max: Duration) -> Duration {
    let exp = attempts.saturating_sub(1).min(30);
    initial.saturating_mul(1u32 << exp).min(max)
}

impl RetrySchedule {
    /// Loads the schedule from `path` (empty when missing or unreadable).
    pub fn load(path: PathBuf) -> RetrySchedule {
        let states = read_optional(&path, 16 * 1024 * 1024)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        RetrySchedule {
            path,
            states,
            dirty: false,
        }
    }

    /// True when `key` may be attempted at `now`.
    pub fn is_due(&self, key: &str, now: SystemTime) -> bool {
        self.states.get(key).is_none_or(|s| s.next_attempt <= now)
    }

    /// The state of `key`, if it failed before.
    pub fn get(&self, key: &str) -> Option<&RetryState> {
        self.states.get(key)
    }

    /// Records a failed attempt and schedules the next one.
    pub fn failed(
        &mut self,
        key: &str,
        error: String,
        now: SystemTime,
        initial: Duration,
        max: Duration,
    ) -> &RetryState {
        let attempts = self.states.get(key).map_or(0, |s| s.attempts) + 1;
        let delay = backoff(attempts, initial, max);
        self.dirty = true;
        self.states.insert(
            key.to_string(),
            RetryState {
                attempts,
                next_attempt: now + delay,
                last_error: error,
            },
        );
        &self.states[key]
    }

    /// Puts `key` off until `until` without counting a failure (a rate
    /// limit, not an error).
    pub fn postpone(&mut self, key: &str, until: SystemTime, reason: String) {
        let attempts = self.states.get(key).map_or(0, |s| s.attempts);
        let state = RetryState {
            attempts,
            next_attempt: until,
            last_error: reason,
        };
        if self.states.get(key) != Some(&state) {
            self.dirty = true;
            self.states.insert(key.to_string(), state);
        }
    }

    /// Forgets `key` (applied, rejected, or replaced by a newer request).
    pub fn clear(&mut self, key: &str) {
        if self.states.remove(key).is_some() {
            self.dirty = true;
        }
    }

    /// Drops keys for which `keep` says no.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let before = self.states.len();
        self.states.retain(|k, _| keep(k));
        self.dirty |= self.states.len() != before;
    }

    /// Writes the schedule if it changed.
    pub fn save(&mut self) -> Result<()> {
        if self.dirty {
            atomic_write(&self.path, &serde_json::to_vec_pretty(&self.states)?, 0o600)?;
            self.dirty = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let s = Duration::from_secs;
        assert_eq!(backoff(1, s(10), s(600)), s(10));
        assert_eq!(backoff(2, s(10), s(600)), s(20));
        assert_eq!(backoff(3, s(10), s(600)), s(40));
        assert_eq!(backoff(7, s(10), s(600)), s(600));
        assert_eq!(backoff(1000, s(10), s(600)), s(600));
    }

    #[test]
    fn schedule_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("retry.json");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut r = RetrySchedule::load(path.clone());
        assert!(r.is_due("a/A", now));
        r.failed(
            "a/A",
            "boom".into(),
            now,
            Duration::from_secs(10),
            Duration::from_secs(60),
        );
        assert!(!r.is_due("a/A", now + Duration::from_secs(9)));
        assert!(r.is_due("a/A", now + Duration::from_secs(10)));
        r.save().unwrap();
        let mut r2 = RetrySchedule::load(path.clone());
        assert_eq!(r2.get("a/A").unwrap().attempts, 1);
        let st = r2
            .failed(
                "a/A",
                "boom".into(),
                now,
                Duration::from_secs(10),
                Duration::from_secs(60),
            )
            .clone();
        assert_eq!(st.next_attempt, now + Duration::from_secs(20));
        r2.clear("a/A");
        r2.save().unwrap();
        assert!(RetrySchedule::load(path).get("a/A").is_none());
    }
}
