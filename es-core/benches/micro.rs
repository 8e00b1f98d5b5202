//! Micro-benchmarks of es-core's hot paths, none of which does IO:
//!
//! - `codecs`: one event payload encoded (`Event::encode`) and decoded
//!   (`RecordedEvent::decode`) with `Bincode` and `Json`, for a small event (a
//!   deposit: one `u64`) and a medium one (an account opening with a few
//!   strings). Throughput in payload bytes, so the figures also show the size.
//! - `encryption`: `encode_events` and `decode_events` of a batch of account
//!   openings, each holding the owner's name as `Personal<String>` (sealed with
//!   AES-256-GCM under one data key per owner, kept in a `MemoryStore`), against
//!   the same batch with a plain `String` (no personal data: the baseline). The
//!   `personal` runs hit the key cache, as a busy writer or runner does; the
//!   `personal_uncached` runs load and unwrap every key on every batch.
//!   Throughput in events.
//! - `aggregate`: replaying 1 000 events through `Aggregate::apply`, and
//!   `Aggregate::handle` deciding one command.
//!
//! Run it with `cargo bench -p es-core --bench micro` (append `-- --quick` for a
//! short, rougher run, or a name filter such as `-- encryption`).

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use es_core::{
    Aggregate, Bincode, CommitId, Crypto, Event, EventId, Json, MasterKey, MasterKeyring,
    MemoryStore, Metadata, Personal, Position, RecordedEvent, StreamId, StreamVersion, SubjectId,
    decode_events, encode_events,
};

/// Events per batch in the `encryption` group: a runner's or a large command's
/// batch, over as many owners (one data key each).
const BATCH: usize = 100;

/// Events replayed in the `aggregate` group.
const HISTORY: usize = 1_000;

/// A bank account's events. The owner's name is a plain `String` here, so that
/// these events encode outside an encryption scope (the codec benches) and serve
/// as the baseline of the encryption benches.
#[derive(Debug, Clone, PartialEq, Eq, es_core::Event)]
enum AccountEvent {
    Opened {
        owner_id: SubjectId,
        owner_name: String,
        currency: String,
        branch: String,
    },
    Deposited {
        amount: u64,
    },
    Withdrawn {
        amount: u64,
    },
}

/// The same opening with the owner's name as personal data of the owner.
#[derive(Debug, Clone, PartialEq, Eq, es_core::Event)]
enum PersonalAccountEvent {
    Opened {
        #[event(subject)]
        owner_id: SubjectId,
        #[event(personal)]
        owner_name: Personal<String>,
        currency: String,
        branch: String,
    },
}

enum AccountCommand {
    Open { owner_id: SubjectId, name: String },
    Deposit { amount: u64 },
    Withdraw { amount: u64 },
}

#[derive(Debug, thiserror::Error)]
enum AccountError {
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("the account is not open")]
    NotOpen,
    #[error("amounts must be positive")]
    NonPositiveAmount,
    #[error("insufficient funds")]
    InsufficientFunds,
}

#[derive(Debug, Default, es_core::Aggregate)]
#[aggregate(name = "account")]
struct Account {
    open: bool,
    balance: u64,
}

impl Aggregate for Account {
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn handle(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountCommand as C;
        match command {
            C::Open { .. } if self.open => Err(AccountError::AlreadyOpen),
            C::Open { owner_id, name } => Ok(vec![opened(owner_id, name)]),
            _ if !self.open => Err(AccountError::NotOpen),
            C::Deposit { amount: 0 } | C::Withdraw { amount: 0 } => {
                Err(AccountError::NonPositiveAmount)
            }
            C::Deposit { amount } => Ok(vec![AccountEvent::Deposited { amount }]),
            C::Withdraw { amount } if amount > self.balance => Err(AccountError::InsufficientFunds),
            C::Withdraw { amount } => Ok(vec![AccountEvent::Withdrawn { amount }]),
        }
    }

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { .. } => self.open = true,
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
        }
    }
}

const CURRENCY: &str = "GBP";
const BRANCH: &str = "London, 12 St James's Square";

fn owner(i: usize) -> SubjectId {
    SubjectId::new(format!("owner-{i:04}")).expect("a valid subject id")
}

fn owner_name(i: usize) -> String {
    format!("Augusta Ada King, Countess of Lovelace #{i}")
}

fn opened(owner_id: SubjectId, owner_name: String) -> AccountEvent {
    AccountEvent::Opened {
        owner_id,
        owner_name,
        currency: CURRENCY.to_owned(),
        branch: BRANCH.to_owned(),
    }
}

fn opened_personal(owner_id: SubjectId, owner_name: String) -> PersonalAccountEvent {
    PersonalAccountEvent::Opened {
        owner_name: Personal::new(owner_id.clone(), owner_name),
        owner_id,
        currency: CURRENCY.to_owned(),
        branch: BRANCH.to_owned(),
    }
}

/// An event as a store would return it, at version and position `n`.
fn recorded<E: Event>(event_id: EventId, n: u64, event: &E, payload: Vec<u8>) -> RecordedEvent {
    RecordedEvent {
        stream_id: StreamId::new("account-bench").expect("a valid stream id"),
        version: StreamVersion::new(n),
        position: Position::new(n),
        commit: CommitId::new(n),
        event_id,
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        payload,
        metadata: Metadata::now(),
    }
}

fn codecs(c: &mut Criterion) {
    let events = [
        ("deposit", AccountEvent::Deposited { amount: 250 }),
        ("opened", opened(owner(0), owner_name(0))),
    ];
    let mut group = c.benchmark_group("codecs");
    bench_codec(&mut group, "bincode", &Bincode, &events);
    bench_codec(&mut group, "json", &Json, &events);
    group.finish();
}

fn bench_codec<C: es_core::Codec>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    codec: &C,
    events: &[(&str, AccountEvent)],
) {
    for (label, event) in events {
        let payload = event.encode(codec).expect("the event encodes");
        group.throughput(Throughput::Bytes(payload.len() as u64));
        let stored = recorded(EventId::new(), 1, event, payload);
        assert_eq!(
            &stored.decode::<AccountEvent, C>(codec).expect("it decodes"),
            event
        );
        group.bench_with_input(
            BenchmarkId::new(format!("{name}_encode"), label),
            event,
            |b, event| b.iter(|| black_box(event).encode(codec)),
        );
        group.bench_with_input(
            BenchmarkId::new(format!("{name}_decode"), label),
            &stored,
            |b, stored| b.iter(|| black_box(stored).decode::<AccountEvent, C>(codec)),
        );
    }
}

fn encryption(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let keys = MemoryStore::new();
    let master = MasterKey::generate("bench").expect("a master key");
    // An hour outlives any run: every batch after the first hits the cache.
    let cached =
        Crypto::new(MasterKeyring::new(master.clone())).with_cache_ttl(Duration::from_secs(3600));
    let uncached = Crypto::new(MasterKeyring::new(master)).with_cache_ttl(Duration::ZERO);

    let ids: Vec<EventId> = (0..BATCH).map(|_| EventId::new()).collect();
    let plain: Vec<AccountEvent> = (0..BATCH)
        .map(|i| opened(owner(i), owner_name(i)))
        .collect();
    let personal: Vec<PersonalAccountEvent> = (0..BATCH)
        .map(|i| opened_personal(owner(i), owner_name(i)))
        .collect();
    let plain_batch: Vec<(EventId, &AccountEvent)> = ids.iter().copied().zip(&plain).collect();
    let personal_batch: Vec<(EventId, &PersonalAccountEvent)> =
        ids.iter().copied().zip(&personal).collect();

    // Encoding once creates the owners' keys in the key store and warms the cache.
    let plain_recorded = stored_batch(
        &plain_batch,
        runtime
            .block_on(encode_events(Some(&cached), &keys, &Bincode, &plain_batch))
            .expect("the plain batch encodes"),
    );
    let personal_recorded = stored_batch(
        &personal_batch,
        runtime
            .block_on(encode_events(
                Some(&cached),
                &keys,
                &Bincode,
                &personal_batch,
            ))
            .expect("the personal batch encodes"),
    );
    for crypto in [&cached, &uncached] {
        let opened: Vec<PersonalAccountEvent> = runtime
            .block_on(decode_events(
                Some(crypto),
                &keys,
                &Bincode,
                &personal_recorded,
            ))
            .expect("the personal batch decodes");
        assert_eq!(opened, personal, "personal data opens, not shredded");
    }

    let mut group = c.benchmark_group("encryption");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("encode/plain", |b| {
        b.to_async(&runtime)
            .iter(|| encode_events(Some(&cached), &keys, &Bincode, black_box(&plain_batch)));
    });
    for (name, crypto) in [("personal", &cached), ("personal_uncached", &uncached)] {
        group.bench_function(format!("encode/{name}"), |b| {
            b.to_async(&runtime)
                .iter(|| encode_events(Some(crypto), &keys, &Bincode, black_box(&personal_batch)));
        });
    }
    group.bench_function("decode/plain", |b| {
        b.to_async(&runtime).iter(|| {
            decode_events::<AccountEvent, _, _>(
                Some(&cached),
                &keys,
                &Bincode,
                black_box(&plain_recorded),
            )
        });
    });
    for (name, crypto) in [("personal", &cached), ("personal_uncached", &uncached)] {
        group.bench_function(format!("decode/{name}"), |b| {
            b.to_async(&runtime).iter(|| {
                decode_events::<PersonalAccountEvent, _, _>(
                    Some(crypto),
                    &keys,
                    &Bincode,
                    black_box(&personal_recorded),
                )
            });
        });
    }
    group.finish();
}

fn stored_batch<E: Event>(batch: &[(EventId, &E)], payloads: Vec<Vec<u8>>) -> Vec<RecordedEvent> {
    batch
        .iter()
        .zip(payloads)
        .zip(1..)
        .map(|(((id, event), payload), n)| recorded(*id, n, *event, payload))
        .collect()
}

/// An account's history decided by the aggregate itself: an opening, then
/// deposits and withdrawals that keep the balance positive.
fn history(len: usize) -> Vec<AccountEvent> {
    let mut account = Account::default();
    let mut events = Vec::with_capacity(len);
    let mut commands = (0u64..).map(|i| match i {
        0 => AccountCommand::Open {
            owner_id: owner(0),
            name: owner_name(0),
        },
        i if i % 3 == 0 => AccountCommand::Withdraw { amount: 40 },
        _ => AccountCommand::Deposit { amount: 25 },
    });
    while events.len() < len {
        let command = commands.next().expect("an endless command stream");
        for event in account.handle(command).expect("the command is accepted") {
            account.apply(&event);
            events.push(event);
        }
    }
    events
}

fn replay(events: &[AccountEvent]) -> Account {
    let mut account = Account::default();
    for event in events {
        account.apply(event);
    }
    account
}

fn aggregate(c: &mut Criterion) {
    let events = history(HISTORY);
    let account = replay(&events);
    assert!(account.open && account.balance >= 40, "{account:?}");

    let mut group = c.benchmark_group("aggregate");
    group.throughput(Throughput::Elements(HISTORY as u64));
    group.bench_function("apply_1000", |b| b.iter(|| replay(black_box(&events))));
    group.throughput(Throughput::Elements(1));
    group.bench_function("handle_withdraw", |b| {
        b.iter(|| black_box(&account).handle(black_box(AccountCommand::Withdraw { amount: 40 })));
    });
    group.finish();
}

// What `criterion_group!` + `criterion_main!` expand to, written out: the macro
// makes an undocumented `pub fn`, which the workspace's `missing_docs` refuses.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    codecs(&mut criterion);
    encryption(&mut criterion);
    aggregate(&mut criterion);
    criterion.final_summary();
}
