//! SIGTERM/SIGINT ask the applier to stop after the host in progress;
//! SIGHUP asks it to reload the config. A background thread turns signals
//! into flags and wakes the main loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, Thread};

use anyhow::Result;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing::info;

/// Flags set by signals.
#[derive(Debug, Clone, Default)]
pub struct SignalFlags {
    /// Stop after the current host.
    pub stop: Arc<AtomicBool>,
    /// Reload the config.
    pub reload: Arc<AtomicBool>,
}

impl SignalFlags {
    /// True once SIGTERM or SIGINT arrived.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// True (once) after SIGHUP.
    pub fn take_reload(&self) -> bool {
        self.reload.swap(false, Ordering::SeqCst)
    }
}

/// Installs the handlers; `main` is unparked whenever a signal arrives.
pub fn install(main: Thread) -> Result<SignalFlags> {
    let flags = SignalFlags::default();
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    let f = flags.clone();
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                match sig {
                    SIGHUP => {
                        info!("SIGHUP: reloading the config");
                        f.reload.store(true, Ordering::SeqCst);
                    }
                    _ => {
                        info!("signal {sig}: finishing the host in progress, then exiting");
                        f.stop.store(true, Ordering::SeqCst);
                    }
                }
                main.unpark();
            }
        })?;
    Ok(flags)
}
