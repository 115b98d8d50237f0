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

const VALUE: &str = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";

fn txt(cmd: &str, value: &str, domain: &str) -> Vec<String> {
    [
        "bin",
        "dns",
        cmd,
        "example.com",
        "-txt",
        value,
        "-domain",
        domain,
    ]
    .map(String::from)
    .to_vec()
}

fn run(env: &TestEnv, args: &[String], extra: &[(&str, &str)]) -> (i32, String, String) {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    plesk(env, &refs, extra)
}

#[test]
fn txt_records_as_plesk_documents_them() {
    let env = env();
    let (code, out, _) = run(&env, &txt("--add", VALUE, "_acme-challenge.home.dyn"), &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("SUCCESS: Creation of DNS record"));
    // a second value at the same name, and a value with spaces at the apex
    let other = "Xbb0bRlwQXOH5Ow0GQ_S6FVsKJ8jG1U0eKzy2c3zTfA";
    assert_eq!(
        run(&env, &txt("--add", other, "_ACME-challenge.home.dyn"), &[]).0,
        0
    );
    assert_eq!(
        run(&env, &txt("--add", "google-site-verification=a b", ""), &[]).0,
        0
    );
    let (code, out, _) = plesk(&env, &["bin", "dns", "--info", "example.com"], &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!(
            "_acme-challenge.home.dyn.example.com. TXT {VALUE}\n"
        )),
        "{out}"
    );
    assert!(out.contains(&format!(
        "_acme-challenge.home.dyn.example.com. TXT {other}\n"
    )));
    assert!(
        out.contains("\nexample.com. TXT google-site-verification=a b\n"),
        "{out}"
    );
    // the listing reads back as the applier reads it
    let listing = dyndns_core::zone_listing::parse_listing(&out);
    assert_eq!(
        listing
            .txt_of("_acme-challenge.home.dyn.example.com")
            .collect::<Vec<_>>(),
        vec![VALUE, other]
    );
    // duplicate: exit code 2; delete with the add's options; delete of a missing one: 1
    let (code, _, err) = run(&env, &txt("--add", VALUE, "_acme-challenge.home.dyn"), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already exists"));
    assert_eq!(
        run(&env, &txt("--del", VALUE, "_acme-challenge.home.dyn"), &[]).0,
        0
    );
    let (code, _, err) = run(&env, &txt("--del", VALUE, "_acme-challenge.home.dyn"), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
    // values compare exactly
    let (code, _, _) = run(
        &env,
        &txt("--del", &other.to_lowercase(), "_acme-challenge.home.dyn"),
        &[],
    );
    assert_eq!(code, 1);
    assert!(env.zone("example.com").contains(&(
        "_acme-challenge.home.dyn.example.com.".into(),
        "TXT".into(),
        other.into()
    )));
}

#[test]
fn refuses_what_plesk_would_refuse() {
    let env = env();
    let long = "a".repeat(256);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--add", "example.com", "-txt", VALUE],
            "-domain is required",
        ),
        (
            vec!["--add", "example.com", "-txt", VALUE, "-domain-name", "x"],
            "Unknown option \"-domain-name\"",
        ),
        (
            vec![
                "--add",
                "example.com",
                "-txt",
                "_acme-challenge",
                "-value",
                VALUE,
            ],
            "Unknown option \"-value\"",
        ),
        (
            vec![
                "--add",
                "example.com",
                "-txt",
                VALUE,
                "-domain",
                "x",
                "-ip",
                "192.0.2.1",
            ],
            "-ip does not apply",
        ),
        (
            vec![
                "--add",
                "example.com",
                "-txt",
                VALUE,
                "-a",
                "x",
                "-domain",
                "x",
            ],
            "exactly one record type",
        ),
        (
            vec!["--add", "example.com", "-domain", "x"],
            "exactly one record type",
        ),
        (
            vec!["--add", "example.com", "-txt", "", "-domain", "x"],
            "1 to 255 bytes",
        ),
        (
            vec!["--add", "example.com", "-txt", &long, "-domain", "x"],
            "1 to 255 bytes",
        ),
        (
            vec!["--add", "example.com", "-txt", "a\"b", "-domain", "x"],
            "Invalid TXT record value",
        ),
        (
            vec!["--add", "example.com", "-txt", "a\nb", "-domain", "x"],
            "Invalid TXT record value",
        ),
        (
            vec!["--add", "example.com", "-txt", VALUE, "-domain", "a b"],
            "Invalid subdomain",
        ),
        (
            vec![
                "--add",
                "example.com",
                "-txt",
                VALUE,
                "-domain",
                "x",
                "-domain",
                "y",
            ],
            "given twice",
        ),
        (
            vec!["--add", "example.com", "-txt", VALUE, "-domain"],
            "needs a value",
        ),
        (
            vec![
                "--add",
                "example.com",
                "-a",
                "x",
                "-ip",
                "192.0.2.1",
                "-domain",
                "x",
            ],
            "-domain does not apply",
        ),
        (
            vec!["--add", "example.com", "-a", "_x", "-ip", "192.0.2.1"],
            "Invalid subdomain",
        ),
    ];
    for (args, expected) in cases {
        let mut full = vec!["bin", "dns"];
        full.extend(&args);
        let (code, _, err) = plesk(&env, &full, &[]);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    assert!(
        !env.zone("example.com").iter().any(|(_, t, _)| t == "TXT"),
        "nothing was added"
    );
}

#[test]
fn every_change_writes_the_zone_and_reloads_the_server() {
    let env = env();
    let dir = tempfile::tempdir().unwrap();
    let zone_dir = dir.path().to_str().unwrap();
    let copy = dir.path().join("reloaded.zone");
    // The "server" here is named-checkzone, which loads the file as named
    // would, then a copy shows the reload ran after the write.
    let check = serde_json::to_string(&["named-checkzone", "-q", "{zone}", "{file}"]).unwrap();
    let zone_env = [
        ("PLESK_EMU_ZONE_DIR", zone_dir),
        ("PLESK_EMU_RELOAD", check.as_str()),
    ];
    let (code, _, err) = run(
        &env,
        &txt("--add", VALUE, "_acme-challenge.home.dyn"),
        &zone_env,
    );
    assert_eq!(code, 0, "{err}");
    let file = dir.path().join("example.com.zone");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(&format!(
            "_acme-challenge.home.dyn.example.com. IN TXT \"{VALUE}\"\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("home.dyn.example.com. IN A 198.51.100.7\n"),
        "{text}"
    );
    assert!(
        text.contains("example.com. IN MX 10 mail.example.com.\n"),
        "{text}"
    );
    let serial = |text: &str| -> u64 {
        let soa = text.lines().find(|l| l.contains(" SOA ")).unwrap();
        soa.split_whitespace().nth(6).unwrap().parse().unwrap()
    };
    let first = serial(&text);
    let cp = serde_json::to_string(&["cp", "{file}", copy.to_str().unwrap()]).unwrap();
    let cp_env = [
        ("PLESK_EMU_ZONE_DIR", zone_dir),
        ("PLESK_EMU_RELOAD", cp.as_str()),
    ];
    assert_eq!(run(&env, &txt("--add", "v=spf1 -all", ""), &cp_env).0, 0);
    let text = std::fs::read_to_string(&copy).unwrap();
    assert!(serial(&text) > first, "the serial increases");
    assert!(
        text.contains("example.com. IN TXT \"v=spf1 -all\"\n"),
        "{text}"
    );
    // a listing changes nothing and reloads nothing
    std::fs::remove_file(&copy).unwrap();
    assert_eq!(
        plesk(&env, &["bin", "dns", "--info", "example.com"], &cp_env).0,
        0
    );
    assert!(!copy.exists());
    // a failing reload fails the call, as Plesk's does
    let fail = serde_json::to_string(&["false"]).unwrap();
    let (code, _, err) = run(
        &env,
        &txt("--del", VALUE, "_acme-challenge.home.dyn"),
        &[
            ("PLESK_EMU_ZONE_DIR", zone_dir),
            ("PLESK_EMU_RELOAD", fail.as_str()),
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("reloading zone example.com failed"), "{err}");
    // a reload command is an argument list, never a shell line
    let shell = serde_json::to_string(&["true; touch /tmp/pwned-by-emulator"]).unwrap();
    let (code, _, err) = run(
        &env,
        &txt("--add", VALUE, "_acme-challenge.home.dyn"),
        &[
            ("PLESK_EMU_ZONE_DIR", zone_dir),
            ("PLESK_EMU_RELOAD", shell.as_str()),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(!std::path::Path::new("/tmp/pwned-by-emulator").exists());
    // the emulator-only command writes every zone without a reload
    std::fs::remove_file(&file).unwrap();
    let (code, _, err) = plesk(
        &env,
        &["emu", "write-zones"],
        &[("PLESK_EMU_ZONE_DIR", zone_dir)],
    );
    assert_eq!(code, 0, "{err}");
    assert!(file.exists());
}
