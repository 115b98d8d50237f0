//! The polling loop behind `dyndns-applier run`: lock, publish the handler's
//! view, then batch after batch at the configured interval until a signal,
//! `--timeout`, or (with `--once`) the first batch ends it.

use std::collections::HashSet;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use dyndns_core::untrusted_text::escape;
use tracing::{debug, error, info, warn};

use crate::backend::PleskCli;
use crate::batch::{Batch, BatchReport};
use crate::config_file::{self, LoadedConfig};
use crate::failed_area::FailedArea;
use crate::instance_lock::{self, InstanceLock};
use crate::journal::Journal;
use crate::layout::Layout;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::publish::{InFlux, Publisher};
use crate::queue_reader::clean_tmp;
use crate::retry::RetrySchedule;
use crate::signals::{self, SignalFlags};
use crate::state_store::{HostStates, write_heartbeat};

/// Exit code: everything pending was applied (or there was nothing).
pub const EXIT_OK: i32 = 0;
/// Exit code: a fatal error (bad config, unusable directories).
pub const EXIT_ERROR: i32 = 1;
/// Exit code (`--once`): some entries were rejected and moved to `failed/`.
pub const EXIT_REJECTED: i32 = 2;
/// Exit code (`--once`): some entries are kept for a later retry.
pub const EXIT_DEFERRED: i32 = 3;
/// Exit code: another applier holds the lock.
pub const EXIT_LOCKED: i32 = 4;

/// Options of `run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Process what is pending once and exit.
    pub once: bool,
    /// Exit after this long.
    pub timeout: Option<Duration>,
    /// Override of the configured interval.
    pub interval: Option<Duration>,
    /// Print the Plesk commands instead of running them.
    pub dry_run: bool,
}

/// Clean-up of `tmp/` happens at most this often.
const TMP_CLEAN_EVERY: Duration = Duration::from_secs(600);
/// Files in `tmp/` older than this are leftovers of a killed handler.
const TMP_MAX_AGE: Duration = Duration::from_secs(3600);

struct Loop {
    loaded: LoadedConfig,
    layout: Layout,
    opts: RunOptions,
    flags: SignalFlags,
    deadline: Option<Instant>,
    lock: Option<InstanceLock>,
    shown: HashSet<String>,
    last_tmp_clean: Option<Instant>,
    failed: FailedArea,
    notifier: Option<Notifier>,
    metrics: Metrics,
    states: HostStates,
    in_flux: InFlux,
    publisher: Publisher,
}

/// How long queued notifications may still go out at exit.
const NOTIFY_DRAIN: Duration = Duration::from_secs(10);

/// Runs the applier; returns the process exit code.
pub fn run(config_path: &Path, opts: RunOptions) -> Result<i32> {
    let started = Instant::now();
    let deadline = opts.timeout.map(|t| started + t);
    let loaded = config_file::load(config_path)?;
    for w in config_file::permission_warnings(&loaded)
        .into_iter()
        .chain(loaded.config.warnings())
    {
        warn!("{w}");
    }
    let layout = Layout::new(&loaded.config.paths);
    layout.ensure()?;
    for w in layout.warnings() {
        warn!("{w}");
    }
    let flags = signals::install(thread::current())?;
    let states = HostStates::load(&layout, &loaded.config);
    let publisher = Publisher::new(&loaded.config);
    let failed = FailedArea::new(&layout);
    let mut this = Loop {
        loaded,
        layout,
        opts,
        flags,
        deadline,
        lock: None,
        shown: HashSet::new(),
        last_tmp_clean: None,
        failed,
        notifier: None,
        metrics: Metrics::default(),
        states,
        in_flux: InFlux::new(),
        publisher,
    };
    if !this.opts.dry_run {
        this.notifier = Notifier::start(&this.loaded.config.notify)?;
    }
    if !this.acquire_lock()? {
        return Ok(EXIT_LOCKED);
    }
    if this.lock.is_some()
        && this.publisher.publish_all(
            &this.loaded.config,
            &this.layout,
            &this.states,
            &this.in_flux,
            false,
        )?
    {
        info!(
            "published the handler's view of {}",
            this.loaded.path.display()
        );
    }
    info!(
        config = %this.loaded.path.display(),
        interval = %humantime::format_duration(this.interval()),
        dry_run = this.opts.dry_run,
        once = this.opts.once,
        "applier started"
    );
    this.main_loop()
}

impl Loop {
    fn interval(&self) -> Duration {
        self.opts
            .interval
            .unwrap_or(self.loaded.config.applier.interval)
    }

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn should_stop(&self) -> bool {
        self.flags.stop_requested() || self.past_deadline()
    }

    /// Takes the lock, waiting for it unless `--once`. Returns false when
    /// giving up. A dry run goes on without it, writing nothing.
    fn acquire_lock(&mut self) -> Result<bool> {
        let mut told = false;
        loop {
            if let Some(lock) = instance_lock::try_lock(&self.layout.lock)? {
                if told {
                    info!("got the lock; starting");
                }
                self.lock = Some(lock);
                return Ok(true);
            }
            let holder = instance_lock::holder(&self.layout.lock)
                .map_or_else(|| "another process".to_string(), |p| format!("pid {p}"));
            if self.opts.dry_run {
                info!(
                    "{holder} holds the applier lock; dry run continues read-only (no heartbeat, no view)"
                );
                return Ok(true);
            }
            if self.opts.once || self.should_stop() {
                warn!("another applier ({holder}) is running; leaving without touching anything");
                return Ok(false);
            }
            if !told {
                info!("another applier ({holder}) is running; waiting for it to finish");
                told = true;
            }
            self.sleep(self.interval());
        }
    }

    fn sleep(&self, d: Duration) {
        let mut until = Instant::now() + d;
        if let Some(deadline) = self.deadline {
            until = until.min(deadline);
        }
        while !self.flags.stop_requested()
            && !self.flags.reload.load(std::sync::atomic::Ordering::SeqCst)
        {
            let now = Instant::now();
            if now >= until {
                break;
            }
            thread::park_timeout(until - now);
        }
    }

    fn maybe_reload(&mut self) {
        let forced = self.flags.take_reload();
        let changed = match config_file::stamp(&self.loaded.path) {
            Ok(s) => s != self.loaded.stamp,
            Err(e) => {
                warn!("cannot check the config file: {e:#}");
                false
            }
        };
        if !forced && !changed {
            return;
        }
        match config_file::load(&self.loaded.path) {
            Ok(new) => {
                if new.config.paths != self.loaded.config.paths {
                    warn!(
                        "paths changed in the config; restart the applier to use them (keeping the old ones)"
                    );
                }
                let mut new = new;
                new.config.paths = self.loaded.config.paths.clone();
                let notify_changed = new.config.notify != self.loaded.config.notify;
                self.loaded = new;
                info!("config reloaded");
                if notify_changed && !self.opts.dry_run {
                    if let Some(old) = self.notifier.take() {
                        old.shutdown(Duration::from_secs(2));
                    }
                    match Notifier::start(&self.loaded.config.notify) {
                        Ok(n) => self.notifier = n,
                        Err(e) => error!("notifications disabled: {e:#}"),
                    }
                }
                self.publisher = Publisher::new(&self.loaded.config);
                if self.lock.is_some() {
                    self.states = HostStates::load(&self.layout, &self.loaded.config);
                    match self.publisher.publish_all(
                        &self.loaded.config,
                        &self.layout,
                        &self.states,
                        &self.in_flux,
                        false,
                    ) {
                        Ok(true) => info!("published the updated handler view"),
                        Ok(false) => {}
                        Err(e) => error!("cannot publish the handler view: {e:#}"),
                    }
                }
            }
            Err(e) => {
                // Remember the stamp so the error is logged once per edit.
                if let Ok(s) = config_file::stamp(&self.loaded.path) {
                    self.loaded.stamp = s;
                }
                error!("the edited config is invalid; keeping the previous one: {e:#}");
            }
        }
    }

    fn main_loop(&mut self) -> Result<i32> {
        let journal = Journal::new(self.layout.journal.clone());
        let mut retry = RetrySchedule::load(self.layout.retry.clone());
        loop {
            self.maybe_reload();
            if self.lock.is_some() {
                if let Err(e) = write_heartbeat(&self.layout, self.interval(), self.opts.dry_run) {
                    error!("{e:#}");
                }
                if !self.opts.dry_run
                    && self
                        .last_tmp_clean
                        .is_none_or(|t| t.elapsed() > TMP_CLEAN_EVERY)
                {
                    clean_tmp(&self.layout, TMP_MAX_AGE);
                    self.last_tmp_clean = Some(Instant::now());
                }
                if !self.opts.dry_run {
                    self.failed.prune_if_due();
                }
            }
            let config = &self.loaded.config;
            let mut backend =
                PleskCli::new(config.applier.plesk.clone(), config.applier.plesk_timeout);
            let flags = &self.flags;
            let deadline = self.deadline;
            let stop = || flags.stop_requested() || deadline.is_some_and(|d| Instant::now() >= d);
            let mut batch = Batch {
                config,
                layout: &self.layout,
                backend: &mut backend,
                journal: &journal,
                retry: &mut retry,
                states: &mut self.states,
                in_flux: &mut self.in_flux,
                publisher: &self.publisher,
                stop: &stop,
                dry_run: self.opts.dry_run,
            };
            let report = match batch.run() {
                Ok(r) => r,
                Err(e) => {
                    error!("batch failed: {e:#}");
                    if self.opts.once {
                        return Ok(EXIT_ERROR);
                    }
                    self.sleep(self.interval());
                    continue;
                }
            };
            if !self.opts.dry_run {
                self.failed.added(report.rejected);
            }
            self.report(&report);
            if let Some(n) = &self.notifier
                && !report.applied.is_empty()
            {
                n.notify(&report.applied);
            }
            self.write_metrics(&report, &backend.calls.log);
            if self.flags.stop_requested() {
                info!("stopped by signal");
                return Ok(self.finish(EXIT_OK));
            }
            if self.opts.once {
                let code = exit_code(&report);
                return Ok(self.finish(code));
            }
            if self.past_deadline() {
                info!("--timeout reached; exiting");
                return Ok(self.finish(EXIT_OK));
            }
            self.sleep(self.interval());
            if self.flags.stop_requested() {
                info!("stopped by signal");
                return Ok(self.finish(EXIT_OK));
            }
            if self.past_deadline() {
                info!("--timeout reached; exiting");
                return Ok(self.finish(EXIT_OK));
            }
        }
    }

    /// Lets pending notifications go out, writes the last metrics.
    fn finish(&mut self, code: i32) -> i32 {
        if let Some(n) = self.notifier.take() {
            n.shutdown(NOTIFY_DRAIN);
        }
        code
    }

    fn write_metrics(&mut self, report: &BatchReport, calls: &[(&'static str, bool, f64)]) {
        let Some(path) = self.loaded.config.applier.metrics_file.clone() else {
            return;
        };
        if self.opts.dry_run {
            return;
        }
        self.metrics.record_batch(report, calls);
        let count = |dir: &Path| -> u64 {
            std::fs::read_dir(dir)
                .map(|d| d.filter_map(Result::ok).count() as u64)
                .unwrap_or(0)
        };
        // The queue's size is the batch's own work; failed/ is counted, not
        // listed again.
        let depth = count(&self.layout.new) + count(&self.layout.cur);
        self.metrics
            .set_queue(depth, self.failed.items().unwrap_or_default());
        if let Some(n) = &self.notifier {
            self.metrics.set_notify(n.stats());
        }
        self.metrics
            .set_hosts(self.states.activity(&self.loaded.config));
        if let Err(e) = self.metrics.write(&path) {
            error!("cannot write metrics to {}: {e:#}", path.display());
        }
    }

    fn report(&mut self, report: &BatchReport) {
        let mut new_lines = false;
        for line in &report.dry_run_lines {
            if self.shown.insert(line.clone()) {
                println!("DRY RUN: {}", escape(line));
                new_lines = true;
            }
        }
        // A dry run sees the same queue every time: only news is worth a line.
        let busy = if self.opts.dry_run {
            new_lines
        } else {
            !report.applied.is_empty()
                || report.unchanged > 0
                || report.rejected > 0
                || report.deferred > 0
                || report.superseded > 0
                || report.challenges > 0
        };
        if busy {
            info!(
                applied = report.applied.len(),
                unchanged = report.unchanged,
                rejected = report.rejected,
                deferred = report.deferred,
                superseded = report.superseded,
                challenges = report.challenges,
                listings = report.listings,
                scan_ms = report.scan_ms,
                ms = report.elapsed_ms,
                "batch done"
            );
        } else {
            debug!(unchanged = report.unchanged, "batch done");
        }
    }
}

/// The `--once` exit code for a batch.
pub fn exit_code(report: &BatchReport) -> i32 {
    if report.rejected > 0 {
        EXIT_REJECTED
    } else if report.deferred > 0 || report.interrupted {
        EXIT_DEFERRED
    } else {
        EXIT_OK
    }
}

/// Seconds since `t`, for messages.
pub fn ago(t: SystemTime) -> String {
    let secs = SystemTime::now()
        .duration_since(t)
        .unwrap_or_default()
        .as_secs();
    format!(
        "{} ago",
        humantime::format_duration(Duration::from_secs(secs))
    )
}
