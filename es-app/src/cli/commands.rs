//! The commands themselves: each returns a [`Report`] (text and JSON).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use es_core::{
    Crypto, EventStore, ForgetOutcome, KeyStore, MasterKey, MasterKeyring, RecordedEvent,
    SnapshotStore, StreamId, StreamVersion, SubjectId,
};
use serde_json::{Value, json};

use super::kit::{Kit, Report};
use super::{CliError, ErrorKind};
use crate::{Backend, Store};

/// How many events `streams show` decodes per batch (one key lookup each).
const SHOW_PAGE: usize = 256;

fn backend_name(store: &Store) -> &'static str {
    match store.backend() {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    }
}

fn stream_id(text: &str) -> Result<StreamId, CliError> {
    StreamId::new(text).map_err(|e| {
        CliError::new(
            ErrorKind::InvalidArgument,
            format!("not a stream id: {}", crate::report(&e)),
        )
    })
}

pub(super) async fn migrate(store: &Store) -> Result<Report, CliError> {
    store.migrate().await?;
    let backend = backend_name(store);
    Ok(Report::new(
        format!("migrated the {backend} store: it is up to date"),
        json!({ "migrated": true, "backend": backend }),
    ))
}

pub(super) async fn list_streams(
    store: &Store,
    after: Option<&str>,
    limit: usize,
) -> Result<Report, CliError> {
    let after = after.map(stream_id).transpose()?;
    let streams = store.list_streams(after.as_ref(), limit).await?;
    // A full page may have a next one.
    let next = (streams.len() == limit && limit > 0)
        .then(|| streams.last().map(|s| s.stream_id.clone()))
        .flatten();
    let mut text = String::new();
    if streams.is_empty() {
        text.push_str("no streams\n");
    } else {
        text = crate::cli::out::table(
            &["stream", "version", "last recorded"],
            &[1],
            streams
                .iter()
                .map(|s| {
                    vec![
                        s.stream_id.as_str().to_owned(),
                        s.version.get().to_string(),
                        crate::cli::out::timestamp(&s.last_recorded_at),
                    ]
                })
                .collect(),
        );
    }
    if let Some(next) = &next {
        // Quoted for a shell (system streams begin with `$`, and an id may
        // hold any printable character, a quote included).
        let _ = writeln!(
            text,
            "more: --after '{}'",
            next.as_str().replace('\'', "'\\''")
        );
    }
    let rows: Vec<Value> = streams
        .iter()
        .map(|s| {
            json!({
                "stream_id": s.stream_id,
                "version": s.version,
                "last_recorded_at": s.last_recorded_at,
            })
        })
        .collect();
    Ok(Report::new(text, json!({ "streams": rows, "next": next })))
}

/// Decodes a page of events to JSON, grouped by the registered enum of each
/// event's type; `Err` per event that could not be shown. A wrong or missing
/// master key fails the whole command: it is the configuration, not the
/// event.
async fn decode_page(
    kit: &Kit,
    crypto: &Crypto,
    store: &Store,
    events: &[RecordedEvent],
) -> Result<Vec<Result<Value, String>>, CliError> {
    let mut out: Vec<Result<Value, String>> = events
        .iter()
        .map(|e| {
            Err(format!(
                "event type `{}` is not registered with the CLI kit",
                e.event_type
            ))
        })
        .collect();
    // Group by decoder (the same enum decodes all its types in one batch).
    let mut groups: BTreeMap<*const (), (Vec<usize>, _)> = BTreeMap::new();
    for (i, event) in events.iter().enumerate() {
        if let Some(decoder) = kit.events.get(event.event_type.as_str()) {
            let key = Arc::as_ptr(decoder).cast::<()>();
            groups
                .entry(key)
                .or_insert_with(|| (Vec::new(), Arc::clone(decoder)))
                .0
                .push(i);
        }
    }
    for (indexes, decoder) in groups.into_values() {
        let batch: Vec<RecordedEvent> = indexes.iter().map(|&i| events[i].clone()).collect();
        match decoder.decode(crypto, store, &batch).await {
            Ok(values) => {
                for (i, value) in indexes.into_iter().zip(values) {
                    out[i] = Ok(value);
                }
            }
            // One bad event fails its batch: decode one by one to say which.
            Err(_) => {
                for (&i, one) in indexes.iter().zip(batch.chunks(1)) {
                    out[i] = match decoder.decode(crypto, store, one).await {
                        Ok(mut value) => value.pop().ok_or_else(|| "nothing decoded".to_owned()),
                        Err(error) => {
                            let error = CliError::from(error);
                            if matches!(error.kind(), ErrorKind::Config | ErrorKind::Unavailable) {
                                return Err(error);
                            }
                            Err(error.message().to_owned())
                        }
                    };
                }
            }
        }
    }
    Ok(out)
}

pub(super) async fn show_stream(
    kit: &Kit,
    store: &Store,
    keyring: &MasterKeyring,
    stream: &str,
    after: u64,
    limit: usize,
) -> Result<Report, CliError> {
    let stream = stream_id(stream)?;
    let version = store.stream_version(&stream).await?;
    if version == StreamVersion::INITIAL {
        return Err(CliError::new(
            ErrorKind::NotFound,
            "no such stream: it has no events",
        ));
    }
    let crypto = Crypto::new(keyring.clone());
    let mut text = format!("stream {} at version {}\n", stream.as_str(), version.get());
    let mut rows = Vec::new();
    let mut from = StreamVersion::new(after);
    let mut left = limit;
    while left > 0 {
        let page = store
            .read_stream(&stream, from, left.min(SHOW_PAGE))
            .await?;
        let Some(last) = page.last() else { break };
        from = last.version;
        left -= page.len();
        let decoded = decode_page(kit, &crypto, store, &page).await?;
        for (event, data) in page.iter().zip(decoded) {
            let _ = writeln!(
                text,
                "\n#{} {} v{}  at {}  position {}  event {}",
                event.version.get(),
                event.event_type,
                event.schema_version,
                crate::cli::out::timestamp(&event.metadata.recorded_at),
                event.position.get(),
                event.event_id.as_uuid(),
            );
            let meta = &event.metadata;
            if let Some(id) = meta.correlation_id {
                let _ = writeln!(text, "  correlation {id}");
            }
            if let Some(id) = meta.causation_id {
                let _ = writeln!(text, "  causation {id}");
            }
            if let Some(key) = &meta.idempotency_key {
                let _ = writeln!(text, "  idempotency key {}", key.as_str());
            }
            for (name, value) in &meta.headers {
                let _ = writeln!(text, "  header {name}: {value}");
            }
            // The one vocabulary (docs/operations.md): an event's fields and
            // its metadata side by side, as `history` and the dead letters
            // print them.
            let mut row = json!({
                "version": event.version,
                "position": event.position,
                "commit": event.commit,
                "event_id": event.event_id,
                "event_type": event.event_type,
                "schema_version": event.schema_version,
                "recorded_at": crate::cli::out::timestamp(&meta.recorded_at),
                "correlation_id": meta.correlation_id,
                "causation_id": meta.causation_id,
                "idempotency_key": meta.idempotency_key.as_ref().map(|k| k.as_str()),
                "headers": meta.headers,
            });
            match data {
                Ok(data) => {
                    let _ = writeln!(text, "  {data}");
                    row["data"] = data;
                }
                Err(why) => {
                    let _ = writeln!(text, "  <not decoded: {why}>");
                    row["data"] = Value::Null;
                    row["undecoded"] = Value::String(why);
                }
            }
            rows.push(row);
        }
    }
    let json = json!({
        "stream_id": stream,
        "version": version,
        "events": rows,
    });
    Ok(Report::new(text, json))
}

pub(super) async fn forget(store: &Store, subject: &str, force: bool) -> Result<Report, CliError> {
    let subject = SubjectId::new(subject).map_err(|e| {
        CliError::new(
            ErrorKind::InvalidArgument,
            format!("not a subject id: {}", crate::report(&e)),
        )
    })?;
    // A subject with no key at all (a typo, say) has nothing to shred; its
    // tombstone would block the id for good. Only on request.
    if !force
        && store
            .load_keys(std::slice::from_ref(&subject))
            .await?
            .is_empty()
    {
        return Err(CliError::new(
            ErrorKind::NotFound,
            "no key is stored for that subject: none of its personal data is here, so nothing \
             was shredded (check the id; `--force` records the tombstone anyway, and no personal \
             data can be written for it again)",
        ));
    }
    // Forgetting destroys a stored key and never unwraps one: no master key
    // is needed, so a lost master key cannot stop an erasure request.
    let throwaway = MasterKey::generate("forget").map_err(CliError::from)?;
    let crypto = Crypto::new(MasterKeyring::new(throwaway));
    let outcome = crypto.forget(store, &subject).await?;
    let (mut text, mut json) = match &outcome {
        ForgetOutcome::Forgotten(result) => (
            format!(
                "forgot the subject: its data key is destroyed and `$SubjectForgotten` recorded at position {}\n",
                result.checkpoint.position.get()
            ),
            json!({
                "forgotten": true,
                "already_forgotten": false,
                "position": result.checkpoint.position,
            }),
        ),
        ForgetOutcome::AlreadyForgotten => (
            "the subject was already forgotten: nothing to do\n".to_owned(),
            json!({ "forgotten": true, "already_forgotten": true }),
        ),
    };
    // On SQLite the destroyed key may linger in the write-ahead log until a
    // checkpoint: truncate it now (the maintenance step after a forget).
    if let Store::Sqlite(sqlite) = store {
        let truncated = sqlite.truncate_wal().await.map_err(crate::Error::from)?;
        json["wal_truncated"] = Value::Bool(truncated);
        text.push_str(if truncated {
            "the write-ahead log is truncated\n"
        } else {
            "the write-ahead log could not be truncated yet (readers are active): run `forget` again later\n"
        });
    }
    Ok(Report::new(text, json))
}

pub(super) async fn rotate(store: &Store, keyring: &MasterKeyring) -> Result<Report, CliError> {
    let crypto = Crypto::new(keyring.clone());
    let rewrapped = crypto.rotate(store).await?;
    let current = keyring.current().id();
    Ok(Report::new(
        format!("re-wrapped {rewrapped} data keys under master key `{current}`"),
        json!({ "rewrapped": rewrapped, "master_key_id": current }),
    ))
}

pub(super) async fn take_snapshot(
    kit: &Kit,
    store: &Store,
    keyring: &MasterKeyring,
    stream: &str,
) -> Result<Report, CliError> {
    let stream = stream_id(stream)?;
    // The longest registered type name that prefixes the stream id.
    let (ops, id) = kit
        .aggregates
        .iter()
        .rev()
        .filter_map(|(name, ops)| {
            let id = stream.as_str().strip_prefix(name)?.strip_prefix('-')?;
            Some((name.len(), ops, id))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, ops, id)| (ops, id))
        .ok_or_else(|| {
            CliError::new(
                ErrorKind::Unregistered,
                format!(
                    "no registered aggregate owns this stream (registered types: {})",
                    kit.aggregate_types().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
    if store.stream_version(&stream).await? == StreamVersion::INITIAL {
        return Err(CliError::new(
            ErrorKind::NotFound,
            "no such stream: it has no events",
        ));
    }
    let crypto = Arc::new(Crypto::new(keyring.clone()));
    let Some(version) = ops.take_snapshot(store, crypto, id).await? else {
        return Err(CliError::new(
            ErrorKind::Unsupported,
            format!(
                "aggregate type `{}` has snapshots disabled",
                ops.type_name()
            ),
        ));
    };
    Ok(Report::new(
        format!(
            "took a snapshot of {} at version {} (schema version {})",
            stream.as_str(),
            version.get(),
            ops.snapshot_schema().unwrap_or_default()
        ),
        json!({
            "stream_id": stream,
            "version": version,
            "aggregate": ops.type_name(),
            "schema_version": ops.snapshot_schema(),
        }),
    ))
}

pub(super) async fn prune_snapshots(kit: &Kit, store: &Store) -> Result<Report, CliError> {
    // Type `a` prunes under `a-`, which also holds the streams of a type
    // `a-b`: refuse rather than judge one type's snapshots by another's schema.
    for name in kit.aggregate_types() {
        let prefix = format!("{name}-");
        if let Some(other) = kit
            .aggregate_types()
            .find(|other| other != &name && other.starts_with(&prefix))
        {
            return Err(CliError::new(
                ErrorKind::Unsupported,
                format!(
                    "aggregate types `{name}` and `{other}` share stream prefixes: prune cannot tell their snapshots apart"
                ),
            ));
        }
    }
    let mut text = String::new();
    let mut rows = Vec::new();
    let mut total = 0;
    for (name, ops) in &kit.aggregates {
        let keep = ops.snapshot_schema();
        let pruned = store.prune_snapshots(&format!("{name}-"), keep).await?;
        total += pruned;
        let kept = keep.map_or_else(
            || "snapshots disabled".to_owned(),
            |v| format!("keeps schema version {v}"),
        );
        let _ = writeln!(text, "{name}: pruned {pruned} ({kept})");
        rows.push(json!({ "aggregate": name, "pruned": pruned, "kept_schema_version": keep }));
    }
    if rows.is_empty() {
        text.push_str("no aggregates are registered: nothing to prune\n");
    }
    let _ = writeln!(text, "pruned {total} snapshots");
    Ok(Report::new(
        text,
        json!({ "pruned": total, "aggregates": rows }),
    ))
}
