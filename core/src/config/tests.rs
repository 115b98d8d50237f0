use super::*;

const CRED: &str = "sha256:00112233445566778899aabbccddeeff:0000000000000000000000000000000000000000000000000000000000000000";

fn base(extra: &str) -> String {
    format!(
        r#"
zones = ["dyn.example.com"]

[[hosts]]
name = "home.dyn.example.com"

[[users]]
name = "alice"
credential = "{CRED}"
hosts = ["home.dyn.example.com"]
{extra}
"#
    )
}

fn problems(text: &str) -> Vec<ConfigProblem> {
    match Config::parse(text, None) {
        Err(ConfigError::Invalid(p)) => p,
        other => panic!("expected validation problems, got {other:?}"),
    }
}

fn one_problem(text: &str) -> String {
    let p = problems(text);
    assert_eq!(p.len(), 1, "expected exactly one problem, got {p:#?}");
    p[0].to_string()
}

#[test]
fn minimal_config_gets_defaults() {
    let c = Config::parse(&base(""), None).unwrap();
    assert_eq!(c.zones[0].as_str(), "dyn.example.com");
    let h = &c.hosts[&Hostname::parse("home.dyn.example.com").unwrap()];
    assert_eq!(h.types, vec![RecordType::A, RecordType::AAAA]);
    assert_eq!(h.zone.as_str(), "dyn.example.com");
    assert_eq!(c.paths.queue, PathBuf::from("/var/lib/dyndns/queue"));
    assert_eq!(c.applier.plesk, PathBuf::from("/usr/sbin/plesk"));
    assert_eq!(c.applier.interval, Duration::from_secs(2));
    assert_eq!(c.handler.realm, "dyndns");
    assert!(
        c.handler.trusted_proxies.is_empty(),
        "no peer is trusted by its address alone"
    );
    assert_eq!(c.handler.proxy_secret, None);
    assert_eq!(c.handler.heard_resolution, Duration::from_secs(600));
    assert_eq!(c.handler.silent_after, Duration::from_secs(2 * 86_400));
    assert_eq!(c.applier.host_change_limit, 30);
    assert_eq!(c.applier.host_change_window, Duration::from_secs(3600));
    assert!(!c.users[0].admin);
    assert!(c.warnings().is_empty());
    assert!(c.notify.email.is_none());
    assert_eq!(c.acme, AcmeOptions::default());
    assert!(!c.acme.enabled);
    assert_eq!(c.acme.max_values, 4);
    assert_eq!(c.acme.lifetime, Duration::from_secs(3600));
    assert_eq!(c.acme.httpreq_path, "/acme");
    assert_eq!(c.acme.present_wait, Duration::from_secs(25));
}

#[test]
fn acme_options() {
    let c = Config::parse(
        &base("[acme]\nenabled = true\nmax_values = 2\nlifetime = \"10m\"\nhttpreq_path = \"/le/httpreq\"\npresent_wait = \"0s\""),
        None,
    )
    .unwrap();
    assert!(c.acme.enabled);
    assert_eq!(c.acme.max_values, 2);
    assert_eq!(c.acme.lifetime, Duration::from_secs(600));
    assert_eq!(c.acme.httpreq_path, "/le/httpreq");
    assert_eq!(c.acme.present_wait, Duration::ZERO);
    let challenge = Hostname::parse("_acme-challenge.home.dyn.example.com").unwrap();
    assert_eq!(
        c.challenge_host(&challenge).map(|h| h.name.as_str()),
        Some("home.dyn.example.com")
    );
    let other = Hostname::parse("_acme-challenge.nas.dyn.example.com").unwrap();
    assert!(c.challenge_host(&other).is_none());
    assert!(
        c.challenge_host(&Hostname::parse("home.dyn.example.com").unwrap())
            .is_none()
    );
    assert!(c.user("alice").is_some());
    assert!(c.user("bob").is_none());
    for bad in [
        "/",
        "/acme/",
        "/a//b",
        "/a/../b",
        "/a b",
        "/health",
        "/update/x",
        "/nic",
        "/status",
    ] {
        assert!(!httpreq_path_ok(bad), "{bad:?}");
    }
    for good in ["/acme", "/.well-known-x/httpreq", "/nicer", "/a/b-c_d.e"] {
        assert!(httpreq_path_ok(good), "{good:?}");
    }
    assert!(
        Config::parse(&base("[acme]\nenable = true"), None).is_err(),
        "unknown keys are errors"
    );
}

#[test]
fn example_config_is_valid() {
    let text = include_str!("../../../examples/dyndns.toml");
    let c = Config::parse(text, None).expect("examples/dyndns.toml must be valid");
    assert!(!c.users.is_empty());
}

#[test]
fn full_config() {
    let text = r#"
zones = ["example.com", "dyn.example.com"]
[paths]
queue = "var/queue"
state = "var/state"
private = "/var/lib/dyndns/private"
[handler]
trusted_proxies = ["127.0.0.1", "10.0.0.0/8", "::1"]
user_named_hosts = true
realm = "My DynDNS"
heartbeat_max_age = "2m"
[applier]
plesk = "/opt/psa/bin/plesk"
interval = "500ms"
plesk_timeout = "30s"
retry_initial = "1s"
retry_max = "1m"
metrics_file = "/var/lib/node_exporter/dyndns.prom"
[[hosts]]
name = "home.dyn.example.com"
types = ["A", "AAAA"]
ipv6_interface_id = "::1:2:3:4"
[[hosts]]
name = "v4.dyn.example.com"
types = ["a"]
[[users]]
name = "home@dyn.example.com"
credential = "CRED"
[[users]]
name = "bob"
credential = "CRED"
hosts = ["*.dyn.example.com"]
[notify]
attempts = 5
[notify.email]
server = "mail.example.com"
security = "tls"
username = "dyndns"
password = "pw"
from = "DynDNS <dyndns@example.com>"
to = ["admin@example.com"]
[notify.webhook]
url = "https://hooks.example.com/T0/B0/x"
"#
    .replace("CRED", CRED);
    let c = Config::parse(&text, Some(Path::new("/etc/dyndns"))).unwrap();
    assert_eq!(
        c.paths.queue,
        PathBuf::from("/etc/dyndns/var/queue"),
        "relative paths follow the config file"
    );
    assert_eq!(c.paths.private, PathBuf::from("/var/lib/dyndns/private"));
    let home = &c.hosts[&Hostname::parse("home.dyn.example.com").unwrap()];
    assert_eq!(
        home.zone.as_str(),
        "dyn.example.com",
        "the longest zone wins"
    );
    assert_eq!(home.ipv6_interface_id, Some("::1:2:3:4".parse().unwrap()));
    let v4 = &c.hosts[&Hostname::parse("v4.dyn.example.com").unwrap()];
    assert_eq!(v4.types, vec![RecordType::A]);
    assert_eq!(c.applier.interval, Duration::from_millis(500));
    assert_eq!(c.notify.attempts, 5);
    assert_eq!(c.notify.email.as_ref().unwrap().security, SmtpSecurity::Tls);
    assert!(c.handler.user_named_hosts);
}

#[test]
fn syntax_errors_name_the_line_and_key() {
    let err = Config::parse("zones = [\"a.example.com\"\n", None).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax(_)));
    let err = Config::parse(&base("[applier]\nintervall = \"5s\"\n"), None).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("intervall"), "{msg}");
    let err = Config::parse(&base("[applier]\ninterval = \"five seconds\"\n"), None).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax(_)), "{err}");
    let err = Config::parse("[[hosts]]\nname = \"a.example.com\"\n", None).unwrap_err();
    assert!(err.to_string().contains("zones"), "{err}");
}

#[test]
fn invalid_configs_each_have_their_own_message() {
    let cases: Vec<(String, &str)> = vec![
        ("zones = []".into(), "at least one zone"),
        (
            base("").replace(
                "\"dyn.example.com\"]",
                "\"dyn.example.com\", \"bad_zone.com\"]",
            ),
            "zones[1]: host name \"bad_zone.com\" contains the character '_'",
        ),
        (
            base("").replace(
                "\"dyn.example.com\"]",
                "\"dyn.example.com\", \"DYN.example.com.\"]",
            ),
            "dyn.example.com is listed twice",
        ),
        (
            base("[[hosts]]\nname = \"-x.dyn.example.com\""),
            "hosts[1].name: label \"-x\"",
        ),
        (
            base("[[hosts]]\nname = \"www.example.org\""),
            "www.example.org is not inside any allowed zone (dyn.example.com)",
        ),
        (
            base("[[hosts]]\nname = \"HOME.dyn.example.com\""),
            "hosts[1]: home.dyn.example.com is already defined",
        ),
        (
            base("[[hosts]]\nname = \"x.dyn.example.com\"\ntypes = []"),
            "types must name A, AAAA or both",
        ),
        (
            base("[[hosts]]\nname = \"x.dyn.example.com\"\ntypes = [\"MX\"]"),
            "record type \"MX\" is not supported",
        ),
        (
            base("[[hosts]]\nname = \"x.dyn.example.com\"\nipv6_interface_id = \"2001:db8::1\""),
            "ipv6_interface_id \"2001:db8::1\" must be an IPv6 address with only the lower 64 bits",
        ),
        (
            base(
                "[[hosts]]\nname = \"x.dyn.example.com\"\ntypes = [\"A\"]\nipv6_interface_id = \"::1\"",
            ),
            "ipv6_interface_id is set but the host has no AAAA",
        ),
        (
            base(&format!(
                "[[users]]\nname = \"eve:1\"\ncredential = \"{CRED}\"\nhosts = [\"home.dyn.example.com\"]"
            )),
            "must not contain ':'",
        ),
        (
            base(&format!("[[users]]\nname = \"\"\ncredential = \"{CRED}\"")),
            "users[1].name \"\": must not be empty",
        ),
        (
            base(&format!(
                "[[users]]\nname = \"eve\\u202Eevil\"\ncredential = \"{CRED}\""
            )),
            "must not contain spaces, control or invisible characters",
        ),
        (
            base(&format!(
                "[[users]]\nname = \"alice\"\ncredential = \"{CRED}\"\nhosts = [\"home.dyn.example.com\"]"
            )),
            "user \"alice\" is already defined",
        ),
        (
            base(
                "[[users]]\nname = \"bob\"\ncredential = \"hunter2\"\nhosts = [\"home.dyn.example.com\"]",
            ),
            "credential scheme \"<not a hash>\" is not supported",
        ),
        (
            base(
                "[[users]]\nname = \"bob\"\ncredential = \"sha256:abc:def\"\nhosts = [\"home.dyn.example.com\"]",
            ),
            "credential must look like",
        ),
        (
            base(&format!(
                "[[users]]\nname = \"bob\"\ncredential = \"{CRED}\"\nhosts = [\"nas.dyn.example.com\"]"
            )),
            "host nas.dyn.example.com is not defined in [[hosts]]",
        ),
        (
            base(&format!(
                "[[users]]\nname = \"bob\"\ncredential = \"{CRED}\"\nhosts = [\"*.example.org\"]"
            )),
            "pattern *.example.org lies outside every allowed zone",
        ),
        (
            base(&format!(
                "[[users]]\nname = \"bob\"\ncredential = \"{CRED}\"\nhosts = [\"a b\"]"
            )),
            "host \"a b\": host name \"a b\" contains the character ' '",
        ),
        (
            base(&format!(
                "[[users]]\nname = \"bob\"\ncredential = \"{CRED}\""
            )),
            "users[1] (bob): no hosts granted (add hosts = [...])",
        ),
        (
            base(&format!(
                "[[users]]\nname = \"x@dyn.example.com\"\ncredential = \"{CRED}\""
            )),
            "or set handler.user_named_hosts = true",
        ),
        (
            base("[handler]\ntrusted_proxies = [\"localhost\"]"),
            "handler.trusted_proxies: \"localhost\" is not an IP address",
        ),
        (base("[handler]\nrealm = \"a\\\"b\""), "handler.realm"),
        (
            base("[applier]\ninterval = \"0s\""),
            "applier.interval must be longer than zero",
        ),
        (
            base("[applier]\nretry_max = \"9000years\""),
            "applier.retry_max must be at most 365 days",
        ),
        (
            base("[handler]\nheartbeat_max_age = \"366days\""),
            "handler.heartbeat_max_age must be at most 365 days",
        ),
        (
            base("[notify]\nretry_delay = \"18446744073709551615s\""),
            "notify.retry_delay must be at most 365 days",
        ),
        (
            base("[acme]\nlifetime = \"400days\""),
            "acme.lifetime must be at most 365 days",
        ),
        (
            base("[applier]\nretry_initial = \"5m\"\nretry_max = \"1m\""),
            "applier.retry_initial (300s) is longer than applier.retry_max (60s)",
        ),
        (
            base(
                "[paths]\nqueue = \"/srv/dyndns\"\nstate = \"/srv/dyndns/state\"\nprivate = \"/srv/private\"",
            ),
            "paths.state (/srv/dyndns/state) must not be inside or equal to paths.queue (/srv/dyndns)",
        ),
        (
            base("[paths]\nqueue = \"/srv/q\"\nstate = \"/srv/s\"\nprivate = \"/srv/q/private\""),
            "paths.private (/srv/q/private) must not be inside or equal to paths.queue (/srv/q)",
        ),
        (
            base(
                "[notify.email]\nserver = \"mail.example.com\"\nfrom = \"a@example.com\"\nto = []",
            ),
            "notify.email.to: at least one recipient",
        ),
        (
            base(
                "[notify.email]\nserver = \"mail.example.com\"\nfrom = \"nobody\"\nto = [\"a@example.com\"]",
            ),
            "notify.email.from: \"nobody\" is not an email address",
        ),
        (
            base(
                "[notify.email]\nserver = \"mail.example.com\"\nfrom = \"a@example.com\"\nto = [\"a@example.com\"]\nusername = \"u\"",
            ),
            "username and password must be given together",
        ),
        (
            base("[notify.webhook]\nurl = \"ftp://example.com/x\""),
            "notify.webhook.url \"ftp://example.com/x\" must start with http",
        ),
        (
            base("").replace(
                "\"dyn.example.com\"]",
                "\"dyn.example.com\", \"_acme-challenge.example.org\"]",
            ),
            "zones[1]: _acme-challenge.example.org is an ACME challenge name",
        ),
        (
            base("[[hosts]]\nname = \"_acme-challenge.home.dyn.example.com\""),
            "hosts[1].name: _acme-challenge.home.dyn.example.com is an ACME challenge name",
        ),
        (
            base("").replace(
                "hosts = [\"home.dyn.example.com\"]",
                "hosts = [\"home.dyn.example.com\", \"*._acme-challenge.home.dyn.example.com\"]",
            ),
            "users[0].hosts: _acme-challenge.home.dyn.example.com is an ACME challenge name",
        ),
        (
            base("[acme]\nmax_values = 0"),
            "acme.max_values must be between 1 and 16, not 0",
        ),
        (
            base("[acme]\nmax_values = 17"),
            "acme.max_values must be between 1 and 16, not 17",
        ),
        (
            base("[acme]\nlifetime = \"0s\""),
            "acme.lifetime must be longer than zero",
        ),
        (
            base("[acme]\nhttpreq_path = \"acme\""),
            "acme.httpreq_path \"acme\" must start with '/'",
        ),
        (
            base("[acme]\nhttpreq_path = \"/nic/acme\""),
            "acme.httpreq_path \"/nic/acme\"",
        ),
        (
            base("[acme]\npresent_wait = \"121s\""),
            "acme.present_wait is 121s; at most 120s",
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    for (text, expected) in &cases {
        let message = one_problem(text);
        assert!(
            message.contains(expected),
            "config:\n{text}\nexpected {expected:?} in {message:?}"
        );
        assert!(seen.insert(message.clone()), "message repeated: {message}");
    }
    assert!(cases.len() >= 10);
}

#[test]
fn all_problems_are_reported_together() {
    let text = r#"
zones = ["dyn.example.com"]
[[hosts]]
name = "a.example.org"
[[hosts]]
name = "b..dyn.example.com"
[[users]]
name = "x"
credential = "nope"
hosts = ["a.example.org"]
"#;
    let p = problems(text);
    assert_eq!(p.len(), 4, "{p:#?}");
    let err = Config::parse(text, None).unwrap_err().to_string();
    assert!(err.starts_with("4 problem(s) in the config:"), "{err}");
}

#[test]
fn equal_paths_are_reported_once() {
    let p = problems(&base(
        "[paths]\nqueue = \"/srv/x\"\nstate = \"/srv/x\"\nprivate = \"/srv/p\"",
    ));
    assert_eq!(p.len(), 1, "{p:#?}");
}

#[test]
fn user_named_hosts_allows_users_without_list() {
    let text = base(&format!(
        "[handler]\nuser_named_hosts = true\n[[users]]\nname = \"home@dyn.example.com\"\ncredential = \"{CRED}\""
    ));
    assert!(Config::parse(&text, None).is_ok());
}

#[test]
fn plausible_emails() {
    assert!(plausible_email("a@example.com"));
    assert!(plausible_email("DynDNS <a@example.com>"));
    assert!(!plausible_email("a@localhost"));
    assert!(!plausible_email("@example.com"));
    assert!(!plausible_email("a b@example.com"));
}

#[test]
fn proxy_secret_rules() {
    let ok = Config::parse(
        &base("[handler]\nproxy_secret = \"aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI\""),
        None,
    )
    .unwrap();
    assert_eq!(
        ok.handler.proxy_secret.as_deref(),
        Some("aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI")
    );
    assert!(one_problem(&base("[handler]\nproxy_secret = \"short\"")).contains("at least 24"),);
    assert!(
        one_problem(&base(
            "[handler]\nproxy_secret = \"aB3dE5gH7jK9mN1pQ3sT5vX7z\\\"; evil\""
        ))
        .contains("nginx"),
    );
}

#[test]
fn trusted_proxies_without_a_secret_warn() {
    let c = Config::parse(&base("[handler]\ntrusted_proxies = [\"127.0.0.1\"]"), None).unwrap();
    let w = c.warnings();
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("handler.proxy_secret"), "{w:?}");
}

#[test]
fn admin_users_and_change_limit() {
    let c = Config::parse(
        &base("admin = true\n[applier]\nhost_change_limit = 5\nhost_change_window = \"10m\""),
        None,
    )
    .unwrap();
    assert!(c.users[0].admin);
    assert_eq!(c.applier.host_change_limit, 5);
    assert_eq!(c.applier.host_change_window, Duration::from_secs(600));
    assert!(one_problem(&base("[applier]\nhost_change_limit = 51")).contains("larger than 50"));
    assert!(
        one_problem(&base("[applier]\nhost_change_window = \"0s\"")).contains("longer than zero")
    );
}

#[test]
fn user_name_rule_is_public_for_queue_entries() {
    for good in ["alice", "home@dyn.example.com", "Jürgen", "a-b_c.d"] {
        assert_eq!(user_name_problem(good), None, "{good:?}");
    }
    for bad in [
        "",
        "a:b",
        "a b",
        "a\nb",
        "eve\u{1b}[2J",
        "x\u{202e}y",
        "zero\u{200b}width",
        "nel\u{85}",
    ] {
        assert!(user_name_problem(bad).is_some(), "{bad:?}");
    }
    assert!(user_name_problem(&"a".repeat(129)).is_some());
}

#[test]
fn silent_after_must_outlast_heard_resolution() {
    let c = Config::parse(&base("[handler]\nsilent_after = \"6h\""), None).unwrap();
    assert_eq!(c.handler.silent_after, Duration::from_secs(6 * 3600));
    assert_eq!(
        one_problem(&base("[handler]\nsilent_after = \"0s\"")),
        "handler.silent_after must be longer than zero"
    );
    let p = one_problem(&base(
        "[handler]\nsilent_after = \"5m\"\nheard_resolution = \"10m\"",
    ));
    assert!(
        p.starts_with("handler.silent_after (5m) is shorter than handler.heard_resolution (10m)"),
        "{p}"
    );
    let err = Config::parse(&base("[handler]\nsilent_after = \"two days\""), None).unwrap_err();
    assert!(err.to_string().contains("silent_after"), "{err}");
}

#[test]
fn an_admin_needs_no_hosts_of_their_own() {
    let watcher = "[[users]]\nname = \"watcher\"\ncredential = \"CRED\"\nadmin = true\n"
        .replace("CRED", CRED);
    let c = Config::parse(&base(&watcher), None).unwrap();
    assert!(c.users[1].admin && c.users[1].grants.is_empty());
    let p = one_problem(&base(&watcher.replace("admin = true\n", "")));
    assert!(p.contains("no hosts granted"), "{p}");
}
