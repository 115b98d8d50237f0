//! Batch logic against an in-memory backend, for situations the config
//! validation keeps the real binary out of.

use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;

use dyndns_core::config::Config;

use super::*;
use crate::backend::{Added, BackendError};
use dyndns_core::RecordType;
use dyndns_core::zone_listing::ZoneRecord;

/// Records every call; lists the records it was given.
#[derive(Default)]
struct RecordingBackend {
    records: ZoneListing,
    calls: Vec<String>,
}

impl DnsBackend for RecordingBackend {
    fn list(&mut self, zone: &Hostname) -> Result<ZoneListing, BackendError> {
        self.calls.push(format!("--info {zone}"));
        Ok(self.records.clone())
    }

    fn add(&mut self, change: &RecordChange<'_>) -> Result<Added, BackendError> {
        self.calls.push(self.describe("--add", change));
        Ok(Added::Added)
    }

    fn delete(&mut self, change: &RecordChange<'_>) -> Result<(), BackendError> {
        self.calls.push(self.describe("--del", change));
        Ok(())
    }

    fn describe(&self, verb: &str, c: &RecordChange<'_>) -> String {
        format!(
            "{verb} {} {:?} {} {}",
            c.zone, c.label, c.record_type, c.value
        )
    }
}

fn config(dir: &Path) -> Config {
    Config::parse(
        &format!(
            "zones = [\"dyn.example.com\", \"other.example.com\"]\n\
             [[hosts]]\nname = \"home.dyn.example.com\"\n\
             [paths]\nqueue = \"{0}/queue\"\nstate = \"{0}/state\"\nprivate = \"{0}/private\"\n",
            dir.display()
        ),
        None,
    )
    .unwrap()
}

#[test]
fn a_host_outside_its_zone_is_never_written_at_the_apex() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    let home = Hostname::parse("home.dyn.example.com").unwrap();
    let other = Hostname::parse("other.example.com").unwrap();
    // A config whose host does not lie inside its zone (validation prevents
    // it today; the batch must not depend on that).
    config.hosts.get_mut(&home).unwrap().zone = other.clone();
    let layout = Layout::new(&config.paths);
    layout.ensure().unwrap();
    let journal = Journal::new(layout.journal.clone());
    // An interrupted change asks for the record to be added back.
    journal
        .begin(&JournalNote {
            host: home.clone(),
            record_type: RecordType::A,
            zone: other.clone(),
            deleting: vec!["192.0.2.1".into()],
            target: "198.51.100.7".parse::<IpAddr>().unwrap(),
            started: SystemTime::now(),
        })
        .unwrap();
    let mut backend = RecordingBackend {
        records: ZoneListing {
            addresses: vec![ZoneRecord {
                name: "other.example.com".into(),
                record_type: RecordType::A,
                value: "192.0.2.99".into(),
                address: "192.0.2.99".parse().unwrap(),
            }],
            txt: vec![],
        },
        ..Default::default()
    };
    let mut retry = RetrySchedule::load(layout.retry.clone());
    let mut states = HostStates::load(&layout, &config);
    let mut in_flux = InFlux::new();
    let publisher = Publisher::new(&config);
    let report = Batch {
        config: &config,
        layout: &layout,
        backend: &mut backend,
        journal: &journal,
        retry: &mut retry,
        states: &mut states,
        in_flux: &mut in_flux,
        publisher: &publisher,
        stop: &|| false,
        dry_run: false,
    }
    .run()
    .unwrap();
    assert!(
        backend.calls.iter().all(|c| c.starts_with("--info")),
        "changed a record: {:?}",
        backend.calls
    );
    assert!(report.applied.is_empty());
    assert!(journal.all().unwrap().is_empty(), "the note is dropped");
}

#[test]
fn labels_are_computed_or_refused() {
    let zone = Hostname::parse("dyn.example.com").unwrap();
    let h = |s| Hostname::parse(s).unwrap();
    assert_eq!(
        label_in(&h("home.dyn.example.com"), &zone),
        Ok("home".into())
    );
    assert_eq!(label_in(&h("a.b.dyn.example.com"), &zone), Ok("a.b".into()));
    assert_eq!(label_in(&h("dyn.example.com"), &zone), Ok(String::new()));
    let err = label_in(&h("home.example.org"), &zone).unwrap_err();
    assert!(err.contains("not inside its configured zone"), "{err}");
    assert!(label_in(&h("xdyn.example.com"), &zone).is_err());
}
