//! An emulator of `plesk bin dns`, faithful to docs/PLESK.md as far as the
//! applier can tell: zones kept in a JSON state file, `--info` output in
//! Plesk's format, `--add`/`--del` of A and AAAA records, exit code 2 when
//! adding a record that exists, a failing `--del` of a missing record, one
//! call at a time (a lock around the state, as Plesk serialises zone edits).
//!
//! Environment:
//! - `PLESK_EMU_STATE` (required): the state file,
//!   `{"zones": {"example.com": [{"name": "home.example.com.", "type": "A", "value": "192.0.2.1"}]}}`;
//! - `PLESK_EMU_LOG`: append a JSON line per call start and end;
//! - `PLESK_EMU_LATENCY_MS`: time each call takes (spent holding the lock,
//!   before the change is made, like Plesk rewriting and reloading the zone);
//! - `PLESK_EMU_FAIL`: `CMD:N[,CMD:N...]`, the first N calls of CMD
//!   (`--info`, `--add`, `--del` or `*`, optionally `CMD@zone`) fail with exit 1;
//! - `PLESK_EMU_HANG`: same syntax, those calls hang for an hour instead.
//!   Failure and hang counters live next to the state file.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    zones: BTreeMap<String, Vec<Record>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    value: String,
}

struct Outcome {
    code: u8,
    stdout: String,
    stderr: String,
}

fn ok(stdout: String) -> Outcome {
    Outcome {
        code: 0,
        stdout,
        stderr: String::new(),
    }
}

fn err(code: u8, stderr: impl Into<String>) -> Outcome {
    Outcome {
        code,
        stdout: String::new(),
        stderr: stderr.into(),
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

fn log_event(args: &[String], event: &str, code: Option<u8>) {
    let Ok(path) = std::env::var("PLESK_EMU_LOG") else {
        return;
    };
    let line = serde_json::json!({
        "pid": std::process::id(),
        "t_ms": now_ms() as u64,
        "event": event,
        "args": args,
        "exit": code,
    });
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    log_event(&args, "start", None);
    let outcome = run(&args);
    // The caller may be gone (killed applier): a closed pipe must not stop
    // the call from being logged, as the change itself is already made.
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    log_event(&args, "end", Some(outcome.code));
    ExitCode::from(outcome.code)
}

fn state_path() -> Result<PathBuf, Outcome> {
    std::env::var_os("PLESK_EMU_STATE")
        .map(PathBuf::from)
        .ok_or_else(|| err(1, "PLESK_EMU_STATE is not set\n"))
}

/// `CMD[@zone]:N` rules from an environment variable.
fn rules(var: &str) -> Vec<(String, u32)> {
    std::env::var(var)
        .unwrap_or_default()
        .split(',')
        .filter_map(|r| {
            let (cmd, n) = r.trim().rsplit_once(':')?;
            Some((cmd.to_string(), n.parse().ok()?))
        })
        .collect()
}

/// True when this call falls under one of the first-N rules of `var`;
/// counts the call.
fn injected(var: &str, state: &Path, cmd: &str, zone: &str) -> bool {
    let rules = rules(var);
    if rules.is_empty() {
        return false;
    }
    let counter_path = PathBuf::from(format!(
        "{}.{}.counters.json",
        state.display(),
        var.to_ascii_lowercase()
    ));
    let mut counters: BTreeMap<String, u32> = fs::read(&counter_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut hit = false;
    for (rule, limit) in rules {
        let (rcmd, rzone) = match rule.split_once('@') {
            Some((c, z)) => (c.to_string(), Some(z.to_string())),
            None => (rule.clone(), None),
        };
        let matches = (rcmd == "*" || rcmd == cmd) && rzone.as_deref().is_none_or(|z| z == zone);
        if matches {
            let used = counters.entry(rule.clone()).or_insert(0);
            if *used < limit {
                *used += 1;
                hit = true;
            }
        }
    }
    let _ = fs::write(
        &counter_path,
        serde_json::to_vec(&counters).unwrap_or_default(),
    );
    hit
}

fn run(args: &[String]) -> Outcome {
    let usage = "Usage: plesk bin dns --info <domain> | --add|--del <domain> -a|-aaaa <subdomain> -ip <address>\n";
    if args.len() < 2 || args[0] != "bin" || args[1] != "dns" {
        return err(1, format!("Unknown command. {usage}"));
    }
    let rest = &args[2..];
    let Some(cmd) = rest.first().map(String::as_str) else {
        return err(1, usage);
    };
    if !matches!(cmd, "--info" | "--add" | "--del") {
        return err(
            1,
            format!("Unsupported command {cmd:?} in this emulator. {usage}"),
        );
    }
    let Some(zone) = rest
        .get(1)
        .map(|z| z.trim_end_matches('.').to_ascii_lowercase())
    else {
        return err(1, usage);
    };
    let state_file = match state_path() {
        Ok(p) => p,
        Err(o) => return o,
    };
    // Plesk handles one zone change at a time.
    let lock_path = PathBuf::from(format!("{}.lock", state_file.display()));
    let Ok(lock) = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
    else {
        return err(1, "cannot open the lock file\n");
    };
    if lock.lock().is_err() {
        return err(1, "cannot lock\n");
    }
    if injected("PLESK_EMU_HANG", &state_file, cmd, &zone) {
        thread::sleep(Duration::from_secs(3600));
    }
    if let Some(ms) = std::env::var("PLESK_EMU_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        thread::sleep(Duration::from_millis(ms));
    }
    if injected("PLESK_EMU_FAIL", &state_file, cmd, &zone) {
        return err(
            1,
            format!(
                "An error occurred during domain update: emulated failure of {cmd} for {zone}\n"
            ),
        );
    }
    let mut state: State = match fs::read(&state_file) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(s) => s,
            Err(e) => return err(1, format!("corrupt emulator state: {e}\n")),
        },
        Err(e) => {
            return err(
                1,
                format!("cannot read emulator state {}: {e}\n", state_file.display()),
            );
        }
    };
    let Some(records) = state.zones.get_mut(&zone) else {
        return err(
            1,
            format!("Unable to find domain '{zone}': Domain does not exist\n"),
        );
    };
    if cmd == "--info" {
        if rest.len() != 2 {
            return err(1, usage);
        }
        let mut out = String::new();
        for r in records.iter() {
            out.push_str(&format!("{} {} {}\n", r.name, r.rtype, r.value));
        }
        out.push_str(&format!(
            "SUCCESS: Getting information for Domain '{zone}' complete.\n"
        ));
        return ok(out);
    }
    // --add/--del <zone> -a|-aaaa <label> -ip <address>
    if rest.len() != 6 || rest[4] != "-ip" {
        return err(1, usage);
    }
    let rtype = match rest[2].as_str() {
        "-a" => "A",
        "-aaaa" => "AAAA",
        other => return err(1, format!("Unsupported record option {other:?}. {usage}")),
    };
    let label = rest[3].trim_end_matches('.').to_ascii_lowercase();
    let label_ok = label.is_empty()
        || label.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'*')
        });
    if !label_ok {
        return err(1, format!("Invalid subdomain {:?}\n", rest[3]));
    }
    let Ok(addr) = rest[5].parse::<IpAddr>() else {
        return err(1, format!("Invalid IP address {:?}\n", rest[5]));
    };
    if (rtype == "A") != addr.is_ipv4() {
        return err(
            1,
            format!(
                "IP address {} does not match record type {rtype}\n",
                rest[5]
            ),
        );
    }
    let name = if label.is_empty() {
        format!("{zone}.")
    } else {
        format!("{label}.{zone}.")
    };
    let position = records.iter().position(|r| {
        r.name.eq_ignore_ascii_case(&name)
            && r.rtype == rtype
            && r.value.parse::<IpAddr>().ok() == Some(addr)
    });
    let message = match (cmd, position) {
        ("--add", Some(_)) => {
            return err(
                2,
                format!(
                    "An error occurred during domain update: DNS record {name} {rtype} {addr} already exists.\n"
                ),
            );
        }
        ("--add", None) => {
            records.push(Record {
                name,
                rtype: rtype.into(),
                value: addr.to_string(),
            });
            format!("SUCCESS: Creation of DNS record in Domain '{zone}' complete.\n")
        }
        ("--del", Some(i)) => {
            records.remove(i);
            format!("SUCCESS: Removal of DNS record in Domain '{zone}' complete.\n")
        }
        _ => {
            return err(
                1,
                format!("Unable to remove DNS record: {name} {rtype} {addr} does not exist.\n"),
            );
        }
    };
    let tmp = PathBuf::from(format!(
        "{}.tmp.{}",
        state_file.display(),
        std::process::id()
    ));
    let written = serde_json::to_vec_pretty(&state)
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            let mut f = File::create(&tmp).map_err(|e| e.to_string())?;
            f.write_all(&bytes)
                .and_then(|_| f.sync_all())
                .map_err(|e| e.to_string())?;
            fs::rename(&tmp, &state_file).map_err(|e| e.to_string())
        });
    match written {
        Ok(()) => ok(message),
        Err(e) => err(1, format!("cannot save emulator state: {e}\n")),
    }
}
