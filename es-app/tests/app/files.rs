//! Files private by default (Unix): the data directory is 0700 (an existing
//! one open to others is tightened), a master key file that others may read is
//! refused, and a lost development key is not regenerated over a store that
//! holds data keys it wrapped.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use es_app::cli::{CliError, Command, ErrorKind, KeysCommand, Kit};
use es_app::testing::TEST_MASTER_KEY;
use es_app::{Config, DEVELOPMENT_KEY_FILE, Error, KeySource, Store};
use es_core::{Crypto, Personal, SubjectId};

#[track_caller]
fn assert_mode(path: &Path, want: u32) {
    let mode = mode(path);
    assert_eq!(
        mode,
        want,
        "{} has mode {mode:04o}, not {want:04o}",
        path.display()
    );
}

#[track_caller]
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test]
async fn the_data_dir_is_created_private_and_an_open_one_is_tightened() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let config = Config::embedded(&data);
    let store = Store::connect(&config).await.unwrap();
    store.migrate().await.unwrap();
    assert_mode(&data, 0o700);
    assert_mode(&data.join("es.sqlite3"), 0o600);
    drop(store);

    // A data directory an older version created 0755.
    set_mode(&data, 0o755);
    Store::connect(&config).await.unwrap();
    assert_mode(&data, 0o700);

    // The development key alone (a sqlite:// URL elsewhere) tightens it too.
    set_mode(&data, 0o775);
    let keys = config.master_keyring().unwrap();
    assert!(keys.notice().is_some());
    assert_mode(&data, 0o700);
    assert_mode(&data.join(DEVELOPMENT_KEY_FILE), 0o600);

    // Created missing, with its parents.
    let deep = parent.path().join("a/b/data");
    Config::embedded(&deep).master_keyring().unwrap();
    assert_mode(&deep, 0o700);
}

#[test]
fn a_master_key_file_others_may_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prod.key");
    std::fs::write(&file, format!("{TEST_MASTER_KEY}\n")).unwrap();
    let config = Config::embedded(dir.path())
        .with_database_url("postgres://localhost/app")
        .with_master_key_file(&file);
    for open in [0o644, 0o640, 0o604, 0o660, 0o620] {
        set_mode(&file, open);
        let error = config.master_keyring().unwrap_err();
        let Error::UnprotectedKeyFile { path, mode } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(path, &file);
        assert_eq!(*mode, open);
        let message = es_app::report(&error);
        assert!(message.contains(&format!("{open:04o}")), "{message}");
        assert!(message.contains(&file.display().to_string()), "{message}");
        assert!(message.contains("chmod 600"), "{message}");
        assert!(!message.contains("AAAA"), "never the key: {message}");
        assert_eq!(CliError::from(error).kind(), ErrorKind::Config);
    }
    for private in [0o600, 0o400] {
        set_mode(&file, private);
        let keys = config.master_keyring().unwrap();
        assert_eq!(keys.keyring.current().id(), "test");
    }
    // A key given directly does not read the file at all.
    set_mode(&file, 0o644);
    let direct = config.with_master_key(TEST_MASTER_KEY);
    assert!(direct.master_keyring().is_ok());
}

#[test]
fn a_development_key_others_may_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::embedded(dir.path());
    config.master_keyring().unwrap();
    let path = dir.path().join(DEVELOPMENT_KEY_FILE);
    set_mode(&path, 0o644);
    let error = config.master_keyring().unwrap_err();
    assert!(
        matches!(&error, Error::UnprotectedKeyFile { path: p, mode: 0o644 } if p == &path),
        "{error:?}"
    );
    assert_eq!(CliError::from(error).kind(), ErrorKind::Config);
    set_mode(&path, 0o600);
    assert!(config.master_keyring().is_ok());
}

/// Seals one personal value of `subject` with `config`'s keys, so that the
/// store holds a data key wrapped by them; returns the sealed bytes.
async fn seal(config: &Config, store: &Store, subject: &str) -> Vec<u8> {
    let keys = config.master_keyring_for(store).await.unwrap();
    let crypto = Crypto::new(keys.keyring);
    let value = Personal::new(SubjectId::new(subject).unwrap(), "Ada".to_owned());
    crypto.seal_value(store, b"record", &value).await.unwrap()
}

#[tokio::test]
async fn a_lost_development_key_is_not_regenerated_over_wrapped_data_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::embedded(dir.path());
    let store = Store::connect(&config).await.unwrap();
    store.migrate().await.unwrap();
    let sealed = seal(&config, &store, "owner-1").await;
    let path = dir.path().join(DEVELOPMENT_KEY_FILE);
    let saved = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();

    let error = config.master_keyring_for(&store).await.unwrap_err();
    assert!(
        matches!(&error, Error::DevelopmentKeyLost { path: p } if p == &path),
        "{error:?}"
    );
    let message = es_app::report(&error);
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("restore"), "{message}");
    assert!(message.contains("ES_MASTER_KEY_FILE"), "{message}");
    assert!(!path.exists(), "no new key was generated");
    assert_eq!(CliError::from(error).kind(), ErrorKind::Config);

    // The kit refuses too, before writing a key.
    let refused = Kit::new()
        .execute(&config, &Command::Keys(KeysCommand::Rotate))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Config, "{refused}");
    assert_eq!(refused.kind().exit_code(), 78);
    assert!(!path.exists(), "no new key was generated");

    // Either recovery works: the key file elsewhere…
    let elsewhere = dir.path().join("backup.key");
    std::fs::write(&elsewhere, &saved).unwrap();
    set_mode(&elsewhere, 0o600);
    let configured = config.clone().with_master_key_file(&elsewhere);
    let keys = configured.master_keyring_for(&store).await.unwrap();
    assert_eq!(keys.source, KeySource::Configured);
    // …or restored in place.
    std::fs::rename(&elsewhere, &path).unwrap();
    let keys = config.master_keyring_for(&store).await.unwrap();
    assert!(keys.notice().is_none(), "not created");
    let opened: Personal<String> = Crypto::new(keys.keyring)
        .open_value(&store, b"record", &sealed)
        .await
        .unwrap();
    assert_eq!(opened.value().map(String::as_str), Some("Ada"));
}

#[tokio::test]
async fn a_development_key_is_created_when_the_store_holds_no_data_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::embedded(dir.path());
    let store = Store::connect(&config).await.unwrap();
    store.migrate().await.unwrap();
    let keys = config.master_keyring_for(&store).await.unwrap();
    assert!(keys.notice().is_some(), "created");
    // A key lost before anything was sealed loses nothing: a new one is fine.
    std::fs::remove_file(dir.path().join(DEVELOPMENT_KEY_FILE)).unwrap();
    let keys = config.master_keyring_for(&store).await.unwrap();
    assert!(keys.notice().is_some(), "created again");
}

#[tokio::test]
async fn a_store_not_yet_migrated_creates_no_development_key() {
    // It cannot say whether it holds data keys: the error is the store's, as
    // for any command on it, and no key is made that might be the wrong one.
    let dir = tempfile::tempdir().unwrap();
    let config = Config::embedded(dir.path());
    let store = Store::connect(&config).await.unwrap();
    let error = config.master_keyring_for(&store).await.unwrap_err();
    assert!(matches!(error, Error::Store(_)), "{error:?}");
    assert!(!dir.path().join(DEVELOPMENT_KEY_FILE).exists());
}
