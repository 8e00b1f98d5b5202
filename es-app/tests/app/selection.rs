//! `Store::connect` picks the backend from the configuration.

use es_app::{Backend, Config, Error, Store};
use es_core::{
    AppendRequest, Bincode, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId,
    StreamVersion, SystemEvent,
};

/// Appends one event and reads it back: the store works.
async fn round_trip(store: &Store) {
    let stream = StreamId::new("selection-1").unwrap();
    let event = SystemEvent::SubjectForgotten {
        subject: es_core::SubjectId::new("s").unwrap(),
    };
    let new = NewEvent::encode(&event, &Bincode, Metadata::now()).unwrap();
    let result = store
        .append(AppendRequest::new(
            stream.clone(),
            ExpectedVersion::NoStream,
            vec![new],
        ))
        .await
        .unwrap();
    assert_eq!(result.version, StreamVersion::new(1));
    let read = store
        .read_stream(&stream, StreamVersion::INITIAL, 10)
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
}

#[tokio::test]
async fn a_postgres_url_selects_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let config = es_app::testing::postgres_config(dir.path()).await;
    assert_eq!(config.backend(), Backend::Postgres);
    let store = Store::connect(&config).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    assert!(store.as_postgres().is_some());
    store.migrate().await.unwrap();
    round_trip(&store).await;
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing written to the data directory"
    );
}

#[tokio::test]
async fn a_postgresql_url_selects_postgres_too() {
    let dir = tempfile::tempdir().unwrap();
    let config = es_app::testing::postgres_config(dir.path()).await;
    let url = config
        .database_url()
        .unwrap()
        .replacen("postgres://", "postgresql://", 1);
    let store = Store::connect(&config.clone().with_database_url(url))
        .await
        .unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
}

#[tokio::test]
async fn a_sqlite_url_selects_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("elsewhere/app.sqlite3");
    let config = Config::embedded(dir.path().join("data"))
        .with_database_url(format!("sqlite://{}", file.display()));
    let store = Store::connect(&config).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.migrate().await.unwrap();
    round_trip(&store).await;
    assert!(file.exists());
    assert!(
        !dir.path().join("data").exists(),
        "the data dir is not used"
    );
}

#[tokio::test]
async fn no_url_selects_the_embedded_file_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let store = Store::connect(&Config::embedded(&data)).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.migrate().await.unwrap();
    round_trip(&store).await;
    assert!(data.join(es_store_sqlite::DATABASE_FILE).exists());

    // An empty URL counts as unset.
    let empty = Config::embedded(&data).with_database_url("");
    let again = Store::connect(&empty).await.unwrap();
    let stream = StreamId::new("selection-1").unwrap();
    assert_eq!(
        again.stream_version(&stream).await.unwrap(),
        StreamVersion::new(1),
        "the same file"
    );
}

#[tokio::test]
async fn another_scheme_is_a_typed_error_naming_the_variable() {
    let config = Config::embedded("unused").with_database_url("mysql://user:pw@host/db");
    let error = Store::connect(&config).await.unwrap_err();
    let Error::UnsupportedScheme {
        variable,
        scheme,
        expected,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(*scheme, "mysql");
    assert!(variable.contains("DATABASE_URL"));
    assert!(expected.contains("postgres://"));
    assert!(!error.to_string().contains("pw@"), "no URL echoed");
}

#[tokio::test]
async fn a_malformed_url_is_a_typed_error_naming_the_variable() {
    for url in ["not a url", "postgres://host:notaport/db", "sqlite://"] {
        let config = Config::embedded("unused").with_database_url(url);
        let error = Store::connect(&config).await.unwrap_err();
        assert!(
            matches!(error, Error::InvalidUrl { .. }),
            "{url}: {error:?}"
        );
        assert!(error.to_string().contains("DATABASE_URL"), "{error}");
    }
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_postgres_error() {
    let config =
        Config::embedded("unused").with_database_url("postgres://postgres@127.0.0.1:1/nothing");
    let error = Store::connect(&config).await.unwrap_err();
    assert!(matches!(error, Error::Postgres(_)), "{error:?}");
}
