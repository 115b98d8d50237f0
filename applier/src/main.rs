//! `dyndns-applier`: applies queued dyndns updates to Plesk DNS. Runs as
//! root, as a systemd service (`run`) or from cron (`--once`, `--timeout`).

mod backend;
mod batch;
mod challenge_store;
mod change;
mod config_file;
mod doctor;
mod failed_area;
mod fsutil;
mod instance_lock;
mod journal;
mod layout;
mod metrics;
mod nginx_conf;
mod notify;
mod process;
mod publish;
mod queue_reader;
mod retry;
mod runner;
mod signals;
mod state_store;
mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use dyndns_core::credential::{Credential, SALT_LEN, generate_secret};
use tracing::error;
use tracing_subscriber::EnvFilter;

use crate::runner::{EXIT_ERROR, RunOptions};

/// Applies queued dyndns updates to Plesk DNS.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The config file.
    #[arg(short, long, env = "DYNDNS_CONFIG", default_value = dyndns_core::config::DEFAULT_CONFIG_PATH, global = true)]
    config: PathBuf,

    /// Log level (error, warn, info, debug, trace); overrides RUST_LOG.
    #[arg(long, global = true)]
    log_level: Option<String>,

    #[command(flatten)]
    run: RunArgs,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Poll the queue and apply updates (the default).
    Run(RunArgs),
    /// Show pending and failed entries, interrupted changes and applied state.
    Status,
    /// Validate the config and the environment, then exit.
    CheckConfig,
    /// Write the handler's view of the config and the hosts' state now (`run`
    /// does this itself when the config changes).
    Publish,
    /// Make a new random secret and the credential hash for the config.
    NewCredential {
        /// Also print a [[users]] block for this user name.
        #[arg(long)]
        user: Option<String>,
    },
    /// Check the live install end to end (config, Spin, units, folders,
    /// nginx, view, heartbeat, a test request); one line per check.
    Doctor(DoctorArgs),
}

#[derive(Debug, Args, Clone)]
struct DoctorArgs {
    /// The handler's address (default: --listen of the installed
    /// dyndns-spin unit, else 127.0.0.1:3000).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Plesk's per-domain folders, each with conf/vhost_nginx.conf.
    #[arg(long, value_name = "DIR", default_value = "/var/www/vhosts/system")]
    vhosts: PathBuf,
    /// Look up units, the cron line, Spin and users under this root.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
}

#[derive(Debug, Args, Clone, Default)]
struct RunArgs {
    /// Process what is pending once and exit (exit code 0: all applied,
    /// 2: some rejected, 3: some left for retry, 4: another applier runs).
    #[arg(long, visible_alias = "runonce")]
    once: bool,
    /// Exit after this many seconds (for cron); the host in progress is finished first.
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Polling interval, e.g. "2s" (default: from the config).
    #[arg(long, value_parser = humantime::parse_duration)]
    interval: Option<Duration>,
    /// Print the Plesk commands that would run; change nothing in DNS or the queue.
    #[arg(long)]
    dry_run: bool,
}

fn init_logging(level: Option<&str>) {
    let filter = match level {
        Some(l) => EnvFilter::new(l),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_level.as_deref());
    match dispatch(cli) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR as u8)
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32> {
    let run_flags =
        cli.run.once || cli.run.timeout.is_some() || cli.run.interval.is_some() || cli.run.dry_run;
    if run_flags && !matches!(cli.command, None | Some(Command::Run(_))) {
        anyhow::bail!("--once, --timeout, --interval and --dry-run belong to `run`");
    }
    match cli.command {
        None => run(&cli.config, cli.run),
        Some(Command::Run(args)) => {
            let merged = RunArgs {
                once: args.once || cli.run.once,
                timeout: args.timeout.or(cli.run.timeout),
                interval: args.interval.or(cli.run.interval),
                dry_run: args.dry_run || cli.run.dry_run,
            };
            run(&cli.config, merged)
        }
        Some(Command::Status) => {
            let loaded = config_file::load(&cli.config)?;
            status::print_status(&loaded, &mut std::io::stdout().lock())?;
            Ok(0)
        }
        Some(Command::CheckConfig) => check_config(&cli.config),
        Some(Command::Publish) => {
            let loaded = config_file::load(&cli.config)?;
            let layout = layout::Layout::new(&loaded.config.paths);
            layout.ensure()?;
            let states = state_store::HostStates::load(&layout, &loaded.config);
            let written = publish::Publisher::new(&loaded.config).publish_all(
                &loaded.config,
                &layout,
                &states,
                &publish::InFlux::new(),
                true,
            )?;
            println!(
                "{} {}",
                if written { "published" } else { "unchanged:" },
                layout.view.display()
            );
            Ok(0)
        }
        Some(Command::NewCredential { user }) => {
            new_credential(user.as_deref())?;
            Ok(0)
        }
        Some(Command::Doctor(args)) => doctor::run(
            &doctor::DoctorOptions {
                config: cli.config,
                listen: args.listen,
                vhosts: args.vhosts,
                root: args.root,
            },
            &mut std::io::stdout().lock(),
        ),
    }
}

fn run(config: &std::path::Path, args: RunArgs) -> Result<i32> {
    runner::run(
        config,
        RunOptions {
            once: args.once,
            timeout: args.timeout.map(Duration::from_secs),
            interval: args.interval,
            dry_run: args.dry_run,
        },
    )
}

fn check_config(path: &std::path::Path) -> Result<i32> {
    let loaded = config_file::load(path)?;
    let c = &loaded.config;
    println!(
        "{}: OK ({} zone(s), {} host(s), {} user(s))",
        path.display(),
        c.zones.len(),
        c.hosts.len(),
        c.users.len()
    );
    let mut warnings = config_file::permission_warnings(&loaded);
    warnings.extend(c.warnings());
    warnings.extend(layout::Layout::new(&c.paths).warnings());
    match std::fs::metadata(&c.applier.plesk) {
        Ok(m) if m.is_file() => {}
        _ => warnings.push(format!(
            "applier.plesk: {} is not an existing file (is Plesk installed?)",
            c.applier.plesk.display()
        )),
    }
    if let Some(notifier) = notify::Notifier::start(&c.notify)? {
        println!(
            "notifications: {}",
            [
                c.notify.email.as_ref().map(|_| "email"),
                c.notify.webhook.as_ref().map(|_| "webhook")
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ")
        );
        notifier.shutdown(Duration::from_secs(1));
    }
    for w in &warnings {
        println!("warning: {w}");
    }
    Ok(0)
}

fn new_credential(user: Option<&str>) -> Result<()> {
    let mut fill_err = None;
    let secret = generate_secret(|buf| {
        if let Err(e) = getrandom::fill(buf) {
            fill_err = Some(e);
        }
    });
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
    if let Some(e) = fill_err {
        return Err(anyhow::anyhow!("no random source: {e}"));
    }
    let credential = Credential::derive(&secret, salt);
    println!("secret:     {secret}");
    println!("credential: {credential}");
    if let Some(user) = user {
        println!();
        println!("[[users]]");
        println!("name = {}", toml_string(user));
        println!("credential = \"{credential}\"");
        println!("hosts = []  # fill in");
    }
    eprintln!(
        "The secret is shown only now; give it to the client. Only the credential goes into the config."
    );
    Ok(())
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s)
        .context("quoting")
        .unwrap_or_else(|_| "\"\"".into())
}
