//! Personal data: append and load throughput of events holding a
//! `Personal<String>` (sealed with the holder's key, keys cached after the
//! first batch) beside the same events in clear.

use std::sync::Arc;
use std::time::Instant;

use es_core::{
    AppendRequest, Bincode, Crypto, ExpectedVersion, MasterKey, MasterKeyring, Storage, StreamId,
    StreamVersion, decode_events,
};

use super::{Plan, progress};
use crate::domain::{NoteEvent, notes};
use crate::stats::{Samples, rate};

/// Holders per measurement: each writes `events / HOLDERS` notes, 10 per append.
const HOLDERS: usize = 20;
const PER_APPEND: usize = 10;

/// The four figures.
#[derive(Debug, Clone, Default)]
pub(crate) struct Figures {
    pub(crate) append_personal: Samples,
    pub(crate) append_clear: Samples,
    pub(crate) load_personal: Samples,
    pub(crate) load_clear: Samples,
}

/// Encodes (sealing when `crypto`) and appends `events` notes; then reads
/// and decodes them back. Events/s of each.
async fn measure<S: Storage>(
    store: &S,
    crypto: Option<&Crypto>,
    tag: &str,
    events: usize,
) -> (f64, f64) {
    let per_holder = events / HOLDERS;
    let started = Instant::now();
    for h in 0..HOLDERS {
        let holder = format!("holder-{tag}-{h}");
        let stream = StreamId::new(format!("note-{tag}-{h}")).expect("stream");
        let mut version = StreamVersion::INITIAL;
        for _ in 0..per_holder / PER_APPEND {
            let batch = notes(store, crypto, &holder, PER_APPEND).await;
            version = store
                .append(AppendRequest::new(
                    stream.clone(),
                    ExpectedVersion::Exact(version),
                    batch,
                ))
                .await
                .expect("append")
                .version;
        }
    }
    let appended = rate(
        per_holder / PER_APPEND * PER_APPEND * HOLDERS,
        started.elapsed(),
    );
    let started = Instant::now();
    let mut read = 0;
    for h in 0..HOLDERS {
        let stream = StreamId::new(format!("note-{tag}-{h}")).expect("stream");
        let records = store
            .read_stream(&stream, StreamVersion::INITIAL, 100_000)
            .await
            .expect("read");
        let decoded: Vec<NoteEvent> = decode_events(crypto, store, &Bincode, &records)
            .await
            .expect("decode");
        if crypto.is_some() {
            assert!(
                decoded
                    .iter()
                    .all(|e| matches!(e, NoteEvent::Sealed { text, .. } if !text.is_shredded()))
            );
        }
        read += decoded.len();
    }
    (appended, rate(read, started.elapsed()))
}

/// Interleaved repetitions of both.
pub(crate) async fn run<S: Storage>(store: &S, plan: &Plan) -> Figures {
    progress("personal data");
    let crypto = Arc::new(Crypto::new(MasterKeyring::new(
        MasterKey::generate("bench").expect("a master key"),
    )));
    let mut figures = Figures::default();
    measure(store, Some(&crypto), "warm-p", plan.personal_events / 10).await;
    measure(store, None, "warm-c", plan.personal_events / 10).await;
    for run in 0..plan.repetitions {
        let (append, load) = measure(
            store,
            Some(&crypto),
            &format!("p{run}"),
            plan.personal_events,
        )
        .await;
        figures.append_personal.push(append);
        figures.load_personal.push(load);
        let (append, load) = measure(store, None, &format!("c{run}"), plan.personal_events).await;
        figures.append_clear.push(append);
        figures.load_clear.push(load);
    }
    figures
}
