//! The master key: configured, or the embedded default's development key file.

use es_app::{Config, Error, KeySource, testing::TEST_MASTER_KEY};

#[test]
fn the_development_key_is_created_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::embedded(dir.path().join("data"));
    let first = config.master_keyring().unwrap();
    let path = dir.path().join("data").join(es_app::DEVELOPMENT_KEY_FILE);
    assert_eq!(
        first.source,
        KeySource::Development {
            path: path.clone(),
            created: true
        }
    );
    let notice = first.notice().unwrap();
    assert!(notice.contains(&path.display().to_string()), "{notice}");
    assert!(notice.contains("ES_MASTER_KEY_FILE"), "{notice}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!notice.contains(text.trim()), "the key is never shown");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let second = config.master_keyring().unwrap();
    assert_eq!(
        second.source,
        KeySource::Development {
            path: path.clone(),
            created: false
        }
    );
    assert!(second.notice().is_none(), "said once");
    assert_eq!(
        first.keyring.current().to_text().as_str(),
        second.keyring.current().to_text().as_str()
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "not rewritten"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
}

#[test]
fn concurrent_first_uses_agree_on_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::embedded(dir.path());
    let keys: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| config.master_keyring().unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created = keys.iter().filter(|k| k.notice().is_some()).count();
    assert_eq!(created, 1);
    let first = keys[0].keyring.current().to_text();
    assert!(
        keys.iter()
            .all(|k| k.keyring.current().to_text().as_str() == first.as_str())
    );
}

#[test]
fn a_configured_key_wins_and_writes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::embedded(dir.path()).with_master_key(TEST_MASTER_KEY);
    let keys = config.master_keyring().unwrap();
    assert_eq!(keys.source, KeySource::Configured);
    assert_eq!(keys.keyring.current().id(), "test");
    assert!(!dir.path().join(es_app::DEVELOPMENT_KEY_FILE).exists());
}

#[test]
fn a_key_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prod.key");
    std::fs::write(&file, format!("{TEST_MASTER_KEY}\n")).unwrap();
    // Private, as a key file must be (see files.rs).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config = Config::embedded(dir.path())
        .with_database_url("postgres://localhost/app")
        .with_master_key_file(&file);
    let keys = config.master_keyring().unwrap();
    assert_eq!(keys.keyring.current().id(), "test");

    let missing = Config::embedded(dir.path()).with_master_key_file(dir.path().join("nope"));
    assert!(matches!(missing.master_keyring(), Err(Error::MasterKey(_))));
}

#[test]
fn postgres_without_a_key_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // Even with a development key file lying in the data directory.
    Config::embedded(dir.path()).master_keyring().unwrap();
    let config = Config::embedded(dir.path()).with_database_url("postgres://localhost/app");
    let error = config.master_keyring().unwrap_err();
    assert!(matches!(error, Error::MissingMasterKey), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("ES_MASTER_KEY"), "{message}");
    assert!(message.contains("ES_MASTER_KEY_FILE"), "{message}");
}

#[test]
fn an_invalid_key_is_a_typed_error_without_the_key() {
    let config = Config::embedded("unused").with_master_key("k:not-base64!!");
    let error = config.master_keyring().unwrap_err();
    assert!(matches!(error, Error::MasterKey(_)), "{error:?}");
    assert!(!es_app::report(&error).contains("not-base64"));
}
