//! `plesk bin dns --info` output (another program's stdout, read lossily
//! as UTF-8 like the applier does) into [`parse_listing`] and
//! [`parse_info`].

use dyndns_core::RecordType;
use dyndns_core::zone_listing::{parse_info, parse_listing};

/// Parses the output; every record must be consistent, and printing the
/// records back in Plesk's format must parse to the same listing.
pub fn check(data: &[u8]) {
    let output = String::from_utf8_lossy(data);
    let listing = parse_listing(&output);
    assert_eq!(parse_info(&output), listing.addresses);
    assert!(listing.addresses.len() + listing.txt.len() <= output.lines().count());
    let mut printed = String::new();
    for r in &listing.addresses {
        assert_eq!(RecordType::of(&r.address), r.record_type, "{r:?}");
        assert_eq!(r.value.parse().ok(), Some(r.address), "{r:?}");
        assert_name(&r.name);
        printed.push_str(&format!("{}. {} {}\n", r.name, r.record_type, r.value));
    }
    for t in &listing.txt {
        assert_name(&t.name);
        assert!(!t.value.contains('\n'), "{t:?}");
        printed.push_str(&format!("{}. TXT \"{}\"\n", t.name, t.value));
    }
    let again = parse_listing(&printed);
    assert_eq!(
        again.addresses, listing.addresses,
        "records print and re-parse"
    );
    assert_eq!(again.txt, listing.txt, "TXT records print and re-parse");
}

fn assert_name(name: &str) {
    assert!(!name.ends_with('.'), "{name:?}");
    assert_eq!(name, name.to_ascii_lowercase(), "{name:?}");
    assert!(!name.contains(char::is_whitespace), "{name:?}");
}
