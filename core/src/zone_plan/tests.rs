use super::*;
use crate::challenge::ChallengeValue;
use crate::zone_listing::parse_listing;

const V1: &str = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
const V2: &str = "Xbb0bRlwQXOH5Ow0GQ_S6FVsKJ8jG1U0eKzy2c3zTfA";
const V3: &str = "e5-GHpwF7t9hDtd0pNFMd8DxS9Sz3eB4w1JXAfLzeXA";
const CHALLENGE: &str = "_acme-challenge.home.dyn.example.com";
const LABEL: &str = "_acme-challenge.home";

fn h(s: &str) -> Hostname {
    Hostname::parse(s).unwrap()
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn limits(max_values: usize) -> PlanLimits {
    PlanLimits {
        max_values,
        lifetime: Duration::from_secs(3600),
        now: at(10_000),
    }
}

/// A zone listing with `records` as `name type value` lines.
fn zone(records: &[&str]) -> ZoneListing {
    let mut text: String = records.iter().map(|r| format!("{r}\n")).collect();
    text.push_str("SUCCESS: Getting information for Domain 'dyn.example.com' complete.\n");
    parse_listing(&text)
}

fn want(host: &str, t: RecordType, target: &str, interrupted: bool) -> AddressWant {
    AddressWant {
        host: h(host),
        record_type: t,
        label: host.trim_end_matches(".dyn.example.com").to_string(),
        target: target.parse().unwrap(),
        interrupted,
    }
}

fn call(action: CallAction, t: CallType, label: &str, value: &str) -> PlannedCall {
    PlannedCall {
        action,
        record_type: t,
        label: label.into(),
        value: value.into(),
    }
}

#[test]
fn address_decisions() {
    use AddressDecision::*;
    use CallAction::*;
    let a = CallType::Address(RecordType::A);
    struct Case {
        what: &'static str,
        zone: Vec<&'static str>,
        want: AddressWant,
        decision: AddressDecision,
        calls: Vec<PlannedCall>,
    }
    let cases = vec![
        Case {
            what: "address already there",
            zone: vec!["home.dyn.example.com. A 198.51.100.7"],
            want: want("home.dyn.example.com", RecordType::A, "198.51.100.7", false),
            decision: Unchanged,
            calls: vec![],
        },
        Case {
            what: "address changes: delete the old, add the new",
            zone: vec!["Home.dyn.example.com. A 198.51.100.7"],
            want: want("home.dyn.example.com", RecordType::A, "198.51.100.8", false),
            decision: Change {
                deleting: vec!["198.51.100.7".into()],
                old: vec!["198.51.100.7".parse().unwrap()],
                adding: true,
            },
            calls: vec![
                call(Delete, a, "home", "198.51.100.7"),
                call(Add, a, "home", "198.51.100.8"),
            ],
        },
        Case {
            what: "target among several: only the others go",
            zone: vec![
                "home.dyn.example.com. A 198.51.100.7",
                "home.dyn.example.com. A 198.51.100.9",
            ],
            want: want("home.dyn.example.com", RecordType::A, "198.51.100.9", false),
            decision: Change {
                deleting: vec!["198.51.100.7".into()],
                old: vec!["198.51.100.7".parse().unwrap()],
                adding: false,
            },
            calls: vec![call(Delete, a, "home", "198.51.100.7")],
        },
        Case {
            what: "no record: never created",
            zone: vec!["home.dyn.example.com. AAAA 2001:db8::1"],
            want: want("home.dyn.example.com", RecordType::A, "198.51.100.7", false),
            decision: Rejected(
                "zone dyn.example.com has no A record for home.dyn.example.com; create it once in Plesk (the applier only updates existing records)"
                    .into(),
            ),
            calls: vec![],
        },
        Case {
            what: "no record after an interrupted change: restored",
            zone: vec![],
            want: want("home.dyn.example.com", RecordType::A, "198.51.100.7", true),
            decision: Change {
                deleting: vec![],
                old: vec![],
                adding: true,
            },
            calls: vec![call(Add, a, "home", "198.51.100.7")],
        },
        Case {
            what: "the value is deleted exactly as the zone shows it",
            zone: vec!["home.dyn.example.com. AAAA 2001:DB8::7"],
            want: want("home.dyn.example.com", RecordType::AAAA, "2001:db8::8", false),
            decision: Change {
                deleting: vec!["2001:DB8::7".into()],
                old: vec!["2001:db8::7".parse().unwrap()],
                adding: true,
            },
            calls: vec![
                call(Delete, CallType::Address(RecordType::AAAA), "home", "2001:DB8::7"),
                call(Add, CallType::Address(RecordType::AAAA), "home", "2001:db8::8"),
            ],
        },
    ];
    for c in cases {
        let plan = plan_zone(
            &h("dyn.example.com"),
            &zone(&c.zone),
            &[c.want],
            &[],
            &[],
            &limits(4),
        );
        assert_eq!(plan.addresses.len(), 1, "{}", c.what);
        assert_eq!(plan.addresses[0].decision, c.decision, "{}", c.what);
        assert_eq!(plan.addresses[0].calls, c.calls, "{}", c.what);
        assert_eq!(plan.calls(), c.calls, "{}", c.what);
    }
}

fn present(id: usize, v: &str, t: u64) -> TxtRequest {
    request(
        id,
        TxtOperation::Present {
            value: ChallengeValue::parse(v).unwrap(),
        },
        t,
    )
}

fn cleanup(id: usize, v: &str, t: u64) -> TxtRequest {
    request(
        id,
        TxtOperation::Cleanup {
            value: ChallengeValue::parse(v).unwrap(),
        },
        t,
    )
}

fn clear(id: usize, t: u64) -> TxtRequest {
    request(id, TxtOperation::Clear {}, t)
}

fn request(id: usize, operation: TxtOperation, t: u64) -> TxtRequest {
    TxtRequest {
        id,
        operation,
        requested_at: at(t),
    }
}

fn created(v: &str, t: u64) -> CreatedValue {
    CreatedValue {
        name: h(CHALLENGE),
        label: LABEL.into(),
        value: v.into(),
        created_at: at(t),
    }
}

fn txt_line(v: &str) -> String {
    format!("{CHALLENGE}. TXT {v}")
}

#[test]
fn txt_decisions() {
    use RequestOutcome::*;
    struct Case {
        what: &'static str,
        zone: Vec<&'static str>,
        requests: Vec<TxtRequest>,
        created: Vec<CreatedValue>,
        max: usize,
        outcomes: Vec<(usize, RequestOutcome)>,
        adding: Vec<&'static str>,
        removing: Vec<&'static str>,
        expired: Vec<&'static str>,
        refreshed: Vec<&'static str>,
        forget: Vec<&'static str>,
    }
    let base = || Case {
        what: "",
        zone: vec![],
        requests: vec![],
        created: vec![],
        max: 4,
        outcomes: vec![],
        adding: vec![],
        removing: vec![],
        expired: vec![],
        refreshed: vec![],
        forget: vec![],
    };
    let too_many = |n: usize| {
        Rejected(format!(
            "{CHALLENGE} already holds {n} TXT values, the most allowed (acme.max_values = {n})"
        ))
    };
    let cases = vec![
        Case {
            what: "present adds",
            requests: vec![present(0, V1, 1)],
            outcomes: vec![(0, Applied)],
            adding: vec![V1],
            ..base()
        },
        Case {
            what: "apex and wildcard: two values at once",
            requests: vec![present(1, V2, 2), present(0, V1, 1)],
            outcomes: vec![(0, Applied), (1, Applied)],
            adding: vec![V1, V2],
            ..base()
        },
        Case {
            what: "present of a value that is there: unchanged",
            zone: vec!["V1"],
            requests: vec![present(0, V1, 1)],
            outcomes: vec![(0, Unchanged)],
            ..base()
        },
        Case {
            what: "cleanup removes",
            zone: vec!["V1", "V2"],
            requests: vec![cleanup(0, V1, 1)],
            outcomes: vec![(0, Applied)],
            removing: vec![V1],
            ..base()
        },
        Case {
            what: "cleanup of a value that is not there: unchanged",
            zone: vec!["V2"],
            requests: vec![cleanup(0, V1, 1)],
            outcomes: vec![(0, Unchanged)],
            ..base()
        },
        Case {
            what: "present then cleanup in one batch: no call at all",
            requests: vec![cleanup(1, V1, 2), present(0, V1, 1)],
            outcomes: vec![(0, Applied), (1, Applied)],
            ..base()
        },
        Case {
            what: "cleanup then a newer present: the value stays",
            zone: vec!["V1"],
            requests: vec![present(1, V1, 2), cleanup(0, V1, 1)],
            outcomes: vec![(0, Applied), (1, Applied)],
            ..base()
        },
        Case {
            what: "equal times apply in id order",
            requests: vec![cleanup(1, V1, 1), present(0, V1, 1)],
            outcomes: vec![(0, Applied), (1, Applied)],
            ..base()
        },
        Case {
            what: "clear removes every value, a later present adds",
            zone: vec!["V1", "V2"],
            requests: vec![present(1, V3, 2), clear(0, 1)],
            outcomes: vec![(0, Applied), (1, Applied)],
            adding: vec![V3],
            removing: vec![V1, V2],
            ..base()
        },
        Case {
            what: "clear of an empty name: unchanged",
            requests: vec![clear(0, 1)],
            outcomes: vec![(0, Unchanged)],
            ..base()
        },
        Case {
            what: "more values than allowed: the newest present is rejected",
            zone: vec!["V1"],
            requests: vec![present(0, V2, 1), present(1, V3, 2)],
            max: 2,
            outcomes: vec![(0, Applied), (1, too_many(2))],
            adding: vec![V2],
            ..base()
        },
        Case {
            what: "a cleanup first makes room",
            zone: vec!["V1", "V2"],
            requests: vec![present(1, V3, 2), cleanup(0, V1, 1)],
            max: 2,
            outcomes: vec![(0, Applied), (1, Applied)],
            adding: vec![V3],
            removing: vec![V1],
            ..base()
        },
        Case {
            what: "values the applier did not create count too",
            zone: vec!["V1"],
            requests: vec![present(0, V2, 1)],
            max: 1,
            outcomes: vec![(0, too_many(1))],
            ..base()
        },
        Case {
            what: "a created value past its lifetime is removed",
            zone: vec!["V1", "V2"],
            created: vec![created(V1, 10_000 - 3600), created(V2, 10_000 - 3599)],
            expired: vec![V1],
            ..base()
        },
        Case {
            what: "only values the applier created expire",
            zone: vec!["V1"],
            created: vec![],
            ..base()
        },
        Case {
            what: "an expired value presented again stays, with a new time",
            zone: vec!["V1"],
            requests: vec![present(0, V1, 9_000)],
            created: vec![created(V1, 0)],
            outcomes: vec![(0, Unchanged)],
            refreshed: vec![V1],
            ..base()
        },
        Case {
            what: "expired values make room for new ones",
            zone: vec!["V1", "V2"],
            requests: vec![present(0, V3, 9_000)],
            created: vec![created(V1, 0)],
            max: 2,
            outcomes: vec![(0, Applied)],
            adding: vec![V3],
            expired: vec![V1],
            ..base()
        },
        Case {
            what: "a created value gone from the zone is forgotten",
            zone: vec!["V2"],
            created: vec![created(V1, 9_000), created(V2, 9_000)],
            forget: vec![V1],
            ..base()
        },
        Case {
            what: "a created value not yet in the zone but added again is kept",
            requests: vec![present(0, V1, 9_500)],
            created: vec![created(V1, 9_000)],
            outcomes: vec![(0, Applied)],
            adding: vec![V1],
            ..base()
        },
        Case {
            what: "duplicate records in the listing count once",
            zone: vec!["V1", "V1"],
            requests: vec![cleanup(0, V1, 1)],
            outcomes: vec![(0, Applied)],
            removing: vec![V1],
            ..base()
        },
    ];
    for c in cases {
        let lines: Vec<String> = c
            .zone
            .iter()
            .map(|v| {
                txt_line(match *v {
                    "V1" => V1,
                    "V2" => V2,
                    _ => V3,
                })
            })
            .chain([
                "home.dyn.example.com. A 198.51.100.7".to_string(),
                "other.dyn.example.com. TXT x".to_string(),
            ])
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let wants = if c.requests.is_empty() {
            vec![]
        } else {
            vec![TxtWant {
                name: h(CHALLENGE),
                label: LABEL.into(),
                requests: c.requests.clone(),
            }]
        };
        let mut l = limits(c.max);
        l.lifetime = Duration::from_secs(3600);
        let plan = plan_zone(
            &h("dyn.example.com"),
            &zone(&refs),
            &[],
            &wants,
            &c.created,
            &l,
        );
        if wants.is_empty() && c.created.is_empty() {
            assert!(plan.txt.is_empty(), "{}", c.what);
            continue;
        }
        assert_eq!(plan.txt.len(), 1, "{}", c.what);
        let p = &plan.txt[0];
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(p.outcomes, c.outcomes, "{}: outcomes", c.what);
        assert_eq!(p.adding, strings(&c.adding), "{}: adding", c.what);
        assert_eq!(p.removing, strings(&c.removing), "{}: removing", c.what);
        assert_eq!(p.expired, strings(&c.expired), "{}: expired", c.what);
        assert_eq!(p.refreshed, strings(&c.refreshed), "{}: refreshed", c.what);
        assert_eq!(p.forget, strings(&c.forget), "{}: forget", c.what);
        // what the name holds afterwards: the zone's values less the
        // removed and expired ones, in listing order, then the added ones
        let mut after: Vec<String> = Vec::new();
        for v in &c.zone {
            let v = match *v {
                "V1" => V1,
                "V2" => V2,
                _ => V3,
            };
            if !after.iter().any(|a| a == v) && !c.removing.contains(&v) && !c.expired.contains(&v)
            {
                after.push(v.to_string());
            }
        }
        after.extend(strings(&c.adding));
        assert_eq!(p.values, after, "{}: values", c.what);
    }
}

#[test]
fn the_handler_counts_requests_as_the_plan_does() {
    let name = h(CHALLENGE);
    let v = |s: &str| ChallengeValue::parse(s).unwrap();
    let mut values = vec![V1.to_string()];
    let ops = [
        TxtOperation::Present { value: v(V2) },
        TxtOperation::Present { value: v(V3) },
        TxtOperation::Cleanup { value: v(V1) },
        TxtOperation::Present { value: v(V3) },
        TxtOperation::Clear {},
        TxtOperation::Clear {},
    ];
    let outcomes = apply_txt_requests(&name, &mut values, &ops[..4], 2);
    assert_eq!(
        outcomes,
        vec![
            RequestOutcome::Applied,
            RequestOutcome::Rejected(format!(
                "{CHALLENGE} already holds 2 TXT values, the most allowed (acme.max_values = 2)"
            )),
            RequestOutcome::Applied,
            RequestOutcome::Applied,
        ]
    );
    assert_eq!(values, vec![V2.to_string(), V3.to_string()]);
    let outcomes = apply_txt_requests(&name, &mut values, &ops[4..], 2);
    assert_eq!(
        outcomes,
        vec![RequestOutcome::Applied, RequestOutcome::Unchanged]
    );
    assert!(values.is_empty());
}

#[test]
fn calls_come_in_latency_order() {
    let listing = zone(&["home.dyn.example.com. A 198.51.100.7", &txt_line(V1)]);
    let addresses = [want(
        "home.dyn.example.com",
        RecordType::A,
        "198.51.100.8",
        false,
    )];
    let txt = [TxtWant {
        name: h(CHALLENGE),
        label: LABEL.into(),
        requests: vec![cleanup(0, V1, 1), present(1, V2, 2)],
    }];
    let plan = plan_zone(
        &h("dyn.example.com"),
        &listing,
        &addresses,
        &txt,
        &[],
        &limits(4),
    );
    let a = CallType::Address(RecordType::A);
    assert_eq!(
        plan.calls(),
        vec![
            call(CallAction::Add, CallType::Txt, LABEL, V2),
            call(CallAction::Delete, a, "home", "198.51.100.7"),
            call(CallAction::Add, a, "home", "198.51.100.8"),
            call(CallAction::Delete, CallType::Txt, LABEL, V1),
        ]
    );
    assert_eq!(
        plan.calls()[0].to_string(),
        format!("add TXT \"{LABEL}\" {V2}")
    );
}

#[test]
fn names_are_planned_separately() {
    let other = "_acme-challenge.nas.dyn.example.com";
    let listing = zone(&[&txt_line(V1), &format!("{other}. TXT {V2}")]);
    let txt = [
        TxtWant {
            name: h(other),
            label: "_acme-challenge.nas".into(),
            requests: vec![clear(0, 1)],
        },
        TxtWant {
            name: h(CHALLENGE),
            label: LABEL.into(),
            requests: vec![present(1, V3, 1)],
        },
    ];
    let plan = plan_zone(&h("dyn.example.com"), &listing, &[], &txt, &[], &limits(4));
    assert_eq!(plan.txt.len(), 2);
    assert_eq!(plan.txt[0].name.as_str(), CHALLENGE);
    assert_eq!(plan.txt[0].adding, vec![V3.to_string()]);
    assert!(plan.txt[0].removing.is_empty());
    assert_eq!(plan.txt[1].name.as_str(), other);
    assert_eq!(plan.txt[1].removing, vec![V2.to_string()]);
}
