//! An emulator of `plesk bin dns`, faithful to what Plesk documents and
//! what the applier relies on: zones kept in a JSON state file, `--info`
//! output in Plesk's format, `--add`/`--del` of A, AAAA and TXT records, exit
//! code 2 when adding a record that exists, a failing `--del` of a missing
//! record, one call at a time (a lock around the state, as Plesk serialises
//! zone edits), and, like Plesk, a zone file written and the DNS server
//! reloaded after every change.
//!
//! # Plesk facts, and where they come from
//!
//! Plesk's CLI reference, "dns: DNS Zones on Domains" (Obsidian,
//! docs.plesk.com/en-US/obsidian/cli-linux/using-command-line-utilities/
//! dns-dns-zones-on-domains.37771): usage
//! `dns <command> [<domain_name>] [<option_1> [<param>] ...]`; `--add` adds a
//! resource record, "If a record already exists, the command returns code
//! 2"; `--del` removes one, given the same options as the `--add`; `--info`
//! lists the zone. Plesk's XML API reference ("Adding DNS Record", 34798):
//! a TXT record holds "arbitrary binary data, up to 255 bytes in length".
//!
//! Record options, as used against real Plesk servers:
//! - A/AAAA: `-a|-aaaa <subdomain> -ip <address>`; `""` is the apex
//!   (docs/PLESK.md; Plesk's own examples).
//! - TXT: `-txt <text> -domain <subdomain>`: the value follows `-txt`, the
//!   name relative to the zone follows `-domain` (`""` for the apex). Seen in
//!   the public Plesk extension wadejbeckett/cloudflare-dns-plesk, which runs
//!   `plesk bin dns --add <zone> -txt <value> -domain _cfdns-trigger` and the
//!   matching `--del` on production servers, and in standalone scripts
//!   ("-txt is the VALUE/STRING, -domain is the PREFIX/HOST"). Arguments go
//!   to Plesk as an argument list, so a value needs no shell quoting; it is
//!   stored and compared as given.
//! - `--info` prints one record per line, `<owner>. <TYPE> <value>`, the TXT
//!   value as stored, unquoted, spaces kept (docs/PLESK.md:
//!   `example.com. TXT v=spf1 +a +mx -all`), then a `SUCCESS:` line.
//!
//! Not confirmed in Plesk's documentation (the emulator's choice, stricter
//! where in doubt): the exit code of `--del` of a missing record (1 here);
//! whether `-domain` may be left out for the apex (here it is required);
//! option spellings seen in the wild such as `-domain-name` or `-value`
//! (refused here as unknown options); how `--info` shows a value with
//! quotes or one longer than 255 bytes (refused here). Unknown options,
//! a missing `-ip`/`-domain`, a missing record type or two of them, and an
//! address of the wrong family are refused with exit code 1.
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
//!   Failure and hang counters live next to the state file;
//! - `PLESK_EMU_ZONE_DIR`: after every change, write the zone as a BIND
//!   master file `<dir>/<zone>.zone` (SOA with an increasing serial, NS,
//!   every record);
//! - `PLESK_EMU_RELOAD`: then run this command, a JSON array of arguments
//!   (never a shell) in which `{zone}` and `{file}` are replaced, e.g.
//!   `["rndc","-s","127.0.0.1","-p","9530","-k","rndc.key","reload","{zone}"]`;
//!   the call fails (exit 1) when it fails, as Plesk's does when BIND cannot
//!   reload.
//!
//! `plesk emu write-zones` (emulator only) writes every zone file without a
//! reload, so that a DNS server can be started on them.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::thread;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    zones: BTreeMap<String, Vec<Record>>,
    /// The last SOA serial written per zone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    serials: BTreeMap<String, u32>,
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

const USAGE: &str = "Usage: plesk bin dns --info <domain> | --add|--del <domain> -a|-aaaa <subdomain> -ip <address> | --add|--del <domain> -txt <text> -domain <subdomain>\n";

/// Longest TXT value Plesk takes (its XML API reference: up to 255 bytes).
const MAX_TXT_BYTES: usize = 255;

fn run(args: &[String]) -> Outcome {
    if args.len() == 2 && args[0] == "emu" && args[1] == "write-zones" {
        return write_all_zones();
    }
    if args.len() < 2 || args[0] != "bin" || args[1] != "dns" {
        return err(1, format!("Unknown command. {USAGE}"));
    }
    let rest = &args[2..];
    let Some(cmd) = rest.first().map(String::as_str) else {
        return err(1, USAGE);
    };
    if !matches!(cmd, "--info" | "--add" | "--del") {
        return err(
            1,
            format!("Unsupported command {cmd:?} in this emulator. {USAGE}"),
        );
    }
    let Some(zone) = rest
        .get(1)
        .map(|z| z.trim_end_matches('.').to_ascii_lowercase())
    else {
        return err(1, USAGE);
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
    let mut state = match load(&state_file) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let Some(records) = state.zones.get_mut(&zone) else {
        return err(
            1,
            format!("Unable to find domain '{zone}': Domain does not exist\n"),
        );
    };
    if cmd == "--info" {
        if rest.len() != 2 {
            return err(1, USAGE);
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
    let wanted = match parse_record(&zone, &rest[2..]) {
        Ok(r) => r,
        Err(o) => return o,
    };
    let position = records.iter().position(|r| same_record(r, &wanted));
    let shown = format!("{} {} {}", wanted.name, wanted.rtype, wanted.value);
    let message = match (cmd, position) {
        ("--add", Some(_)) => {
            return err(
                2,
                format!(
                    "An error occurred during domain update: DNS record {shown} already exists.\n"
                ),
            );
        }
        ("--add", None) => {
            records.push(wanted);
            format!("SUCCESS: Creation of DNS record in Domain '{zone}' complete.\n")
        }
        ("--del", Some(i)) => {
            records.remove(i);
            format!("SUCCESS: Removal of DNS record in Domain '{zone}' complete.\n")
        }
        _ => {
            return err(
                1,
                format!("Unable to remove DNS record: {shown} does not exist.\n"),
            );
        }
    };
    let serial = next_serial(&mut state, &zone);
    if let Err(e) = save(&state_file, &state) {
        return err(1, format!("cannot save emulator state: {e}\n"));
    }
    match publish_zone(&state, &zone, serial) {
        Ok(()) => ok(message),
        Err(e) => err(1, format!("An error occurred during domain update: {e}\n")),
    }
}

fn load(state_file: &Path) -> Result<State, Outcome> {
    match fs::read(state_file) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| err(1, format!("corrupt emulator state: {e}\n"))),
        Err(e) => Err(err(
            1,
            format!("cannot read emulator state {}: {e}\n", state_file.display()),
        )),
    }
}

fn save(state_file: &Path, state: &State) -> Result<(), String> {
    let tmp = PathBuf::from(format!(
        "{}.tmp.{}",
        state_file.display(),
        std::process::id()
    ));
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| e.to_string())?;
    write_durably(&tmp, &bytes)?;
    fs::rename(&tmp, state_file).map_err(|e| e.to_string())
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut f = File::create(path).map_err(|e| e.to_string())?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| e.to_string())
}

/// True when `r` is the record `wanted` describes: same owner (any case),
/// type and value (addresses compared as addresses, text exactly).
fn same_record(r: &Record, wanted: &Record) -> bool {
    if !r.name.eq_ignore_ascii_case(&wanted.name) || r.rtype != wanted.rtype {
        return false;
    }
    match wanted.rtype.as_str() {
        "A" | "AAAA" => r.value.parse::<IpAddr>().ok() == wanted.value.parse::<IpAddr>().ok(),
        _ => r.value == wanted.value,
    }
}

/// Reads `-a|-aaaa <label> -ip <address>` or `-txt <text> -domain <label>`.
fn parse_record(zone: &str, options: &[String]) -> Result<Record, Outcome> {
    let mut given: BTreeMap<&str, &str> = BTreeMap::new();
    let mut i = 0;
    while i < options.len() {
        let option = options[i].as_str();
        if !matches!(option, "-a" | "-aaaa" | "-ip" | "-txt" | "-domain") {
            return Err(err(1, format!("Unknown option {option:?}. {USAGE}")));
        }
        let Some(value) = options.get(i + 1) else {
            return Err(err(1, format!("Option {option} needs a value. {USAGE}")));
        };
        if given.insert(option, value).is_some() {
            return Err(err(1, format!("Option {option} is given twice. {USAGE}")));
        }
        i += 2;
    }
    let types: Vec<&str> = ["-a", "-aaaa", "-txt"]
        .into_iter()
        .filter(|t| given.contains_key(t))
        .collect();
    let [type_option] = types[..] else {
        return Err(err(
            1,
            format!("Give exactly one record type (-a, -aaaa or -txt). {USAGE}"),
        ));
    };
    let (rtype, label, value) = match type_option {
        "-txt" => {
            if given.contains_key("-ip") {
                return Err(err(
                    1,
                    format!("Option -ip does not apply to TXT records. {USAGE}"),
                ));
            }
            let Some(label) = given.get("-domain") else {
                return Err(err(
                    1,
                    format!("Option -domain is required for TXT records. {USAGE}"),
                ));
            };
            let text = given["-txt"];
            if text.is_empty() || text.len() > MAX_TXT_BYTES {
                return Err(err(
                    1,
                    format!("Invalid TXT record value: it must have 1 to {MAX_TXT_BYTES} bytes\n"),
                ));
            }
            if text.chars().any(|c| c.is_control() || c == '"') {
                return Err(err(1, format!("Invalid TXT record value {text:?}\n")));
            }
            ("TXT", *label, text.to_string())
        }
        option => {
            if given.contains_key("-domain") {
                return Err(err(
                    1,
                    format!("Option -domain does not apply to {option}. {USAGE}"),
                ));
            }
            let Some(ip) = given.get("-ip") else {
                return Err(err(
                    1,
                    format!("Option -ip is required for {option}. {USAGE}"),
                ));
            };
            let Ok(addr) = ip.parse::<IpAddr>() else {
                return Err(err(1, format!("Invalid IP address {ip:?}\n")));
            };
            let rtype = if option == "-a" { "A" } else { "AAAA" };
            if (rtype == "A") != addr.is_ipv4() {
                return Err(err(
                    1,
                    format!("IP address {ip} does not match record type {rtype}\n"),
                ));
            }
            (rtype, given[option], addr.to_string())
        }
    };
    let label_lower = label.trim_end_matches('.').to_ascii_lowercase();
    // Plesk takes underscore labels (`_dmarc`, `_acme-challenge`) for TXT.
    let label_ok = label_lower.is_empty()
        || label_lower.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || b == b'-'
                        || b == b'*'
                        || (rtype == "TXT" && b == b'_')
                })
        });
    if !label_ok {
        return Err(err(1, format!("Invalid subdomain {label:?}\n")));
    }
    let name = if label_lower.is_empty() {
        format!("{zone}.")
    } else {
        format!("{label_lower}.{zone}.")
    };
    Ok(Record {
        name,
        rtype: rtype.into(),
        value,
    })
}

/// The next SOA serial of `zone`: larger than the last one, and the current
/// Unix time when that is larger still.
fn next_serial(state: &mut State, zone: &str) -> u32 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    let last = state.serials.get(zone).copied().unwrap_or(0);
    let serial = now.max(last.wrapping_add(1));
    state.serials.insert(zone.to_string(), serial);
    serial
}

/// The zone as a BIND master file.
fn zone_file(zone: &str, records: &[Record], serial: u32) -> String {
    let mut out = format!(
        "; written by the Plesk emulator\n$ORIGIN {zone}.\n$TTL 60\n\
         @ IN SOA localhost. hostmaster.{zone}. ( {serial} 60 60 3600 5 )\n\
         @ IN NS localhost.\n"
    );
    for r in records {
        // The emulator's own NS stands in for the zone's name servers.
        if r.rtype == "NS" && r.name.eq_ignore_ascii_case(&format!("{zone}.")) {
            continue;
        }
        let value = if r.rtype == "TXT" {
            format!("\"{}\"", r.value.replace('\\', "\\\\").replace('"', "\\\""))
        } else {
            r.value.clone()
        };
        out.push_str(&format!("{} IN {} {}\n", r.name, r.rtype, value));
    }
    out
}

/// Writes the zone file and has the DNS server reload it, when configured.
fn publish_zone(state: &State, zone: &str, serial: u32) -> Result<(), String> {
    let Some(dir) = std::env::var_os("PLESK_EMU_ZONE_DIR").map(PathBuf::from) else {
        return Ok(());
    };
    let file = write_zone_file(&dir, state, zone, serial)?;
    let Ok(reload) = std::env::var("PLESK_EMU_RELOAD") else {
        return Ok(());
    };
    let argv: Vec<String> = serde_json::from_str(&reload)
        .map_err(|e| format!("PLESK_EMU_RELOAD is not a JSON array of strings: {e}"))?;
    let file = file.display().to_string();
    let argv: Vec<String> = argv
        .iter()
        .map(|a| a.replace("{zone}", zone).replace("{file}", &file))
        .collect();
    let Some((program, args)) = argv.split_first() else {
        return Err("PLESK_EMU_RELOAD is empty".into());
    };
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "reloading zone {zone} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn write_zone_file(dir: &Path, state: &State, zone: &str, serial: u32) -> Result<PathBuf, String> {
    let records = state.zones.get(zone).map(Vec::as_slice).unwrap_or_default();
    let path = dir.join(format!("{zone}.zone"));
    let tmp = dir.join(format!(".{zone}.zone.tmp.{}", std::process::id()));
    write_durably(&tmp, zone_file(zone, records, serial).as_bytes())?;
    fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
    Ok(path)
}

/// `plesk emu write-zones`: every zone file, no reload.
fn write_all_zones() -> Outcome {
    let Some(dir) = std::env::var_os("PLESK_EMU_ZONE_DIR").map(PathBuf::from) else {
        return err(1, "PLESK_EMU_ZONE_DIR is not set\n");
    };
    let state_file = match state_path() {
        Ok(p) => p,
        Err(o) => return o,
    };
    let mut state = match load(&state_file) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let zones: Vec<String> = state.zones.keys().cloned().collect();
    for zone in zones {
        let serial = next_serial(&mut state, &zone);
        if let Err(e) = write_zone_file(&dir, &state, &zone, serial) {
            return err(1, format!("cannot write the zone file of {zone}: {e}\n"));
        }
    }
    match save(&state_file, &state) {
        Ok(()) => ok(String::new()),
        Err(e) => err(1, format!("cannot save emulator state: {e}\n")),
    }
}
