//! The DNS backend interface the batch logic talks to, and its Plesk
//! command-line implementation (`plesk bin dns`). Another backend (Plesk's
//! REST API, RFC 2136) only has to implement [`DnsBackend`].
//!
//! The argument lists, as Plesk's `dns` utility takes them (see the
//! emulator's module documentation for the sources):
//! - `--info <zone>`;
//! - `--add|--del <zone> -a|-aaaa <label> -ip <address>`;
//! - `--add|--del <zone> -txt <value> -domain <label>`.
//!
//! `<label>` is relative to the zone, `""` for the apex. Arguments are passed
//! as a list, never through a shell.

use std::path::PathBuf;
use std::time::Duration;

use dyndns_core::Hostname;
use dyndns_core::untrusted_text::escape;
use dyndns_core::zone_listing::{ZoneListing, parse_listing};
use dyndns_core::zone_plan::CallType;

use crate::process::{self, RunError};

/// A record change the backend is asked to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordChange<'a> {
    /// The zone.
    pub zone: &'a Hostname,
    /// The name relative to the zone (`""` for the apex).
    pub label: &'a str,
    /// A, AAAA or TXT.
    pub record_type: CallType,
    /// The value to add or delete.
    pub value: &'a str,
}

/// Result of an add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The record was added.
    Added,
    /// It was already there (Plesk exit code 2): the wanted state holds.
    AlreadyExists,
}

/// A backend call that failed. All of these are transient: the entry is kept
/// and retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The command ran and failed.
    #[error("`{command}` exited with {code}: {message}")]
    Failed {
        /// The command line, for the log.
        command: String,
        /// Exit code, or -1 for a signal.
        code: i32,
        /// What it printed on stderr (or stdout), escaped and shortened.
        message: String,
    },
    /// The command did not finish in time, or could not be started.
    #[error("`{command}`: {source}")]
    Run {
        /// The command line, for the log.
        command: String,
        /// What went wrong.
        source: RunError,
    },
}

/// What a DNS backend must offer.
pub trait DnsBackend {
    /// The A/AAAA and TXT records of `zone`.
    fn list(&mut self, zone: &Hostname) -> Result<ZoneListing, BackendError>;
    /// Adds a record.
    fn add(&mut self, change: &RecordChange<'_>) -> Result<Added, BackendError>;
    /// Deletes a record (with the exact value the zone shows).
    fn delete(&mut self, change: &RecordChange<'_>) -> Result<(), BackendError>;
    /// The command a change would run, for `--dry-run` and logs.
    fn describe(&self, verb: &str, change: &RecordChange<'_>) -> String;
}

/// `plesk bin dns ...`, one process per call.
#[derive(Debug, Clone)]
pub struct PleskCli {
    /// The `plesk` executable.
    pub program: PathBuf,
    /// Longest time one call may take.
    pub timeout: Duration,
    /// Number of calls made, by command (`--info`, `--add`, `--del`), with
    /// their total duration: read by the metrics.
    pub calls: CallStats,
}

/// Counters of backend calls.
#[derive(Debug, Clone, Default)]
pub struct CallStats {
    /// `(command, ok, seconds)` for every call since start.
    pub log: Vec<(&'static str, bool, f64)>,
}

impl PleskCli {
    /// A backend running `program` with `timeout` per call.
    pub fn new(program: PathBuf, timeout: Duration) -> PleskCli {
        PleskCli {
            program,
            timeout,
            calls: CallStats::default(),
        }
    }

    fn args<'a>(verb: &'a str, change: &RecordChange<'a>) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "bin".into(),
            "dns".into(),
            verb.into(),
            change.zone.to_string(),
        ];
        match change.record_type {
            CallType::Address(t) => args.extend([
                t.plesk_option().into(),
                change.label.into(),
                "-ip".into(),
                change.value.into(),
            ]),
            CallType::Txt => args.extend([
                "-txt".into(),
                change.value.into(),
                "-domain".into(),
                change.label.into(),
            ]),
        }
        args
    }

    fn command_line(&self, args: &[String]) -> String {
        let mut s = self.program.display().to_string();
        for a in args {
            s.push(' ');
            if a.is_empty()
                || a.contains(|c: char| !(c.is_ascii_alphanumeric() || ".:-_/".contains(c)))
            {
                s.push_str(&format!("'{}'", a.replace('\'', "'\\''")));
            } else {
                s.push_str(a);
            }
        }
        s
    }

    fn call(
        &mut self,
        verb: &'static str,
        args: Vec<String>,
    ) -> Result<process::Finished, BackendError> {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let result = process::run(&self.program, &refs, self.timeout);
        match result {
            Ok(f) => {
                self.calls
                    .log
                    .push((verb, f.code == Some(0), f.elapsed.as_secs_f64()));
                Ok(f)
            }
            Err(source) => {
                let secs = match &source {
                    RunError::Timeout(d) => d.as_secs_f64(),
                    _ => 0.0,
                };
                self.calls.log.push((verb, false, secs));
                Err(BackendError::Run {
                    command: self.command_line(&args),
                    source,
                })
            }
        }
    }

    fn failure(&self, args: &[String], f: &process::Finished) -> BackendError {
        let text = if f.stderr.trim().is_empty() {
            &f.stdout
        } else {
            &f.stderr
        };
        BackendError::Failed {
            command: self.command_line(args),
            code: f.code.unwrap_or(-1),
            message: escape(text.trim()).chars().take(500).collect(),
        }
    }
}

impl DnsBackend for PleskCli {
    fn list(&mut self, zone: &Hostname) -> Result<ZoneListing, BackendError> {
        let args: Vec<String> = vec![
            "bin".into(),
            "dns".into(),
            "--info".into(),
            zone.to_string(),
        ];
        let f = self.call("--info", args.clone())?;
        if f.code != Some(0) {
            return Err(self.failure(&args, &f));
        }
        Ok(parse_listing(&f.stdout))
    }

    fn add(&mut self, change: &RecordChange<'_>) -> Result<Added, BackendError> {
        let args = Self::args("--add", change);
        let f = self.call("--add", args.clone())?;
        match f.code {
            Some(0) => Ok(Added::Added),
            Some(2) => Ok(Added::AlreadyExists),
            _ => Err(self.failure(&args, &f)),
        }
    }

    fn delete(&mut self, change: &RecordChange<'_>) -> Result<(), BackendError> {
        let args = Self::args("--del", change);
        let f = self.call("--del", args.clone())?;
        match f.code {
            Some(0) => Ok(()),
            _ => Err(self.failure(&args, &f)),
        }
    }

    fn describe(&self, verb: &str, change: &RecordChange<'_>) -> String {
        self.command_line(&Self::args(verb, change))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dyndns_core::RecordType;

    #[test]
    fn command_lines_for_humans() {
        let p = PleskCli::new("/usr/sbin/plesk".into(), Duration::from_secs(1));
        let zone = Hostname::parse("dyn.example.com").unwrap();
        let c = RecordChange {
            zone: &zone,
            label: "",
            record_type: CallType::Address(RecordType::AAAA),
            value: "2001:db8::1",
        };
        assert_eq!(
            p.describe("--add", &c),
            "/usr/sbin/plesk bin dns --add dyn.example.com -aaaa '' -ip 2001:db8::1"
        );
        let t = RecordChange {
            zone: &zone,
            label: "_acme-challenge.home",
            record_type: CallType::Txt,
            value: "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0",
        };
        assert_eq!(
            p.describe("--del", &t),
            "/usr/sbin/plesk bin dns --del dyn.example.com -txt LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0 -domain _acme-challenge.home"
        );
    }
}
