//! The Plesk emulator itself behaves as docs/PLESK.md describes; the
//! applier tests are only worth what the emulator is.

use std::process::Command;

use dyndns_tests::{TestEnv, plesk_emulator};

fn plesk(env: &TestEnv, args: &[&str], extra: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(plesk_emulator());
    cmd.args(args)
        .env("PLESK_EMU_STATE", &env.emu_state)
        .env("PLESK_EMU_LOG", &env.emu_log);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn env() -> TestEnv {
    let env = TestEnv::new("zones = [\"example.com\"]", "");
    env.set_zones(&[(
        "example.com",
        &[
            ("example.com.", "NS", "ns.example.com."),
            ("example.com.", "A", "192.0.2.42"),
            ("home.dyn.example.com.", "A", "198.51.100.7"),
            ("example.com.", "MX", "10 mail.example.com."),
        ],
    )]);
    env
}

#[test]
fn info_lists_records_in_plesk_format() {
    let env = env();
    let (code, out, _) = plesk(&env, &["bin", "dns", "--info", "example.com"], &[]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "example.com. NS ns.example.com.\nexample.com. A 192.0.2.42\nhome.dyn.example.com. A 198.51.100.7\nexample.com. MX 10 mail.example.com.\nSUCCESS: Getting information for Domain 'example.com' complete.\n"
    );
}

#[test]
fn add_and_del_with_plesk_exit_codes() {
    let env = env();
    let (code, out, _) = plesk(
        &env,
        &[
            "bin",
            "dns",
            "--add",
            "example.com",
            "-aaaa",
            "home.dyn",
            "-ip",
            "2001:db8::7",
        ],
        &[],
    );
    assert_eq!(code, 0);
    assert!(out.starts_with("SUCCESS"));
    assert!(env.zone("example.com").contains(&(
        "home.dyn.example.com.".into(),
        "AAAA".into(),
        "2001:db8::7".into()
    )));
    // a duplicate add: exit code 2
    let (code, _, err) = plesk(
        &env,
        &[
            "bin",
            "dns",
            "--add",
            "example.com",
            "-a",
            "home.dyn",
            "-ip",
            "198.51.100.7",
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("already exists"));
    // deleting a record that is not there fails
    let (code, _, err) = plesk(
        &env,
        &[
            "bin",
            "dns",
            "--del",
            "example.com",
            "-a",
            "home.dyn",
            "-ip",
            "198.51.100.8",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"));
    // deleting with the same options as the add works; names compare case-insensitively
    let (code, _, _) = plesk(
        &env,
        &[
            "bin",
            "dns",
            "--del",
            "example.com",
            "-a",
            "HOME.dyn",
            "-ip",
            "198.51.100.7",
        ],
        &[],
    );
    assert_eq!(code, 0);
    assert!(
        !env.zone("example.com")
            .iter()
            .any(|(n, t, _)| n == "home.dyn.example.com." && t == "A")
    );
    // the apex is the empty label
    let (code, _, _) = plesk(
        &env,
        &[
            "bin",
            "dns",
            "--del",
            "example.com",
            "-a",
            "",
            "-ip",
            "192.0.2.42",
        ],
        &[],
    );
    assert_eq!(code, 0);
}

#[test]
fn refuses_bad_input() {
    let env = env();
    for args in [
        vec!["bin", "dns", "--info", "nope.example"],
        vec![
            "bin",
            "dns",
            "--add",
            "example.com",
            "-a",
            "x",
            "-ip",
            "2001:db8::1",
        ],
        vec![
            "bin",
            "dns",
            "--add",
            "example.com",
            "-aaaa",
            "x",
            "-ip",
            "192.0.2.1",
        ],
        vec![
            "bin",
            "dns",
            "--add",
            "example.com",
            "-a",
            "x;rm",
            "-ip",
            "192.0.2.1",
        ],
        vec![
            "bin",
            "dns",
            "--add",
            "example.com",
            "-a",
            "x",
            "-ip",
            "not-an-ip",
        ],
        vec![
            "bin",
            "dns",
            "--set",
            "example.com",
            "-a",
            "x",
            "-ip",
            "192.0.2.1",
        ],
        vec!["bin", "dns", "--add", "example.com", "-a", "x"],
        vec!["bin", "domain", "--info", "example.com"],
    ] {
        let (code, _, err) = plesk(&env, &args, &[]);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(!err.is_empty());
    }
}

#[test]
fn failure_injection_counts_calls_and_logs_everything() {
    let env = env();
    let fail = [("PLESK_EMU_FAIL", "--info:2")];
    assert_eq!(
        plesk(&env, &["bin", "dns", "--info", "example.com"], &fail).0,
        1
    );
    assert_eq!(
        plesk(&env, &["bin", "dns", "--info", "example.com"], &fail).0,
        1
    );
    assert_eq!(
        plesk(&env, &["bin", "dns", "--info", "example.com"], &fail).0,
        0
    );
    // zone-specific rules
    let fail = [("PLESK_EMU_FAIL", "--add@other.example:5")];
    assert_eq!(
        plesk(
            &env,
            &[
                "bin",
                "dns",
                "--add",
                "example.com",
                "-a",
                "x",
                "-ip",
                "192.0.2.5"
            ],
            &fail
        )
        .0,
        0
    );
    let calls = env.calls();
    assert_eq!(calls.len(), 4);
    assert_eq!(
        calls.iter().map(|c| c.exit.unwrap()).collect::<Vec<_>>(),
        vec![1, 1, 0, 0]
    );
    assert_eq!(
        env.events().iter().filter(|e| e.event == "start").count(),
        4
    );
}

#[test]
fn latency_is_spent_per_call() {
    let env = env();
    let start = std::time::Instant::now();
    plesk(
        &env,
        &["bin", "dns", "--info", "example.com"],
        &[("PLESK_EMU_LATENCY_MS", "300")],
    );
    assert!(start.elapsed() >= std::time::Duration::from_millis(300));
}
