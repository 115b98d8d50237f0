//! Logging for the component: `tracing` events written as one plain line on
//! stderr each, which Spin (and `wasmtime serve`) pass on to the service's
//! log. A fresh instance may serve every request, so this is a deliberately
//! small subscriber (no registry, no spans) that costs almost nothing to
//! install. The level comes from `DYNDNS_LOG` (`error`, `warn`, `info`,
//! `debug`); default `info`.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Installs the subscriber once per instance; later calls do nothing.
pub fn init() {
    let max = match std::env::var("DYNDNS_LOG").as_deref() {
        Ok("error") => Level::ERROR,
        Ok("warn") => Level::WARN,
        Ok("debug") => Level::DEBUG,
        Ok("trace") => Level::TRACE,
        _ => Level::INFO,
    };
    let _ = tracing::subscriber::set_global_default(LineLogger { max });
}

/// Writes each event as `<time> <LEVEL> <message> key=value ...`.
pub struct LineLogger {
    max: Level,
}

struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }
}

/// Formats one event as a log line (without the newline).
pub fn format_event(level: &Level, event: &Event<'_>, now: SystemTime) -> String {
    let mut fields = Fields {
        message: String::new(),
        rest: String::new(),
    };
    event.record(&mut fields);
    format!(
        "{} {:>5} {}{}",
        humantime::format_rfc3339_micros(now),
        level.as_str(),
        fields.message,
        fields.rest
    )
}

impl Subscriber for LineLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = format_event(event.metadata().level(), event, SystemTime::now());
        line.push('\n');
        // One write per line, so lines of concurrent instances do not mix.
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Captures formatted lines instead of writing them.
    struct Capture(Arc<Mutex<Vec<String>>>);

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let line = format_event(event.metadata().level(), event, SystemTime::UNIX_EPOCH);
            self.0.lock().unwrap().push(line);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn one_line_per_event_with_fields() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::with_default(Capture(Arc::clone(&lines)), || {
            tracing::warn!(user = %"alice", n = 3, "authentication failed client={}", "203.0.113.1");
        });
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(
            lines[0],
            "1970-01-01T00:00:00.000000Z  WARN authentication failed client=203.0.113.1 user=alice n=3"
        );
    }
}
