//! Files private by default (Unix), on the embedded default: after the real
//! binary opened an account, deposited, searched and served, every file under
//! the data directory is 0600 and every directory 0700, a data directory an
//! older version left open is tightened, and a lost development key is not
//! regenerated.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::support::Env;

/// Every entry under `dir` whose mode is not 0700 (directories) or 0600
/// (files), with its mode; and every path seen, relative to `dir`.
fn walk(dir: &Path) -> (Vec<String>, Vec<PathBuf>) {
    let mut wrong = Vec::new();
    let mut seen = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        let mode = std::fs::symlink_metadata(&next)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o7777;
        if mode != 0o700 {
            wrong.push(format!("{} (directory) {mode:04o}", next.display()));
        }
        for entry in std::fs::read_dir(&next).expect("read_dir") {
            let entry = entry.expect("an entry");
            let path = entry.path();
            seen.push(path.strip_prefix(dir).expect("inside").to_owned());
            let metadata = std::fs::symlink_metadata(&path).expect("metadata");
            if metadata.is_dir() {
                pending.push(path);
            } else {
                let mode = metadata.permissions().mode() & 0o7777;
                if mode != 0o600 {
                    wrong.push(format!("{} {mode:04o}", path.display()));
                }
            }
        }
    }
    (wrong, seen)
}

#[track_caller]
fn assert_private(dir: &Path) -> Vec<PathBuf> {
    let (wrong, seen) = walk(dir);
    assert!(wrong.is_empty(), "not private: {wrong:#?}\namong {seen:#?}");
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn every_file_in_the_data_directory_is_private() {
    let env = Env::embedded();
    // As a version that did not care left it.
    std::fs::set_permissions(env.data_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let opened = env.run(&[
        "open",
        "--account",
        "f-1",
        "--owner-id",
        "owner-f",
        "--owner-name",
        "Ada Lovelace",
        "--initial",
        "5.00",
    ]);
    opened.ok();
    assert!(
        opened
            .stderr
            .contains("was open to the group or others; restricted it to its owner"),
        "no warning: {opened:?}"
    );
    env.run(&["deposit", "--account", "f-1", "--amount", "1.00"])
        .ok();
    let found = env.run(&["search", "Lovelace"]).ok();
    assert!(found.to_string().contains("f-1"), "{found}");
    assert_private(env.data_dir());

    let server = env.serve();
    let deposit = server
        .post("/accounts/f-1/deposits", &[], &json!({"amount": 5}))
        .await;
    assert!(deposit.status < 300, "{deposit:?}");
    // With the server's connections open: the log and its index exist.
    let seen = assert_private(env.data_dir());
    for expected in [
        "es.sqlite3",
        "es.sqlite3-wal",
        "es.sqlite3-shm",
        "master.key",
    ] {
        assert!(
            seen.iter().any(|p| p == Path::new(expected)),
            "{expected} not in {seen:#?}"
        );
    }
    for under in ["locks", "search"] {
        assert!(
            seen.iter()
                .any(|p| p.starts_with(under) && p.extension().is_some()),
            "no file under {under}/ in {seen:#?}"
        );
    }
    drop(server);
    assert_private(env.data_dir());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_development_key_is_refused_not_regenerated() {
    let env = Env::embedded();
    env.open("f-2", "owner-g", "Grace Hopper", 500);
    let key = env.data_dir().join("master.key");
    let saved = std::fs::read(&key).unwrap();
    std::fs::remove_file(&key).unwrap();

    // Every command checks the store before it touches the key: the kit's
    // and the bank's own (`Bank::open`, through `Config::master_keyring_for`).
    for args in [
        &["projections", "status"][..],
        &["keys", "rotate"][..],
        &["streams", "show", "account-f-2"][..],
        &["deposit", "--account", "f-2", "--amount", "0.01"][..],
        &["balance", "--account", "f-2"][..],
    ] {
        let message = env.run(args).fails("config", 78);
        assert!(
            message.contains("ES_MASTER_KEY_FILE"),
            "{args:?}: {message}"
        );
        assert!(!key.exists(), "{args:?} generated a new key");
    }

    std::fs::write(&key, &saved).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let message = env
        .run(&["balance", "--account", "f-2"])
        .fails("config", 78);
    assert!(message.contains("0644"), "{message}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let history = env.run(&["history", "--account", "f-2"]).ok();
    assert!(history.to_string().contains("Grace Hopper"), "{history}");
}
