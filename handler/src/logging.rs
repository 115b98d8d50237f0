//! Log set-up for the component: plain lines on stderr, which Spin (and
//! `wasmtime serve`) pass on to the service's log. The level comes from the
//! `DYNDNS_LOG` environment variable (`error`, `warn`, `info`, `debug`);
//! default `info`.

use tracing::Level;

/// Installs the subscriber once per instance; later calls do nothing.
pub fn init() {
    let level = match std::env::var("DYNDNS_LOG").as_deref() {
        Ok("error") => Level::ERROR,
        Ok("warn") => Level::WARN,
        Ok("debug") => Level::DEBUG,
        Ok("trace") => Level::TRACE,
        _ => Level::INFO,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .with_max_level(level)
        .try_init();
}
