//! Append throughput with and without personal data, side by side in one run:
//! the same event shape, once with two `Personal<String>` fields (sealed with
//! AES-256-GCM under per-subject keys) and once with plain strings.
//!
//! `cargo bench -p es-store-postgres --bench personal` (needs PostgreSQL).

use std::time::{Duration, Instant};

use es_core::{
    AppendRequest, Bincode, Crypto, EventId, EventStore, ExpectedVersion, MasterKey, MasterKeyring,
    Metadata, NewEvent, Personal, StreamId, SubjectId, encode_events,
};
use es_store_postgres::PgStore;
use es_store_postgres::testing::fresh_store;

#[derive(Debug, Clone, es_core::Event)]
enum WithPersonal {
    Registered {
        #[event(subject)]
        user: SubjectId,
        #[event(personal)]
        name: Personal<String>,
        #[event(personal)]
        email: Personal<String>,
        plan: String,
    },
}

#[derive(Debug, Clone, es_core::Event)]
enum Plain {
    Registered {
        user: SubjectId,
        name: String,
        email: String,
        plan: String,
    },
}

const REPETITIONS: usize = 3;
const BATCHES: usize = 300;
const BATCH: usize = 10;

trait Workload {
    fn event(user: &SubjectId, i: usize) -> Self;
}

impl Workload for WithPersonal {
    fn event(user: &SubjectId, i: usize) -> Self {
        WithPersonal::Registered {
            user: user.clone(),
            name: Personal::new(user.clone(), format!("Customer Number {i}")),
            email: Personal::new(user.clone(), format!("customer{i}@example.org")),
            plan: "standard".into(),
        }
    }
}

impl Workload for Plain {
    fn event(user: &SubjectId, i: usize) -> Self {
        Plain::Registered {
            user: user.clone(),
            name: format!("Customer Number {i}"),
            email: format!("customer{i}@example.org"),
            plan: "standard".into(),
        }
    }
}

/// Appends `BATCHES` batches of `BATCH` events; `subjects` distinct users cycle
/// through them (few subjects: keys come from the cache; many: first use).
async fn run<E: es_core::Event + Workload>(
    store: &PgStore,
    crypto: &Crypto,
    (label, users_label): (&str, &str),
    subjects: usize,
) -> Duration {
    let users: Vec<SubjectId> = (0..subjects)
        .map(|i| SubjectId::new(format!("{users_label}-user-{i}")).expect("subject"))
        .collect();
    let started = Instant::now();
    for b in 0..BATCHES {
        let events: Vec<E> = (0..BATCH)
            .map(|i| E::event(&users[(b * BATCH + i) % users.len()], i))
            .collect();
        let ids: Vec<(EventId, &E)> = events.iter().map(|e| (EventId::new(), e)).collect();
        let payloads = encode_events(Some(crypto), store, &Bincode, &ids)
            .await
            .expect("encode");
        let new_events = ids
            .iter()
            .zip(payloads)
            .map(|((id, e), payload)| NewEvent {
                event_id: *id,
                event_type: e.event_type().to_owned(),
                schema_version: e.schema_version(),
                payload,
                metadata: Metadata::now(),
            })
            .collect();
        store
            .append(AppendRequest::new(
                StreamId::new(format!("{label}-{b}")).expect("stream"),
                ExpectedVersion::NoStream,
                new_events,
            ))
            .await
            .expect("append");
    }
    started.elapsed()
}

fn median(mut rates: Vec<f64>) -> (f64, f64, f64) {
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], rates[0], rates[rates.len() - 1])
}

#[tokio::main]
async fn main() {
    let store = fresh_store().await;
    let crypto = Crypto::new(MasterKeyring::new(
        MasterKey::generate("bench").expect("key"),
    ));
    let events = (BATCHES * BATCH) as f64;
    println!("| workload | plain (events/s) | personal (events/s) | ratio |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, subjects) in [
        ("100 returning subjects (cached keys)", 100),
        ("a new subject per event (key creation)", BATCHES * BATCH),
    ] {
        let (mut plain, mut personal) = (Vec::new(), Vec::new());
        let warm = format!("warm-{subjects}");
        run::<Plain>(&store, &crypto, (&format!("{warm}-plain"), &warm), subjects).await;
        run::<WithPersonal>(
            &store,
            &crypto,
            (&format!("{warm}-personal"), &warm),
            subjects,
        )
        .await;
        for r in 0..REPETITIONS {
            let label = format!("plain-{subjects}-{r}");
            let t = run::<Plain>(&store, &crypto, (&label, &label), subjects).await;
            plain.push(events / t.as_secs_f64());
            // The warm-up's subjects again for the cached case (their keys exist
            // and are cached), new ones (first use) for the other.
            let label = format!("personal-{subjects}-{r}");
            let users = if subjects == 100 {
                warm.clone()
            } else {
                label.clone()
            };
            let t = run::<WithPersonal>(&store, &crypto, (&label, &users), subjects).await;
            personal.push(events / t.as_secs_f64());
        }
        let (p, pmin, pmax) = median(plain);
        let (q, qmin, qmax) = median(personal);
        println!(
            "| {name} | {p:.0} ({pmin:.0}–{pmax:.0}) | {q:.0} ({qmin:.0}–{qmax:.0}) | {:.2} |",
            q / p
        );
    }
}
