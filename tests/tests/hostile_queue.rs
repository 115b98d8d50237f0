//! The queue is writable by the web side, so the root applier treats it as
//! hostile: symlinks, directories, FIFOs, huge files, bad bytes and names,
//! foreign zones and shell metacharacters are each rejected with a reason,
//! nothing outside the queue is read, moved or changed, and the valid
//! entries beside them are applied.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use dyndns_tests::TestEnv;

const CONFIG: &str = r#"
zones = ["dyn.example.com"]
[[hosts]]
name = "good1.dyn.example.com"
[[hosts]]
name = "good2.dyn.example.com"
[[hosts]]
name = "victim.dyn.example.com"
"#;

/// Every file under `dir` with its content (symlinks as their target).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walk(dir) {
        let meta = fs::symlink_metadata(&e).unwrap();
        let key = e.strip_prefix(dir).unwrap().display().to_string();
        if meta.file_type().is_symlink() {
            out.insert(
                key,
                fs::read_link(&e).unwrap().as_os_str().as_bytes().to_vec(),
            );
        } else if meta.is_file() {
            out.insert(key, fs::read(&e).unwrap());
        } else {
            out.insert(key, b"<dir>".to_vec());
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        v.push(p.clone());
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            v.extend(walk(&p));
        }
    }
    v
}

#[test]
fn hostile_items_are_rejected_and_good_entries_applied() {
    let env = TestEnv::new(CONFIG, "");
    env.set_zones(&[(
        "dyn.example.com",
        &[
            ("good1.dyn.example.com.", "A", "192.0.2.1"),
            ("good2.dyn.example.com.", "A", "192.0.2.2"),
            ("victim.dyn.example.com.", "A", "192.0.2.9"),
        ],
    )]);
    // Something outside the queue that an attacker would love root to touch.
    let outside = env.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"root's secret").unwrap();
    fs::write(
        outside.join("victim.json"),
        serde_json::json!({"format":1,"host":"victim.dyn.example.com","type":"A","address":"203.0.113.66",
            "requested_at":"2026-01-01T00:00:00Z","user":"x","client":null}).to_string(),
    )
    .unwrap();
    let marker = env.dir.path().join("pwned");
    let new = env.queue.join("new");

    // the good ones
    env.enqueue("good1.dyn.example.com", "A", "198.51.100.1");
    env.enqueue("good2.dyn.example.com", "A", "198.51.100.2");
    // a symlink to a file outside, under a valid entry name
    symlink(
        outside.join("victim.json"),
        new.join("victim.dyn.example.com_A.json"),
    )
    .unwrap();
    // a symlink to a directory outside
    symlink(&outside, new.join("good1.dyn.example.com_AAAA.json")).unwrap();
    // a dangling symlink
    symlink("/nonexistent/target", new.join("dangling_A.json")).unwrap();
    // a directory where a file should be
    fs::create_dir(new.join("good2.dyn.example.com_AAAA.json")).unwrap();
    fs::write(new.join("good2.dyn.example.com_AAAA.json/inner"), b"x").unwrap();
    // a FIFO (opening it for reading would block forever)
    rustix::fs::mknodat(
        rustix::fs::CWD,
        new.join("fifo.dyn.example.com_A.json"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    // a 100 MB file (sparse, so the test stays fast)
    let big = fs::File::create(new.join("big.dyn.example.com_A.json")).unwrap();
    big.set_len(100 * 1024 * 1024).unwrap();
    drop(big);
    // invalid UTF-8 and invalid JSON
    fs::write(
        new.join("utf8.dyn.example.com_A.json"),
        [0xff, 0xfe, 0x00, 0x80],
    )
    .unwrap();
    fs::write(new.join("json.dyn.example.com_A.json"), b"{\"format\":1,").unwrap();
    // names with ..
    fs::write(new.join("..good1.dyn.example.com_A.json"), b"{}").unwrap();
    fs::write(new.join("good1..dyn.example.com_A.json"), b"{}").unwrap();
    fs::write(new.join("good1.dyn.example.com_A..json"), b"{}").unwrap();
    // an invalid UTF-8 file name
    fs::write(
        new.join(std::ffi::OsStr::from_bytes(b"bad\xffname_A.json")),
        b"{}",
    )
    .unwrap();
    // an entry for a zone that is not allowed (valid otherwise)
    env.enqueue("www.example.org", "A", "198.51.100.66");
    // shell metacharacters: in the content, and in the name
    let shell_host = format!("x$(touch {}).dyn.example.com", marker.display());
    fs::write(
        new.join("shell.dyn.example.com_A.json"),
        serde_json::json!({"format":1,"host":shell_host,"type":"A","address":"198.51.100.9",
            "requested_at":"2026-01-01T00:00:00Z","user":"x","client":null})
        .to_string(),
    )
    .unwrap();
    fs::write(
        new.join(format!(
            "a;touch {}_A.json",
            marker.file_name().unwrap().to_string_lossy()
        )),
        b"{}",
    )
    .unwrap();
    // a hard link to a file outside (same filesystem)
    fs::hard_link(
        outside.join("secret"),
        new.join("hard.dyn.example.com_A.json"),
    )
    .unwrap();
    // content naming another host than the file name
    fs::write(
        new.join("good2.dyn.example.com_A.json.tmp"),
        b"not even a queue name",
    )
    .unwrap();

    let outside_before = snapshot(&outside);
    let out = env.run_applier(&["--once"]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "rejections are reported by exit code 2\n{log}"
    );

    // the valid entries were applied
    assert_eq!(
        env.addresses("dyn.example.com", "good1.dyn.example.com.", "A"),
        vec!["198.51.100.1"]
    );
    assert_eq!(
        env.addresses("dyn.example.com", "good2.dyn.example.com.", "A"),
        vec!["198.51.100.2"]
    );
    // nothing the attacker pointed at happened
    assert_eq!(
        env.addresses("dyn.example.com", "victim.dyn.example.com.", "A"),
        vec!["192.0.2.9"]
    );
    assert!(!marker.exists(), "a shell ran");
    assert_eq!(
        snapshot(&outside),
        outside_before,
        "something outside the queue changed"
    );
    assert_eq!(fs::metadata(outside.join("secret")).unwrap().len(), 13);
    // only Plesk calls for the good entries
    let touched: Vec<String> = env
        .calls()
        .iter()
        .filter(|c| c.command() != "--info")
        .map(|c| c.args[5].clone())
        .collect();
    assert_eq!(touched, vec!["good1", "good1", "good2", "good2"]);

    // everything else is in failed/ with a reason, nothing left pending
    assert!(
        env.queue_files("new").is_empty(),
        "{:?}",
        env.queue_files("new")
    );
    assert!(
        env.queue_files("cur").is_empty(),
        "{:?}",
        env.queue_files("cur")
    );
    // every item under a name the applier made, with a note beside it
    // recording the original name (escaped)
    let failed = env.queue.join("failed");
    let mut reasons = String::new();
    let mut origins: BTreeMap<String, String> = BTreeMap::new();
    let mut items = 0;
    for f in env.queue_files("failed") {
        if let Some(id) = f.strip_suffix(".reason") {
            assert!(
                fs::symlink_metadata(failed.join(format!("{id}.item"))).is_ok(),
                "{f} has no item"
            );
            let note: serde_json::Value =
                serde_json::from_slice(&fs::read(failed.join(&f)).unwrap()).unwrap();
            reasons.push_str(note["reason"].as_str().unwrap());
            reasons.push('\n');
            origins.insert(note["item"].as_str().unwrap().to_string(), id.to_string());
        } else {
            let id = f
                .strip_suffix(".item")
                .expect("only .item and .reason names");
            items += 1;
            assert!(
                failed.join(format!("{id}.reason")).exists(),
                "{f} has no reason file"
            );
        }
    }
    assert!(
        origins.contains_key("new/bad\\xffname_A.json"),
        "{origins:?}"
    );
    assert_eq!(items, 17, "{:?}\n{reasons}", env.queue_files("failed"));
    for expected in [
        "is a symbolic link, not a regular file",
        "is a directory, not a regular file",
        "is a FIFO, not a regular file",
        "is 104857600 bytes, more than the limit of 4096",
        "entry is not UTF-8 text",
        "entry is not a valid queue record",
        "does not look like <host>_<KIND>.json",
        "file name is not UTF-8",
        "www.example.org is not in an allowed zone",
        "has 2 hard links",
        "contains the character '$'",
    ] {
        assert!(
            reasons.contains(expected),
            "no reason {expected:?} in:\n{reasons}"
        );
    }
    // moved symlinks are still symlinks, pointing where they pointed
    let moved_link = failed.join(format!(
        "{}.item",
        origins["new/victim.dyn.example.com_A.json"]
    ));
    assert!(
        fs::symlink_metadata(&moved_link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read_link(&moved_link).unwrap(),
        outside.join("victim.json")
    );
    // the rejected items stay rejected: a second run is clean and quick
    let start = std::time::Instant::now();
    env.apply_once();
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_symlinked_queue_subdirectory_is_refused() {
    // If the web side replaced cur/ or failed/ with a link, root would write
    // wherever it points: the applier refuses to start instead.
    let env = TestEnv::new(CONFIG, "");
    let elsewhere = env.dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, env.queue.join("cur")).unwrap();
    env.enqueue("good1.dyn.example.com", "A", "198.51.100.1");
    let out = env.run_applier(&["--once"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is a symbolic link, expected a directory"),
        "{err}"
    );
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert_eq!(env.queue_files("new").len(), 1, "the entry waits");
}
