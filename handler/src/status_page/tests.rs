use super::*;
use base64::Engine;
use dyndns_core::Hostname;
use dyndns_core::state::{HistoryEntry, HostRecord};
use dyndns_core::{RecordType, status::Viewer};
use sha2::{Digest, Sha256};

const HOSTILE: &str = "\"'><script>alert(1)</script>&amp;<svg onload=x>";

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn escaping_covers_text_and_both_attribute_quotes() {
    assert_eq!(
        escape_html(HOSTILE),
        "&quot;&#39;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;amp;&lt;svg onload=x&gt;"
    );
    assert_eq!(
        escape_html("home.dyn.example.com 2001:db8::1"),
        "home.dyn.example.com 2001:db8::1"
    );
    assert_eq!(escape_html("Jürgen"), "Jürgen");
}

#[test]
fn the_policy_allows_exactly_the_inline_style_sheet() {
    let policy = content_security_policy();
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    assert!(
        policy.contains(&format!("style-src 'sha256-{hash}';")),
        "{policy}"
    );
    assert!(policy.starts_with("default-src 'none';"), "{policy}");
    assert!(
        !policy.contains("script-src") && !policy.contains("unsafe"),
        "{policy}"
    );
    assert!(
        !STYLE.contains("</"),
        "the style sheet cannot end its element"
    );
    let html = render_html(&report("alice", false, "bob"));
    assert!(
        html.contains(&format!("<style>{STYLE}</style>")),
        "the hashed text exactly"
    );
}

fn report(user: &str, admin: bool, history_user: &str) -> StatusReport {
    let host = Hostname::parse("home.dyn.example.com").unwrap();
    let now = t(100 * 86_400);
    let mut record = HostRecord::new(host.clone());
    record.push_history(HistoryEntry {
        record_type: RecordType::A,
        old: vec!["192.0.2.1".parse().unwrap()],
        new: "198.51.100.7".parse().unwrap(),
        applied_at: now - Duration::from_secs(86_400),
        user: history_user.into(),
        client: Some("203.0.113.5".parse().unwrap()),
    });
    record.confirm(RecordType::A, "198.51.100.7".parse().unwrap(), now);
    let viewer = Viewer { name: user, admin };
    let status = HostStatus::build(
        HostSources {
            host: &host,
            types: &RecordType::ALL,
            record: Some(&record),
            pending: &[],
            in_flux: &[],
        },
        viewer,
        now,
        Duration::from_secs(2 * 86_400),
    );
    StatusReport::new(viewer, now, Duration::from_secs(2 * 86_400), vec![status])
}

#[test]
fn hostile_names_are_rendered_as_text() {
    let html = render_html(&report(HOSTILE, true, HOSTILE));
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<svg onload"), "{html}");
    assert_eq!(
        html.matches(&escape_html(HOSTILE)).count(),
        2,
        "the viewer's name and the history's user: {html}"
    );
    assert_eq!(html.matches("<svg").count(), 1, "one timeline");
}

#[test]
fn a_host_is_shown_with_its_addresses_badge_and_timeline() {
    let html = render_html(&report("alice", false, "bob"));
    assert!(
        html.contains("data-host=\"home.dyn.example.com\""),
        "{html}"
    );
    assert!(
        html.contains("<td class=\"addr\">198.51.100.7</td>"),
        "{html}"
    );
    assert!(
        html.contains("class=\"badge silent\""),
        "never heard: {html}"
    );
    assert!(html.contains(">never heard<"), "{html}");
    assert!(
        html.contains("another user"),
        "bob is hidden from alice: {html}"
    );
    assert!(
        !html.contains("bob") && !html.contains("203.0.113.5"),
        "{html}"
    );
    assert_eq!(
        html.matches("class=\"segment\"").count(),
        2,
        "old and new address: {html}"
    );
    assert_eq!(html.matches("class=\"change\"").count(), 1, "{html}");
    assert!(!html.contains("NaN") && !html.contains("inf"), "{html}");
}
